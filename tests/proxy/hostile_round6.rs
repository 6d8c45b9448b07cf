//! Red-team round 6: what a request costs. Against the real binary with its default
//! body limit, a body of many card numbers in one value cost the square of their
//! number on a rules route (each hit decoded its whole value again; with a NUL or a
//! digit of another script, each hit of the other readings was compared with every
//! hit of the first; a gzip body's hits in its compressed bytes with each of its
//! decompressed ones), and a pass-through body sent a byte per chunk cost the held
//! tail of the streaming guard for every byte. Each is measured as the server's CPU
//! time at two sizes (or two chunkings) of the same bytes, and must grow linearly
//! within a generous margin.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::binary::OneWorker;
use crate::common::*;

/// The real binary with one proxy worker and the sweep detector off (the bodies hold
/// thousands of distinct card numbers), in front of the echo upstream.
async fn served() -> OneWorker {
    OneWorker::start(Duration::ZERO, ROUTES, "sweep_threshold = 0").await
}

impl OneWorker {
    /// The server's CPU time for sending each of `bodies` (each as one request), and
    /// the status lines of the answers.
    async fn cost(&self, bodies: &[Request]) -> (f64, Vec<String>) {
        let before = self.cpu_ns();
        let mut statuses = Vec::new();
        for b in bodies {
            statuses.push(self.send(b).await);
        }
        // Let the worker finish its part after the answer (the upstream's reply).
        tokio::time::sleep(Duration::from_millis(20)).await;
        (
            (self.cpu_ns().saturating_sub(before)) as f64 / 1e9,
            statuses,
        )
    }

    /// One request on a fresh connection (`connection: close`), its body in pieces
    /// of `piece` bytes (chunked) or whole; the answer's status line.
    async fn send(&self, r: &Request) -> String {
        let mut s = tokio::net::TcpStream::connect(self.proxy).await.unwrap();
        let _ = s.set_nodelay(true);
        let mut wire = Vec::with_capacity(r.body.len() * 2 + 256);
        let coding = r
            .encoding
            .map(|e| format!("content-encoding: {e}\r\n"))
            .unwrap_or_default();
        match r.piece {
            None => {
                wire.extend_from_slice(
                    format!(
                        "POST {} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: {}\r\n{coding}content-length: {}\r\n\r\n",
                        r.path,
                        r.content_type,
                        r.body.len()
                    )
                    .as_bytes(),
                );
                wire.extend_from_slice(&r.body);
            }
            Some(n) => {
                wire.extend_from_slice(
                    format!(
                        "POST {} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: {}\r\n{coding}transfer-encoding: chunked\r\n\r\n",
                        r.path, r.content_type
                    )
                    .as_bytes(),
                );
                for c in r.body.chunks(n) {
                    wire.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                    wire.extend_from_slice(c);
                    wire.extend_from_slice(b"\r\n");
                }
                wire.extend_from_slice(b"0\r\n\r\n");
            }
        }
        // Written while the answer is read: an early answer closes the connection.
        let (mut rd, mut wr) = s.split();
        let write = async {
            let _ = wr.write_all(&wire).await;
        };
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(300), rd.read_to_end(&mut out));
        let ((), read) = tokio::join!(write, read);
        assert!(read.is_ok(), "no answer in 300 s");
        String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    }
}

#[derive(Clone)]
struct Request {
    path: &'static str,
    content_type: &'static str,
    encoding: Option<&'static str>,
    body: Vec<u8>,
    /// Sent chunked in pieces of this many bytes; `None`: whole, with a length.
    piece: Option<usize>,
}

fn json(path: &'static str, body: Vec<u8>) -> Request {
    Request {
        path,
        content_type: "application/json",
        encoding: None,
        body,
        piece: None,
    }
}

/// `n` distinct Visa-shaped card numbers (Luhn-valid, 16 digits), from `start`.
fn distinct_cards(start: u64, n: usize) -> Vec<String> {
    (start..start + n as u64)
        .map(|i| {
            let body = format!("42424{i:010}");
            (0..=9u8)
                .map(|d| format!("{body}{d}"))
                .find(|c| luhn(c))
                .unwrap()
        })
        .collect()
}

/// How many times more the server's CPU grows than the bytes do: the cost of one
/// request of `big` over that of `small.len()` requests whose bodies add up to the
/// same bytes. About 1 (or less: each request has a fixed cost) for work linear in
/// the body; the factor of size for work quadratic in it. The smallest of up to
/// three tries (a noisy machine only adds), stopping at the first under `bound`.
async fn growth(s: &OneWorker, small: &[Request], big: &Request, bound: f64) -> f64 {
    let small_bytes: usize = small.iter().map(|r| r.body.len()).sum();
    let ratio = big.body.len() as f64 / small_bytes as f64;
    assert!((0.8..1.25).contains(&ratio), "sizes differ: {ratio}");
    let mut best = f64::MAX;
    for _ in 0..3 {
        let (a, sa) = s.cost(small).await;
        let (b, sb) = s.cost(std::slice::from_ref(big)).await;
        // Each answer is the documented refusal or a pass, never a dropped connection.
        for line in sa.iter().chain(&sb) {
            assert!(line.starts_with("HTTP/1.1 "), "{line:?}");
        }
        best = best.min(b / a.max(1e-4));
        if best < bound {
            break;
        }
    }
    best
}

/// A JSON body with `cards` in one string value, separated by `;`, and `extra`
/// (a NUL escape, an Arabic-Indic digit) at its end.
fn cards_in_a_string(cards: &[String], extra: &str) -> Vec<u8> {
    format!("{{\"x\":\"{}{extra}\"}}", cards.join(";")).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_cards_in_one_value_cost_linear_time() {
    let s = served().await;
    // 8 requests of ~470 cards, against one of ~3,760 (64 KiB): each refused with
    // 400 `too_many_sensitive_values` (tokenize) after its scan.
    const SMALL: usize = 470;
    for (name, extra) in [
        ("plain", ""),
        ("with a NUL", "\\u0000"),
        ("with an Arabic-Indic digit", "\u{664}"),
    ] {
        let small: Vec<Request> = (0..8)
            .map(|i| {
                json(
                    "/tokenize",
                    cards_in_a_string(&distinct_cards(i * SMALL as u64, SMALL), extra),
                )
            })
            .collect();
        let big = json(
            "/tokenize",
            cards_in_a_string(&distinct_cards(0, SMALL * 8), extra),
        );
        let first = s.send(&big).await;
        assert!(first.starts_with("HTTP/1.1 400"), "{name}: {first}");
        let g = growth(&s, &small, &big, 3.0).await;
        eprintln!("{name}: growth {g:.2}");
        assert!(
            g < 3.0,
            "{name}: 8 times the cards cost {g:.1} times as much per card"
        );
    }
    assert!(
        s.echo().received().is_empty(),
        "a body of cards was forwarded"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_body_of_many_cards_costs_linear_time() {
    // Stored (level 0) gzip: the compressed bytes hold the cards as written, and
    // each is compared with the decompressed ones.
    fn stored_gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }
    let s = served().await;
    const SMALL: usize = 900;
    let request = |cards: Vec<String>| Request {
        encoding: Some("gzip"),
        ..json("/tokenize", stored_gzip(&cards_in_a_string(&cards, "")))
    };
    let small: Vec<Request> = (0..16)
        .map(|i| request(distinct_cards(i * SMALL as u64, SMALL)))
        .collect();
    let big = request(distinct_cards(0, SMALL * 16));
    assert!(big.body.len() < 1 << 20, "{}", big.body.len());
    let first = s.send(&big).await;
    assert!(first.starts_with("HTTP/1.1 400"), "{first}");
    let g = growth(&s, &small, &big, 3.0).await;
    eprintln!("gzip: growth {g:.2}");
    assert!(
        g < 3.0,
        "16 times the cards cost {g:.1} times as much per card"
    );
    assert!(
        s.echo().received().is_empty(),
        "a body of cards was forwarded"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_through_body_sent_a_byte_per_chunk_costs_as_little_as_text() {
    let s = served().await;
    // Digits between separators, which the streaming guard holds back as a card's
    // possible start; the same in UTF-16; and text with no digit, the baseline of
    // what a byte per chunk costs hyper and the guard's fixed work.
    let digits = format!("{{\"x\":\"{}\"}}", "1 ".repeat(2_000)).into_bytes();
    let wide: Vec<u8> = format!("{{\"x\":\"{}\"}}", "1 ".repeat(1_000))
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let text = format!("{{\"x\":\"{}\"}}", "ab".repeat(2_000)).into_bytes();
    let bytewise = |body: Vec<u8>| Request {
        piece: Some(1),
        ..json("/pass/x", body)
    };
    let sent = [text.clone(), digits.clone(), wide.clone()];
    for (name, body) in [("digits", digits), ("UTF-16 digits", wide)] {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let (t, st) = s.cost(&[bytewise(text.clone())]).await;
            let (d, sd) = s.cost(&[bytewise(body.clone())]).await;
            assert!(st[0].starts_with("HTTP/1.1 200"), "{st:?}");
            assert!(sd[0].starts_with("HTTP/1.1 200"), "{name}: {sd:?}");
            best = best.min(d / t.max(1e-4));
            if best < 4.0 {
                break;
            }
        }
        eprintln!("{name}: {best:.2} times text's cost");
        assert!(
            best < 4.0,
            "{name} a byte per chunk cost {best:.1} times as much as text"
        );
    }
    // Forwarded as sent, every byte.
    let received = s.echo().received();
    assert!(received.len() >= 4, "{}", received.len());
    for r in &received {
        assert!(
            sent.iter().any(|b| b[..] == r.body[..]),
            "a body changed on its way"
        );
    }
    s.stop().await;
}
