//! The holes the differential property found, each as proptest shrank it, through
//! the real server on the route that forwarded it. (Proptest's seeds stop naming the
//! same cases once the generator changes; these do not.) Each is refused with
//! nothing forwarded.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use vaultgate::app;
use vaultgate::config::Config;
use vaultgate::demo::echo::EchoUpstream;

use crate::common::*;

const PASS: &str = "/pt/diff";
const RULES: &str = "/payment-method";
const MP: &str = "multipart/form-data; boundary=vgDiffBoundary";

/// One multipart body of a `note` part with `head` lines and `content`.
fn part(head: &str, content: &[u8]) -> Vec<u8> {
    [
        format!("--vgDiffBoundary\r\nContent-Disposition: form-data; name=\"note\"\r\n{head}\r\n")
            .as_bytes(),
        content,
        b"\r\n--vgDiffBoundary--\r\n",
    ]
    .concat()
}

/// `text` in UTF-16LE, with a byte order mark or not.
fn utf16le(text: &str, bom: bool) -> Vec<u8> {
    let bom = if bom { "\u{feff}" } else { "" };
    bom.encode_utf16()
        .chain(text.encode_utf16())
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// `text` in UTF-32, little-endian or not, with a byte order mark or not.
fn utf32(text: &str, le: bool, bom: bool) -> Vec<u8> {
    let bom = if bom { "\u{feff}" } else { "" };
    bom.chars()
        .chain(text.chars())
        .map(u32::from)
        .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
        .collect()
}

/// (what it is, route, content type, body).
fn cases() -> Vec<(&'static str, &'static str, &'static str, Vec<u8>)> {
    vec![
        (
            "a numeric reference without `;`",
            PASS,
            "application/json",
            br#"{"id":"abc","note":"4242424242&#x34 24242"}"#.to_vec(),
        ),
        (
            "`%2520` in a JSON value",
            PASS,
            "application/json",
            br#"{"id":"abc","note":"42424242424%252024242"}"#.to_vec(),
        ),
        (
            "`&#149;`, a windows-1252 bullet to HTML",
            PASS,
            "text/html",
            b"<html><body><p>Card 42424242424242&#149;42</p></body></html>".to_vec(),
        ),
        (
            "`&#1;`, which Python's html.unescape drops",
            PASS,
            "text/plain",
            b"note: 4242424242424&#1;242 thanks".to_vec(),
        ),
        (
            "U+0085, next line",
            PASS,
            "application/json",
            br#"{"id":"abc","note":"424242424\u00852424242"}"#.to_vec(),
        ),
        (
            "`&DownBreve;`, a combining mark quick-xml read as `1`",
            PASS,
            MP,
            part("", b"55555555555&DownBreve;54444"),
        ),
        (
            "a form value HTML-escaped twice",
            PASS,
            "application/x-www-form-urlencoded",
            b"id=abc&note=424%26amp%3B%2332%3B2424242424242&x=y".to_vec(),
        ),
        (
            "a full-width digit in UTF-16",
            PASS,
            "text/plain",
            utf16le("note: 424242424242424\u{ff12} thanks", true),
        ),
        (
            "an escape in UTF-16",
            PASS,
            "text/plain",
            utf16le("note: 4242424242424&#1;242 thanks", true),
        ),
        (
            "`%A0` beside a raw Latin-1 no-break space in a part",
            RULES,
            MP,
            part(
                "Content-Type: text/plain; charset=windows-1252\r\n",
                b"4242424242424%A0\xa0242",
            ),
        ),
        (
            "quoted-printable with a bare line feed",
            RULES,
            MP,
            part(
                "Content-Transfer-Encoding: quoted-printable\r\n",
                b"4242424242\n  42424=EF=BC=92",
            ),
        ),
        (
            "`%2520` in Latin-1 text",
            RULES,
            "text/plain; charset=windows-1252",
            b"note: 4%2520242424242\xa0424242 thanks".to_vec(),
        ),
        (
            "an escape in UTF-16 with a byte order mark",
            RULES,
            "text/plain",
            utf16le("note: 4242424242424&#1;242 thanks", true),
        ),
        (
            "an escape in UTF-16 without one",
            RULES,
            "text/plain",
            utf16le("note: 411111111111111&#00049; thanks", false),
        ),
        (
            "U+2060 and an escape in UTF-16 without a byte order mark",
            RULES,
            "text/plain",
            utf16le("note: 411111111\u{2060}111111&#00049; thanks", false),
        ),
        (
            "a tag character in UTF-32 with a byte order mark",
            RULES,
            "text/plain",
            utf32("note: 42424242424\u{e0020}24242 thanks", true, true),
        ),
        (
            "a tag character in UTF-32 without one",
            RULES,
            "text/plain",
            utf32("note: 42424242424\u{e0020}24242 thanks", false, false),
        ),
    ]
}

#[tokio::test]
async fn the_holes_the_differential_found_stay_closed() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let dir = std::env::temp_dir();
    let c = Config::demo("127.0.0.1:0", "127.0.0.1:0", &format!("http://{up}"), &dir).unwrap();
    let server = app::start(&c, test_vault()).await.unwrap();
    let client = http1();
    let mut open = Vec::new();
    for (what, route, ct, body) in cases() {
        let before = echo.received().len();
        let req = Request::post(url(server.proxy_addr(), route))
            .header("content-type", ct)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let reply = send(&client, req).await;
        let forwarded = echo.received().len() > before;
        if !reply.status.is_client_error() || forwarded {
            open.push(format!("{what} ({route}): {}", reply.status));
        }
    }
    server.stop().await;
    echo.stop().await;
    assert!(open.is_empty(), "still open:\n{}", open.join("\n"));
}
