//! Cards spelled with what a backend decodes but a UTF-8 reading does not: bytes of a
//! single-byte charset (Latin-1, windows-1252) and JSON's one-letter escapes, against
//! the real server (the demo config: every profile, and a pass-through `/*`) in front
//! of the recording echo upstream. Each case asserts the refusal, its code, and that
//! the upstream received nothing; ordinary text in the same encodings still passes.

use bytes::Bytes;
use http::StatusCode;
use vaultgate::app::{self, ServerHandle};
use vaultgate::config::Config;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream};

use crate::common::*;

async fn start() -> (ServerHandle, EchoHandle) {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let dir = std::env::temp_dir();
    let c = Config::demo("127.0.0.1:0", "127.0.0.1:0", &format!("http://{up}"), &dir).unwrap();
    c.validate().unwrap();
    (app::start(&c, test_vault()).await.unwrap(), echo)
}

const CARD_FOUND: &str = "card_number_detected";

/// POST `(path, content type, body)` and check that it is refused with `status` and
/// one of `codes`, and that the upstream received nothing; `what` names the case.
async fn assert_refused(
    addr: std::net::SocketAddr,
    echo: &EchoHandle,
    (path, ct, body): (&str, &str, impl Into<Bytes>),
    status: StatusCode,
    codes: &[&str],
    what: &str,
) {
    let before = echo.received().len();
    let reply = post(addr, path, ct, body).await;
    assert_eq!(reply.status, status, "{what}: {:?}", reply.body);
    assert!(
        codes.contains(&code(&reply).as_str()),
        "{what}: {}",
        code(&reply)
    );
    assert_eq!(echo.received().len(), before, "{what}: forwarded");
}

/// `4242 4242 4242 4242` with `sep` (bytes) between the groups.
fn grouped(sep: &[u8]) -> Vec<u8> {
    let mut out = b"4242".to_vec();
    for _ in 0..3 {
        out.extend_from_slice(sep);
        out.extend_from_slice(b"4242");
    }
    out
}

/// `prefix` then `text`.
fn with(prefix: &[u8], text: &[u8]) -> Vec<u8> {
    [prefix, text].concat()
}

#[tokio::test]
async fn cards_in_single_byte_charsets_are_refused() {
    let (server, echo) = start().await;
    let addr = server.proxy_addr();
    // 2221111111111112 (a Luhn-valid Mastercard number) in Latin-1 superscripts, which
    // a backend normalizing the text (NFKC) reads as digits.
    let superscripts = b"\xb2\xb2\xb2\xb9\xb9\xb9\xb9\xb9\xb9\xb9\xb9\xb9\xb9\xb9\xb9\xb2".to_vec();
    let cases: Vec<(&str, &str, &str, Vec<u8>)> = vec![
        // Latin-1's no-break space, soft hyphen and middle dot; windows-1252's
        // bullet, en dash and em dash, between the groups.
        (
            "nbsp",
            "/pt/a",
            "text/plain; charset=windows-1252",
            with(b"n=", &grouped(b"\xa0")),
        ),
        (
            "shy",
            "/pt/a",
            "text/plain; charset=iso-8859-1",
            with(b"n=", &grouped(b"\xad")),
        ),
        (
            "middot",
            "/pt/a",
            "text/plain; charset=latin1",
            with(b"n=", &grouped(b"\xb7")),
        ),
        (
            "bullet",
            "/pt/a",
            "text/plain; charset=windows-1252",
            with(b"n=", &grouped(b"\x95")),
        ),
        (
            "en dash",
            "/pt/a",
            "text/html; charset=windows-1252",
            with(b"<p>", &grouped(b"\x96")),
        ),
        (
            "em dash",
            "/pt/a",
            "text/plain; charset=cp1252",
            with(b"n=", &grouped(b"\x97")),
        ),
        // No charset declared: bytes that are not UTF-8 are still read.
        (
            "undeclared",
            "/pt/a",
            "text/plain",
            with(b"n=", &grouped(b"\xa0")),
        ),
        // Percent-escaped Latin-1 in a form: `%A0` decodes to the no-break space.
        (
            "form %A0",
            "/pt/a",
            "application/x-www-form-urlencoded; charset=iso-8859-1",
            with(b"n=", &grouped(b"%A0")),
        ),
        (
            "superscripts",
            "/pt/a",
            "text/plain; charset=latin1",
            with(b"n=", &superscripts),
        ),
        // The same on a tokenizing route, in a body no codec reads.
        (
            "superscripts, rules route",
            "/payment-method",
            "text/plain; charset=latin1",
            with(b"n=", &superscripts),
        ),
    ];
    for (name, path, ct, body) in cases {
        let codes = ["card_number_detected", "sensitive_data_unreadable"];
        assert_refused(
            addr,
            &echo,
            (path, ct, body),
            StatusCode::BAD_REQUEST,
            &codes,
            name,
        )
        .await;
    }
    server.shutdown();
}

#[tokio::test]
async fn cards_behind_json_short_escapes_are_refused_on_pass_through() {
    let (server, echo) = start().await;
    let addr = server.proxy_addr();
    for esc in [r"\/", r"\t", r"\n", r"\r", r"\r\n", r"\f"] {
        let card = ["4242"; 4].join(esc);
        let body = format!(r#"{{"note":"{card}"}}"#);
        // The body is JSON as written: a JSON reader gets `4242/4242/…`.
        assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
        let request = ("/pt/a", "application/json", body);
        assert_refused(
            addr,
            &echo,
            request,
            StatusCode::BAD_REQUEST,
            &[CARD_FOUND],
            esc,
        )
        .await;
    }
    server.shutdown();
}

#[tokio::test]
async fn ordinary_text_in_those_encodings_passes_unchanged() {
    let (server, echo) = start().await;
    let addr = server.proxy_addr();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "text/plain; charset=latin1",
            b"caf\xe9 cr\xe8me, \xb2 x 12\xa0345, order 4242\xa04242".to_vec(),
        ),
        (
            "application/json",
            br#"{"url":"https:\/\/example.com\/a\/1234","note":"a\tb\n1234\/5678"}"#.to_vec(),
        ),
    ];
    for (ct, body) in cases {
        let before = echo.received().len();
        let reply = post(addr, "/pt/a", ct, body.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{ct}: {:?}", reply.body);
        let got = echo.received();
        assert_eq!(got.len(), before + 1, "{ct}");
        assert_eq!(got.last().unwrap().body, Bytes::from(body), "{ct}");
    }
    server.shutdown();
}

#[tokio::test]
async fn cards_behind_named_character_references_are_refused() {
    let (server, echo) = start().await;
    let addr = server.proxy_addr();
    for entity in [
        "&nbsp;",
        "&ndash;",
        "&middot;",
        "&thinsp;",
        "&NonBreakingSpace;",
        "&nbsp",
    ] {
        let card = ["4242"; 4].join(entity);
        for (path, ct, body) in [
            ("/pt/a", "text/html", format!("<p>{card}</p>")),
            ("/payment-method", "text/html", format!("<p>{card}</p>")),
            (
                "/pt/a",
                "application/json",
                format!(r#"{{"note":"{card}"}}"#),
            ),
        ] {
            let what = format!("{entity} {path} {ct}");
            let request = (path, ct, body);
            assert_refused(
                addr,
                &echo,
                request,
                StatusCode::BAD_REQUEST,
                &[CARD_FOUND],
                &what,
            )
            .await;
        }
    }
    // Ordinary markup passes.
    let body = "<p>Tom &amp; Jerry &ndash; 12&nbsp;345 &copy; 2026</p>";
    let reply = post(addr, "/pt/a", "text/html", body).await;
    assert_eq!(reply.status, StatusCode::OK);
    server.shutdown();
}

#[tokio::test]
async fn escapes_split_between_streamed_pieces_are_read_whole() {
    let (server, echo) = start().await;
    let addr = server.proxy_addr();
    let pause = std::time::Duration::from_millis(30);
    for esc in [r"\t", r"\n", r"\r", r"\/", "&ndash;", "&#32;"] {
        let body = format!(r#"{{"note":"{}"}}"#, ["4242"; 4].join(esc));
        // Five-byte pieces, each its own read at the proxy: escapes and entity names
        // are cut between them.
        let pieces: Vec<&[u8]> = body.as_bytes().chunks(5).collect();
        let before = echo.received().len();
        let answer = drip(addr, "/pt/a", "application/json", &pieces, pause).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{esc}: {answer}");
        assert!(answer.contains("card_number_detected"), "{esc}: {answer}");
        let got = echo.received();
        assert!(
            got.len() == before || !got.last().unwrap().body.ends_with(b"}"),
            "{esc}: the whole body was forwarded"
        );
    }
    server.shutdown();
}

#[tokio::test]
async fn cards_split_by_markup_an_xml_parser_drops_are_refused() {
    let (server, echo) = start().await;
    let addr = server.proxy_addr();
    for markup in ["<![CDATA[]]>", "<!-- x -->", "<?pi x?>"] {
        let split = format!("<n>42424242{markup}42424242</n>");
        let wrapped = "<n>4242 4242<![CDATA[ 4242 4242]]></n>".to_owned();
        for text in [split, wrapped] {
            for path in ["/pt/a", "/payment-method"] {
                let what = format!("{text} {path}");
                let request = (path, "application/xml", text.clone());
                assert_refused(
                    addr,
                    &echo,
                    request,
                    StatusCode::BAD_REQUEST,
                    &[CARD_FOUND],
                    &what,
                )
                .await;
            }
        }
    }
    // Ordinary XML with markup passes unchanged.
    let body = "<?xml version=\"1.0\"?><order><!-- id --><id>1234</id><note><![CDATA[a < b]]></note></order>";
    let reply = post(addr, "/pt/a", "application/xml", body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(echo.received().last().unwrap().body, Bytes::from(body));
    server.shutdown();
}

#[tokio::test]
async fn a_card_in_another_script_as_a_key_is_not_echoed() {
    let (server, echo) = start().await;
    let addr = server.proxy_addr();
    // 4242… in Arabic-Indic and in full-width digits, as a JSON key.
    for key in ["٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", "４２４２４２４２４２４２４２４２"]
    {
        let body =
            format!(r#"{{"paymentType":"card","cardNumber":"378282246310005","{key}":"x"}}"#);
        let reply = post(addr, "/v1/payment", "application/json", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{key}");
        let text = String::from_utf8_lossy(&reply.body);
        assert!(!text.contains(key), "{text}");
    }
    assert!(echo.received().is_empty());
    server.shutdown();
}

#[tokio::test]
async fn xml_bodies_that_declare_entities_are_refused() {
    let (server, echo) = start().await;
    let addr = server.proxy_addr();
    // `&g;` stands for `4242`: the card is in no byte of the body.
    let body = r#"<?xml version="1.0"?><!DOCTYPE n [<!ENTITY g "4242">]><n>&g;&g;&g;&g;</n>"#;
    for path in ["/pt/a", "/payment-method"] {
        let request = (path, "application/xml", body);
        let status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        assert_refused(addr, &echo, request, status, &["unsupported_media"], path).await;
    }
    // The declaration cut between streamed pieces.
    let pieces: Vec<&[u8]> = body.as_bytes().chunks(5).collect();
    let before = echo.received().len();
    let answer = drip(
        addr,
        "/pt/a",
        "application/xml",
        &pieces,
        std::time::Duration::from_millis(20),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
    let got = echo.received();
    assert!(
        got.len() == before || !got.last().unwrap().body.ends_with(b"</n>"),
        "the whole body was forwarded"
    );
    server.shutdown();
}
