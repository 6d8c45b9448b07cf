//! What ends up in the logs: route, method, status, latency — never paths, query
//! strings, header values or bodies. The real binary at `trace`, its stderr read
//! whole after a clean stop (a scoped subscriber in a test binary that runs other
//! servers at once raced them for tracing's callsite interest, and lost lines).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use crate::common::binary::{VaultDir, free_port, wait_listening};
use crate::common::*;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use vaultgate::demo::echo::EchoUpstream;

#[tokio::test]
async fn logs_carry_no_paths_queries_headers_or_bodies() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    // A port nothing listens on: a dead upstream.
    let dead = free_port();
    let v = VaultDir::init();
    let (proxy, api) = (free_port(), free_port());
    let rest = format!(
        "[limits]\nmax_body_bytes = 1024\nupstream_timeout_ms = 2000\n\
         [[upstreams]]\nname = \"backend\"\nurl = \"http://{up}\"\n\
         [[upstreams]]\nname = \"dead\"\nurl = \"http://{dead}\"\n\
         [[routes]]\nname = \"dead\"\nupstream = \"dead\"\npath = \"/dead/*\"\n\
         stream_guard = \"off\"\n{ROUTES}"
    );
    let config = v.write_config(proxy, api, &rest);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("level = \"warn\"", "level = \"trace\""),
    )
    .unwrap();
    let mut child = v.serve(&config);
    wait_listening(&mut child, proxy, Duration::from_secs(20)).await;

    let client = http1();
    let card = "4111111111111111";
    for path in [
        format!("/pass/{card}?pan={card}"),
        format!("/tokenize?pan={card}"),
        format!("/dead/{card}?pan={card}"),
        format!("/nowhere/{card}"),
    ] {
        let _ = send(
            &client,
            Request::post(url(proxy, &path))
                .header("x-card", card)
                // An id is logged and forwarded: one holding a card number is replaced.
                .header("x-request-id", format!("order-{card}"))
                .body(Full::new(Bytes::from(format!(r#"{{"card":"{card}"}}"#))))
                .unwrap(),
        )
        .await;
    }
    let big = send(
        &client,
        Request::post(url(proxy, "/tokenize"))
            .body(Full::new(Bytes::from(card.repeat(100))))
            .unwrap(),
    )
    .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    let clean = send(
        &client,
        Request::post(url(proxy, "/pass/clean"))
            .header("x-request-id", format!("order-{card}"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap(),
    )
    .await;
    assert_eq!(clean.status, StatusCode::OK);
    // A card as the method (an extension method is a token; digits are token
    // characters), to the proxy and to the API; an id holding one in an escape.
    for addr in [proxy, api] {
        let answer = raw(
            addr,
            &format!("{card} /pass/x HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
        assert!(!answer.contains(card), "{answer}");
    }
    let escaped = send(
        &client,
        Request::post(url(proxy, "/pass/clean"))
            .header("x-request-id", format!("order-%3{card}"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap(),
    )
    .await;
    assert_eq!(escaped.status, StatusCode::OK);
    let received = echo.received();
    assert!(!received.is_empty());
    assert!(
        received.iter().all(|r| !r.method.contains(card)),
        "a card as the method was forwarded"
    );
    for r in &received {
        let ids: Vec<&String> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-request-id"))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(ids.len(), 1, "{:?}", r.headers);
        assert!(!ids[0].contains(card), "forwarded id {}", ids[0]);
    }
    // SIGTERM and a clean exit: every held line is written on the way out.
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success());
    echo.stop().await;

    let logs = v.serve_log();
    // The access lines and the failure line name the route, never the path.
    assert!(logs.contains(r#"route="dead""#), "{logs}");
    assert!(logs.contains("status=502"), "{logs}");
    assert!(logs.contains("vaultgate::access"), "{logs}");
    assert!(logs.contains(r#"path="/pass/*""#), "{logs}");
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "{logs}");
    // Nor in another spelling: sled prints the keys it looks up as a list of bytes
    // at trace, and the leak guard looks up card-shaped numbers.
    let as_bytes = format!("{:?}", card.as_bytes());
    let as_bytes = as_bytes.trim_start_matches('[').trim_end_matches(']');
    for spelling in [card, as_bytes, "pan=", "/pass/clean"] {
        assert!(!logs.contains(spelling), "{spelling} in {logs}");
    }
}

/// Send raw bytes, read the whole answer (at most 5 s).
async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
