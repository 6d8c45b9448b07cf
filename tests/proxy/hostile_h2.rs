//! Red-team round 6, part 2: HTTP/2 and HTTP/1 floods. A raw HTTP/2 client (frames
//! written by hand, so that it can break the rules the `h2` crate keeps) opens more
//! streams than the proxy allows, resets them as fast as it opens them, and sends
//! header blocks in endless CONTINUATION frames; an HTTP/1 client pipelines hundreds
//! of requests in one write. Each is answered by a refused stream, a GOAWAY or in
//! order, and another client is served meanwhile.
//!
//! The `#[ignore]`d tests measure the real binary (RSS, upstream requests) and print
//! the numbers quoted in SECURITY.md: `cargo test --test proxy hostile_h2 --
//! --ignored --nocapture`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream};

use crate::common::*;

// === a raw HTTP/2 client ===

pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub(super) const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
pub(super) const SETTINGS: u8 = 0x4;
pub(super) const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;

pub(super) const END_STREAM: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;

const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

const REFUSED_STREAM: u32 = 0x7;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;

pub(super) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1).
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// A header block of literal fields without indexing, new names (RFC 7541 §6.2.2).
pub(super) fn hpack(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        hpack_int(&mut out, 0, 7, name.len());
        out.extend_from_slice(name.as_bytes());
        hpack_int(&mut out, 0, 7, value.len());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

pub(super) fn request_block(method: &str, path: &str) -> Vec<u8> {
    hpack(&[
        (":method", method),
        (":scheme", "http"),
        (":path", path),
        (":authority", "x"),
        ("content-type", "application/json"),
    ])
}

/// A frame the server sent: type, flags, stream, payload.
#[derive(Debug)]
pub(super) struct Frame {
    pub(super) kind: u8,
    pub(super) stream: u32,
    pub(super) payload: Vec<u8>,
}

impl Frame {
    pub(super) fn code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }

    fn setting(&self, id: u16) -> Option<u32> {
        self.payload.chunks_exact(6).find_map(|e| {
            (u16::from_be_bytes([e[0], e[1]]) == id)
                .then(|| u32::from_be_bytes([e[2], e[3], e[4], e[5]]))
        })
    }
}

/// Read frames until the server closes; each one is sent on. The channel closes at EOF.
pub(super) fn read_frames(mut r: OwnedReadHalf) -> mpsc::UnboundedReceiver<Frame> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            while buf.len() >= 9 {
                let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
                if buf.len() < 9 + len {
                    break;
                }
                let f = Frame {
                    kind: buf[3],
                    stream: u32::from_be_bytes(buf[5..9].try_into().unwrap()) & 0x7fff_ffff,
                    payload: buf[9..9 + len].to_vec(),
                };
                buf.drain(..9 + len);
                if tx.send(f).is_err() {
                    return;
                }
            }
            match r.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    rx
}

/// A connection that sent the preface and an empty SETTINGS frame.
pub(super) async fn raw_h2(
    addr: SocketAddr,
) -> (
    tokio::net::tcp::OwnedWriteHalf,
    mpsc::UnboundedReceiver<Frame>,
) {
    let s = TcpStream::connect(addr).await.unwrap();
    let _ = s.set_nodelay(true);
    let (r, mut w) = s.into_split();
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    w.write_all(&hello).await.unwrap();
    (w, read_frames(r))
}

/// Every frame received until `quiet` passes without one (or the server closes);
/// `true` when it closed.
pub(super) async fn drain(
    rx: &mut mpsc::UnboundedReceiver<Frame>,
    quiet: Duration,
) -> (Vec<Frame>, bool) {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(quiet, rx.recv()).await {
            Ok(Some(f)) => out.push(f),
            Ok(None) => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

/// The advertised concurrent-stream limit, and the streams reset with REFUSED_STREAM,
/// when `n` requests are opened at once on the rules route, none sending its body.
async fn open_streams(addr: SocketAddr, n: u32) -> (Option<u32>, Vec<u32>) {
    let (mut w, mut rx) = raw_h2(addr).await;
    let mut wire = Vec::new();
    for i in 0..n {
        wire.extend(frame(
            HEADERS,
            END_HEADERS,
            2 * i + 1,
            &request_block("POST", "/tokenize"),
        ));
    }
    w.write_all(&wire).await.unwrap();
    let (frames, _) = drain(&mut rx, Duration::from_millis(1500)).await;
    let advertised = frames
        .iter()
        .find(|f| f.kind == SETTINGS && f.stream == 0)
        .and_then(|f| f.setting(SETTINGS_MAX_CONCURRENT_STREAMS));
    let refused = frames
        .iter()
        .filter(|f| f.kind == RST_STREAM && f.code() == REFUSED_STREAM)
        .map(|f| f.stream)
        .collect();
    // Keep the connection (and its open streams) until the caller is done.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(w);
    });
    (advertised, refused)
}

/// A card tokenized over a fresh HTTP/2 connection: the proxy still serves.
pub(super) async fn another_client_is_served(addr: SocketAddr) {
    another_client_gets(addr, StatusCode::OK).await;
}

/// A card sent for tokenizing over a fresh HTTP/2 connection, answered with `want`.
async fn another_client_gets(addr: SocketAddr, want: StatusCode) {
    let req = Request::post(url(addr, "/tokenize"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"card":"4242424242424242"}"#,
        )))
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), send(&h2c(), req))
        .await
        .expect("another client waited over 10 s");
    assert_eq!(reply.status, want, "{:?}", reply.body);
    assert_eq!(reply.version, http::Version::HTTP_2);
}

/// How a flood on one connection ended.
struct Flood {
    /// Streams written.
    streams: u32,
    goaway: Option<Frame>,
    /// The server closed the connection while the flood was still writing.
    closed_early: bool,
    /// It closed within the quiet period after.
    eof: bool,
}

/// A GOAWAY (`Some(Some(f))`) or a closed connection (`Some(None)`) among the frames
/// that arrived so far; `None` while neither came.
fn ended(rx: &mut mpsc::UnboundedReceiver<Frame>) -> Option<Option<Frame>> {
    loop {
        match rx.try_recv() {
            Ok(f) if f.kind == GOAWAY => return Some(Some(f)),
            Ok(_) => {}
            Err(mpsc::error::TryRecvError::Empty) => return None,
            Err(mpsc::error::TryRecvError::Disconnected) => return Some(None),
        }
    }
}

/// The flood's outcome once `rx` has been quiet for 5 s (or the server closed).
async fn flood_end(
    mut rx: mpsc::UnboundedReceiver<Frame>,
    id: u32,
    end: Option<Option<Frame>>,
) -> Flood {
    let (rest, eof) = drain(&mut rx, Duration::from_secs(5)).await;
    let closed_early = matches!(end, Some(None));
    let goaway = end
        .flatten()
        .or(rest.into_iter().find(|f| f.kind == GOAWAY));
    Flood {
        streams: id / 2,
        goaway,
        closed_early,
        eof,
    }
}

/// Streams opened and reset in the same write, a hundred pairs a write, on the
/// pass-through route, until a GOAWAY, a close or `max` streams.
async fn rapid_reset(addr: SocketAddr, max: u32) -> Flood {
    let (mut w, mut rx) = raw_h2(addr).await;
    let block = request_block("GET", "/pass/reset");
    let mut id = 1u32;
    let mut end = None;
    while id < 2 * max {
        let mut wire = Vec::new();
        for _ in 0..100 {
            wire.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
            wire.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
            id += 2;
        }
        if w.write_all(&wire).await.is_err() {
            break;
        }
        end = ended(&mut rx);
        if end.is_some() {
            break;
        }
    }
    flood_end(rx, id, end).await
}

/// `rounds` rounds of ninety streams on the pass-through route, each left until the
/// upstream `echo` has received them all (at most 2 s: the streams are accepted),
/// then reset; until a GOAWAY or a close.
async fn reset_after_accept(addr: SocketAddr, echo: &EchoHandle, rounds: usize) -> Flood {
    let (mut w, mut rx) = raw_h2(addr).await;
    let block = request_block("GET", "/pass/slow");
    let mut id = 1u32;
    let mut end = None;
    for _ in 0..rounds {
        let first = id;
        let mut wire = Vec::new();
        for _ in 0..90 {
            wire.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
            id += 2;
        }
        let seen = echo.received().len();
        if w.write_all(&wire).await.is_err() {
            break;
        }
        for _ in 0..200 {
            if echo.received().len() >= seen + 90 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut wire = Vec::new();
        for s in (first..id).step_by(2) {
            wire.extend(frame(RST_STREAM, 0, s, &CANCEL.to_be_bytes()));
        }
        if w.write_all(&wire).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        end = ended(&mut rx);
        if end.is_some() {
            break;
        }
    }
    flood_end(rx, id, end).await
}

// === concurrent streams ===

#[tokio::test]
async fn one_connection_holds_at_most_100_streams() {
    let (up, _echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let (advertised, refused) = open_streams(server.proxy_addr(), 101).await;
    assert_eq!(advertised, Some(100));
    // The 101st stream (id 201) is refused; the first 100 wait for their bodies.
    assert_eq!(refused, vec![201]);
    another_client_is_served(server.proxy_addr()).await;
    server.stop().await;
}

#[tokio::test]
async fn the_stream_limit_is_configurable() {
    let (up, _echo) = EchoUpstream::start().await.unwrap();
    let toml = config_toml(&format!("http://{up}"), ROUTES).replacen(
        "[api]",
        "h2_max_concurrent_streams = 4\n[api]",
        1,
    );
    let server = start(&toml).await;
    let (advertised, refused) = open_streams(server.proxy_addr(), 6).await;
    assert_eq!(advertised, Some(4));
    assert_eq!(refused, vec![9, 11]);
    another_client_is_served(server.proxy_addr()).await;
    server.stop().await;

    for bad in ["0", "-1", "\"many\""] {
        let toml = config_toml("http://127.0.0.1:9", ROUTES).replacen(
            "[api]",
            &format!("h2_max_concurrent_streams = {bad}\n[api]"),
            1,
        );
        let err = vaultgate::config::Config::from_toml_str(&toml)
            .err()
            .unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(
            err.to_string().contains("h2_max_concurrent_streams"),
            "{err}"
        );
    }
}

// === resets ===

/// Streams opened and reset at once, a hundred pairs a write (CVE-2023-44487): the
/// resets arrive before the streams are accepted, and past 20 of them pending the
/// connection gets GOAWAY ENHANCE_YOUR_CALM and is closed, rather than served for as
/// long as the client keeps writing. Held up before this round (h2's default bound);
/// pinned here.
#[tokio::test]
async fn rapid_reset_is_cut_off_with_goaway() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let flood = rapid_reset(server.proxy_addr(), 20_000).await;
    let (goaway, closed, eof, opened) =
        (flood.goaway, flood.closed_early, flood.eof, flood.streams);
    eprintln!(
        "rapid reset: {opened} streams written, GOAWAY {:?}, upstream saw {}",
        goaway.as_ref().map(Frame::code),
        echo.received().len()
    );
    let goaway = goaway.expect("no GOAWAY");
    assert_eq!(goaway.code(), ENHANCE_YOUR_CALM);
    assert!(closed || eof, "the connection stayed open");
    // Cut off within the first writes, not after the flood ran out.
    assert!(opened < 40_000 / 2, "{opened} streams before GOAWAY");
    another_client_is_served(server.proxy_addr()).await;
    server.stop().await;
}

/// Streams opened, left until the proxy has forwarded them to a slow upstream, then
/// reset, ninety a round: each reset lands on an accepted stream, which h2's bound
/// does not count, and each stream cost an upstream request. Before this round one
/// connection went on for as long as the client liked (3,600 streams in 3 s, all
/// forwarded, no GOAWAY); now once more than half of at least 500 requests were
/// cancelled the connection gets GOAWAY and is closed.
#[tokio::test]
async fn resets_after_accept_close_the_connection() {
    let (up, echo) = EchoUpstream::start_with(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        vaultgate::demo::echo::EchoOptions {
            delay: Duration::from_secs(5),
            tls: None,
        },
    )
    .await
    .unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let flood = reset_after_accept(server.proxy_addr(), &echo, 25).await;
    let (goaway, closed, eof, id) = (
        flood.goaway,
        flood.closed_early,
        flood.eof,
        2 * flood.streams,
    );
    let forwarded = echo.received().len();
    eprintln!(
        "reset after accept: {} streams written, GOAWAY {:?}, upstream saw {forwarded}",
        id / 2,
        goaway.as_ref().map(Frame::code)
    );
    assert!(
        goaway.is_some() || closed,
        "no GOAWAY after {} streams",
        id / 2
    );
    assert!(closed || eof, "the connection stayed open");
    // 500 requests, and those of the round in which the limit was passed.
    assert!(forwarded <= 500 + 2 * 90, "{forwarded} requests forwarded");
    // Served, and forwarded: the upstream is slower than `upstream_timeout_ms`.
    another_client_gets(server.proxy_addr(), StatusCode::GATEWAY_TIMEOUT).await;
    server.stop().await;
}

// === header blocks ===

/// A header block that never ends: HEADERS without END_HEADERS, then a thousand
/// one-byte CONTINUATION frames in one write (CVE-2024-27316's shape). h2 (0.4.4 on)
/// counts them against the header-list limit and sends GOAWAY ENHANCE_YOUR_CALM.
/// Held up before this round; pinned here.
#[tokio::test]
async fn a_continuation_flood_is_cut_off() {
    let (up, _echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let (mut w, mut rx) = raw_h2(server.proxy_addr()).await;
    let mut wire = frame(HEADERS, END_STREAM, 1, &request_block("GET", "/pass/c"));
    for _ in 0..1000 {
        wire.extend(frame(CONTINUATION, 0, 1, b"\x00"));
    }
    let _ = w.write_all(&wire).await;
    let (frames, eof) = drain(&mut rx, Duration::from_secs(5)).await;
    let goaway = frames.iter().find(|f| f.kind == GOAWAY).expect("no GOAWAY");
    assert_eq!(goaway.code(), ENHANCE_YOUR_CALM);
    assert!(eof, "the connection stayed open");
    assert!(
        !frames.iter().any(|f| f.kind == HEADERS),
        "a request was answered"
    );
    another_client_is_served(server.proxy_addr()).await;
    server.stop().await;
}

/// A header list over the 64 KiB limit, in as few frames as it takes: refused
/// before it reaches a handler, and the upstream sees nothing. Held up before this
/// round; pinned here.
#[tokio::test]
async fn a_header_list_over_the_limit_is_refused() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let (mut w, mut rx) = raw_h2(server.proxy_addr()).await;
    let big = "a".repeat(70 * 1024);
    let mut fields = vec![
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/pass/big"),
        (":authority", "x"),
    ];
    fields.push(("x-big", big.as_str()));
    let block = hpack(&fields);
    let pieces: Vec<&[u8]> = block.chunks(16 * 1024).collect();
    let mut wire = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        let flags = if last { END_HEADERS } else { 0 };
        let (kind, flags) = if i == 0 {
            (HEADERS, flags | END_STREAM)
        } else {
            (CONTINUATION, flags)
        };
        wire.extend(frame(kind, flags, 1, piece));
    }
    let _ = w.write_all(&wire).await;
    let (frames, _) = drain(&mut rx, Duration::from_secs(2)).await;
    let answered: Vec<_> = frames
        .iter()
        .filter(|f| f.stream == 1 || f.kind == GOAWAY)
        .map(|f| (f.kind, f.payload.len()))
        .collect();
    eprintln!("oversized header list: {answered:?}");
    assert!(
        frames
            .iter()
            .any(|f| (f.stream == 1 && matches!(f.kind, HEADERS | RST_STREAM)) || f.kind == GOAWAY),
        "no answer to an oversized header list: {frames:?}"
    );
    assert!(echo.received().is_empty(), "the upstream saw the request");
    another_client_is_served(server.proxy_addr()).await;
    server.stop().await;
}

// === flow control and silent connections ===

const FLOW_CONTROL_ERROR: u32 = 0x3;
const PROTOCOL_ERROR: u32 = 0x1;

/// The first GOAWAY or RST_STREAM (kind, stream, code) the server answers `wire`
/// with, on a fresh connection.
async fn first_error(addr: SocketAddr, wire: Vec<u8>) -> Option<(u8, u32, u32)> {
    let (mut w, mut rx) = raw_h2(addr).await;
    w.write_all(&wire).await.unwrap();
    let (frames, _) = drain(&mut rx, Duration::from_millis(1500)).await;
    frames
        .iter()
        .find(|f| matches!(f.kind, GOAWAY | RST_STREAM))
        .map(|f| (f.kind, f.stream, f.code()))
}

/// Flow-control windows past 2^31-1 (RFC 9113 §6.9.1): a WINDOW_UPDATE that takes the
/// connection's window past it gets GOAWAY FLOW_CONTROL_ERROR, one on a stream
/// RST_STREAM FLOW_CONTROL_ERROR, an INITIAL_WINDOW_SIZE over it GOAWAY (h2 says
/// PROTOCOL_ERROR where the RFC says FLOW_CONTROL_ERROR), and an increment of 0
/// PROTOCOL_ERROR (GOAWAY: h2 ends the connection for it). Held up before this
/// round (h2 checks them); pinned here.
#[tokio::test]
async fn flow_control_windows_cannot_overflow() {
    const WINDOW_UPDATE: u8 = 0x8;
    let (up, _echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let addr = server.proxy_addr();
    let open = frame(
        HEADERS,
        END_HEADERS,
        1,
        &request_block("POST", "/pass/open"),
    );
    let max = 0x7fff_ffffu32.to_be_bytes();

    let conn = frame(WINDOW_UPDATE, 0, 0, &max);
    assert_eq!(
        first_error(addr, conn).await,
        Some((GOAWAY, 0, FLOW_CONTROL_ERROR))
    );

    let mut stream = open.clone();
    stream.extend(frame(WINDOW_UPDATE, 0, 1, &max));
    assert_eq!(
        first_error(addr, stream).await,
        Some((RST_STREAM, 1, FLOW_CONTROL_ERROR))
    );

    let mut setting = 0x4u16.to_be_bytes().to_vec();
    setting.extend(0x8000_0000u32.to_be_bytes());
    // RFC 9113 §6.5.2 names FLOW_CONTROL_ERROR; h2 0.4.20 answers PROTOCOL_ERROR.
    // Either way the connection ends.
    let answer = first_error(addr, frame(SETTINGS, 0, 0, &setting)).await;
    assert!(
        matches!(
            answer,
            Some((GOAWAY, 0, FLOW_CONTROL_ERROR | PROTOCOL_ERROR))
        ),
        "{answer:?}"
    );

    let mut zero = open;
    zero.extend(frame(WINDOW_UPDATE, 0, 1, &0u32.to_be_bytes()));
    // A stream error by the RFC; h2 ends the whole connection, which is stricter.
    let answer = first_error(addr, zero).await;
    assert!(
        matches!(
            answer,
            Some((GOAWAY, 0, PROTOCOL_ERROR) | (RST_STREAM, 1, PROTOCOL_ERROR))
        ),
        "{answer:?}"
    );
    another_client_is_served(addr).await;
    server.stop().await;
}

/// Connections that send nothing, only the HTTP/2 preface, or the preface and half
/// a header block (HEADERS without END_HEADERS) are closed after the header read
/// timeout, as an HTTP/1 connection that sends nothing is; at `max_connections` the
/// one idle longest makes room for a real client. Held up before this round; pinned.
#[tokio::test]
async fn silent_h2_connections_are_closed_and_make_room() {
    let (up, _echo) = EchoUpstream::start().await.unwrap();
    let toml = config_toml(&format!("http://{up}"), ROUTES).replacen(
        "[api]",
        "header_read_timeout_ms = 1000\nmax_connections = 3\nworkers = 1\n[api]",
        1,
    );
    let server = start(&toml).await;
    let addr = server.proxy_addr();
    let half = {
        let mut w = PREFACE.to_vec();
        w.extend(frame(SETTINGS, 0, 0, &[]));
        w.extend(frame(
            HEADERS,
            END_STREAM,
            1,
            &request_block("GET", "/pass/half"),
        ));
        w
    };
    let mut silent = Vec::new();
    for wire in [Vec::new(), PREFACE.to_vec(), half] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&wire).await.unwrap();
        silent.push(s);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // At the limit: the oldest makes room.
    another_client_is_served(addr).await;
    let started = std::time::Instant::now();
    for s in &mut silent {
        let mut sink = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
        assert!(read.is_ok(), "a silent connection is still open");
    }
    eprintln!(
        "silent h2 connections closed within {:.1} s",
        started.elapsed().as_secs_f64()
    );
    another_client_is_served(addr).await;
    server.stop().await;
}

// === HTTP/1 pipelining ===

/// Three hundred requests in one write on one HTTP/1 connection: answered one by
/// one, in order, each forwarded once. Held up before this round; pinned here.
#[tokio::test]
async fn pipelined_http1_requests_are_answered_in_order() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let n = 300;
    let mut wire = Vec::new();
    for i in 0..n {
        let close = if i + 1 == n {
            "connection: close\r\n"
        } else {
            ""
        };
        wire.extend(format!("GET /pass/p{i} HTTP/1.1\r\nhost: x\r\n{close}\r\n").as_bytes());
    }
    let mut s = TcpStream::connect(server.proxy_addr()).await.unwrap();
    s.write_all(&wire).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("pipelined answers took over 20 s")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), n);
    let paths: Vec<String> = echo.received().into_iter().map(|r| r.path).collect();
    let want: Vec<String> = (0..n).map(|i| format!("/pass/p{i}")).collect();
    assert_eq!(paths, want);
    another_client_is_served(server.proxy_addr()).await;
    server.stop().await;
}

// === measurements on the real binary (ignored: they print numbers) ===

mod measure {
    use super::*;
    use crate::common::binary::{OneWorker, rss_kib};

    /// The real binary with one proxy worker in front of an echo upstream answering
    /// after `delay`.
    async fn served(delay: Duration) -> OneWorker {
        let served = OneWorker::start(delay, ROUTES, "").await;
        another_client_is_served(served.proxy).await;
        served
    }

    fn rss_mib(served: &OneWorker) -> f64 {
        rss_kib(served.child.id()) as f64 / 1024.0
    }

    fn cpu_ms(served: &OneWorker) -> f64 {
        served.cpu_ns() as f64 / 1e6
    }

    /// RSS once two readings half a second apart agree within 1 MiB (at most 15 s).
    async fn settled_rss(served: &OneWorker) -> f64 {
        let mut last = rss_mib(served);
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = rss_mib(served);
            if (now - last).abs() < 1.0 {
                return now;
            }
            last = now;
        }
        last
    }

    /// `conns` HTTP/2 connections, each asking for `streams` requests on the rules
    /// route that send all but the last byte of a 1 MiB body. The clients and the
    /// number of requests that got their stream (the rest wait in the client).
    async fn hold_bodies(
        addr: SocketAddr,
        conns: usize,
        streams: usize,
    ) -> (Vec<h2::client::SendRequest<Bytes>>, usize) {
        let opened = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut clients = Vec::new();
        for _ in 0..conns {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let (client, conn) = h2::client::handshake(tcp).await.unwrap();
            tokio::spawn(conn);
            for _ in 0..streams {
                let client = client.clone();
                let opened = std::sync::Arc::clone(&opened);
                tokio::spawn(async move {
                    let Ok(mut client) = client.ready().await else {
                        return;
                    };
                    let req = Request::post(format!("http://{addr}/tokenize"))
                        .header("content-type", "application/json")
                        .header("content-length", "1048576")
                        .body(())
                        .unwrap();
                    let Ok((response, mut body)) = client.send_request(req, false) else {
                        return;
                    };
                    let _ = body.send_data(Bytes::from(vec![b' '; 1_048_575]), false);
                    opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = response.await;
                    drop(body);
                });
            }
            clients.push(client);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let n = opened.load(std::sync::atomic::Ordering::Relaxed);
        (clients, n)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "measurement: prints the server's RSS"]
    async fn measure_rss_of_partial_bodies() {
        for (conns, streams) in [(1, 200), (4, 200)] {
            let served = served(Duration::ZERO).await;
            let before = settled_rss(&served).await;
            let (clients, sent) = hold_bodies(served.proxy, conns, streams).await;
            let held = settled_rss(&served).await;
            eprintln!(
                "partial bodies: {conns} conn x {streams} streams asked ({sent} queued by the client): RSS {before:.0} -> {held:.0} MiB (+{:.0})",
                held - before
            );
            another_client_is_served(served.proxy).await;
            drop(clients);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "measurement: prints streams and CPU before GOAWAY"]
    async fn measure_rapid_reset() {
        let served = served(Duration::ZERO).await;
        let cpu0 = cpu_ms(&served);
        let flood = rapid_reset(served.proxy, 1_000_000).await;
        eprintln!(
            "rapid reset (batched): {} streams written, GOAWAY {:?}, closed {}, upstream saw {}, server CPU {:.0} ms",
            flood.streams,
            flood.goaway.as_ref().map(Frame::code),
            flood.closed_early || flood.eof,
            served.echo().received().len(),
            cpu_ms(&served) - cpu0
        );
    }

    /// Streams opened, left until the proxy forwarded them to a slow upstream, then
    /// reset: each reset lands on an accepted stream, which h2's pending-accept bound
    /// does not count.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "measurement: prints upstream requests per connection"]
    async fn measure_reset_after_accept() {
        let served = served(Duration::from_secs(5)).await;
        let cpu0 = cpu_ms(&served);
        let started = std::time::Instant::now();
        let flood = reset_after_accept(served.proxy, served.echo(), 40).await;
        eprintln!(
            "reset after accept: {} rounds, {} streams in {:.1} s, GOAWAY {:?}, closed {}, upstream saw {}, server CPU {:.0} ms",
            flood.streams.div_ceil(90),
            flood.streams,
            started.elapsed().as_secs_f64(),
            flood.goaway.as_ref().map(Frame::code),
            flood.closed_early || flood.eof,
            served.echo().received().len(),
            cpu_ms(&served) - cpu0
        );
    }

    // === control-frame floods ===

    const PING: u8 = 0x6;
    const PRIORITY: u8 = 0x2;
    const WINDOW_UPDATE: u8 = 0x8;
    const DATA: u8 = 0x0;

    /// What the server sent back during a flood: frames, GOAWAY's code, EOF.
    #[derive(Default)]
    struct Answers {
        frames: std::sync::atomic::AtomicU64,
        goaway: std::sync::Mutex<Option<u32>>,
        eof: std::sync::atomic::AtomicBool,
    }

    /// Read and count the server's frames without keeping them.
    fn count_frames(mut r: OwnedReadHalf) -> std::sync::Arc<Answers> {
        let answers = std::sync::Arc::new(Answers::default());
        let seen = std::sync::Arc::clone(&answers);
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 256 * 1024];
            loop {
                let mut at = 0;
                while buf.len() >= at + 9 {
                    let len = u32::from_be_bytes([0, buf[at], buf[at + 1], buf[at + 2]]) as usize;
                    if buf.len() < at + 9 + len {
                        break;
                    }
                    if buf[at + 3] == GOAWAY && len >= 8 {
                        let code = u32::from_be_bytes(buf[at + 13..at + 17].try_into().unwrap());
                        *seen.goaway.lock().unwrap() = Some(code);
                    }
                    seen.frames
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    at += 9 + len;
                }
                buf.drain(..at);
                match r.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            seen.eof.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        answers
    }

    /// A client's h2 request (tokenize) over a fresh connection, timed.
    async fn timed_request(addr: SocketAddr) -> String {
        let started = std::time::Instant::now();
        let req = Request::post(url(addr, "/tokenize"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"card":"4242424242424242"}"#,
            )))
            .unwrap();
        match tokio::time::timeout(Duration::from_secs(10), send(&h2c(), req)).await {
            Ok(r) => format!(
                "{} in {:.0} ms",
                r.status,
                started.elapsed().as_secs_f64() * 1e3
            ),
            Err(_) => "no answer in 10 s".to_owned(),
        }
    }

    /// Write `prelude`, then frames made by `unit(i)` a thousand at a time for `secs`
    /// (or until the server stops reading for 2 s or closes), reading the answers or
    /// not; print what it cost the server.
    async fn flood(
        served: &OneWorker,
        name: &str,
        prelude: Vec<u8>,
        unit: impl Fn(u32) -> Vec<u8>,
        read: bool,
        secs: f64,
    ) {
        let s = TcpStream::connect(served.proxy).await.unwrap();
        let _ = s.set_nodelay(true);
        let (r, mut w) = s.into_split();
        let answers = read.then(|| count_frames(r));
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        hello.extend(prelude);
        w.write_all(&hello).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (cpu0, rss0) = (cpu_ms(served), rss_mib(served));
        let started = std::time::Instant::now();
        let mut sent = 0u64;
        let mut bytes = 0u64;
        let mut other = None;
        let mut why = "time";
        let mut i = 0u32;
        while started.elapsed().as_secs_f64() < secs {
            let mut wire = Vec::new();
            for _ in 0..1000 {
                wire.extend(unit(i));
                i = i.wrapping_add(1);
            }
            match tokio::time::timeout(Duration::from_secs(2), w.write_all(&wire)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    why = "closed";
                    break;
                }
                Err(_) => {
                    why = "server stopped reading";
                    break;
                }
            }
            sent += 1000;
            bytes += wire.len() as u64;
            if other.is_none() && started.elapsed().as_secs_f64() > secs / 2.0 {
                other = Some(timed_request(served.proxy).await);
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let (cpu, rss) = (cpu_ms(served) - cpu0, rss_mib(served) - rss0);
        let other = match other {
            Some(o) => o,
            None => timed_request(served.proxy).await,
        };
        let answered = answers.as_ref().map_or("not read".to_owned(), |a| {
            format!(
                "{} frames back, GOAWAY {:?}, closed {}",
                a.frames.load(std::sync::atomic::Ordering::Relaxed),
                a.goaway.lock().unwrap(),
                a.eof.load(std::sync::atomic::Ordering::Relaxed)
            )
        });
        eprintln!(
            "{name}: {sent} frames ({:.0} MiB) in {elapsed:.1} s, ended by {why}; server CPU {cpu:.0} ms ({:.0} ns a frame), RSS {rss:+.1} MiB; {answered}; another client: {other}",
            bytes as f64 / 1048576.0,
            cpu * 1e6 / sent.max(1) as f64
        );
        drop(w);
    }

    /// Server CPU per small HTTP/2 request, as a yardstick for the floods.
    async fn per_request(served: &OneWorker) -> f64 {
        let client = h2c();
        let cpu0 = cpu_ms(served);
        let n = 2000;
        for _ in 0..n {
            let req = Request::get(url(served.proxy, "/pass/x"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            send(&client, req).await;
        }
        (cpu_ms(served) - cpu0) * 1e6 / f64::from(n)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "measurement: prints server CPU and RSS per control-frame flood"]
    async fn measure_control_frame_floods() {
        let served = served(Duration::ZERO).await;
        eprintln!(
            "yardstick: {:.0} ns of server CPU per small h2 request (sequential)",
            per_request(&served).await
        );
        let secs = 4.0;
        let open = |n: u32, path: &str| {
            let mut wire = Vec::new();
            for i in 0..n {
                wire.extend(frame(
                    HEADERS,
                    END_HEADERS,
                    2 * i + 1,
                    &request_block("POST", path),
                ));
            }
            wire
        };
        let window = |v: u32| {
            let mut p = 0x4u16.to_be_bytes().to_vec();
            p.extend(v.to_be_bytes());
            frame(SETTINGS, 0, 0, &p)
        };
        for read in [true, false] {
            let tag = if read { "read" } else { "never read" };
            flood(
                &served,
                &format!("SETTINGS (empty), {tag}"),
                vec![],
                |_| frame(SETTINGS, 0, 0, &[]),
                read,
                secs,
            )
            .await;
            flood(
                &served,
                &format!("PING, {tag}"),
                vec![],
                |_| frame(PING, 0, 0, &[7; 8]),
                read,
                secs,
            )
            .await;
        }
        flood(
            &served,
            "SETTINGS INITIAL_WINDOW_SIZE 1 <-> 2^31-1, 100 streams open, read",
            open(100, "/pass/open"),
            |i| window(if i % 2 == 0 { 1 } else { 0x7fff_ffff }),
            true,
            secs,
        )
        .await;
        flood(
            &served,
            "WINDOW_UPDATE +1 on the connection, read",
            vec![],
            |_| frame(WINDOW_UPDATE, 0, 0, &1u32.to_be_bytes()),
            true,
            secs,
        )
        .await;
        flood(
            &served,
            "WINDOW_UPDATE +1 on an open stream, read",
            open(1, "/pass/open"),
            |_| frame(WINDOW_UPDATE, 0, 1, &1u32.to_be_bytes()),
            true,
            secs,
        )
        .await;
        flood(
            &served,
            "PRIORITY on ever new idle streams, read",
            vec![],
            |i| frame(PRIORITY, 0, 2 * (i % 1_000_000_000) + 1, &[0, 0, 0, 0, 16]),
            true,
            secs,
        )
        .await;
        flood(
            &served,
            "empty DATA on an open stream, read",
            open(1, "/pass/open"),
            |_| frame(DATA, 0, 1, &[]),
            true,
            secs,
        )
        .await;
        flood(
            &served,
            "unknown type 0xfa, empty, read",
            vec![],
            |_| frame(0xfa, 0, 0, &[]),
            true,
            secs,
        )
        .await;
        flood(
            &served,
            "unknown type 0xfa, 16 KiB, read",
            vec![],
            |_| frame(0xfa, 0, 0, &[0u8; 16 * 1024 - 1]),
            true,
            secs,
        )
        .await;
        flood(
            &served,
            "HEADERS padded (255), END_STREAM, ever new streams, read",
            vec![],
            |i| {
                let block = request_block("GET", "/pass/padded");
                let mut p = vec![255u8];
                p.extend(block);
                p.extend([0u8; 255]);
                frame(
                    HEADERS,
                    END_HEADERS | END_STREAM | 0x8,
                    2 * (i % 1_000_000_000) + 1,
                    &p,
                )
            },
            true,
            secs,
        )
        .await;
        eprintln!(
            "after the floods: RSS {:.0} MiB; another client: {}",
            rss_mib(&served),
            timed_request(served.proxy).await
        );
    }
}
