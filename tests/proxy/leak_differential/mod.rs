//! Differential property: a test card hidden by a random mix of separators, digit
//! forms and escapes that a backend decodes, written by the test's own encoder
//! (`alphabet`, `encode`), in a JSON, form, text, HTML, XML, multipart (plain,
//! quoted-printable, base64) or query body, in UTF-8, Latin-1, UTF-16 or UTF-32,
//! gzip, deflate (zlib or raw) or not, goes through the real server
//! on the guarded pass-through route and on the `payment_method` rules route (a
//! base64-wrapped body on the Plano route), in front of the recording echo upstream.
//! What the upstream received is then read by independent decoders (`decode`:
//! `serde_json`, `form_urlencoded`, `percent-encoding`, `encoding_rs`, `htmlize`,
//! `quick-xml`, `quoted_printable`, `base64`, `flate2`, Unicode `Nd` values and NFKC;
//! `legacy`: UTF-32, `%uXXXX`, `\xHH`, octal), in layers.
//!
//! Either the request is refused (4xx, nothing forwarded) or no reading of what was
//! forwarded holds the card. A vault token never equals the value it stands for
//! (`vault::token::Template::finish`), so the check is for the card itself.
//!
//! The same decoders must find the card in what the test sent: a generated case that
//! they cannot read is a bug of the test, not a pass. The cases stay within what the
//! guard documents (SECURITY.md, "What the leak guard covers"): at most three
//! separators between two digits, markup a parser drops read as nothing.
//!
//! `PROPTEST_CASES=20000` for a long run; failures are kept in
//! `tests/proptest-regressions/leak_differential.txt` and re-run first.

mod alphabet;
pub(crate) mod decode;
mod encode;
mod legacy;
mod regressions;
mod spell;

use std::collections::BTreeMap;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, FileFailurePersistence, TestRunner};
use vaultgate::app;
use vaultgate::config::Config;
use vaultgate::demo::echo::EchoUpstream;

use crate::common::*;
use alphabet::{CARDS, DIGIT_FORMS, SEPARATORS};
use encode::{Case, Deco, KINDS};

/// Cases per run by default: well under 30 s in a debug build on two cores.
const DEFAULT_CASES: u32 = 512;

fn deco() -> impl Strategy<Value = Deco> {
    let seps = u8::try_from(SEPARATORS.len()).unwrap_or(u8::MAX);
    (
        prop_oneof![3 => Just(0u8), 2 => 1..DIGIT_FORMS],
        prop_oneof![3 => Just(0u8), 2 => 1u8..16],
        prop_oneof![
            2 => Just(Vec::new()),
            3 => prop::collection::vec((0..seps, prop_oneof![2 => Just(0u8), 3 => 1u8..16]), 1..=3),
        ],
        prop_oneof![4 => Just(0u8), 1 => 1u8..8],
    )
        .prop_map(|(form, esc, gap, markup)| Deco {
            form,
            esc,
            gap,
            markup,
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..CARDS.len(),
        0..KINDS.len(),
        prop_oneof![3 => Just(0u8), 1 => 1u8..4],
        prop::bool::weighted(0.3),
        prop_oneof![6 => Just(0u8), 1 => 1u8..4],
        prop::bool::weighted(0.25),
        prop_oneof![4 => Just(0u8), 1 => 1u8..9],
        prop::bool::weighted(0.3),
        prop::collection::vec(deco(), 19),
    )
        .prop_map(
            |(card, kind, latin1, cdata, coding, plain_digits, utf16, octal, decos)| Case {
                card,
                kind: KINDS[kind],
                latin1,
                cdata,
                coding,
                plain_digits,
                utf16,
                octal,
                decos,
            },
        )
}

/// `bytes` for a failure message: ASCII as is, the rest escaped.
fn shown(bytes: &[u8]) -> String {
    let s = bytes.escape_ascii().to_string();
    if s.len() > 600 {
        format!("{}…", &s[..600])
    } else {
        s
    }
}

#[test]
fn no_decoding_of_what_the_upstream_received_holds_the_hidden_card() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (server, echo) = rt.block_on(async {
        let (up, echo) = EchoUpstream::start().await.unwrap();
        let dir = std::env::temp_dir();
        let c = Config::demo("127.0.0.1:0", "127.0.0.1:0", &format!("http://{up}"), &dir).unwrap();
        c.validate().unwrap();
        (app::start(&c, test_vault()).await.unwrap(), echo)
    });
    let addr = server.proxy_addr();
    let client = http1();
    let mut runner = TestRunner::new(PropConfig {
        cases,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/leak_differential.txt",
        ))),
        ..PropConfig::default()
    });
    // (route, status, error code) → count.
    let outcomes = std::cell::RefCell::new(BTreeMap::<(&str, u16, String), usize>::new());
    let result = runner.run(&case(), |c| {
        let card = c.card();
        // The encoder and the decoders agree: the card is in what is sent.
        let probe = c.request(c.routes()[0]);
        let sent = if probe.path.contains('?') {
            probe.path.as_bytes()
        } else {
            &probe.body
        };
        prop_assert!(
            decode::card_in(sent, card).is_some(),
            "the test's decoders do not read the card in what it sends: {}",
            shown(sent)
        );
        for route in c.routes() {
            let req = c.request(route);
            let before = echo.received().len();
            let reply = rt.block_on(async {
                let mut b = Request::post(url(addr, &req.path));
                if let Some(ct) = &req.content_type {
                    b = b.header("content-type", ct);
                }
                if let Some(coding) = req.coding {
                    b = b.header("content-encoding", coding);
                }
                send(
                    &client,
                    b.body(Full::new(Bytes::from(req.body.clone()))).unwrap(),
                )
                .await
            });
            let status = reply.status;
            let err = if status.is_success() {
                String::new()
            } else {
                code(&reply)
            };
            *outcomes
                .borrow_mut()
                .entry((route, status.as_u16(), err.clone()))
                .or_default() += 1;
            prop_assert!(
                status.is_success() || status.is_client_error(),
                "{route}: status {status} {err}"
            );
            let received = echo.received();
            let new = received.get(before..).unwrap_or_default();
            if !status.is_success() {
                prop_assert!(new.is_empty(), "{route}: refused ({status}) but forwarded");
            }
            for got in new {
                let target = format!("{}?{}", got.path, got.query.as_deref().unwrap_or(""));
                for bytes in [&got.body[..], target.as_bytes()] {
                    if let Some(reading) = decode::card_in(bytes, card) {
                        return Err(TestCaseError::fail(format!(
                            "{route}: {status}: the upstream received the card\n  sent: {}\n  \
                             received: {}\n  read as: {}",
                            shown(&req.body),
                            shown(bytes),
                            shown(reading.as_bytes())
                        )));
                    }
                }
            }
        }
        Ok(())
    });
    rt.block_on(async {
        server.stop().await;
        echo.stop().await;
    });
    for ((route, status, err), n) in outcomes.borrow().iter() {
        println!("leak differential: {route} {status} {err}: {n}");
    }
    result.unwrap();
}
