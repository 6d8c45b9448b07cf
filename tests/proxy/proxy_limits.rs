//! Connection limit and header read timeout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use crate::common::*;
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
async fn connections_over_the_limit_take_the_slot_of_an_idle_one() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let toml =
        config_toml(&format!("http://{up}"), ROUTES).replace("[api]", "max_connections = 1\n[api]");
    let server = start(&toml).await;

    let mut first = TcpStream::connect(server.proxy_addr()).await.unwrap();
    first.write_all(GET).await.unwrap();
    let head = read_some(&mut first, Duration::from_secs(2)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // The first connection is idle but open: it is closed to make room, and the
    // second is served at once (it used to wait in the backlog).
    let mut second = TcpStream::connect(server.proxy_addr()).await.unwrap();
    second.write_all(GET).await.unwrap();
    let head = read_some(&mut second, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        read_some(&mut first, Duration::from_secs(2))
            .await
            .as_deref(),
        Some(""),
        "the idle connection was closed"
    );
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

/// One whole response on `stream` (head and `Content-Length` body), or `None` when
/// the connection closed or nothing came within `wait`.
async fn read_response(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return Some(text);
            }
        }
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
}

/// The header read timeout bounds a request head, not the wait between requests: a
/// keep-alive connection idle well past it stays open (until the idle timeout), and a
/// head begun on it and never finished is still cut off soon after it.
#[tokio::test]
async fn keep_alive_outlives_the_header_timeout_but_a_slow_head_does_not() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let toml = config_toml(&format!("http://{up}"), ROUTES).replace(
        "[api]",
        "header_read_timeout_ms = 300\nidle_timeout_ms = 10000\n[api]",
    );
    let server = start(&toml).await;
    let mut stream = TcpStream::connect(server.proxy_addr()).await.unwrap();
    stream.write_all(GET).await.unwrap();
    let first = read_response(&mut stream, Duration::from_secs(2)).await;
    assert!(first.unwrap().starts_with("HTTP/1.1 200"));

    // Idle for four times the header read timeout: still open, and it serves again.
    assert_eq!(
        read_some(&mut stream, Duration::from_millis(1200)).await,
        None,
        "the idle keep-alive connection was closed"
    );
    stream.write_all(GET).await.unwrap();
    let second = read_response(&mut stream, Duration::from_secs(2)).await;
    assert!(second.unwrap().starts_with("HTTP/1.1 200"));

    // A head begun and never finished: closed (possibly after a 408) long before
    // the idle timeout.
    stream
        .write_all(b"GET /pass/x HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let begun = std::time::Instant::now();
    let got = read_some(&mut stream, Duration::from_secs(5)).await;
    assert!(got.is_some(), "the connection was left open");
    assert!(!got.unwrap().contains("200 OK"));
    assert!(
        begun.elapsed() < Duration::from_secs(3),
        "cut off after {:?}",
        begun.elapsed()
    );
    assert_eq!(echo.received().len(), 2);
    server.stop().await;
    echo.stop().await;
}
