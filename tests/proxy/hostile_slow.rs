//! Red-team round 6, part 3: clients that ask and never read. An HTTP/1 client that
//! sends a request for a large response and never reads its socket, and an HTTP/2
//! client that opens streams with a zero receive window
//! (`SETTINGS_INITIAL_WINDOW_SIZE = 0`), each hold a response the upstream is still
//! sending. The upstream here answers `/pass/big` with 10 MiB and records its
//! connections: how many are open, how many requests it got, how many bytes it wrote.
//!
//! The `#[ignore]`d test measures the real binary (RSS, upstream connections held)
//! and prints the figures quoted in SECURITY.md: `cargo test --test proxy hostile_slow
//! -- --ignored --nocapture`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

/// The size of `/pass/big`'s response.
const BIG: usize = 10 * 1024 * 1024;

/// What the big upstream saw.
#[derive(Default)]
struct Seen {
    /// Connections open now.
    open: AtomicUsize,
    /// Requests received.
    requests: AtomicUsize,
    /// Response bytes written.
    written: AtomicU64,
}

/// An HTTP/1.1 upstream that answers `/pass/big` with 10 MiB of `x` and anything
/// else with `ok`, keep-alive.
async fn big_upstream() -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let seen = Arc::clone(&counts);
            seen.open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = serve_big(s, &seen).await;
                seen.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, seen)
}

async fn serve_big(mut s: TcpStream, seen: &Seen) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        seen.requests.fetch_add(1, Ordering::SeqCst);
        let size = if head.starts_with("GET /pass/big") {
            BIG
        } else {
            2
        };
        s.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n").as_bytes())
            .await?;
        if size == 2 {
            s.write_all(b"ok").await?;
            continue;
        }
        let piece = vec![b'x'; 64 * 1024];
        for _ in 0..BIG / piece.len() {
            s.write_all(&piece).await?;
            seen.written.fetch_add(piece.len() as u64, Ordering::SeqCst);
        }
    }
}

/// A config for the big upstream: the upstream takes `upstream_conns` requests at
/// once, the proxy's idle timeout is `idle_ms`.
fn slow_config(up: SocketAddr, upstream_conns: usize, idle_ms: u64) -> String {
    config_toml(&format!("http://{up}"), ROUTES)
        .replacen(
            "[api]",
            &format!("idle_timeout_ms = {idle_ms}\nworkers = 1\n[api]"),
            1,
        )
        .replacen(
            "name = \"backend\"",
            &format!("name = \"backend\"\nmax_connections = {upstream_conns}"),
            1,
        )
}

/// An HTTP/1 request for the big response, and a socket never read.
async fn h1_never_reads(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /pass/big HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    s
}

/// Whether the server closed `s` (EOF or reset), reading what is left in the
/// socket, within `patience`.
async fn closed_within(s: &mut TcpStream, patience: Duration) -> bool {
    let mut sink = vec![0u8; 1 << 20];
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut sink)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Wait until `cond` holds (at most `patience`); whether it did.
async fn eventually(patience: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// A small request through the proxy over a fresh HTTP/1 connection: its status.
async fn small_request(addr: SocketAddr) -> http::StatusCode {
    let req = http::Request::get(url(addr, "/pass/small"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(15), send(&http1(), req))
        .await
        .expect("a small request waited over 15 s")
        .status
}

/// The upstream gets both requests, and then (within 10 s) sees both its
/// connections closed: the proxy let go of answers its client never took.
async fn both_requests_then_released(seen: &Seen, what: &str) {
    assert!(
        eventually(Duration::from_secs(5), || seen
            .requests
            .load(Ordering::SeqCst)
            == 2)
        .await,
        "the upstream did not get both requests"
    );
    let started = Instant::now();
    let released = eventually(Duration::from_secs(10), || {
        seen.open.load(Ordering::SeqCst) == 0
    })
    .await;
    eprintln!(
        "{what}: upstream connections released {released} after {:.1} s, {} KiB written",
        started.elapsed().as_secs_f64(),
        seen.written.load(Ordering::SeqCst) / 1024
    );
    assert!(released, "the upstream connections are still held");
}

/// Two HTTP/1 clients ask for 10 MiB and never read, on an upstream that takes two
/// requests at once: before this round they held both upstream connections for as
/// long as they stayed connected (every other request waited out the upstream
/// timeout: 504); now a connection whose client takes no byte of its answer for the
/// idle timeout is closed, its upstream connection with it.
#[tokio::test]
async fn http1_clients_that_never_read_are_closed() {
    let (up, seen) = big_upstream().await;
    let server = start(&slow_config(up, 2, 1000)).await;
    let addr = server.proxy_addr();
    let mut slow = vec![h1_never_reads(addr).await, h1_never_reads(addr).await];
    both_requests_then_released(&seen, "h1 never reads").await;
    assert_eq!(small_request(addr).await, http::StatusCode::OK);
    for s in &mut slow {
        assert!(closed_within(s, Duration::from_secs(5)).await, "still open");
    }
    server.stop().await;
}

/// An HTTP/2 client whose streams have a zero receive window
/// (`SETTINGS_INITIAL_WINDOW_SIZE = 0`, never a WINDOW_UPDATE) asks for 10 MiB on two
/// streams: the proxy can send it no byte of either. Before this round both streams
/// held their upstream connections for as long as the client stayed connected (it
/// answers no PING here, but a client that does would stay forever); now the
/// connection gets GOAWAY and is closed after the idle timeout, and its upstream
/// connections with it.
#[tokio::test]
async fn http2_streams_with_a_zero_window_are_closed() {
    use crate::hostile_h2::*;
    const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
    let (up, seen) = big_upstream().await;
    let server = start(&slow_config(up, 2, 1000)).await;
    let addr = server.proxy_addr();
    let s = TcpStream::connect(addr).await.unwrap();
    let (r, mut w) = s.into_split();
    let mut wire = PREFACE.to_vec();
    let mut zero = SETTINGS_INITIAL_WINDOW_SIZE.to_be_bytes().to_vec();
    zero.extend(0u32.to_be_bytes());
    wire.extend(frame(SETTINGS, 0, 0, &zero));
    for id in [1, 3] {
        wire.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            id,
            &request_block("GET", "/pass/big"),
        ));
    }
    w.write_all(&wire).await.unwrap();
    let mut rx = read_frames(r);
    both_requests_then_released(&seen, "h2 zero window").await;
    let (frames, eof) = drain(&mut rx, Duration::from_secs(5)).await;
    assert!(
        eof || frames.iter().any(|f| f.kind == GOAWAY),
        "neither GOAWAY nor close"
    );
    assert_eq!(small_request(addr).await, http::StatusCode::OK);
    another_client_is_served(addr).await;
    drop(w);
    server.stop().await;
}

/// A client that reads its 10 MiB slowly (a megabyte at a time, pausing under half
/// the idle timeout between reads) keeps taking bytes: it gets the whole answer.
#[tokio::test]
async fn a_slow_reader_that_keeps_reading_gets_the_whole_answer() {
    let (up, _seen) = big_upstream().await;
    let server = start(&slow_config(up, 2, 1000)).await;
    let mut s = h1_never_reads(server.proxy_addr()).await;
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut read = 0;
        while read < buf.len() {
            match s.read(&mut buf[read..]).await.unwrap() {
                0 => break,
                n => read += n,
            }
        }
        if read == 0 {
            break;
        }
        got += read;
        if got >= BIG {
            break;
        }
    }
    assert!(got >= BIG, "read {got} bytes of the answer");
    server.stop().await;
}

// === measurements on the real binary (ignored: they print numbers) ===

mod measure {
    use super::*;
    use crate::common::binary::{OneWorker, rss_kib};
    use crate::hostile_h2::*;

    const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

    fn rss_mib(served: &OneWorker) -> f64 {
        rss_kib(served.child.id()) as f64 / 1024.0
    }

    /// An HTTP/2 connection with a zero stream window asking for the big answer on
    /// `streams` streams; kept open (the writer) until dropped.
    async fn h2_zero_window(
        addr: SocketAddr,
        streams: u32,
    ) -> (
        tokio::net::tcp::OwnedWriteHalf,
        tokio::sync::mpsc::UnboundedReceiver<Frame>,
    ) {
        let s = TcpStream::connect(addr).await.unwrap();
        let (r, mut w) = s.into_split();
        let mut wire = PREFACE.to_vec();
        let mut zero = SETTINGS_INITIAL_WINDOW_SIZE.to_be_bytes().to_vec();
        zero.extend(0u32.to_be_bytes());
        wire.extend(frame(SETTINGS, 0, 0, &zero));
        for i in 0..streams {
            wire.extend(frame(
                HEADERS,
                END_HEADERS | END_STREAM,
                2 * i + 1,
                &request_block("GET", "/pass/big"),
            ));
        }
        w.write_all(&wire).await.unwrap();
        (w, read_frames(r))
    }

    /// A small request's status and time, over a fresh HTTP/1 connection.
    async fn timed_small(addr: SocketAddr) -> String {
        let started = Instant::now();
        let req = http::Request::get(url(addr, "/pass/small"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        match tokio::time::timeout(Duration::from_secs(40), send(&http1(), req)).await {
            Ok(r) => format!("{} in {:.2} s", r.status, started.elapsed().as_secs_f64()),
            Err(_) => "no answer in 40 s".to_owned(),
        }
    }

    /// `h1` HTTP/1 clients and `h2` HTTP/2 connections of 100 zero-window streams,
    /// none reading, each asking for 10 MiB; the proxy's idle timeout is `idle_ms`.
    async fn slow_readers(h1: usize, h2: u32, idle_ms: u64) {
        let (up, seen) = big_upstream().await;
        let routes = format!("[limits]\nupstream_timeout_ms = 5000\n{ROUTES}");
        let served =
            OneWorker::start_for(up, &routes, &format!("idle_timeout_ms = {idle_ms}"), "").await;
        let addr = served.proxy;
        let before = rss_mib(&served);
        let mut socks = Vec::new();
        for _ in 0..h1 {
            socks.push(h1_never_reads(addr).await);
        }
        let mut conns = Vec::new();
        for _ in 0..h2 {
            conns.push(h2_zero_window(addr, 100).await);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let started = Instant::now();
        let other = timed_small(addr).await;
        eprintln!(
            "slow readers (h1 {h1}, h2 {h2} x 100 streams, idle {idle_ms} ms): after 3 s RSS {before:.0} -> {:.0} MiB, upstream: {} requests, {} open, {} MiB written; another client: {other}",
            rss_mib(&served),
            seen.requests.load(Ordering::SeqCst),
            seen.open.load(Ordering::SeqCst),
            seen.written.load(Ordering::SeqCst) >> 20,
        );
        let released = eventually(Duration::from_millis(idle_ms * 2 + 5000), || {
            seen.open.load(Ordering::SeqCst) <= 1
        })
        .await;
        eprintln!(
            "  upstream connections released {released} ({} open) {:.1} s later; RSS {:.0} MiB; another client: {}",
            seen.open.load(Ordering::SeqCst),
            started.elapsed().as_secs_f64(),
            rss_mib(&served),
            timed_small(addr).await
        );
        drop((socks, conns));
        served.stop().await;
    }

    /// Twenty thousand small requests pipelined on one HTTP/1 connection whose
    /// socket is not read for 21 s (the idle timeout is 5 s): what the upstream got
    /// meanwhile, and what the client reads after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "measurement: prints what pipelined requests never read hold"]
    async fn measure_pipelined_never_read() {
        let (up, echo) = vaultgate::demo::echo::EchoUpstream::start().await.unwrap();
        let served = OneWorker::start_for(up, ROUTES, "idle_timeout_ms = 5000", "").await;
        let addr = served.proxy;
        let mut wire = Vec::new();
        for i in 0..20_000 {
            wire.extend(format!("GET /pass/p{i} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes());
        }
        let before = rss_mib(&served);
        let mut s = TcpStream::connect(addr).await.unwrap();
        let wrote = tokio::time::timeout(Duration::from_secs(5), s.write_all(&wire))
            .await
            .is_ok();
        for t in [1u64, 5, 15] {
            tokio::time::sleep(Duration::from_secs(t)).await;
            eprintln!(
                "pipelined, never read: all written {wrote}; after +{t} s the upstream got {}, RSS {before:.0} -> {:.0} MiB, fds {}",
                echo.received().len(),
                rss_mib(&served),
                crate::common::binary::fd_count(served.child.id())
            );
        }
        let mut out = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(3), s.read(&mut chunk)).await
        {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        eprintln!(
            "  then read: {} answers, upstream got {}",
            String::from_utf8_lossy(&out).matches("HTTP/1.1 ").count(),
            echo.received().len()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "measurement: prints RSS and upstream connections held by clients that never read"]
    async fn measure_slow_readers() {
        let idle = std::env::var("SLOW_IDLE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000);
        slow_readers(50, 0, idle).await;
        slow_readers(0, 1, idle).await;
        slow_readers(0, 3, idle).await;
    }
}
