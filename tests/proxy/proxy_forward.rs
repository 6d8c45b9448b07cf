//! The proxy in front of a real (echo) upstream: forwarding, header hygiene, routing
//! errors, the body limit, and the admin endpoints.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use vaultgate::demo::echo::EchoUpstream;

#[tokio::test]
async fn pass_through_forwards_byte_for_byte() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let client = http1();
    // No card number: the streaming leak guard would refuse it (hostile_routing).
    let body: &[u8] = b"\x00\xffnot utf-8 \x80 order 4111111111111112";

    let via_proxy = send(
        &client,
        Request::put(url(server.proxy_addr(), "/pass/a/b?x=1&y=%20z"))
            .header("content-type", "application/octet-stream")
            .header("x-custom", "kept")
            .body(Full::new(Bytes::from_static(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(via_proxy.status, StatusCode::OK);

    let got = echo.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.path, "/pass/a/b");
    assert_eq!(r.query.as_deref(), Some("x=1&y=%20z"));
    assert_eq!(&r.body[..], body);
    assert_eq!(r.header("x-custom"), Some("kept"));
    assert_eq!(r.header("host"), Some(up.to_string().as_str()));

    // The response is the upstream's, unchanged.
    let doc = via_proxy.json();
    assert_eq!(doc["method"], "PUT");
    assert_eq!(doc["query"], "x=1&y=%20z");
    assert!(doc["body_base64"].is_string());
    assert_eq!(via_proxy.headers["content-type"], "application/json");

    server.stop().await;
    echo.stop().await;
}

/// The upstream gets the request's path and query as sent, under its URL's path
/// prefix when it has one; an absolute-form target is forwarded in origin form.
#[tokio::test]
async fn the_upstream_gets_path_and_query_as_sent_under_its_prefix() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (up, echo) = EchoUpstream::start().await.unwrap();
    for (base, want) in [("", ""), ("/base", "/base")] {
        let server = start(&config_toml(&format!("http://{up}{base}"), ROUTES)).await;
        let addr = server.proxy_addr();
        for target in [
            "/pass/a?x=1&y=%20z".to_owned(),
            "/pass/b?".to_owned(),
            "/pass/c".to_owned(),
            format!("http://{addr}/pass/d?q=2"),
        ] {
            let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
            let head =
                format!("GET {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
            conn.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            conn.read_to_end(&mut answer).await.unwrap();
            assert!(
                answer.starts_with(b"HTTP/1.1 200"),
                "{target}: {}",
                String::from_utf8_lossy(&answer)
            );
            let r = echo.received().pop().unwrap();
            let sent = target.trim_start_matches(&format!("http://{addr}"));
            let (path, query) = match sent.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (sent, None),
            };
            assert_eq!(r.path, format!("{want}{path}"), "{base} {target}");
            assert_eq!(r.query.as_deref(), query, "{base} {target}");
        }
        server.stop().await;
    }
    echo.stop().await;
}

#[tokio::test]
async fn hop_by_hop_and_own_headers_are_stripped_and_forwarded_headers_set() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let client = http1();
    let reply = send(
        &client,
        Request::post(url(server.proxy_addr(), "/pass/x"))
            .header("connection", "keep-alive, x-drop-me")
            .header("x-drop-me", "1")
            .header("keep-alive", "timeout=5")
            .header("proxy-authorization", "Basic Zm9vOmJhcg==")
            .header("te", "trailers")
            .header("x-vaultgate-client", "admin")
            .header("X-Vaultgate-Role", "reveal")
            .header("x-forwarded-for", "10.1.2.3")
            .header("host", "shop.example:8443")
            .body(Full::new(Bytes::from_static(b"hello")))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let got = echo.received();
    let r = &got[0];
    for gone in [
        "connection",
        "x-drop-me",
        "keep-alive",
        "proxy-authorization",
        "te",
        "x-vaultgate-client",
        "x-vaultgate-role",
        "transfer-encoding",
        "upgrade",
    ] {
        assert_eq!(r.header(gone), None, "{gone} was forwarded");
    }
    assert_eq!(r.header("x-forwarded-for"), Some("10.1.2.3, 127.0.0.1"));
    assert_eq!(r.header("x-forwarded-proto"), Some("http"));
    assert_eq!(r.header("x-forwarded-host"), Some("shop.example:8443"));
    assert_eq!(r.header("content-length"), Some("5"));
    assert_eq!(&r.body[..], b"hello");
    server.stop().await;
    echo.stop().await;
}

#[tokio::test]
async fn no_route_is_a_json_404() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let client = http1();
    for (method, path) in [("GET", "/elsewhere")] {
        let reply = send(
            &client,
            Request::builder()
                .method(method)
                .uri(url(server.proxy_addr(), path))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.json()["error"]["code"], "no_route");
    }
    // The path decides: /tokenize belongs to a POST route, so a GET there is 405
    // (it used to fall through, and would now be refused rather than passed on).
    let reply = send(
        &client,
        Request::get(url(server.proxy_addr(), "/tokenize"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "POST");
    assert_eq!(reply.json()["error"]["code"], "method_not_allowed");
    assert!(echo.received().is_empty());
    server.stop().await;
    echo.stop().await;
}

#[tokio::test]
async fn rules_route_forwards_and_limits_the_body() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let client = http1();
    let tokenize = |body: Vec<u8>| {
        Request::post(url(server.proxy_addr(), "/tokenize?a=b"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };

    // Within the limit: collected, passed through the pipeline, forwarded.
    let ok = send(
        &client,
        tokenize(br#"{"card":"4242424242424242"}"#.to_vec()),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(echo.received().len(), 1);
    let got = &echo.received()[0];
    assert_eq!(got.query.as_deref(), Some("a=b"));
    assert!(!String::from_utf8_lossy(&got.body).contains("4242424242424242"));
    assert_eq!(
        got.header("content-length"),
        Some(got.body.len().to_string().as_str())
    );

    // Over the limit by Content-Length: 413 and nothing forwarded.
    let big = send(&client, tokenize(vec![b'x'; 2048])).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(big.json()["error"]["code"], "body_too_large");
    assert_eq!(echo.received().len(), 1);

    server.stop().await;
    echo.stop().await;
}

#[tokio::test]
async fn streamed_body_over_the_limit_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let mut stream = tokio::net::TcpStream::connect(server.proxy_addr())
        .await
        .unwrap();
    let mut raw = Vec::new();
    raw.extend_from_slice(
        b"POST /tokenize HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
    );
    for _ in 0..3 {
        raw.extend_from_slice(b"200\r\n");
        raw.extend_from_slice(&[b'a'; 0x200]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&raw).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("body_too_large"));
    assert!(echo.received().is_empty());
    server.stop().await;
    echo.stop().await;
}

#[tokio::test]
async fn admin_endpoints_report_health_readiness_and_metrics() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let client = http1();
    let get = |path: &str| {
        Request::get(url(server.api_addr(), path))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    assert_eq!(send(&client, get("/healthz")).await.status, StatusCode::OK);
    assert_eq!(send(&client, get("/readyz")).await.status, StatusCode::OK);
    let missing = send(&client, get("/nope")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"]["code"], "no_route");

    let pass = Request::get(url(server.proxy_addr(), "/pass/m"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(&client, pass).await.status, StatusCode::OK);
    let nowhere = Request::get(url(server.proxy_addr(), "/zzz"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(&client, nowhere).await.status, StatusCode::NOT_FOUND);

    let metrics = send(&client, get("/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(
        text.contains(r#"vaultgate_requests_total{route="pass",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"vaultgate_requests_total{route="",outcome="no_route"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"vaultgate_request_duration_seconds_count{route="pass"} 1"#),
        "{text}"
    );
    assert!(!text.contains("/pass/m"));

    server.shutdown();
    // While draining, readiness is withdrawn (the flag flips before the listener stops).
    assert!(!server.readiness().is_ready());
    server.wait().await;
    echo.stop().await;
}

/// `vaultgate_store_flushes_total` on `/metrics`: a tokenizing request is forwarded only
/// after its record is durable, so it costs at least one store flush, and
/// `vaultgate_store_flush_duration_seconds` times it.
#[tokio::test]
async fn metrics_count_and_time_store_flushes() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let client = http1();
    let sample = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .parse()
            .unwrap()
    };
    let flushes = |text: &str| sample(text, "vaultgate_store_flushes_total") as u64;
    let timed = |text: &str| sample(text, "vaultgate_store_flush_duration_seconds_count") as u64;
    let metrics = || {
        Request::get(url(server.api_addr(), "/metrics"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let before = send(&client, metrics()).await;
    let before_text = String::from_utf8(before.body.to_vec()).unwrap();
    let (before, timed_before) = (flushes(&before_text), timed(&before_text));
    let ok = send(
        &client,
        Request::post(url(server.proxy_addr(), "/tokenize"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"card":"4111111111111111"}"#,
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let after = send(&client, metrics()).await;
    let text = String::from_utf8(after.body.to_vec()).unwrap();
    assert!(text.contains("# TYPE vaultgate_store_flushes_total counter"));
    assert!(flushes(&text) > before, "{text}");
    // Every flush since the server started is timed (the store may have flushed
    // before, while it was opened).
    let timed_now = timed(&text);
    assert!(timed_now > timed_before, "{text}");
    assert!(timed_now <= flushes(&text), "{text}");
    assert!(
        sample(&text, "vaultgate_store_flush_duration_seconds_sum") > 0.0,
        "{text}"
    );
    assert!(text.contains("# TYPE vaultgate_store_flush_duration_seconds histogram"));
    server.stop().await;
    echo.stop().await;
}

#[tokio::test]
async fn non_canonical_paths_are_refused_and_variants_route_alike() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    for path in [
        "/pass/../tokenize",
        "/pass//x",
        "/pass/%2e%2e/tokenize",
        "/pass%2Ftokenize",
    ] {
        let mut stream = tokio::net::TcpStream::connect(server.proxy_addr())
            .await
            .unwrap();
        stream
            .write_all(
                format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{{}}")
                    .as_bytes(),
            )
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 400"), "{path}: {head}");
        assert!(head.contains("bad_request"), "{path}");
    }
    assert!(echo.received().is_empty());

    // A case / trailing-slash / encoded variant of a rules route still takes that route.
    let client = http1();
    for path in ["/TOKENIZE", "/tokenize/", "/tok%65nize"] {
        let reply = send(
            &client,
            Request::post(url(server.proxy_addr(), path))
                .body(Full::new(Bytes::from(vec![b'x'; 2048])))
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    assert!(echo.received().is_empty());
    server.stop().await;
    echo.stop().await;
}
