//! A red-team round's holes: card numbers in places the guard did not read. Number
//! literals in a pass-through path or query (`?amount=4242424242424241.9` is the
//! double 4242424242424242), header names on a `scan_headers` route, a gzip member's
//! own header fields (FNAME, FCOMMENT, FEXTRA: plain bytes inside the compressed
//! body), and transfer codings other than `chunked` (`gzip, chunked`).
//!
//! Each case runs against the real server in front of the recording echo upstream:
//! its status and error code, that the upstream received nothing, and that ordinary
//! requests of the same shape still pass.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vaultgate::app::ServerHandle;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream};

use crate::common::*;

fn config(upstream: SocketAddr) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
[api]
listen = "127.0.0.1:0"
[limits]
max_body_bytes = 1048576
body_read_timeout_ms = 3000
upstream_timeout_ms = 5000

[[routes]]
name = "scanned"
upstream = "backend"
method = "POST"
path = "/r/{{id}}"
fields = [{{ path = "card", class = "pan" }}]
scan_headers = true

[[routes]]
name = "pass"
upstream = "backend"
path = "/pt/*"

[[upstreams]]
name = "backend"
url = "http://{upstream}"
"#
    )
}

async fn start_both() -> (ServerHandle, EchoHandle) {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    (start(&config(up)).await, echo)
}

async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut b = Request::builder().method(method).uri(url(addr, path));
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    send(&http1(), b.body(Full::new(body.into())).unwrap()).await
}

/// The cases a test sends that were not refused as they should be: all of them are
/// sent and the misses reported together, so one run shows every hole.
struct Misses<'a> {
    echo: &'a EchoHandle,
    status: StatusCode,
    code: &'static str,
    missed: Vec<String>,
}

impl<'a> Misses<'a> {
    fn new(echo: &'a EchoHandle, status: StatusCode, code: &'static str) -> Misses<'a> {
        Misses {
            echo,
            status,
            code,
            missed: Vec::new(),
        }
    }

    /// Send a case: it must get the status and the code, and reach no upstream.
    async fn check(&mut self, what: &str, send: impl Future<Output = (StatusCode, String)>) {
        let before = self.echo.received().len();
        let (status, answer) = send.await;
        let forwarded = self.echo.received().len() - before;
        if status != self.status || !answer.contains(self.code) || forwarded > 0 {
            self.missed
                .push(format!("{what}: {status}, forwarded {forwarded} time(s)"));
        }
    }

    fn assert_none(self) {
        assert!(
            self.missed.is_empty(),
            "not refused with {} {}:\n{}",
            self.status,
            self.code,
            self.missed.join("\n")
        );
    }
}

/// A request through the hyper client, as [`Misses::check`] reads it.
async fn answer(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> (StatusCode, String) {
    let reply = request(addr, method, path, headers, body).await;
    (reply.status, code(&reply))
}

// === number literals in the path and the query ===

/// Paths and queries whose number literals a float parser (JavaScript's `Number()`,
/// Python's `float()`) reads as a test card, written as sent.
const LITERAL_PLACES: [&str; 11] = [
    "/pt/a/b?amount=4242424242424241.9",
    "/pt/a/b?amount=42424242424242420e-1",
    "/pt/a/b?x=4.2424242424242419e15",
    "/pt/a/b?x=4.2424242424242419e%2B15",
    "/pt/a/b?x=4.2424242424242419e+15",
    "/pt/a/b?x=%34242424242424241.9",
    "/pt/a/b?x=378282246310004.99999",
    "/pt/4242424242424241.9",
    "/pt/a/42424242424242420e-1",
    "/pt/a/%34242424242424241%2E9",
    "/pt/a;v=4.2424242424242419e15/b",
];

#[tokio::test]
async fn number_literals_in_a_pass_through_path_or_query_are_refused() {
    let (server, echo) = start_both().await;
    let addr = server.proxy_addr();
    let mut misses = Misses::new(&echo, StatusCode::BAD_REQUEST, "card_number_detected");
    for place in LITERAL_PLACES {
        let sent = answer(addr, Method::GET, place, &[], "");
        misses.check(place, sent).await;
    }
    misses.assert_none();
    echo.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn number_literals_in_a_rules_route_path_or_query_are_refused() {
    let (server, echo) = start_both().await;
    let addr = server.proxy_addr();
    let json = [("content-type", "application/json")];
    let mut misses = Misses::new(&echo, StatusCode::BAD_REQUEST, "card_number_detected");
    for place in [
        "/r/4242424242424241.9",
        "/r/42424242424242420e-1",
        "/r/1?amount=4242424242424241.9",
        "/r/1?x=4.2424242424242419e15",
    ] {
        let sent = answer(addr, Method::POST, place, &json, r#"{"a":1}"#);
        misses.check(place, sent).await;
    }
    misses.assert_none();
    echo.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn ordinary_amounts_and_ids_in_paths_and_queries_pass() {
    let (server, echo) = start_both().await;
    let addr = server.proxy_addr();
    assert!(!luhn("1234567890123"));
    let places = [
        "/pt/a/b?amount=12.50",
        "/pt/a/b?id=1234567890123",
        "/pt/a/b?amount=1e3&ratio=0.25&ts=1700000000.125",
        "/pt/orders/1234567890123/items/12.50",
    ];
    for place in places {
        let reply = request(addr, Method::GET, place, &[], "").await;
        assert_eq!(reply.status, StatusCode::OK, "{place}");
    }
    let json = [("content-type", "application/json")];
    let reply = request(addr, Method::POST, "/r/12.50?amount=12.50", &json, "{}").await;
    assert_eq!(reply.status, StatusCode::OK);
    let received = echo.received();
    assert_eq!(received.len(), places.len() + 1);
    assert_eq!(received[0].query.as_deref(), Some("amount=12.50"));
    assert_eq!(received[3].path, "/pt/orders/1234567890123/items/12.50");
    echo.stop().await;
    server.stop().await;
}

// === header names ===

#[tokio::test]
async fn a_card_in_a_header_name_is_refused_where_headers_are_scanned() {
    let (server, echo) = start_both().await;
    let addr = server.proxy_addr();
    let mut misses = Misses::new(&echo, StatusCode::BAD_REQUEST, "card_number_detected");
    for name in [
        "x-4242424242424242",
        "x-card-378282246310005-id",
        "x-4111-1111-1111-1111",
        "x-%34242424242424242",
    ] {
        let headers = [("content-type", "application/json"), (name, "1")];
        let sent = answer(addr, Method::POST, "/r/1", &headers, "{}");
        misses.check(name, sent).await;
    }
    misses.assert_none();
    // Ordinary names, numeric ones included, still pass.
    let headers = [
        ("content-type", "application/json"),
        ("x-order-1234567890123", "1"),
        ("x-attempt", "3"),
    ];
    let reply = request(addr, Method::POST, "/r/1", &headers, "{}").await;
    assert_eq!(reply.status, StatusCode::OK);
    let received = echo.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("x-order-1234567890123"), Some("1"));
    echo.stop().await;
    server.stop().await;
}

// === gzip members' own header fields ===

/// `data` gzip-compressed with a member header that `tweak` fills in.
fn gzip_with(data: &[u8], tweak: impl FnOnce(flate2::GzBuilder) -> flate2::GzBuilder) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = tweak(flate2::GzBuilder::new()).write(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn a_card_in_a_gzip_member_header_is_refused() {
    let (server, echo) = start_both().await;
    let addr = server.proxy_addr();
    let body = br#"{"note":"hello"}"#;
    let bodies: [(&str, Vec<u8>); 4] = [
        ("fname", gzip_with(body, |b| b.filename("4242424242424242"))),
        (
            "fcomment",
            gzip_with(body, |b| b.comment("card 4111 1111 1111 1111")),
        ),
        (
            "fextra",
            gzip_with(body, |b| b.extra(b"XC\x0f\x00378282246310005".to_vec())),
        ),
        ("second member", {
            let mut two = gzip(b"[1,");
            two.extend(gzip_with(b"2]", |b| b.filename("4242424242424242")));
            two
        }),
    ];
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let mut misses = Misses::new(&echo, StatusCode::BAD_REQUEST, "card_number_detected");
    for (what, gz) in &bodies {
        for path in ["/pt/upload", "/r/1"] {
            let sent = answer(addr, Method::POST, path, &headers, gz.clone());
            misses.check(&format!("{what} on {path}"), sent).await;
        }
    }
    misses.assert_none();
    echo.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn ordinary_gzip_bodies_pass_as_sent() {
    let (server, echo) = start_both().await;
    let addr = server.proxy_addr();
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let plain = gzip(br#"{"amount":12.50,"id":1234567890123}"#);
    let named = gzip_with(br#"{"a":1}"#, |b| {
        b.filename("order-1234567890123.json")
            .comment("export")
            .mtime(1_700_000_000)
    });
    for gz in [&plain, &named] {
        for path in ["/pt/upload", "/r/1"] {
            let reply = request(addr, Method::POST, path, &headers, gz.clone()).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
        }
    }
    let received = echo.received();
    assert_eq!(received.len(), 4);
    assert_eq!(&received[0].body[..], &plain[..]);
    assert_eq!(&received[3].body[..], &named[..]);
    echo.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn a_rules_route_rewrites_a_gzip_body_without_its_member_header() {
    use std::io::Read as _;
    let (server, echo) = start_both().await;
    let addr = server.proxy_addr();
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    // The card in the header is the body's, which is tokenized: the body is
    // compressed again, with a header of its own.
    let gz = gzip_with(br#"{"card":"4242424242424242"}"#, |b| {
        b.filename("4242424242424242")
    });
    let reply = request(addr, Method::POST, "/r/1", &headers, gz).await;
    assert_eq!(reply.status, StatusCode::OK);
    let received = echo.received();
    assert_eq!(received.len(), 1);
    assert!(!holds_raw(&received[0].body, "4242424242424242"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&received[0].body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.starts_with(r#"{"card":""#), "{text}");
    assert!(!text.contains("4242424242424242"), "{text}");
    echo.stop().await;
    server.stop().await;
}

// === transfer codings ===

/// Send a raw HTTP/1.1 request (`connection: close`): the answer's status and all
/// of its text.
async fn raw(addr: SocketAddr, request: Vec<u8>) -> (StatusCode, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|c| c.parse::<u16>().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::IM_A_TEAPOT);
    (status, text)
}

/// A chunked request to `path` with the given `transfer-encoding` header lines and
/// `body` as one chunk.
fn chunked(path: &str, te_lines: &[&str], body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n"
    );
    for te in te_lines {
        req.push_str(&format!("transfer-encoding: {te}\r\n"));
    }
    req.push_str(&format!("\r\n{:x}\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(b"\r\n0\r\n\r\n");
    bytes
}

#[tokio::test]
async fn transfer_codings_other_than_chunked_are_refused_on_every_route() {
    let (server, echo) = start_both().await;
    let addr = server.proxy_addr();
    let gz = gzip(br#"{"card":"4242424242424242"}"#);
    let cases: [&[&str]; 4] = [
        &["gzip, chunked"],
        &["deflate,chunked"],
        &["gzip", "chunked"],
        &["x-custom, chunked"],
    ];
    let mut misses = Misses::new(
        &echo,
        StatusCode::NOT_IMPLEMENTED,
        "\"unsupported_transfer_coding\"",
    );
    for te in cases {
        for path in ["/pt/upload", "/r/1"] {
            let sent = raw(addr, chunked(path, te, &gz));
            misses.check(&format!("{te:?} on {path}"), sent).await;
        }
    }
    // Chunked twice: what is left after one decoding is still chunk framing.
    let sent = raw(addr, chunked("/pt/upload", &["chunked, chunked"], b"{}"));
    misses.check("chunked twice", sent).await;
    misses.assert_none();
    echo.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn chunked_alone_still_passes() {
    let (server, echo) = start_both().await;
    let addr = server.proxy_addr();
    for (path, te) in [("/pt/upload", "chunked"), ("/r/1", "Chunked")] {
        let (status, text) = raw(addr, chunked(path, &[te], br#"{"a":1}"#)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
    }
    let received = echo.received();
    assert_eq!(received.len(), 2);
    assert_eq!(&received[0].body[..], br#"{"a":1}"#);
    echo.stop().await;
    server.stop().await;
}

/// The target's authority (HTTP/2's `:authority`, an absolute-form target in
/// HTTP/1) stands for `Host` and is forwarded as `X-Forwarded-Host`: a
/// `scan_headers` route reads it as it reads `Host`. And a card as the method is
/// refused on every route.
#[tokio::test]
async fn the_authority_and_the_method_are_read_too() {
    let (server, echo) = start_both().await;
    let addr = server.proxy_addr();
    let body = r#"{"card":"4111111111111111"}"#;
    let absolute = format!(
        "POST http://4242424242424242:1/r/1 HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, text) = raw(addr, absolute.into_bytes()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("card_number_detected"), "{text}");
    // A route of any method refuses it as a card; a POST-only route, as a method it
    // does not take (405). Neither answer holds the digits.
    for (path, status, code) in [
        ("/pt/a", StatusCode::BAD_REQUEST, "card_number_detected"),
        ("/r/1", StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ] {
        let request = format!(
            "4242424242424242 {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let (got, text) = raw(addr, request.into_bytes()).await;
        assert_eq!(got, status, "{path}: {text}");
        assert!(text.contains(code), "{path}: {text}");
        assert!(!text.contains("4242424242424242"), "{path}: {text}");
    }
    assert!(echo.received().is_empty(), "forwarded");
    // An ordinary absolute-form target and extension method pass.
    let ok = format!(
        "POST http://127.0.0.1:1/r/1 HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, text) = raw(addr, ok.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, text) = raw(
        addr,
        b"PROPFIND /pt/a HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            .to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    server.shutdown();
}
