//! Issue 11, routing and the edge: the path decides (405, 415, method overrides), the
//! streaming leak guard on pass-through routes, header scans, idle connections at
//! `max_connections`, and the lingering drain after an early answer.
//!
//! Each case runs against the real server and a real upstream that records what it
//! received, and asserts the status and that no raw card reached the upstream.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vaultgate::app::ServerHandle;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream, Received};
use vaultgate::sensitive::luhn;

const CARDS: [&str; 3] = ["4242424242424242", "378282246310005", "4111111111111111"];

fn routes(listener: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
{listener}
[api]
listen = "127.0.0.1:0"
[limits]
max_body_bytes = 1048576
body_read_timeout_ms = 3000
upstream_timeout_ms = 5000

[[routes]]
name = "q2open"
upstream = "backend"
method = "POST"
path = "/v1/payment"
content_types = ["application/json"]
profile = "q2open"

[[routes]]
name = "scanned"
upstream = "backend"
method = "POST"
path = "/v1/scanned/{{id}}"
fields = [{{ path = "card", class = "pan" }}]
scan_headers = true

[[routes]]
name = "watched"
upstream = "backend"
path = "/watched/*"
stream_guard = "detect"

[[routes]]
name = "unguarded"
upstream = "backend"
path = "/unguarded/*"
stream_guard = "off"

[[routes]]
name = "pass"
upstream = "backend"
path = "/*"
"#
    )
}

fn config(upstream: SocketAddr, listener: &str) -> String {
    format!(
        "{}\n[[upstreams]]\nname = \"backend\"\nurl = \"http://{upstream}\"\n",
        routes(listener)
    )
}

async fn start_with(listener: &str) -> (ServerHandle, EchoHandle) {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    (start(&config(up, listener)).await, echo)
}

/// No test card, in any common spelling, in anything the upstream received.
fn assert_clean(name: &str, received: &[Received]) {
    for r in received {
        let mut all = String::from_utf8_lossy(&r.body).into_owned();
        all.push_str(&r.path);
        all.push_str(r.query.as_deref().unwrap_or(""));
        for (_, v) in &r.headers {
            all.push_str(v);
        }
        let squeezed: String = all
            .replace("%20", "")
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '+'))
            .collect();
        for card in CARDS {
            assert!(
                !squeezed.contains(card),
                "{name}: the upstream received {card} on {} {}",
                r.method,
                r.path
            );
        }
    }
}

fn card_json(card: &str) -> String {
    format!(r#"{{"paymentType":"card","cardNumber":"{card}","cardCode":"123","amount":10}}"#)
}

async fn request(
    client: &Http,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut b = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(url(addr, path));
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    send(client, b.body(Full::new(body.into())).unwrap()).await
}

// === the path decides ===

#[tokio::test]
async fn the_route_that_owns_the_path_answers_for_every_method_and_type() {
    let (server, echo) = start_with("").await;
    let addr = server.proxy_addr();
    let json = [("content-type", "application/json")];
    for (name, client) in [("http/1.1", http1()), ("h2", h2c())] {
        // Lower-case `post` is a POST: tokenized, not passed on raw.
        let r = request(
            &client,
            addr,
            "post",
            "/v1/payment",
            &json,
            card_json(CARDS[0]),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{name}: lowercase post");
        let got = echo.received();
        let last = got.last().unwrap();
        assert!(
            String::from_utf8_lossy(&last.body).contains("cardNumber"),
            "{name}"
        );
        assert_clean(name, &got);
    }
    // The media type compares in any case, its parameters and spaces aside: this is
    // the rules route's, so the card is tokenized.
    let r = request(
        &http1(),
        addr,
        "POST",
        "/v1/payment",
        &[("content-type", "Application/JSON ; charset=utf-8")],
        card_json(CARDS[2]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "mixed-case media type");
    let got = echo.received();
    assert!(String::from_utf8_lossy(&got.last().unwrap().body).contains("cardNumber"));
    assert_clean("mixed-case media type", &got);
    let client = http1();
    let before = echo.received().len();
    for method in ["PUT", "PATCH", "DELETE", "GET"] {
        let r = request(
            &client,
            addr,
            method,
            "/v1/payment",
            &json,
            card_json(CARDS[1]),
        )
        .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(r.headers["allow"], "POST", "{method}");
        assert_eq!(code(&r), "method_not_allowed");
    }
    // Over HTTP/2 as well.
    let r = request(
        &h2c(),
        addr,
        "PUT",
        "/v1/payment",
        &json,
        card_json(CARDS[1]),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "h2 PUT");
    for header in [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        let r = request(
            &client,
            addr,
            "GET",
            "/v1/payment",
            &[("content-type", "application/json"), (header, "POST")],
            card_json(CARDS[2]),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{header}");
        assert_eq!(code(&r), "method_override_refused");
    }
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/vnd.api+json"),
        Some("text/json"),
    ] {
        let headers: Vec<(&str, &str)> = ct.map(|c| ("content-type", c)).into_iter().collect();
        let r = request(
            &client,
            addr,
            "POST",
            "/v1/payment",
            &headers,
            card_json(CARDS[0]),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    // Two Content-Type headers: the backend might read the other one.
    let r = request(
        &client,
        addr,
        "POST",
        "/v1/payment",
        &[
            ("content-type", "application/json"),
            ("content-type", "text/plain"),
        ],
        card_json(CARDS[0]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let got = echo.received();
    assert_eq!(got.len(), before, "nothing refused was forwarded");
    assert_clean("refused", &got);
    server.stop().await;
}

// === the streaming leak guard ===

/// An upstream that records every byte as it arrives, and answers 200 once a chunked
/// request body ends.
struct RawUpstream {
    addr: SocketAddr,
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl RawUpstream {
    async fn start() -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&bytes);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        store.lock().unwrap().extend_from_slice(&buf[..n]);
                        mine.extend_from_slice(&buf[..n]);
                        if mine.ends_with(b"0\r\n\r\n") {
                            mine.clear();
                            let _ = s
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                                .await;
                        }
                    }
                });
            }
        });
        RawUpstream { addr, bytes }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes.lock().unwrap()).into_owned()
    }
}

/// A client that stops sending a streamed body is answered 400 after
/// `body_read_timeout_ms` (3 s here), its fault, not a gateway error after the
/// upstream timeout (5 s), guarded or not.
#[tokio::test]
async fn a_stalled_pass_through_body_is_the_client_s_fault() {
    let up = RawUpstream::start().await;
    let server = start(&config(up.addr, "")).await;
    let addr = server.proxy_addr();
    for path in ["/anything", "/unguarded/x"] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\nten bytes."
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(8), s.read_to_end(&mut out)).await;
        let answer = String::from_utf8_lossy(&out);
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains("not received in time"), "{path}: {answer}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(2500) && waited < Duration::from_millis(4900),
            "{path}: answered after {waited:?}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_card_dripped_into_a_pass_through_body_never_reaches_the_upstream() {
    let up = RawUpstream::start().await;
    let server = start(&config(up.addr, "")).await;
    let addr = server.proxy_addr();
    let pieces = [
        "{\"note\":\"call me, card ",
        "4242 42",
        "42 4242",
        " 4242 exp 12/30\"}",
    ];
    let answer = drip(
        addr,
        "/anything",
        "text/plain",
        &pieces.map(str::as_bytes),
        Duration::from_millis(150),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("card_number_detected"), "{answer}");
    let seen = up.text();
    assert!(!seen.contains("4242"), "the upstream got digits: {seen}");
    // The text before the card went on as it streamed.
    assert!(seen.contains("call me, card"), "{seen}");

    // An unguarded route streams the same body unread (the control).
    let answer = drip(
        addr,
        "/unguarded/x",
        "text/plain",
        &pieces.map(str::as_bytes),
        Duration::from_millis(10),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(up.text().contains("4242 42"));
    server.stop().await;
}

#[tokio::test]
async fn pass_through_queries_and_bodies_are_scanned() {
    let (server, echo) = start_with("").await;
    let addr = server.proxy_addr();
    let client = http1();
    // A clean body streams through unchanged, numbers and all.
    let clean = r#"{"order":1234567890123,"phone":"+1 555 0100","ts":1700000000}"#;
    let r = request(&client, addr, "POST", "/orders", &[], clean).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(echo.received().last().unwrap().body, clean.as_bytes());

    let before = echo.received().len();
    for query in [
        "card=4242424242424242",
        "card=4242+4242+4242+4242",
        "card=3782%20822463%2010005",
        "x=1&card=%34%31%31%31111111111111",
    ] {
        let r = request(&client, addr, "GET", &format!("/search?{query}"), &[], "").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(code(&r), "card_number_detected");
    }
    for (ct, body) in [
        ("application/json", card_json(CARDS[0])),
        ("text/plain", format!("card {}", CARDS[1])),
        (
            "application/x-www-form-urlencoded",
            format!("n={}", CARDS[2]),
        ),
    ] {
        for client in [http1(), h2c()] {
            let r = request(
                &client,
                addr,
                "POST",
                "/v2/other",
                &[("content-type", ct)],
                body.clone(),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{ct}");
            assert_eq!(code(&r), "card_number_detected", "{ct}");
        }
    }
    assert_clean("blocked", &echo.received());
    assert_eq!(echo.received().len(), before);

    // detect mode forwards, counts and logs masked.
    let r = request(
        &client,
        addr,
        "POST",
        "/watched/x",
        &[],
        card_json(CARDS[0]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let hits = server.metrics().registry.counter_vec(
        "vaultgate_leak_guard_hits_total",
        "",
        &["route", "mode"],
    );
    assert_eq!(hits.get(&["watched", "detect"]), 1);
    assert!(hits.get(&["pass", "block"]) >= 7);
    server.stop().await;
}

/// The token the q2open route forwards for `card`.
async fn token_for(client: &Http, addr: SocketAddr, echo: &EchoHandle, card: &str) -> String {
    let json = [("content-type", "application/json")];
    let r = request(client, addr, "POST", "/v1/payment", &json, card_json(card)).await;
    assert_eq!(r.status, StatusCode::OK);
    let body: serde_json::Value =
        serde_json::from_slice(&echo.received().last().unwrap().body).unwrap();
    body["cardNumber"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn our_own_tokens_pass_the_streaming_guard() {
    let (server, echo) = start_with("").await;
    let addr = server.proxy_addr();
    let client = http1();
    let json = [("content-type", "application/json")];
    let token = token_for(&client, addr, &echo, CARDS[0]).await;
    assert_ne!(token, CARDS[0]);
    let r = request(
        &client,
        addr,
        "POST",
        "/refunds",
        &json,
        format!(r#"{{"card":"{token}"}}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "a token of this vault passes");
    let r = request(
        &client,
        addr,
        "GET",
        &format!("/refunds?card={token}"),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "in the query too");
    server.stop().await;
}

#[tokio::test]
async fn a_token_written_with_separators_is_not_ours() {
    // The guard takes the longest card-shaped run of digit groups. A token of this
    // vault written as "<its first 13 digits>,<its last 3>" is such a run, but when
    // those 13 digits are themselves a card (a 13-digit Visa), an upstream that splits
    // at the comma reads that card. Found by the pipeline fuzz target.
    let (server, echo) = start_with("").await;
    let addr = server.proxy_addr();
    let client = http1();
    let json = [("content-type", "application/json")];
    let mut found = None;
    for i in 0..300 {
        let payload = format!("424242{i:09}");
        let card = format!("{payload}{}", luhn::check_digit(&payload));
        let token = token_for(&client, addr, &echo, &card).await;
        if token.len() == 16 && luhn::is_valid(&token[..13]) {
            found = Some(token);
            break;
        }
    }
    let token = found.expect("one token in ten has a Luhn-valid 13-digit prefix");
    let (card, rest) = token.split_at(13);
    let forwarded = echo.received().len();
    // The token as it was issued passes; split at a separator, it does not.
    let r = request(
        &client,
        addr,
        "POST",
        "/refunds",
        &json,
        format!(r#"{{"card":"{token}"}}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    for (method, path, body) in [
        (
            "POST",
            "/refunds".to_owned(),
            format!(r#"{{"card":"{card},{rest}"}}"#),
        ),
        (
            "POST",
            "/refunds".to_owned(),
            format!(r#"{{"card":"{card} {rest}"}}"#),
        ),
        ("GET", format!("/refunds?card={card},{rest}"), String::new()),
    ] {
        let r = request(&client, addr, method, &path, &json, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method} {path}");
        assert_eq!(r.json()["error"]["code"], "card_number_detected");
    }
    assert_eq!(
        echo.received().len(),
        forwarded + 1,
        "only the plain token went on"
    );
    // On a tokenizing route, the split token in a free field is taken for a card
    // and tokenized, not passed on as ours.
    let body = format!(
        r#"{{"paymentType":"card","cardNumber":"{}","note":"{card},{rest}"}}"#,
        CARDS[2]
    );
    let r = request(&client, addr, "POST", "/v1/payment", &json, body).await;
    assert_eq!(r.status, StatusCode::OK);
    let sent = String::from_utf8_lossy(&echo.received().last().unwrap().body).into_owned();
    assert!(
        !sent.contains(card),
        "the 13-digit card reached the upstream: {sent}"
    );
    server.stop().await;
}

#[tokio::test]
async fn headers_cookies_and_paths_are_scanned_where_the_route_asks() {
    let (server, echo) = start_with("").await;
    let addr = server.proxy_addr();
    let client = http1();
    let body = r#"{"card":"5555555555554444"}"#;
    let before = echo.received().len();
    for (name, value) in [
        ("cookie", "session=1; pan=4242424242424242"),
        ("x-note", "4111 1111 1111 1111"),
        ("x-enc", "c%3D378282246310005"),
    ] {
        let r = request(
            &client,
            addr,
            "POST",
            "/v1/scanned/1",
            &[("content-type", "application/json"), (name, value)],
            body,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(code(&r), "card_number_detected", "{name}");
    }
    let r = request(
        &client,
        addr,
        "POST",
        "/v1/scanned/4242424242424242",
        &[],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "path");
    assert_eq!(echo.received().len(), before);
    // Authorization is not scanned; numeric ids elsewhere are fine.
    let r = request(
        &client,
        addr,
        "POST",
        "/v1/scanned/1",
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer 4242424242424242"),
            ("x-request-id", "1234567890"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let got = echo.received();
    assert!(!String::from_utf8_lossy(&got.last().unwrap().body).contains("5555555555554444"));
    server.stop().await;
}

#[tokio::test]
async fn a_card_in_the_path_is_refused_on_every_guarded_route() {
    let (server, echo) = start_with("").await;
    let addr = server.proxy_addr();
    let client = http1();
    let json = [("content-type", "application/json")];
    // Plain, as a `;` parameter the route matcher reads past, split by an encoded
    // space, percent-encoded twice: on a pass-through route and on a rules route.
    for path in [
        "/orders/4242424242424242",
        "/orders;card=4111111111111111",
        "/orders/3782%208224%20631%200005",
        "/orders/%2534242424242424242",
        "/v1/payment;x=4242424242424242",
    ] {
        let r = request(&client, addr, "POST", path, &json, r#"{"amount":10}"#).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(code(&r), "card_number_detected", "{path}");
        assert!(echo.received().is_empty(), "{path} was forwarded");
    }
    // Numeric ids are fine; `detect` forwards and `off` does not look.
    for path in [
        "/orders/1234567890123",
        "/watched/4242424242424242",
        "/unguarded/4242424242424242",
    ] {
        let r = request(&client, addr, "GET", path, &[], "").await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    assert_eq!(echo.received().len(), 3);
    server.stop().await;
}

// === connections an anonymous client can exhaust ===

#[tokio::test]
async fn idle_connections_make_room_at_max_connections() {
    let (server, echo) =
        start_with("max_connections = 8\nheader_read_timeout_ms = 5000\nidle_timeout_ms = 5000")
            .await;
    let addr = server.proxy_addr();
    let mut idle = Vec::new();
    for i in 0..8 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            // Only the HTTP/2 preface, then silence.
            s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                .await
                .unwrap();
        }
        idle.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(4),
        request(
            &http1(),
            addr,
            "POST",
            "/v1/payment",
            &[("content-type", "application/json")],
            card_json(CARDS[0]),
        ),
    )
    .await
    .expect("a real request is answered while idle sockets fill max_connections");
    assert_eq!(r.status, StatusCode::OK);
    // Well before the idle sockets' own timeout: one of them made room.
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_clean("exhaustion", &echo.received());

    // The rest are closed by the first-request timeout.
    let mut closed = 0;
    for mut s in idle {
        let mut buf = [0u8; 64];
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 8, "idle connections are closed");
    server.stop().await;
}

#[tokio::test]
async fn busy_connections_refuse_new_ones_at_once() {
    let (server, _echo) = start_with("max_connections = 1\nidle_timeout_ms = 60000").await;
    let addr = server.proxy_addr();
    // One connection, busy: its request head is sent, its body never completes.
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(
        b"POST /v1/payment HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut out)).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once"
    );
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 503"),
        "{text}"
    );
    drop(busy);
    server.stop().await;
}

// === lingering close ===

/// Write a whole request (head and body) before reading anything, like Python's
/// urllib; return what was read back.
async fn write_then_read(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body)
        .await
        .expect("the whole body could be written");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if out.windows(4).any(|w| w == b"\r\n\r\n") && out.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_client_that_writes_8_mib_before_reading_gets_the_answer() {
    let (server, echo) = start_with("").await;
    let addr = server.proxy_addr();
    let mut body = card_json(CARDS[0]).into_bytes();
    body.resize(8 * 1024 * 1024, b' ');
    let cases = [
        ("POST /v1/payment", "application/json", "413"),
        ("PUT /v1/payment", "application/json", "405"),
        ("POST /v1/payment", "text/plain", "415"),
        ("POST /elsewhere", "application/json", "400"),
    ];
    for (line, ct, status) in cases {
        let head = format!(
            "{line} HTTP/1.1\r\nhost: x\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let answer = write_then_read(addr, &head, &body).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{line} {ct}: {answer:?}"
        );
    }
    assert_clean("8 MiB", &echo.received());
    server.stop().await;
}
