//! Multipart forms a backend's MIME parser reads further than the proxy did (a red
//! team's findings), through the real server in front of the recording echo
//! upstream, on the three kinds of route: pass-through (`/*`, the streaming guard),
//! the `payment_method` profile (leak guard only) and a custom field route.
//!
//! - a boundary given only in RFC 2231 form (`boundary*=''XyZ`, `boundary*0`…),
//!   twice, or in parameters read differently by different readers: 415;
//! - a part that is itself `multipart/*` (or `message/*`), whose inner parts Python's
//!   `email` walks and decodes: 415;
//! - part header parameters in RFC 2231 continuations or RFC 2047 encoded words that
//!   hold digits (Python rebuilds `4242424242424242.txt` from them): 400;
//!
//! and ordinary uploads (`filename="photo.jpg"`, `filename*=UTF-8''na%C3%AFve.txt`)
//! still go through. Every refusal forwards nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use vaultgate::app;
use vaultgate::config::Config;
use vaultgate::demo::echo::EchoUpstream;

const CARD: &str = "4242424242424242";
/// `4242424242424242` in base64.
const CARD_B64: &[u8] = b"NDI0MjQyNDI0MjQyNDI0Mg==";
/// `4242424242424242` in quoted-printable, every digit escaped.
const CARD_QP: &[u8] = b"=34=32=34=32=34=32=34=32=34=32=34=32=34=32=34=32";
const CT: &str = "multipart/form-data; boundary=XyZ";

const ROUTES: &str = r#"
[[routes]]
name = "payment_method"
upstream = "backend"
method = "POST"
path = "/payment-method"
profile = "payment_method"

[[routes]]
name = "custom_form"
upstream = "backend"
method = "POST"
path = "/custom-form"
fields = [
  { path = "card_number", class = "pan" },
  { path = "cvv", class = "cvv", scope = "card_number" },
]

[[routes]]
name = "pass"
upstream = "backend"
path = "/*"
"#;

/// One route of each kind.
const PATHS: [&str; 3] = ["/upload", "/payment-method", "/custom-form"];

const UNSUPPORTED: (u16, &str) = (415, "unsupported_media");
const INVALID: (u16, &str) = (400, "invalid_body");

/// A body of parts (header lines, content) with the given boundary.
fn parts_with(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (head, content) in parts {
        out.extend_from_slice(format!("--{boundary}\r\n{head}\r\n\r\n").as_bytes());
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

fn multipart(parts: &[(&str, &[u8])]) -> Vec<u8> {
    parts_with("XyZ", parts)
}

/// A part named `n` in a transfer encoding (the red team's body).
fn encoded_part(cte: &str, content: &[u8]) -> Vec<u8> {
    multipart(&[(
        &format!("Content-Disposition: form-data; name=\"n\"\r\nContent-Transfer-Encoding: {cte}"),
        content,
    )])
}

/// A file part with these Content-Disposition parameters after `form-data`.
fn file_part(params: &str) -> Vec<u8> {
    multipart(&[(
        &format!("Content-Disposition: form-data{params}\r\nContent-Type: text/plain"),
        b"hello",
    )])
}

/// Send `body` as `content_type` to every kind of route and check each answer:
/// `expect` (status, error code), nothing forwarded, the card in no reading of what
/// the upstream received. Returns the failures.
async fn check_refused(
    name: &str,
    content_type: &str,
    body: &[u8],
    expect: (u16, &str),
) -> Vec<String> {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let config = Config::from_toml_str(&config_toml(&format!("http://{up}"), ROUTES)).unwrap();
    let server = app::start(&config, test_vault()).await.unwrap();
    let addr = server.proxy_addr();
    let client = http1();
    let mut failures = Vec::new();
    for path in PATHS {
        let before = echo.received().len();
        let req = Request::post(url(addr, path))
            .header("content-type", content_type)
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap();
        let reply = send(&client, req).await;
        let code = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
        if (reply.status.as_u16(), code.as_deref()) != (expect.0, Some(expect.1)) {
            failures.push(format!(
                "{name} on {path}: expected {expect:?}, got {} {code:?}",
                reply.status
            ));
        }
        let new = echo.received().split_off(before);
        if !new.is_empty() {
            failures.push(format!("{name} on {path}: forwarded {}", new.len()));
        }
        if new.iter().any(|r| holds_raw(&received_bytes(r), CARD)) {
            failures.push(format!("{name} on {path}: the upstream received the card"));
        }
    }
    server.stop().await;
    echo.stop().await;
    failures
}

/// A case: its name, the Content-Type, the body, the status and error code.
type Refused<'a> = (&'a str, String, Vec<u8>, (u16, &'a str));

async fn all_refused(cases: Vec<Refused<'_>>) {
    let mut failures = Vec::new();
    for (name, ct, body, expect) in &cases {
        failures.extend(check_refused(name, ct, body, *expect).await);
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A boundary a reader finds only by decoding RFC 2231 (Python's `email` does,
/// `multer` does not), or one given twice, or parameters readers split differently:
/// refused (415) on every route, before anything is forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boundary_in_rfc2231_form_or_given_twice_is_refused() {
    let b64 = encoded_part("base64", CARD_B64);
    let qp = encoded_part("quoted-printable", CARD_QP);
    let ct = |params: &str| format!("multipart/form-data{params}");
    all_refused(vec![
        (
            "boundary*, base64 part",
            ct("; boundary*=''XyZ"),
            b64.clone(),
            UNSUPPORTED,
        ),
        (
            "boundary*, quoted-printable part",
            ct("; boundary*=''XyZ"),
            qp.clone(),
            UNSUPPORTED,
        ),
        (
            "boundary* with a charset",
            ct("; boundary*=us-ascii'en'%58yZ"),
            b64.clone(),
            UNSUPPORTED,
        ),
        (
            "boundary continuations",
            ct("; boundary*0=\"Xy\"; boundary*1=\"Z\""),
            b64.clone(),
            UNSUPPORTED,
        ),
        (
            "BOUNDARY*0* continuations",
            ct("; BOUNDARY*0*=''Xy; BOUNDARY*1=Z"),
            qp.clone(),
            UNSUPPORTED,
        ),
        (
            "boundary twice",
            ct("; boundary=Other; boundary=XyZ"),
            b64.clone(),
            UNSUPPORTED,
        ),
        (
            "boundary and boundary*",
            ct("; boundary=Other; boundary*=''XyZ"),
            b64.clone(),
            UNSUPPORTED,
        ),
        (
            "a boundary inside another quoted parameter",
            ct("; foo=\"a;boundary=XyZ\"; boundary=Other"),
            b64.clone(),
            UNSUPPORTED,
        ),
        (
            "an unterminated quoted boundary",
            ct("; boundary=\"XyZ"),
            b64,
            UNSUPPORTED,
        ),
    ])
    .await;
}

/// A part that is itself a multipart (or a message): Python's `email` walks into it
/// and decodes its base64 or quoted-printable parts. Refused (415) on every route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_multipart_part_is_refused() {
    let inner = |cte: &str, content: &[u8]| {
        parts_with(
            "In",
            &[(
                &format!("Content-Type: text/plain\r\nContent-Transfer-Encoding: {cte}"),
                content,
            )],
        )
    };
    let outer = |ct: &str, content: &[u8]| {
        multipart(&[(
            &format!("Content-Disposition: form-data; name=\"files\"\r\nContent-Type: {ct}"),
            content,
        )])
    };
    let message = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nNDI0MjQyNDI0MjQyNDI0Mg==";
    all_refused(vec![
        (
            "multipart/mixed, base64 inside",
            CT.to_owned(),
            outer("multipart/mixed; boundary=In", &inner("base64", CARD_B64)),
            UNSUPPORTED,
        ),
        (
            "multipart/mixed, quoted-printable inside",
            CT.to_owned(),
            outer(
                "multipart/mixed; boundary=In",
                &inner("quoted-printable", CARD_QP),
            ),
            UNSUPPORTED,
        ),
        (
            "Multipart / Alternative, spaced and folded",
            CT.to_owned(),
            outer(
                "Multipart / Alternative;\r\n boundary=\"In\"",
                &inner("base64", CARD_B64),
            ),
            UNSUPPORTED,
        ),
        (
            "message/rfc822",
            CT.to_owned(),
            outer("message/rfc822", message),
            UNSUPPORTED,
        ),
        (
            "a multipart/mixed body, base64 part",
            "multipart/mixed; boundary=XyZ".to_owned(),
            encoded_part("base64", CARD_B64),
            UNSUPPORTED,
        ),
    ])
    .await;
}

/// Part header parameters that Python's `email` joins (RFC 2231 continuations) or
/// decodes (RFC 2047 encoded words) into `4242424242424242.txt`: refused (400
/// `invalid_body`) when they hold digits, on every route; an encoded word in UTF-7
/// (415); a single extended `filename*` is decoded and a card in it refused (400
/// `card_number_detected`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_part_header_parameters_holding_digits_are_refused() {
    all_refused(vec![
        (
            "filename continuations",
            CT.to_owned(),
            file_part("; name=\"f\"; filename*0=\"4242424242\"; filename*1=\"424242.txt\""),
            INVALID,
        ),
        (
            "extended filename continuations",
            CT.to_owned(),
            file_part("; name=\"f\"; filename*0*=utf-8''%34%32%34%32%34%32; filename*1=\"4242424242.txt\""),
            INVALID,
        ),
        (
            "name continuations",
            CT.to_owned(),
            file_part("; name*0=\"4242424242\"; name*1=\"424242\""),
            INVALID,
        ),
        (
            "encoded word, B",
            CT.to_owned(),
            file_part("; name=\"f\"; filename=\"=?utf-8?B?NDI0MjQyNDI0MjQyNDI0Mi50eHQ=?=\""),
            INVALID,
        ),
        (
            "encoded word, Q",
            CT.to_owned(),
            file_part(
                "; name=\"f\"; filename=\"=?utf-8?Q?=34=32=34=32=34=32=34=32=34=32=34=32=34=32=34=32.txt?=\"",
            ),
            INVALID,
        ),
        (
            "adjacent encoded words, b, lower case",
            CT.to_owned(),
            file_part("; name=\"f\"; filename=\"=?UTF-8?b?NDI0MjQyNDI=?= =?UTF-8?b?NDI0MjQyNDI=?=\""),
            INVALID,
        ),
        (
            "an encoded word in UTF-7",
            CT.to_owned(),
            file_part("; name=\"f\"; filename=\"=?utf-7?Q?+ADQAMgA0ADIANAAyADQAMgA0ADIANAAyADQAMgA0ADI-?=\""),
            UNSUPPORTED,
        ),
    ])
    .await;
}

/// A gzip-compressed multipart body on a pass-through route is read whole and
/// decompressed; its header blocks are read as a streamed body's are: a base64 part
/// (Python's `email` decodes it) or an unreadable boundary is refused (415).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_pass_through_multipart_body_has_its_parts_read() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let config = Config::from_toml_str(&config_toml(&format!("http://{up}"), ROUTES)).unwrap();
    let server = app::start(&config, test_vault()).await.unwrap();
    let addr = server.proxy_addr();
    let client = http1();
    for (ct, body, status) in [
        (CT, encoded_part("base64", CARD_B64), 415),
        (CT, encoded_part("quoted-printable", CARD_QP), 415),
        (
            "multipart/form-data; boundary*=''XyZ",
            encoded_part("base64", CARD_B64),
            415,
        ),
        (CT, encoded_part("binary", b"hello"), 200),
    ] {
        let before = echo.received().len();
        let req = Request::post(url(addr, "/upload"))
            .header("content-type", ct)
            .header("content-encoding", "gzip")
            .body(Full::new(Bytes::from(gzip(&body))))
            .unwrap();
        let reply = send(&client, req).await;
        assert_eq!(reply.status.as_u16(), status, "{ct}");
        let forwarded = echo.received().len() - before;
        if status == 200 {
            assert_eq!(forwarded, 1, "{ct}");
        } else {
            assert_eq!(reply.json()["error"]["code"], "unsupported_media", "{ct}");
            assert_eq!(forwarded, 0, "{ct}: refused but forwarded");
        }
    }
    server.stop().await;
    echo.stop().await;
}

/// Ordinary uploads go through on every route: a photo, a file named in RFC 2231 form
/// without a card in it, a quoted boundary; on the pass-through route unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_multipart_uploads_still_go_through() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let config = Config::from_toml_str(&config_toml(&format!("http://{up}"), ROUTES)).unwrap();
    let server = app::start(&config, test_vault()).await.unwrap();
    let addr = server.proxy_addr();
    let client = http1();
    let photo: &[u8] = b"\xff\xd8\xff\xe0 JFIF \x00\x01";
    let uploads: Vec<(&str, Vec<u8>)> = vec![
        (
            CT,
            multipart(&[
                (
                    "Content-Disposition: form-data; name=\"title\"",
                    b"holiday 2024",
                ),
                (
                    "Content-Disposition: form-data; name=\"photo\"; filename=\"photo.jpg\"\r\nContent-Type: image/jpeg",
                    photo,
                ),
            ]),
        ),
        (
            CT,
            multipart(&[(
                "Content-Disposition: form-data; name=\"doc\"; filename*=UTF-8''na%C3%AFve.txt\r\nContent-Type: text/plain; charset=utf-8",
                b"hello",
            )]),
        ),
        (
            CT,
            multipart(&[(
                "Content-Disposition: form-data; name=\"doc\"; filename=\"report.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9-2024.pdf\r\nContent-Type: application/pdf",
                b"%PDF-1.4",
            )]),
        ),
        (
            "multipart/form-data; charset=utf-8; boundary=\"XyZ\"",
            multipart(&[("Content-Disposition: form-data; name=\"a\"", b"1")]),
        ),
    ];
    for path in PATHS {
        for (ct, body) in &uploads {
            let req = Request::post(url(addr, path))
                .header("content-type", *ct)
                .body(Full::new(Bytes::from(body.clone())))
                .unwrap();
            let reply = send(&client, req).await;
            assert_eq!(
                reply.status.as_u16(),
                200,
                "{path} {ct}: {}",
                String::from_utf8_lossy(&reply.body)
            );
            let got = echo.received().last().unwrap().body.clone();
            assert_eq!(got, body.as_slice(), "{path} {ct}: forwarded as sent");
        }
    }
    server.stop().await;
    echo.stop().await;
}
