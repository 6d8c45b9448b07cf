//! Connection limit, header read timeout, and what ends up in the logs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vaultgate::demo::echo::EchoUpstream;

async fn read_some(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(Err(_)) => Some(String::new()),
        Err(_) => None,
    }
}

const GET: &[u8] = b"GET /pass/x HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn connections_over_the_limit_wait_for_a_free_slot() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let toml =
        config_toml(&format!("http://{up}"), ROUTES).replace("[api]", "max_connections = 1\n[api]");
    let server = start(&toml).await;

    let mut first = TcpStream::connect(server.proxy_addr()).await.unwrap();
    first.write_all(GET).await.unwrap();
    let head = read_some(&mut first, Duration::from_secs(2)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // The first connection is idle but open: the second is not served yet.
    let mut second = TcpStream::connect(server.proxy_addr()).await.unwrap();
    second.write_all(GET).await.unwrap();
    assert!(
        read_some(&mut second, Duration::from_millis(300))
            .await
            .is_none()
    );

    drop(first);
    let head = read_some(&mut second, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    server.stop().await;
    echo.stop().await;
}

#[tokio::test]
async fn slow_request_heads_are_cut_off() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let toml = config_toml(&format!("http://{up}"), ROUTES)
        .replace("[api]", "header_read_timeout_ms = 200\n[api]");
    let server = start(&toml).await;
    let mut stream = TcpStream::connect(server.proxy_addr()).await.unwrap();
    stream
        .write_all(b"GET /pass/x HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // Closed (possibly after a 408) well before the test's patience runs out.
    let got = read_some(&mut stream, Duration::from_secs(3)).await;
    assert!(got.is_some(), "the connection was left open");
    assert!(!got.unwrap().contains("200 OK"));
    assert!(echo.received().is_empty());
    server.stop().await;
    echo.stop().await;
}

/// A writer that appends to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_carry_no_paths_queries_headers_or_bodies() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("vaultgate=trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (up, echo) = EchoUpstream::start().await.unwrap();
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = gone.local_addr().unwrap();
    drop(gone);
    let extra = format!(
        "[[upstreams]]\nname = \"dead\"\nurl = \"http://{dead}\"\n\n\
         [[routes]]\nname = \"dead\"\nupstream = \"dead\"\npath = \"/dead/*\"\n{ROUTES}"
    );
    let toml = config_toml(&format!("http://{up}"), &extra);
    let server = start(&toml).await;
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
            Request::post(url(server.proxy_addr(), &path))
                .header("x-card", card)
                .body(Full::new(Bytes::from(format!(r#"{{"card":"{card}"}}"#))))
                .unwrap(),
        )
        .await;
    }
    let big = send(
        &client,
        Request::post(url(server.proxy_addr(), "/tokenize"))
            .body(Full::new(Bytes::from(card.repeat(100))))
            .unwrap(),
    )
    .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
    echo.stop().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("route=dead"), "{logs}");
    assert!(logs.contains("status=502"), "{logs}");
    assert!(!logs.contains(card), "{logs}");
    assert!(!logs.contains("pan="), "{logs}");
}
