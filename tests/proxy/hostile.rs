//! Hostile-input catalogue: malformed HTTP, hostile bodies and slow or flooding
//! clients against the real server (all five profiles, a leak-guard `reject` route and
//! a plain rules route) in front of the real echo upstream.
//!
//! Every case must get its documented status (or a closed connection), must forward
//! nothing sensitive (every body, path and query the upstream received is scanned,
//! decoded, for the test card numbers in any spelling), and must leave the proxy
//! healthy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::*;
use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vaultgate::app::{self, ServerHandle};
use vaultgate::config::Config;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream, Received};

const CARDS: [&str; 5] = [
    "4242424242424242",
    "378282246310005",
    "4111111111111111",
    "5555555555554444",
    "4000056655665556",
];

/// Two MiB: large enough that a 1 GiB gzip bomb (about 1 MiB compressed) gets past
/// the wire-size check and has to be stopped while decompressing.
const MAX_BODY: usize = 2 * 1024 * 1024;

const EXTRA_ROUTES: &str = r#"
[proxy]
listen = "127.0.0.1:0"
[[upstreams]]
name = "backend"
url = "http://127.0.0.1:9"
[[routes]]
name = "guarded"
upstream = "backend"
method = "POST"
path = "/guarded"
fields = [{ path = "card", class = "pan" }]
leak_guard = "reject"
[[routes]]
name = "rules"
upstream = "backend"
method = "POST"
path = "/rules"
fields = [{ path = "card", class = "pan" }]
"#;

/// The demo config (five profiles on their documented paths, pass-through last) plus
/// the `guarded` and `rules` routes, with small timeouts.
fn config(upstream: SocketAddr, tweak: impl FnOnce(&mut Config)) -> Config {
    let dir = std::env::temp_dir();
    let mut c = Config::demo(
        "127.0.0.1:0",
        "127.0.0.1:0",
        &format!("http://{upstream}"),
        &dir,
    )
    .unwrap();
    let extra = Config::from_toml_str(EXTRA_ROUTES).unwrap();
    let last = c.routes.len() - 1;
    for (i, r) in extra.routes.into_iter().enumerate() {
        c.routes.insert(last + i, r);
    }
    // The catch-all pass-through moves under /pass/ so that unknown paths are 404.
    if let Some(pass) = c.routes.last_mut() {
        pass.path = vaultgate::net::matcher::PathPattern::parse("/pass/*").unwrap();
    }
    c.proxy.header_read_timeout_ms = 500;
    c.limits.max_body_bytes = vaultgate::config::Positive(MAX_BODY);
    c.limits.body_read_timeout_ms = vaultgate::config::Positive(500);
    c.limits.upstream_timeout_ms = vaultgate::config::Positive(5_000);
    tweak(&mut c);
    c.validate().unwrap();
    c
}

async fn start_server(tweak: impl FnOnce(&mut Config)) -> (ServerHandle, EchoHandle) {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = app::start(&config(up, tweak), test_vault()).await.unwrap();
    (server, echo)
}

// === leak scanning ===

/// Every decoding of `bytes` worth scanning: as is, gunzipped, JSON-unescaped,
/// percent-decoded, and the base64 runs in each of those decoded.
fn decodings(bytes: &[u8]) -> Vec<String> {
    let mut layers = vec![bytes.to_vec()];
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(
            &mut std::io::Read::take(flate2::read::GzDecoder::new(bytes), 64 << 20),
            &mut out,
        );
        layers.push(out);
    }
    let mut texts = Vec::new();
    for layer in layers {
        let t = String::from_utf8_lossy(&layer).into_owned();
        let json = crate::common::unescape_json(&t);
        let pct = crate::common::percent_decode(&t);
        for s in [t, json, pct] {
            for run in base64_runs(&s) {
                for engine in [
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                ] {
                    if let Ok(d) = engine.decode(run.trim_end_matches('=')) {
                        let d = String::from_utf8_lossy(&d).into_owned();
                        texts.push(crate::common::unescape_json(&d));
                        texts.push(crate::common::percent_decode(&d));
                        texts.push(d);
                    }
                }
            }
            texts.push(s);
        }
    }
    texts
}

fn base64_runs(s: &str) -> Vec<&str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || "+/-_".contains(c)))
        .filter(|r| r.len() >= 16)
        .collect()
}

/// The card number found in these bytes, in any spelling, if any.
fn find_card(bytes: &[u8]) -> Option<&'static str> {
    for text in decodings(bytes) {
        // Spaces, dashes, dots and the like between the digit groups.
        let squeezed: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '\t' | '\n' | '\r' | '_' | '\0'))
            .collect();
        if let Some(card) = CARDS.iter().find(|c| squeezed.contains(*c)) {
            return Some(card);
        }
    }
    None
}

fn assert_clean(name: &str, received: &[Received]) {
    for r in received {
        let mut all = r.body.to_vec();
        all.extend_from_slice(b" ");
        all.extend_from_slice(r.path.as_bytes());
        all.extend_from_slice(b" ");
        all.extend_from_slice(r.query.as_deref().unwrap_or("").as_bytes());
        for (_, v) in &r.headers {
            all.extend_from_slice(b" ");
            all.extend_from_slice(v.as_bytes());
        }
        if let Some(card) = find_card(&all) {
            panic!(
                "{name}: the upstream received card {card} on {} {}",
                r.method, r.path
            );
        }
    }
}

#[test]
fn the_scanner_sees_every_spelling() {
    let card = "4242424242424242";
    let b64 = base64::engine::general_purpose::STANDARD.encode(card);
    let esc: String = card
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    for hidden in [
        card.to_owned(),
        "4242 4242 4242 4242".to_owned(),
        "4242-4242-4242-4242".to_owned(),
        format!("{{\"x\":\"{esc}\"}}"),
        format!("{{\"x\":\"{b64}\"}}"),
        "4242%204242%204242%204242".to_owned(),
        format!(
            "a={}",
            base64::engine::general_purpose::URL_SAFE.encode(format!("{{\"n\":\"{card}\"}}"))
        ),
    ] {
        assert!(find_card(hidden.as_bytes()).is_some(), "{hidden}");
    }
    assert!(find_card(b"{\"cardNumber\":\"4242420123454242\"}").is_none());
}

// === sending ===

/// What a client got back.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    /// Statuses of the responses read (one per response head).
    Status(Vec<u16>),
    /// Closed (or reset) without any response.
    Closed,
    /// Still open and silent after the patience ran out.
    Hung,
}

enum Req {
    /// Through the hyper HTTP/1 client.
    Http {
        method: Method,
        path: String,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    },
    /// Bytes written as they are on a fresh connection.
    Raw(Vec<u8>),
    /// A head, then `total` body bytes in 64 KiB chunks of chunked encoding.
    ChunkedFlood { head: String, total: usize },
}

struct Case {
    name: &'static str,
    req: Req,
    /// Acceptable outcomes: a status (first response), or 0 for a closed connection.
    expect: &'static [u16],
}

fn http(method: Method, path: &str, ct: Option<&str>, body: impl Into<Bytes>) -> Req {
    Req::Http {
        method,
        path: path.to_owned(),
        headers: ct
            .map(|c| vec![("content-type", c.to_owned())])
            .unwrap_or_default(),
        body: body.into(),
    }
}

fn json_post(path: &str, body: impl Into<Bytes>) -> Req {
    http(Method::POST, path, Some("application/json"), body)
}

fn raw(s: impl AsRef<[u8]>) -> Req {
    Req::Raw(s.as_ref().to_vec())
}

async fn read_all(stream: &mut TcpStream, patience: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + patience;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some(i) = rest.find("HTTP/1.1 ") {
        let code = rest.get(i + 9..i + 12).and_then(|c| c.parse().ok());
        if let Some(c) = code {
            out.push(c);
        }
        rest = &rest[i + 9..];
    }
    out
}

fn outcome(bytes: &[u8], closed: bool) -> Got {
    let s = statuses(bytes);
    if !s.is_empty() {
        Got::Status(s)
    } else if closed {
        Got::Closed
    } else {
        Got::Hung
    }
}

async fn raw_exchange(addr: SocketAddr, bytes: &[u8], patience: Duration) -> Got {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // A write may fail when the proxy has already answered and closed.
    let _ = s.write_all(bytes).await;
    let (got, closed) = read_all(&mut s, patience).await;
    outcome(&got, closed)
}

async fn send_case(addr: SocketAddr, client: &Http, req: &Req) -> Got {
    match req {
        Req::Http {
            method,
            path,
            headers,
            body,
        } => {
            let mut b = Request::builder()
                .method(method.clone())
                .uri(url(addr, path));
            for (n, v) in headers {
                b = b.header(*n, v.as_str());
            }
            let req = b.body(Full::new(body.clone())).unwrap();
            match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
                Ok(Ok(res)) => {
                    let status = res.status().as_u16();
                    let _ = http_body_util::BodyExt::collect(res.into_body()).await;
                    Got::Status(vec![status])
                }
                Ok(Err(_)) => Got::Closed,
                Err(_) => Got::Hung,
            }
        }
        Req::Raw(bytes) => raw_exchange(addr, bytes, Duration::from_secs(5)).await,
        Req::ChunkedFlood { head, total } => {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(head.as_bytes()).await.unwrap();
            let chunk = vec![b'7'; 65536];
            let mut sent = 0;
            let (r, mut w) = s.into_split();
            let mut ok = true;
            while sent < *total && ok {
                let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                frame.extend_from_slice(&chunk);
                frame.extend_from_slice(b"\r\n");
                ok = tokio::time::timeout(Duration::from_secs(5), w.write_all(&frame))
                    .await
                    .is_ok_and(|r| r.is_ok());
                sent += chunk.len();
            }
            if ok {
                let _ = w.write_all(b"0\r\n\r\n").await;
            }
            let mut s = r.reunite(w).unwrap();
            let (got, closed) = read_all(&mut s, Duration::from_secs(5)).await;
            outcome(&got, closed)
        }
    }
}

fn card_body(card: &str) -> String {
    format!(r#"{{"paymentType":"card","cardNumber":"{card}","cardCode":"123","amount":10}}"#)
}

/// A normal tokenizing request succeeds and its card is tokenized.
async fn assert_healthy(name: &str, addr: SocketAddr, echo: &EchoHandle) {
    let before = echo.received().len();
    let req = Request::post(url(addr, "/v1/payment"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(card_body("4111111111111111"))))
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), send(&fresh_client(), req))
        .await
        .unwrap_or_else(|_| panic!("{name}: the proxy did not answer a normal request"));
    assert_eq!(reply.status, StatusCode::OK, "{name}: after the case");
    let got = echo.received();
    assert_eq!(got.len(), before + 1, "{name}: the normal request");
    assert_clean(name, &got[before..]);
}

/// A client that opens a new connection for every request.
fn fresh_client() -> Http {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A gzip member that inflates to `gib` GiB of zeros, built without compressing it
/// all: one MiB of zeros compressed and full-flushed (so that it refers to nothing
/// before it) repeated, then an empty final block and the trailer.
fn gzip_bomb(gib: u64) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mib = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(4096);
    c.compress_vec(&mib, &mut block, FlushCompress::Full)
        .unwrap();
    let mut fin = Vec::with_capacity(64);
    c.compress_vec(&[], &mut fin, FlushCompress::Finish)
        .unwrap();
    let n = gib * 1024;
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for _ in 0..n {
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&fin);
    // CRC-32 of the zeros is not computed (the proxy must stop long before the
    // trailer); the length field is the real one, modulo 2^32.
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&((n << 20) as u32).to_le_bytes());
    out
}

fn cases() -> Vec<Case> {
    let card = "4242424242424242";
    let esc: String = card
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let plano = |inner: &str| b64(inner);
    let plano_json = format!(r#"{{"payment_method":{{"card_number":"{card}","cvc":"123"}}}}"#);
    let mut bad_utf8 = br#"{"paymentType":"card","cardNumber":""#.to_vec();
    bad_utf8.extend_from_slice(b"4242424242424242\xff\xfe");
    bad_utf8.extend_from_slice(br#"","cardCode":"123"}"#);
    let body = card_body(card);
    let head = |path: &str, extra: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\n{extra}\r\n{body}"
        )
    };
    // Keep-alive: a pipelined (smuggled) request would be read and served.
    let head_ka = |path: &str, extra: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{extra}\r\n{body}"
        )
    };
    let chunked = |s: &str| format!("{:x}\r\n{s}\r\n0\r\n\r\n", s.len());
    let smuggled = "GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n";

    vec![
        // --- bodies on tokenizing routes ---
        Case { name: "json nested 100k deep (arrays)", req: json_post("/v1/payment", deep), expect: &[400] },
        Case { name: "json nested 100k deep (objects)", req: json_post("/payment-method", deep_obj), expect: &[400] },
        Case { name: "declared body far over the limit", req: raw(head("/v1/payment", &format!("content-length: {}\r\n", 64 * MAX_BODY), "")), expect: &[413, 0] },
        Case { name: "undeclared chunked body far over the limit", req: Req::ChunkedFlood { head: "POST /v1/payment HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".into(), total: 4 * MAX_BODY }, expect: &[413, 0] },
        Case { name: "invalid utf-8 around a card", req: json_post("/v1/payment", bad_utf8), expect: &[400] },
        Case { name: "duplicate keys, card second", req: json_post("/v1/payment", format!(r#"{{"paymentType":"card","cardNumber":"tok","cardNumber":"{card}"}}"#)), expect: &[200, 400, 422] },
        Case { name: "duplicate keys, card first", req: json_post("/v1/payment", format!(r#"{{"paymentType":"card","cardNumber":"{card}","cardNumber":"tok"}}"#)), expect: &[200, 400, 422] },
        Case { name: "card in json escapes", req: json_post("/v1/payment", format!(r#"{{"paymentType":"card","cardNumber":"{esc}","cardCode":"123"}}"#)), expect: &[200] },
        Case { name: "card partly escaped in another field", req: json_post("/v1/payment", r#"{"paymentType":"card","memo":"4242\u003424242424242"}"#), expect: &[200] },
        Case { name: "card as a json number", req: json_post("/v1/payment", format!(r#"{{"paymentType":"card","cardNumber":{card},"cardCode":123}}"#)), expect: &[200, 400, 422] },
        Case { name: "card as a json number in another field", req: json_post("/payment-method", format!(r#"{{"amount":{card}}}"#)), expect: &[200, 400] },
        Case { name: "card with spaces", req: json_post("/v1/payment", card_body("4242 4242 4242 4242")), expect: &[200, 422] },
        Case { name: "card with dashes", req: json_post("/v1/payment", card_body("4242-4242-4242-4242")), expect: &[200, 422] },
        Case { name: "card with spaces in another field", req: json_post("/payment-method", r#"{"note":"my card is 4242 4242 4242 4242 ok"}"#), expect: &[200] },
        Case { name: "card with dashes in another field", req: json_post("/payment-method", r#"{"note":"4242-4242-4242-4242"}"#), expect: &[200] },
        Case { name: "card in another field, leak guard reject", req: json_post("/guarded", format!(r#"{{"card":"tok","memo":"{card}"}}"#)), expect: &[400] },
        Case { name: "escaped card in another field, leak guard reject", req: json_post("/guarded", format!(r#"{{"memo":"{esc}"}}"#)), expect: &[400] },
        Case { name: "card in the query, leak guard reject", req: json_post(&format!("/guarded?pan={card}"), r#"{"card":"x"}"#), expect: &[400] },
        Case { name: "card in the query, tokenizing route", req: json_post(&format!("/v1/payment?pan={card}"), r#"{"paymentType":"card"}"#), expect: &[200] },
        Case { name: "spaced card in the query", req: json_post("/v1/payment?pan=4242%204242%204242%204242", r#"{"paymentType":"card"}"#), expect: &[200] },
        Case { name: "form body under a json content type", req: json_post("/v1/payment", format!("paymentType=card&cardNumber={card}&cardCode=123")), expect: &[400] },
        Case { name: "form body under a json content type, leak-guard route", req: json_post("/payment-method", format!("cardNumber={card}")), expect: &[400] },
        Case { name: "json body sent as a form", req: http(Method::POST, "/rules", Some("application/x-www-form-urlencoded"), format!(r#"{{"card":"{card}"}}"#)), expect: &[200, 400, 415] },
        Case { name: "json body sent as a form, leak-guard route", req: http(Method::POST, "/payment-method", Some("application/x-www-form-urlencoded"), body.clone()), expect: &[200, 400] },
        Case { name: "plano truncated base64", req: http(Method::POST, "/payment-methods", Some("text/plain"), { let s = plano(&plano_json); s[..s.len() - 3].to_owned() }), expect: &[400] },
        Case { name: "plano mixed-alphabet base64", req: http(Method::POST, "/payment-methods", Some("text/plain"), { let s = plano(&format!(r#"{{"payment_method":{{"card_number":"{card}","cvc":"12?"}},"x":"~~~>>>???"}}"#)); assert!(s.contains('+') || s.contains('/')); format!("{s}-_") }), expect: &[400] },
        Case { name: "plano base64 with a NUL", req: http(Method::POST, "/payment-methods", Some("text/plain"), { let s = plano(&plano_json); format!("{}\0{}", &s[..8], &s[8..]) }), expect: &[400] },
        Case { name: "plano valid base64 (control)", req: http(Method::POST, "/payment-methods", Some("text/plain"), plano(&plano_json)), expect: &[200] },
        Case { name: "NUL bytes in json", req: json_post("/v1/payment", format!("{{\"paymentType\":\"card\",\"cardNumber\":\"{card}\0\"}}")), expect: &[400] },
        Case { name: "NUL before the json", req: json_post("/v1/payment", format!("\0{body}")), expect: &[400] },
        Case { name: "NUL inside the card digits, leak route", req: json_post("/payment-method", "{\"note\":\"4242424242\u{0}424242\"}"), expect: &[200, 400] },
        Case { name: "gzip body carrying a card", req: Req::Http { method: Method::POST, path: "/v1/payment".into(), headers: vec![("content-type", "application/json".into()), ("content-encoding", "gzip".into())], body: gzip(body.as_bytes()).into() }, expect: &[200] },
        Case { name: "gzip bomb, 1 GiB of zeros", req: Req::Http { method: Method::POST, path: "/v1/payment".into(), headers: vec![("content-type", "application/json".into()), ("content-encoding", "gzip".into())], body: gzip_bomb(1).into() }, expect: &[413] },
        Case { name: "unknown content encoding (br)", req: Req::Http { method: Method::POST, path: "/v1/payment".into(), headers: vec![("content-type", "application/json".into()), ("content-encoding", "br".into())], body: body.clone().into() }, expect: &[415] },
        Case { name: "stacked content encodings", req: Req::Http { method: Method::POST, path: "/v1/payment".into(), headers: vec![("content-type", "application/json".into()), ("content-encoding", "gzip, gzip".into())], body: gzip(&gzip(body.as_bytes())).into() }, expect: &[415] },
        Case { name: "unsupported content type on a rules route", req: http(Method::POST, "/rules", Some("application/xml"), format!("<card>{card}</card>")), expect: &[415] },
        Case { name: "json in a non-utf-8 charset", req: http(Method::POST, "/rules", Some("application/json; charset=utf-16"), format!(r#"{{"card":"{card}"}}"#)), expect: &[415] },
        Case { name: "unknown route", req: http(Method::POST, "/v2/nothing/here", None, body.clone()), expect: &[404] },
        Case { name: "dot segments toward a tokenizing route", req: raw(head("/static/../v1/payment", &format!("content-length: {}\r\n", body.len()), &body)), expect: &[400] },
        Case { name: "encoded path toward a tokenizing route", req: raw(head("/v1/pay%6dent", &format!("content-length: {}\r\n", body.len()), &body)), expect: &[200, 400] },
        // --- framing ---
        Case { name: "content-length shorter than the body", req: raw(head("/v1/payment", "content-length: 10\r\n", &body)), expect: &[400, 0] },
        Case { name: "content-length longer than the body", req: raw(head("/v1/payment", &format!("content-length: {}\r\n", body.len() + 50), &body)), expect: &[400, 0] },
        Case { name: "two different content-lengths", req: raw(head("/v1/payment", &format!("content-length: {}\r\ncontent-length: 5\r\n", body.len()), &body)), expect: &[400, 0] },
        Case { name: "negative content-length", req: raw(head("/v1/payment", "content-length: -1\r\n", &body)), expect: &[400, 0] },
        Case { name: "malformed chunk size", req: raw(head("/v1/payment", "transfer-encoding: chunked\r\n", &format!("zz\r\n{body}\r\n0\r\n\r\n"))), expect: &[400, 0] },
        Case { name: "chunk longer than announced", req: raw(head("/v1/payment", "transfer-encoding: chunked\r\n", &format!("4\r\n{body}\r\n0\r\n\r\n"))), expect: &[400, 0] },
        Case { name: "chunked body never terminated", req: raw(head("/v1/payment", "transfer-encoding: chunked\r\n", &format!("{:x}\r\n{body}\r\n", body.len()))), expect: &[400, 0] },
        Case { name: "chunk size overflow", req: raw(head("/v1/payment", "transfer-encoding: chunked\r\n", "fffffffffffffffffff\r\nx\r\n0\r\n\r\n")), expect: &[400, 413, 0] },
        Case { name: "smuggling: CL.TE", req: raw(head_ka("/v1/payment", "content-length: 6\r\ntransfer-encoding: chunked\r\n", &format!("0\r\n\r\n{smuggled}"))), expect: &[200, 400, 0] },
        Case { name: "smuggling: TE.CL", req: raw(head_ka("/v1/payment", &format!("transfer-encoding: chunked\r\ncontent-length: {}\r\n", 4), &format!("{}{smuggled}", chunked(&body)))), expect: &[200, 400, 0] },
        Case { name: "smuggling: TE with identity", req: raw(head_ka("/v1/payment", "transfer-encoding: identity, chunked\r\ncontent-length: 5\r\n", &format!("0\r\n\r\n{smuggled}"))), expect: &[400, 501, 0] },
        Case { name: "smuggling: space before colon", req: raw(head_ka("/v1/payment", "transfer-encoding : chunked\r\n", &format!("0\r\n\r\n{smuggled}"))), expect: &[200, 400, 0] },
        Case { name: "smuggling: obfuscated TE", req: raw(head_ka("/pass/x", "transfer-encoding: xchunked\r\n", &format!("0\r\n\r\n{smuggled}"))), expect: &[400, 501, 0] },
        Case { name: "smuggling via pass-through CL.TE", req: raw(head_ka("/pass/x", "content-length: 6\r\ntransfer-encoding: chunked\r\n", &format!("0\r\n\r\n{smuggled}"))), expect: &[200, 400, 0] },
        // --- heads ---
        Case { name: "garbage request line", req: raw("\x16\x03\x01\x02\x00GET / HTTP/1.1\r\n\r\n"), expect: &[400, 0] },
        Case { name: "NUL in a header value", req: raw(head("/v1/payment", "x-a: b\0c\r\ncontent-length: 0\r\n", "")), expect: &[400, 0] },
        Case { name: "header line too long", req: raw(head("/v1/payment", &format!("x-a: {}\r\ncontent-length: 0\r\n", "a".repeat(1 << 20)), "")), expect: &[431, 400, 0] },
        Case { name: "too many headers", req: raw(head("/v1/payment", &(0..500).map(|i| format!("x-h{i}: v\r\n")).collect::<String>(), "")), expect: &[431, 400, 0] },
        Case { name: "obsolete line folding", req: raw(head("/v1/payment", "x-a: b\r\n c\r\ncontent-length: 0\r\n", "")), expect: &[400, 0] },
        Case { name: "card in a forged vaultgate header", req: Req::Http { method: Method::POST, path: "/v1/payment".into(), headers: vec![("content-type", "application/json".into()), ("x-vaultgate-client", card.into()), ("x-vaultgate-reveal", card.into())], body: card_body(card).into() }, expect: &[200] },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_catalogue() {
    let (server, echo) = start_server(|_| {}).await;
    let addr = server.proxy_addr();
    let client = fresh_client();
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let before = echo.received().len();
        let got = send_case(addr, &client, &case.req).await;
        let ok = match &got {
            Got::Status(s) => case.expect.contains(&s[0]),
            Got::Closed => case.expect.contains(&0),
            Got::Hung => false,
        };
        // RFC 9112 §6.3: with both Transfer-Encoding and Content-Length the message is
        // framed by Transfer-Encoding alone and the connection closes after the
        // response, so a smuggled second request is never read (hyper does this).
        if case.name.starts_with("smuggling")
            && let Got::Status(s) = &got
            && s.len() != 1
        {
            failures.push(format!(
                "{}: {} responses on one connection",
                case.name,
                s.len()
            ));
        }
        if !ok {
            failures.push(format!(
                "{}: expected {:?}, got {got:?}",
                case.name, case.expect
            ));
        }
        let received = echo.received();
        let new = &received[before..];
        assert_clean(case.name, new);
        // Nothing the client did not send as a request of its own reaches the
        // upstream: no smuggled request, and nothing at all for refused requests.
        assert!(
            new.iter().all(|r| r.path != "/smuggled"),
            "{}: the upstream saw a smuggled request",
            case.name
        );
        let answered_ok = matches!(&got, Got::Status(s) if s[0] < 300);
        if !answered_ok {
            assert!(
                new.is_empty(),
                "{}: refused ({got:?}) but {} request(s) were forwarded",
                case.name,
                new.len()
            );
        } else {
            assert!(
                new.len() <= 1,
                "{}: forwarded {} requests",
                case.name,
                new.len()
            );
        }
        assert_healthy(case.name, addr, &echo).await;
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("hostile catalogue: {} cases passed", cases.len());
    server.stop().await;
    echo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vaultgate_headers_are_stripped() {
    let (server, echo) = start_server(|_| {}).await;
    let req = Request::post(url(server.proxy_addr(), "/pass/x"))
        .header("x-vaultgate-client", "admin")
        .header("X-VaultGate-Scope", "all")
        .header("x-other", "kept")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = send(&fresh_client(), req).await;
    assert_eq!(reply.status, 200);
    let got = echo.received();
    assert_eq!(got.len(), 1);
    assert!(
        got[0]
            .headers
            .iter()
            .all(|(n, _)| !n.starts_with("x-vaultgate")),
        "{:?}",
        got[0].headers
    );
    assert_eq!(got[0].header("x-other"), Some("kept"));
    server.stop().await;
    echo.stop().await;
}

/// Slowloris: a head dripped one byte at a time is cut off by the header read
/// timeout; a body dripped on a rules route is cut off by the body read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowly_dripped_heads_and_bodies_are_cut_off() {
    let (server, echo) = start_server(|_| {}).await;
    let addr = server.proxy_addr();
    let body = card_body("4242424242424242");
    let heads = [format!(
        "POST /v1/payment HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )];
    // The head, dripped.
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut closed = false;
    for b in heads[0].bytes() {
        if s.write_all(&[b]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if start.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    let (got, eof) = read_all(&mut s, Duration::from_secs(3)).await;
    assert!(closed || eof, "a dripped head kept the connection open");
    assert!(
        !statuses(&got).contains(&200),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "cut off after {:?}",
        start.elapsed()
    );

    // The body, dripped, with Content-Length and chunked.
    for chunked in [false, true] {
        let start = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        let head = if chunked {
            "POST /v1/payment HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_owned()
        } else {
            heads[0].clone()
        };
        s.write_all(head.as_bytes()).await.unwrap();
        let mut answered = Vec::new();
        for b in body.bytes() {
            let frame = if chunked {
                format!("1\r\n{}\r\n", b as char).into_bytes()
            } else {
                vec![b]
            };
            if s.write_all(&frame).await.is_err() {
                break;
            }
            let mut buf = [0u8; 4096];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await
            {
                answered.extend_from_slice(&buf[..n]);
                break;
            }
            if start.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        let (rest, _) = read_all(&mut s, Duration::from_secs(2)).await;
        answered.extend_from_slice(&rest);
        let st = statuses(&answered);
        assert!(
            st.first().is_some_and(|s| *s == 400 || *s == 408),
            "chunked={chunked}: {:?}",
            String::from_utf8_lossy(&answered)
        );
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "cut off after {:?}",
            start.elapsed()
        );
    }
    assert!(
        echo.received().is_empty(),
        "a dripped request was forwarded"
    );
    assert_healthy("after dripping", addr, &echo).await;
    server.stop().await;
    echo.stop().await;
}

/// A flood of idle connections holds at most `max_connections` slots; the rest wait
/// in the backlog, and the proxy serves normally once the flood is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_is_capped() {
    let (server, echo) = start_server(|c| {
        c.proxy.max_connections = vaultgate::config::Positive(8);
        c.proxy.header_read_timeout_ms = 10_000;
    })
    .await;
    let addr = server.proxy_addr();
    let mut flood = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(b"GET /pass/x HTTP/1.1\r\n").await;
        flood.push(s);
    }
    // All slots are held: a normal request waits.
    let req = Request::get(url(addr, "/pass/x"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let waited =
        tokio::time::timeout(Duration::from_millis(500), fresh_client().request(req)).await;
    assert!(waited.is_err(), "served beyond max_connections");
    drop(flood);
    // The server learns of the flood's closes as they arrive: the closed connections
    // still in the backlog are accepted one by one and each holds a slot until it reads
    // the end of its stream. Until a slot is free a new connection is turned away (a
    // 503, or a reset if the request was still being sent), so one request served is
    // not yet the end of it. Service must come back within moments: a tokenizing
    // request is answered, and forwarded once, before the deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    let before = echo.received().len();
    loop {
        let req = Request::post(url(addr, "/v1/payment"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(card_body("4111111111111111"))))
            .unwrap();
        match tokio::time::timeout(Duration::from_secs(2), fresh_client().request(req)).await {
            Ok(Ok(res)) if res.status() == StatusCode::OK => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "not served again after the flood: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let got = echo.received();
    assert_eq!(
        got.len(),
        before + 1,
        "turned-away requests were not forwarded"
    );
    assert_clean("after the flood", &got[before..]);
    server.stop().await;
    echo.stop().await;
}

/// HTTP/2 (prior knowledge): a header list over the limit never reaches the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_h2_header_lists_are_refused() {
    let (server, echo) = start_server(|_| {}).await;
    let addr = server.proxy_addr();
    for (n, size) in [(1, 200 * 1024), (4000, 40)] {
        let mut b =
            Request::post(url(addr, "/v1/payment")).header("content-type", "application/json");
        for i in 0..n {
            b = b.header(format!("x-big-{i}"), "a".repeat(size));
        }
        let req = b
            .body(Full::new(Bytes::from(card_body("4242424242424242"))))
            .unwrap();
        match tokio::time::timeout(Duration::from_secs(10), h2c().request(req)).await {
            Ok(Ok(res)) => assert_eq!(res.status(), 431, "{n} x {size}"),
            Ok(Err(_)) => {}
            Err(_) => panic!("hung"),
        }
    }
    assert!(echo.received().is_empty());
    // The proxy still speaks h2c.
    let req = Request::post(url(addr, "/v1/payment"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(card_body("4242424242424242"))))
        .unwrap();
    let reply = send(&h2c(), req).await;
    assert_eq!(reply.status, 200);
    assert_clean("h2c", &echo.received());
    server.stop().await;
    echo.stop().await;
}
