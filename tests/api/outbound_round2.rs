//! Red-team round on the outbound proxy: route confusion, hop-by-hop headers naming
//! the reveal headers, and a value echoed where no header or body carries it (the
//! HTTP/1 reason phrase). Each against the real server and a real TLS processor
//! ([`crate::outbound_echo::Fixture`]).
//!
//! Found:
//! - A route for `/pay/charges` forwarded `/pay/charges.json`, `/pay/CHARGES`,
//!   `/pay/charges/`, `/pay/charges;x=1` and `/pay/charg%65s` to the processor as
//!   sent, card revealed: endpoints the allow-list does not name. `exact = true` now
//!   matches the path as written (`PathPattern::matches_exactly`).
//! - `Connection: x-card` removed the revealed header after the reveal: the card
//!   was revealed and audited, never sent. The caller's hop-by-hop headers now go
//!   before anything is read.
//! - The request body was read with no time limit and outside the process's body
//!   budget: a caller dripping its body held the connection for as long as it liked,
//!   and bodies held at once were bounded by nothing but the connection limits. It is
//!   now read as the proxy's rules routes read theirs (`linger::read_whole`).
//! - A processor's reason phrase (`HTTP/1.1 402 Card 4242… Declined`) reached the
//!   caller as written: swapped now with the rest of the answer.
//!
//! Held up: dot segments, empty segments and `%2e%2e` (400 on every route), HTTP/2
//! `:authority` and HTTP/1 `Host` naming another host (the destination's own host
//! name goes out), the reveal API's errors (no input quoted, a card in a number, a
//! key, a class or a format included).

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::common::*;
use crate::outbound_echo::{CARD, Fixture};

/// An exact route on `/pay/charges`.
const ROUTES: &str = r#"
[[outbound.routes]]
name = "exact"
method = "POST"
path = "/pay/charges"
strip_prefix = "/pay"
destination = "https://localhost:{port}/api"
ca = "{ca}"
exact = true
reveal = [{ path = "card.number", class = "pan" }]
reveal_headers = [{ name = "x-card", class = "pan" }]
"#;

async fn post(
    f: &Fixture,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(url(f.outbound, path))
        .header("content-type", "application/json")
        .header("proxy-authorization", format!("Bearer {}", f.key));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    send(
        &http1(),
        req.body(Full::new(Bytes::from(body.to_string()))).unwrap(),
    )
    .await
}

/// `vaultgate_reveals_total{class="pan"}` from `/metrics`.
async fn pan_reveals(f: &Fixture) -> u64 {
    let m = call(f.handle.api_addr(), "GET", "/metrics", None, Value::Null).await;
    String::from_utf8_lossy(&m.body)
        .lines()
        .find_map(|l| l.strip_prefix("vaultgate_reveals_total{class=\"pan\"} "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn an_exact_route_reaches_only_the_endpoint_it_names() {
    let f = Fixture::start(ROUTES).await;
    let token = f.token("pan", CARD).await;
    let body = json!({ "card": { "number": token } });
    let r = post(&f, "POST", "/pay/charges", &[], &body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.headers.get("x-processor-path").unwrap(), "/api/charges");
    for (method, path) in [
        ("POST", "/pay/charges.json"),
        ("POST", "/pay/charges.xml"),
        ("POST", "/pay/CHARGES"),
        ("POST", "/pay/charges/"),
        ("POST", "/pay/charges;x=1"),
        ("POST", "/pay/charg%65s"),
        ("POST", "/pay/charges.%252e%252e%252frefunds"),
        ("post", "/pay/charges"),
    ] {
        let r = post(&f, method, path, &[], &body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(r.json()["error"]["code"], "forbidden");
        assert!(r.headers.get("x-processor-path").is_none(), "{path}");
    }
    // Dot segments and empty segments stay refused before any route is tried.
    for path in [
        "/pay//charges",
        "/pay/%2e%2e/pay/charges",
        "/pay/x/../charges",
    ] {
        let r = post(&f, "POST", path, &[], &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
    }
    // One reveal: the one that went out.
    assert_eq!(pan_reveals(&f).await, 1);
    f.handle.stop().await;
}

/// How many `pan` reveals the audit log holds.
fn audited_reveals(f: &Fixture) -> usize {
    std::fs::read_to_string(&f.audit)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(r#""action":"reveal""#) && l.contains(r#""class":"pan""#))
        .count()
}

#[tokio::test]
async fn a_hop_by_hop_header_naming_a_reveal_header_reveals_nothing() {
    let f = Fixture::start(
        r#"
[[outbound.routes]]
name = "hop"
path = "/hop/*"
strip_prefix = "/hop"
destination = "https://localhost:{port}/api"
ca = "{ca}"
reveal_headers = [{ name = "x-card", class = "pan" }]
"#,
    )
    .await;
    let token = f.token("pan", CARD).await;
    for connection in ["x-card", "keep-alive, X-Card"] {
        let r = post(
            &f,
            "POST",
            "/hop/charges/header",
            &[("x-card", &token), ("connection", connection)],
            &json!({}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert!(r.headers.get("x-card-echo").unwrap().to_str().unwrap() == "card=");
    }
    // The header was the caller's hop-by-hop header: gone before anything was read,
    // so nothing was revealed (or audited as revealed) for a value never sent.
    assert_eq!(audited_reveals(&f), 0);
    // The same header without `Connection` is revealed and sent.
    let r = post(
        &f,
        "POST",
        "/hop/charges/header",
        &[("x-card", &token)],
        &json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers.get("x-card-echo").unwrap().to_str().unwrap(),
        format!("card={token}")
    );
    assert_eq!(audited_reveals(&f), 1);
    assert_eq!(pan_reveals(&f).await, 1);
    f.handle.stop().await;
}

#[tokio::test]
async fn a_reason_phrase_echo_reaches_the_caller_as_the_token() {
    let f = Fixture::start("").await;
    let token = f.token("pan", CARD).await;
    // A raw HTTP/1 exchange, to read the status line as sent.
    let body = json!({ "card": { "number": token } }).to_string();
    let head = format!(
        "POST /processor/charges/reason HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        f.key,
        body.len()
    );
    let mut s = tokio::net::TcpStream::connect(f.outbound).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, head.as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut s, &mut out),
    )
    .await;
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.starts_with("HTTP/1.1 402 "), "{text}");
    assert!(!holds_raw(&out, CARD), "{text}");
    f.handle.stop().await;
}

/// Held up: the reveal API's errors quote none of what a client sent, a card in a
/// number, a key, a class or a format included.
#[tokio::test]
async fn the_reveal_api_quotes_no_input_in_its_errors() {
    let f = Fixture::start("").await;
    let addr = f.handle.api_addr();
    let card = 4242424242424242u64;
    for (path, body) in [
        ("/v1/detokenize", json!({ "tokens": [card] })),
        ("/v1/detokenize", json!({ "tokens": [{ "token": card }] })),
        (
            "/v1/detokenize",
            json!({ "tokens": [{ "token": "x", "scope": card }] }),
        ),
        ("/v1/detokenize", json!({ CARD: 1 })),
        (
            "/v1/detokenize",
            json!({ "tokens": [{ "token": "x", CARD: 1 }] }),
        ),
        (
            "/v1/tokenize",
            json!({ "values": [{ "class": "pan", "value": card }] }),
        ),
        (
            "/v1/tokenize",
            json!({ "values": [{ "class": CARD, "value": "1" }] }),
        ),
        (
            "/v1/tokenize",
            json!({ "values": [{ "class": "pan", "value": CARD, "format": CARD }] }),
        ),
        (
            "/v1/tokenize",
            json!({ "values": [{ "class": "cvv", "value": "218", "scope": card }] }),
        ),
        (
            "/v1/tokenize",
            json!({ "values": [{ "class": "pan", "value": CARD, "deterministic": CARD }] }),
        ),
    ] {
        let r = api(addr, "POST", path, &f.key, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!holds_raw(&r.body, CARD), "{body}: {:?}", r.body);
    }
    for p in [
        "/v1/tokens/4242424242424242",
        "/v1/tokens/4242%204242%204242%204242",
        "/v1/tokens/%34242424242424242",
    ] {
        let r = api(addr, "GET", p, &f.key, Value::Null).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{p}");
        assert!(!holds_raw(&r.body, CARD), "{p}");
    }
    f.handle.stop().await;
}

/// Held up: over HTTP/2 with an `:authority` of the caller's choosing, or over
/// HTTP/1 with such a `Host`, the request goes to the route's destination under its
/// own host name.
#[tokio::test]
async fn the_callers_authority_names_no_destination() {
    let f = Fixture::start("").await;
    let token = f.token("pan", CARD).await;
    let body = Bytes::from(json!({ "card": { "number": token } }).to_string());
    let expected = format!("localhost:{}", f.processor_port);

    // HTTP/2 (prior knowledge), `:authority` naming another host.
    let tcp = tokio::net::TcpStream::connect(f.outbound).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let req = Request::post("http://evil.example:443/processor/charges/ok")
        .header("content-type", "application/json")
        .header("proxy-authorization", format!("Bearer {}", f.key))
        .body(())
        .unwrap();
    let (response, mut stream) = client.send_request(req, false).unwrap();
    stream.send_data(body.clone(), true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get("x-host").unwrap(), expected.as_str());

    // HTTP/1, `Host` naming another host.
    let r = send(
        &http1(),
        Request::post(url(f.outbound, "/processor/charges/ok"))
            .header("content-type", "application/json")
            .header("proxy-authorization", format!("Bearer {}", f.key))
            .header("host", "evil.example")
            .body(Full::new(body))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers.get("x-host").unwrap(), expected.as_str());
    f.handle.stop().await;
}

/// Raw HTTP/1 bytes to the outbound listener; the answer, or what came within `wait`.
async fn raw_exchange(
    addr: std::net::SocketAddr,
    head: &str,
    wait: std::time::Duration,
) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let text = match tokio::time::timeout(wait, s.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        _ => String::new(),
    };
    (s, text)
}

#[tokio::test]
async fn the_request_body_is_read_within_the_time_limit_and_the_body_budget() {
    let f = Fixture::start_with(
        "",
        "max_buffered_body_bytes = 65536\nbody_read_timeout_ms = 1500",
    )
    .await;
    let token = f.token("pan", CARD).await;
    let head = |len: usize| {
        format!(
            "POST /processor/charges/ok HTTP/1.1\r\nhost: x\r\nproxy-authorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n",
            f.key
        )
    };
    // A body that never comes: 400 once body_read_timeout_ms has passed.
    let (_held, text) = raw_exchange(
        f.outbound,
        &format!("{}{{\"card\"", head(100)),
        std::time::Duration::from_secs(5),
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text:?}");

    // One body of 60,000 bytes declared and not sent holds the budget (65,536): a
    // second of 10,000 is refused at once, 503 with Retry-After.
    let (_first, text) = raw_exchange(
        f.outbound,
        &head(60_000),
        std::time::Duration::from_millis(300),
    )
    .await;
    assert!(text.is_empty(), "{text}");
    let body = json!({ "card": { "number": token }, "pad": "x".repeat(10_000) });
    let r = post(&f, "POST", "/processor/charges/ok", &[], &body).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert_eq!(r.json()["error"]["code"], "overloaded");
    f.handle.stop().await;
}
