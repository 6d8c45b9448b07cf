//! Property: whatever shape a request takes — JSON, form, multipart, base64-wrapped,
//! gzip; keys in any letter case; values bare, in arrays or in objects; cards in
//! free fields with separators — the upstream never receives a Luhn-valid card that
//! is not one of the vault's tokens, and never a raw value from a rule field. A
//! refusal (4xx) is always fine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write as _;

use crate::common::*;
use crate::hostile_codec::codec_config;
use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestRunner};
use vaultgate::app;
use vaultgate::demo::echo::EchoUpstream;

const CARDS: [&str; 4] = [
    "4242424242424242",
    "378282246310005",
    "4111111111111111",
    "5555555555554444",
];
const CVVS: [&str; 3] = ["739", "852", "4071"];
const ACCOUNTS: [&str; 2] = ["98765432", "DE89370400440532013000"];

/// One generated request.
#[derive(Clone, Debug)]
struct Gen {
    /// 0 q2open, 1 hostway, 2 plano, 3 payment_method (leak guard only), 4 q2open
    /// reading any body type.
    route: u8,
    /// 0 JSON, 1 form, 2 multipart (fields as parts), 3 multipart (a JSON part),
    /// 4 text.
    encoding: u8,
    gzip: bool,
    /// The payment type: the profile's card type, its bank type, in capitals, or
    /// unknown.
    ptype: u8,
    card: usize,
    cvv: usize,
    account: usize,
    /// Per key, its letter case.
    cases: Vec<u8>,
    /// Per value, its wrapper: bare, an array, an object.
    wraps: Vec<u8>,
    /// Which fields are in: card, cvv, account, a free-text card.
    include: [bool; 4],
    /// The separator in the free-text card.
    sep: u8,
}

fn gen_strategy() -> impl Strategy<Value = Gen> {
    (
        (0u8..5, 0u8..5, any::<bool>(), 0u8..4),
        (0..CARDS.len(), 0..CVVS.len(), 0..ACCOUNTS.len()),
        prop::collection::vec(0u8..4, 8),
        prop::collection::vec(0u8..3, 8),
        any::<[bool; 4]>(),
        0u8..4,
    )
        .prop_map(
            |((route, encoding, gzip, ptype), (card, cvv, account), cases, wraps, include, sep)| {
                Gen {
                    route,
                    encoding,
                    gzip,
                    ptype,
                    card,
                    cvv,
                    account,
                    cases,
                    wraps,
                    include,
                    sep,
                }
            },
        )
}

fn recase(key: &str, sel: u8) -> String {
    match sel {
        1 => key.to_ascii_uppercase(),
        2 => key.to_ascii_lowercase(),
        3 => {
            let mut c = key.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        }
        _ => key.to_owned(),
    }
}

/// A field of the generated request: key (path of keys), value, wrapper.
struct Field {
    keys: Vec<String>,
    value: String,
    wrap: u8,
}

impl Gen {
    fn path(&self) -> &'static str {
        match self.route {
            0 => "/v1/payment",
            1 => "/accounts/42/paymentInfo",
            2 => "/payment-methods",
            3 => "/payment-method",
            _ => "/rules-auto",
        }
    }

    /// The fields, and the raw values that must not reach the upstream.
    fn fields(&self) -> (Vec<Field>, Vec<&'static str>) {
        let card = CARDS[self.card];
        let cvv = CVVS[self.cvv];
        let account = ACCOUNTS[self.account];
        let mut fields = Vec::new();
        let mut raw = vec![card];
        let mut k = 0;
        let mut push = |keys: &[&str], value: String, fields: &mut Vec<Field>| {
            let keys = keys
                .iter()
                .map(|key| {
                    k += 1;
                    recase(key, self.cases[k % self.cases.len()])
                })
                .collect();
            fields.push(Field {
                keys,
                value,
                wrap: self.wraps[k % self.wraps.len()],
            });
        };
        let ptype = |card_t: &str, bank_t: &str| -> String {
            match self.ptype {
                0 => card_t.to_owned(),
                1 => bank_t.to_owned(),
                2 => card_t.to_ascii_uppercase(),
                _ => "paypal".to_owned(),
            }
        };
        match self.route {
            0 | 4 => {
                push(&["paymentType"], ptype("card", "bank"), &mut fields);
                if self.include[0] {
                    push(&["cardNumber"], card.into(), &mut fields);
                }
                if self.include[1] {
                    push(&["cardCode"], cvv.into(), &mut fields);
                    raw.push(cvv);
                }
                if self.include[2] {
                    push(&["accountNumber"], account.into(), &mut fields);
                    raw.push(account);
                }
            }
            1 => {
                push(
                    &["paymentInfoType"],
                    ptype("credit_card", "direct_debit"),
                    &mut fields,
                );
                let value = if self.include[0] { card } else { account };
                push(&["accountNumber"], value.into(), &mut fields);
                raw.push(value);
                if self.include[1] {
                    push(&["verificationNumber"], cvv.into(), &mut fields);
                    raw.push(cvv);
                }
            }
            2 => {
                push(&["payment_method", "card_number"], card.into(), &mut fields);
                if self.include[1] {
                    push(&["payment_method", "cvc"], cvv.into(), &mut fields);
                    raw.push(cvv);
                }
            }
            _ => {}
        }
        if self.include[3] || self.route == 3 {
            let sep = [" ", "-", "", " "][usize::from(self.sep)];
            let spaced: String = card
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(sep);
            push(&["note"], format!("pay with {spaced} please"), &mut fields);
        }
        (fields, raw)
    }

    fn json(fields: &[Field]) -> String {
        let mut root = serde_json::Map::new();
        for f in fields {
            let value = match f.wrap {
                1 => serde_json::json!([f.value]),
                2 => serde_json::json!({ "value": f.value }),
                _ => serde_json::json!(f.value),
            };
            let mut at = &mut root;
            for (i, k) in f.keys.iter().enumerate() {
                if i + 1 == f.keys.len() {
                    at.insert(k.clone(), value.clone());
                } else {
                    at = at
                        .entry(k.clone())
                        .or_insert_with(|| serde_json::json!({}))
                        .as_object_mut()
                        .unwrap();
                }
            }
        }
        serde_json::Value::Object(root).to_string()
    }

    fn form_key(f: &Field) -> String {
        let mut key = f.keys[0].clone();
        for k in &f.keys[1..] {
            key.push_str(&format!("[{k}]"));
        }
        match f.wrap {
            1 => key.push_str("[]"),
            2 => key.push_str("[value]"),
            _ => {}
        }
        key
    }

    fn form(fields: &[Field]) -> String {
        fields
            .iter()
            .map(|f| {
                let v: String = f
                    .value
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                format!("{}={v}", Self::form_key(f))
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// (content type, body, content encoding).
    fn request(
        &self,
    ) -> (
        Option<String>,
        Vec<u8>,
        Option<&'static str>,
        Vec<&'static str>,
    ) {
        let (fields, raw) = self.fields();
        const B: &str = "prop-boundary-7";
        let mp = format!("multipart/form-data; boundary={B}");
        let (ct, body): (Option<String>, Vec<u8>) = if self.route == 2 {
            // Plano: base64 of JSON or of a form.
            let inner = if self.encoding.is_multiple_of(2) {
                Self::json(&fields)
            } else {
                Self::form(&fields)
            };
            let b64 = base64::engine::general_purpose::STANDARD.encode(inner);
            (Some("text/plain".into()), b64.into_bytes())
        } else {
            match self.encoding {
                0 => (
                    Some("application/json".into()),
                    Self::json(&fields).into_bytes(),
                ),
                1 => (
                    Some("application/x-www-form-urlencoded".into()),
                    Self::form(&fields).into_bytes(),
                ),
                2 => {
                    let mut out = Vec::new();
                    for f in &fields {
                        out.extend_from_slice(
                            format!(
                                "--{B}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{}\r\n",
                                Self::form_key(f),
                                f.value
                            )
                            .as_bytes(),
                        );
                    }
                    out.extend_from_slice(format!("--{B}--\r\n").as_bytes());
                    (Some(mp), out)
                }
                3 => {
                    let json = Self::json(&fields);
                    let b64 = base64::engine::general_purpose::STANDARD.encode(json);
                    let out = format!(
                        "--{B}\r\nContent-Disposition: form-data; name=\"doc\"\r\nContent-Type: application/json\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--{B}--\r\n"
                    );
                    (Some(mp), out.into_bytes())
                }
                _ => (Some("text/plain".into()), Self::json(&fields).into_bytes()),
            }
        };
        if self.gzip {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&body).unwrap();
            (ct, e.finish().unwrap(), Some("gzip"), raw)
        } else {
            (ct, body, None, raw)
        }
    }
}

#[test]
fn no_raw_value_reaches_the_upstream() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let vault = test_vault();
    let (server, echo) = rt.block_on(async {
        let (up, echo) = EchoUpstream::start().await.unwrap();
        let server = app::start(&codec_config(up), vault.clone()).await.unwrap();
        (server, echo)
    });
    let addr = server.proxy_addr();
    let client = http1();
    let mut runner = TestRunner::new(PropConfig {
        cases: 64,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let forwarded = std::cell::Cell::new(0usize);
    let result = runner.run(&gen_strategy(), |g| {
        let (ct, body, coding, raw) = g.request();
        let before = echo.received().len();
        let status = rt.block_on(async {
            let mut b = Request::post(url(addr, g.path()));
            if let Some(ct) = &ct {
                b = b.header("content-type", ct);
            }
            if let Some(c) = coding {
                b = b.header("content-encoding", c);
            }
            send(&client, b.body(Full::new(Bytes::from(body))).unwrap())
                .await
                .status
        });
        prop_assert!(
            status.is_success() || status.is_client_error(),
            "status {status}"
        );
        let received = echo.received();
        let new = &received[before..];
        if !status.is_success() {
            prop_assert!(new.is_empty(), "refused but forwarded");
        }
        forwarded.set(forwarded.get() + new.len());
        for r in new {
            let bytes = received_bytes(r);
            for v in &raw {
                prop_assert!(
                    !holds_raw(&bytes, v),
                    "the upstream received {v} ({status})"
                );
            }
            for run in luhn_runs(&bytes) {
                let issued = rt.block_on(vault.is_issued(&run)).unwrap_or(false);
                if !issued {
                    return Err(TestCaseError::fail(format!(
                        "the upstream received a Luhn-valid number that is no token ({status})"
                    )));
                }
            }
        }
        Ok(())
    });
    rt.block_on(async {
        server.stop().await;
        echo.stop().await;
    });
    result.unwrap();
    // The generator is not all refusals.
    let forwarded = forwarded.get();
    println!("leak properties: 64 cases, {forwarded} forwarded");
    assert!(forwarded > 5, "only {forwarded} requests were forwarded");
}
