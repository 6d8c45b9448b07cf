//! The process's memory budget for request bodies read whole
//! (`limits.max_buffered_body_bytes`): rules routes read a body whole, so clients that
//! send most of a body and wait make the process hold it. On HTTP/1 a connection holds
//! one such body; on HTTP/2 one connection holds up to `h2_max_concurrent_streams`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use vaultgate::demo::echo::EchoUpstream;

use crate::common::*;

/// `vaultgate_buffered_body_bytes` as `/metrics` shows it now.
async fn buffered(api: SocketAddr) -> u64 {
    let req = http::Request::get(url(api, "/metrics"))
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let reply = send(&http1(), req).await;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("vaultgate_buffered_body_bytes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .expect("vaultgate_buffered_body_bytes on /metrics")
}

/// Poll `/metrics` until the buffered bytes read `want` (or a few seconds pass).
async fn buffered_reaches(api: SocketAddr, want: u64) -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = buffered(api).await;
        if now == want || std::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The first response on `stream`, as text (its head and what came with it).
async fn read_head_text(stream: &mut TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    // What came with the head (the error body, if it came at once).
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await
    {
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A rules route reads its body whole, so clients that send most of a body and then
/// wait make the process hold it: `max_body_bytes` bounds one request, and
/// `max_buffered_body_bytes` all of them together. A request that would take the
/// held bytes over it is refused (503 `overloaded`, `Retry-After`), nothing is
/// forwarded, and once the held bodies go (or a reload raises the limit) the same
/// request is served.
#[tokio::test]
async fn bodies_read_whole_share_one_memory_budget() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let toml = config_toml(&format!("http://{up}"), ROUTES).replace(
        "max_body_bytes = 1024",
        "max_body_bytes = 4096\nmax_buffered_body_bytes = 8192\nbody_read_timeout_ms = 30000",
    );
    let server = start(&toml).await;
    let api = server.api_addr();
    assert_eq!(buffered(api).await, 0);

    // One client announces 4,000 bytes and sends 3,000: it counts what it
    // announced. Another sends a 3,000-byte chunk of a chunked body: it counts what
    // came. Both wait.
    let partial = format!(
        "{{\"card\":\"4242424242424242\",\"pad\":\"{}",
        "x".repeat(2966)
    );
    assert_eq!(partial.len(), 3000);
    let head = "POST /tokenize HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n";
    let mut announced = TcpStream::connect(server.proxy_addr()).await.unwrap();
    let wire = format!("{head}content-length: 4000\r\n\r\n{partial}");
    announced.write_all(wire.as_bytes()).await.unwrap();
    let mut chunked = TcpStream::connect(server.proxy_addr()).await.unwrap();
    let wire = format!("{head}transfer-encoding: chunked\r\n\r\nbb8\r\n{partial}\r\n");
    chunked.write_all(wire.as_bytes()).await.unwrap();
    let holders = [announced, chunked];
    assert_eq!(buffered_reaches(api, 7000).await, 7000);

    // A client that waits for 100 Continue is refused without sending its body.
    let mut waiting = TcpStream::connect(server.proxy_addr()).await.unwrap();
    let wire = format!("{head}content-length: 3000\r\nexpect: 100-continue\r\n\r\n");
    waiting.write_all(wire.as_bytes()).await.unwrap();
    let answer = read_head_text(&mut waiting).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("overloaded"), "{answer}");

    // A whole body of 3,000 more bytes does not fit in 8,192.
    let whole = format!(
        "{{\"card\":\"4111111111111111\",\"pad\":\"{}\"}}",
        "y".repeat(2964)
    );
    assert_eq!(whole.len(), 3000);
    let send_whole = || {
        post(
            server.proxy_addr(),
            "/tokenize",
            "application/json",
            whole.clone(),
        )
    };
    let refused = send_whole().await;
    assert_eq!(refused.status, 503, "{}", code(&refused));
    assert_eq!(code(&refused), "overloaded");
    assert_eq!(
        refused
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert!(echo.received().is_empty(), "nothing is forwarded");
    assert_eq!(
        buffered_reaches(api, 7000).await,
        7000,
        "the refused read holds nothing"
    );

    // A reload raises the limit: the same request fits beside the held bodies. And
    // lowers it again: refused again, the held bodies kept.
    let reload = |budget: usize| {
        let text = toml.replace(
            "max_buffered_body_bytes = 8192",
            &format!("max_buffered_body_bytes = {budget}"),
        );
        server
            .reload(vaultgate::config::Config::from_toml_str(&text).unwrap())
            .unwrap();
    };
    reload(16384);
    let served = send_whole().await;
    assert_eq!(served.status, 200, "{}", code(&served));
    reload(8192);
    let refused = send_whole().await;
    assert_eq!(refused.status, 503, "{}", code(&refused));
    assert_eq!(buffered_reaches(api, 7000).await, 7000);

    // The waiting clients give up: their bytes are given back and the request fits.
    drop(holders);
    assert_eq!(buffered_reaches(api, 0).await, 0);
    let served = send_whole().await;
    assert_eq!(served.status, 200, "{}", served.status);
    let received = echo.received();
    assert_eq!(received.len(), 2);
    for r in &received {
        assert!(!holds_raw(&received_bytes(r), "4111111111111111"));
    }
    assert_eq!(
        buffered_reaches(api, 0).await,
        0,
        "a forwarded body gives its bytes back"
    );

    server.stop().await;
    echo.stop().await;
}

/// One HTTP/2 connection asks for 100 requests on a rules route, each sending all
/// but the last byte of a 1 MiB body, to the real binary with a 32 MiB body budget.
/// Each counts the 1 MiB it announces: the 32 whose bodies fit wait for their last
/// byte; the rest are answered 503 `overloaded` at once, nothing is forwarded, and
/// the server's memory grows by about the budget, not by 100 bodies (+108 MiB
/// measured with the budget's check disabled). Another
/// client's tokenizing request is refused while the budget is full, and served once
/// the held bodies go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_h2_connection_holds_at_most_the_budget() {
    use crate::common::binary::{OneWorker, rss_kib};
    let config = format!(
        "{ROUTES}\n[limits]\nmax_buffered_body_bytes = 33554432\nbody_read_timeout_ms = 30000\n"
    );
    let served = OneWorker::start(Duration::ZERO, &config, "").await;
    let addr = served.proxy;
    let rss_mib = || rss_kib(served.child.id()) as f64 / 1024.0;
    let tokenize = || async {
        post(
            addr,
            "/tokenize",
            "application/json",
            r#"{"card":"4242424242424242","note":"a body over thirty-two bytes"}"#,
        )
        .await
    };
    assert_eq!(tokenize().await.status, 200);
    let before = rss_mib();

    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    let conn = tokio::spawn(conn);
    let (tx, mut statuses) = tokio::sync::mpsc::unbounded_channel();
    let mut bodies = Vec::new();
    for _ in 0..100 {
        let mut client = client.clone().ready().await.unwrap();
        let req = http::Request::post(format!("http://{addr}/tokenize"))
            .header("content-type", "application/json")
            .header("content-length", "1048576")
            .body(())
            .unwrap();
        let (response, mut body) = client.send_request(req, false).unwrap();
        let _ = body.send_data(Bytes::from(vec![b' '; 1_048_575]), false);
        bodies.push(body);
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Ok(res) = response.await {
                let _ = tx.send(res.status().as_u16());
            }
        });
    }
    // The refusals come at once; give the bodies that fit time to arrive.
    let mut refused = 0;
    while let Ok(Some(status)) = tokio::time::timeout(Duration::from_secs(3), statuses.recv()).await
    {
        assert_eq!(status, 503, "only refusals are answered while bodies wait");
        refused += 1;
    }
    let held = rss_mib();
    eprintln!(
        "100 streams of 1 MiB less a byte, 32 MiB budget: {refused} refused, RSS {before:.0} -> {held:.0} MiB"
    );
    assert!(
        (60..=70).contains(&refused),
        "about 32 of 100 bodies fit in 32 MiB: {refused} refused"
    );
    assert!(
        held - before < 80.0,
        "RSS grew by {:.0} MiB for a 32 MiB budget",
        held - before
    );
    assert_eq!(tokenize().await.status, 503, "the budget is full");
    assert!(
        served.echo().received().len() == 1,
        "nothing more was forwarded"
    );

    drop(bodies);
    drop(client);
    conn.abort();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut status = tokenize().await.status;
    while status != 200 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = tokenize().await.status;
    }
    assert_eq!(status, 200, "served once the held bodies went");
    served.stop().await;
}
