//! The proxy's own HTTP/1.1 connections to a plain-HTTP upstream, as the upstream
//! sees them: reused while they last, never reused once the upstream closed them or a
//! response was cut short, and no more kept idle than `max_idle_connections`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// Connections an upstream accepted and saw closed, and requests it answered.
#[derive(Default)]
struct Seen {
    opened: AtomicUsize,
    closed: AtomicUsize,
    requests: AtomicUsize,
}

impl Seen {
    fn open(&self) -> usize {
        self.opened.load(Ordering::SeqCst) - self.closed.load(Ordering::SeqCst)
    }
}

const BIG: usize = 1 << 20;

/// An upstream on `127.0.0.1:0` that counts its connections (opened, and closed when
/// `serve` returns) and serves each with `serve`.
async fn counting_upstream<F, Fut>(serve: F) -> (SocketAddr, Arc<Seen>)
where
    F: Fn(tokio::net::TcpStream, Arc<Seen>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counts.opened.fetch_add(1, Ordering::SeqCst);
            let served = serve(stream, Arc::clone(&counts));
            let counts = Arc::clone(&counts);
            tokio::spawn(async move {
                served.await;
                counts.closed.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (addr, seen)
}

/// An HTTP/1.1 upstream: `/pass/slow` answers after 200 ms, `/pass/big` streams
/// 1 MiB in 16 KiB chunks, anything else answers its path at once.
async fn upstream() -> (SocketAddr, Arc<Seen>) {
    counting_upstream(|stream, counts| async move {
        let service = service_fn(move |req: Request<hyper::body::Incoming>| {
            counts.requests.fetch_add(1, Ordering::SeqCst);
            async move {
                let path = req.uri().path().to_owned();
                let body = match path.as_str() {
                    "/pass/big" => {
                        let chunks = (0..BIG / 16384).map(|_| {
                            Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; 16384])))
                        });
                        let stream = futures_util::stream::iter(chunks).then(|c| async {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            c
                        });
                        BodyExt::boxed(StreamBody::new(stream))
                    }
                    _ => {
                        if path == "/pass/slow" {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Full::new(Bytes::from(path)).boxed()
                    }
                };
                Ok::<_, Infallible>(Response::new(body))
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    })
    .await
}

/// A proxy on one shard in front of `up`, with `extra` lines in its upstream block.
async fn proxy(up: SocketAddr, extra: &str) -> vaultgate::app::ServerHandle {
    let toml = config_toml(&format!("http://{up}"), ROUTES)
        .replace("[api]", "workers = 1\n[api]")
        .replace(
            &format!("url = \"http://{up}\"\n"),
            &format!("url = \"http://{up}\"\n{extra}"),
        );
    start(&toml).await
}

async fn get(client: &Http, proxy: SocketAddr, path: &str) -> Reply {
    send(
        client,
        Request::get(url(proxy, path))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
}

/// Wait (up to 5 s) until `check` holds.
async fn settle(what: &str, check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn requests_one_after_another_share_one_upstream_connection() {
    let (up, seen) = upstream().await;
    let server = proxy(up, "").await;
    let client = http1();
    for i in 0..20 {
        let r = get(&client, server.proxy_addr(), &format!("/pass/{i}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, format!("/pass/{i}").as_bytes());
    }
    assert_eq!(seen.requests.load(Ordering::SeqCst), 20);
    assert_eq!(seen.opened.load(Ordering::SeqCst), 1);
    // The metric an operator watches for reuse says the same.
    assert_eq!(opened_metric(&server).await, 1);
    server.stop().await;
}

/// `vaultgate_upstream_connections_opened_total{upstream="backend"}` from `/metrics`.
async fn opened_metric(server: &vaultgate::app::ServerHandle) -> u64 {
    let reply = get(&http1(), server.api_addr(), "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("vaultgate_upstream_connections_opened_total{upstream=\"backend\"}")
        })
        .unwrap_or_else(|| panic!("no upstream connections metric in:\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn idle_upstream_connections_stay_under_the_cap() {
    let (up, seen) = upstream().await;
    let server = proxy(up, "max_idle_connections = 2\n").await;
    let proxy = server.proxy_addr();
    // 8 requests at once, each on its own client connection: 8 upstream connections.
    let calls: Vec<_> = (0..8)
        .map(|_| tokio::spawn(async move { get(&http1(), proxy, "/pass/slow").await.status }))
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(seen.opened.load(Ordering::SeqCst), 8);
    // Past the burst, two are kept and the rest closed.
    settle("idle connections were not closed down to the cap", || {
        seen.open() == 2
    })
    .await;
    // The kept ones serve the next requests.
    let client = http1();
    for _ in 0..3 {
        assert_eq!(
            get(&client, proxy, "/pass/again").await.status,
            StatusCode::OK
        );
    }
    assert_eq!(seen.opened.load(Ordering::SeqCst), 8);
    assert_eq!(opened_metric(&server).await, 8);
    server.stop().await;
}

#[tokio::test]
async fn a_response_the_client_abandons_does_not_spoil_the_next() {
    let (up, seen) = upstream().await;
    let server = proxy(up, "").await;
    let proxy = server.proxy_addr();

    // Read the head of a long response, then hang up.
    let mut raw = tokio::net::TcpStream::connect(proxy).await.unwrap();
    raw.write_all(b"GET /pass/big HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 64];
    let n = raw.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &head[..n]);
    drop(raw);
    // The upstream connection it used is closed, not put back half-read.
    settle("the abandoned upstream connection stayed open", || {
        seen.closed.load(Ordering::SeqCst) == 1
    })
    .await;

    let client = http1();
    let r = get(&client, proxy, "/pass/small").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, b"/pass/small".as_slice());
    let r = get(&client, proxy, "/pass/big").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.len(), BIG);
    assert!(r.body.iter().all(|b| *b == b'x'));
    server.stop().await;
}

/// An upstream that answers one request per connection, keep-alive in form, and
/// closes the connection 50 ms later, as a short `keepalive_timeout` does.
async fn closing_upstream() -> (SocketAddr, Arc<Seen>) {
    counting_upstream(|mut s, counts| async move {
        read_head(&mut s).await;
        counts.requests.fetch_add(1, Ordering::SeqCst);
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    })
    .await
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_not_reused() {
    let (up, seen) = closing_upstream().await;
    let server = proxy(up, "").await;
    let client = http1();
    for i in 0..5 {
        let r = get(&client, server.proxy_addr(), &format!("/pass/{i}")).await;
        assert_eq!(r.status, StatusCode::OK, "request {i}");
        assert_eq!(r.body, b"ok".as_slice());
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(seen.requests.load(Ordering::SeqCst), 5);
    assert_eq!(seen.opened.load(Ordering::SeqCst), 5);
    server.stop().await;
}

/// An upstream that answers `/pass/early` with a 401 at once, without reading the
/// request body (as an upstream rejecting credentials may), and keeps that connection
/// open; anything else gets a 200, connection kept alive.
async fn early_upstream() -> (SocketAddr, Arc<Seen>) {
    counting_upstream(|mut s, counts| async move {
        loop {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if s.read(&mut byte).await.unwrap_or(0) == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            counts.requests.fetch_add(1, Ordering::SeqCst);
            if head.starts_with(b"POST /pass/early ") {
                let _ = s
                    .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
                    .await;
                // Hold the connection, the body unread.
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
        }
    })
    .await
}

#[tokio::test]
async fn an_upload_still_under_way_does_not_hold_up_other_requests() {
    let (up, _seen) = early_upstream().await;
    let server = proxy(up, "").await;
    let proxy = server.proxy_addr();

    // A slow upload: the head and a few bytes of a long body, then nothing more.
    let mut slow = tokio::net::TcpStream::connect(proxy).await.unwrap();
    slow.write_all(
        b"POST /pass/early HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\nsome bytes",
    )
    .await
    .unwrap();
    let mut head = [0u8; 64];
    let n = slow.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 401"), "{:?}", &head[..n]);

    // The upstream connection still carries that upload; the next requests must not
    // wait for it (they would time out: 504 after the upstream timeout of 2 s).
    let client = http1();
    for _ in 0..3 {
        let r = get(&client, proxy, "/pass/other").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, b"ok".as_slice());
    }
    drop(slow);
    server.stop().await;
}
