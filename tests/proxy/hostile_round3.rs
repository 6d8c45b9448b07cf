//! Red-team round 3: places a card reached that the request's readers did not — an
//! error message naming a form key's bracket index, a field a route reads in the query
//! sent in the body, an XML declaration of an encoding the guard cannot read. Each
//! runs the real server in front of the recording echo upstream. (`explain`'s
//! agreement with the proxy is `explain_parity.rs`.)

use http::StatusCode;
use vaultgate::app;
use vaultgate::config::Config;
use vaultgate::demo::echo::EchoUpstream;

use crate::common::*;

pub(crate) const CARD: &str = "4242424242424242";

/// A rules route whose fields a form, a query string and multipart name with
/// brackets (`cvv[…]`).
const FORM_ROUTES: &str = r#"
[[routes]]
name = "form"
upstream = "backend"
method = "POST"
path = "/form"
fields = [
  { path = "card", class = "pan" },
  { path = "cvv", class = "cvv", scope = "card" },
]
"#;

#[tokio::test]
async fn an_error_never_names_a_card_written_as_a_key_index() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), FORM_ROUTES)).await;
    let addr = server.proxy_addr();
    let form = "application/x-www-form-urlencoded";
    // A bracket holding only digits is an index to the key readers (qs, Rack, PHP);
    // the location of the field in a refusal wrote it as it came.
    let cases: Vec<(&str, String, &str, String, &str)> = vec![
        (
            "a field twice, under an index",
            "/form".to_owned(),
            form,
            format!("card=4111111111111111&cvv[{CARD}]=218&cvv[{CARD}]=219"),
            "duplicate_sensitive_field",
        ),
        (
            "a field twice, the index zero-padded",
            "/form".to_owned(),
            form,
            format!("card=4111111111111111&cvv[000{CARD}]=218&cvv[000{CARD}]=219"),
            "duplicate_sensitive_field",
        ),
        (
            "a body field in the query string, under an index",
            format!("/form?cvv[{CARD}]=218"),
            form,
            "card=4111111111111111".to_owned(),
            "ambiguous_sensitive_field",
        ),
        (
            "a body field in the query string, the index escaped",
            format!("/form?cvv[%34{}]=218", &CARD[1..]),
            "application/json",
            r#"{"card":"4111111111111111"}"#.to_owned(),
            "ambiguous_sensitive_field",
        ),
        (
            "a nested index",
            "/form".to_owned(),
            form,
            format!("card=4111111111111111&cvv[0][{CARD}]=218&cvv[0][{CARD}]=219"),
            "duplicate_sensitive_field",
        ),
    ];
    for (what, path, ct, body, expected) in cases {
        let reply = post(addr, &path, ct, body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {:?}",
            reply.body
        );
        assert_eq!(code(&reply), expected, "{what}");
        assert!(
            !holds_raw(&reply.body, CARD),
            "{what}: the error names the card: {:?}",
            reply.body
        );
    }
    assert!(
        echo.received().is_empty(),
        "a refused request was forwarded"
    );
    // A short index is still named: it helps find the field and shows no card.
    let reply = post(
        addr,
        "/form",
        form,
        "card=4111111111111111&cvv[7]=218&cvv[7]=219",
    )
    .await;
    assert_eq!(code(&reply), "duplicate_sensitive_field");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("cvv[7]"), "{message}");
    echo.stop().await;
}

/// A rules route that reads its fields in the query string.
const QUERY_ROUTES: &str = r#"
[[routes]]
name = "query"
upstream = "backend"
path = "/q"
fields = [
  { path = "pan", class = "pan", location = "query" },
  { path = "cvv", class = "cvv", location = "query" },
]
"#;

#[tokio::test]
async fn a_query_field_sent_in_the_body_is_refused() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), QUERY_ROUTES)).await;
    let addr = server.proxy_addr();
    let path = "/q?pan=4111111111111111";
    // Rails `params`, PHP `$_REQUEST` and Spring binding read a body field as the
    // query field of the same name.
    let cases: Vec<(&str, &str, &str)> = vec![
        ("a form", "application/x-www-form-urlencoded", "cvv=218"),
        (
            "a form, another spelling",
            "application/x-www-form-urlencoded",
            "CVV=218",
        ),
        ("JSON", "application/json", r#"{"cvv":"218"}"#),
        (
            "JSON, the card",
            "application/json",
            r#"{"note":"x","pan":"4111111111111111"}"#,
        ),
        (
            "multipart",
            "multipart/form-data; boundary=XyZ",
            "--XyZ\r\nContent-Disposition: form-data; name=\"cvv\"\r\n\r\n218\r\n--XyZ--\r\n",
        ),
    ];
    for (what, ct, body) in cases {
        let reply = post(addr, path, ct, body.to_owned()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {:?}",
            reply.body
        );
        assert_eq!(code(&reply), "ambiguous_sensitive_field", "{what}");
    }
    assert!(
        echo.received().is_empty(),
        "a refused request was forwarded"
    );
    // Other fields, an empty one, and a body of another type pass; the query's are
    // tokenized.
    for (ct, body) in [
        ("application/x-www-form-urlencoded", "amount=12&cvv="),
        ("application/json", r#"{"amount":12}"#),
        ("text/plain", "cvv=218 is not a parameter to anyone"),
    ] {
        let reply = post(addr, &format!("{path}&cvv=218"), ct, body.to_owned()).await;
        assert_eq!(reply.status, StatusCode::OK, "{ct}: {:?}", reply.body);
    }
    let received = echo.received();
    assert_eq!(received.len(), 3);
    for r in &received {
        let bytes = received_bytes(r);
        assert!(!holds_raw(&bytes, "4111111111111111"), "{r:?}");
    }
    echo.stop().await;
}

/// `4242424242424242` in full-width digits (U+FF10…), encoded in `encoding`.
pub(crate) fn full_width_card(encoding: &'static encoding_rs::Encoding) -> Vec<u8> {
    let text: String = CARD
        .chars()
        .map(|c| char::from_u32(0xFF10 + c.to_digit(10).unwrap()).unwrap())
        .collect();
    let (bytes, _, unmappable) = encoding.encode(&text);
    assert!(!unmappable);
    bytes.into_owned()
}

#[tokio::test]
async fn an_xml_declaration_of_an_encoding_the_guard_cannot_read_is_refused() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let dir = std::env::temp_dir();
    let config = Config::demo("127.0.0.1:0", "127.0.0.1:0", &format!("http://{up}"), &dir).unwrap();
    let server = app::start(&config, test_vault()).await.unwrap();
    let addr = server.proxy_addr();
    // Java's XML parser decodes the document in the encoding its declaration names,
    // whatever the Content-Type says, and reads these bytes as `４２４２…`.
    let encodings = [
        ("Shift_JIS", encoding_rs::SHIFT_JIS),
        ("GB18030", encoding_rs::GB18030),
        ("Big5", encoding_rs::BIG5),
        ("EUC-JP", encoding_rs::EUC_JP),
        ("EUC-KR", encoding_rs::EUC_KR),
        ("ISO-2022-JP", encoding_rs::ISO_2022_JP),
    ];
    for (name, encoding) in encodings {
        let mut body = format!(r#"<?xml version="1.0" encoding="{name}"?><pay><n>"#).into_bytes();
        body.extend_from_slice(&full_width_card(encoding));
        body.extend_from_slice(b"</n></pay>");
        // A pass-through route, a rules route that reads the body as bytes, and a
        // multipart part (its content starts mid-body).
        let mut part = b"--XyZ\r\nContent-Disposition: form-data; name=\"doc\"\r\n\
                         Content-Type: application/xml\r\n\r\n"
            .to_vec();
        part.extend_from_slice(&body);
        part.extend_from_slice(b"\r\n--XyZ--\r\n");
        for (path, ct, bytes) in [
            ("/pt/a", "application/xml", body.clone()),
            ("/pt/a", "application/xml; charset=utf-8", body.clone()),
            ("/payment-method", "application/xml", body.clone()),
            ("/pt/a", "multipart/form-data; boundary=XyZ", part.clone()),
            ("/payment-method", "multipart/form-data; boundary=XyZ", part),
        ] {
            let reply = post(addr, path, ct, bytes).await;
            assert_eq!(
                reply.status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{name} {path} {ct}: {:?}",
                reply.body
            );
            assert_eq!(code(&reply), "unsupported_media", "{name} {path}");
        }
        // Streamed a few bytes at a time: the declaration is cut between chunks.
        let pieces: Vec<&[u8]> = body.chunks(7).collect();
        let answer = drip(
            addr,
            "/pt/a",
            "application/xml",
            &pieces,
            std::time::Duration::from_millis(2),
        )
        .await;
        assert!(
            answer.starts_with("HTTP/1.1 415"),
            "{name} dripped: {answer}"
        );
    }
    // Bytes a decoder makes on a rules route (a base64 field, a base64 multipart
    // part) are read as their declaration says: the card is found.
    let mut doc = br#"<?xml version="1.0" encoding="Shift_JIS"?><n>"#.to_vec();
    doc.extend_from_slice(&full_width_card(encoding_rs::SHIFT_JIS));
    doc.extend_from_slice(b"</n>");
    let b64 = base64_encode(&doc);
    let part = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"doc\"\r\nContent-Type: application/xml\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--XyZ--\r\n"
    );
    for (ct, body) in [
        ("application/json", format!(r#"{{"doc":"{b64}"}}"#)),
        ("multipart/form-data; boundary=XyZ", part),
    ] {
        let reply = post(addr, "/payment-method", ct, body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{ct}: {:?}",
            reply.body
        );
        assert_eq!(code(&reply), "card_number_detected", "{ct}");
    }
    assert!(
        echo.received()
            .iter()
            .all(|r| !holds_raw(&received_bytes(r), CARD)),
        "a card reached the upstream"
    );
    // A declared document without a card passes.
    let mut doc = br#"<?xml version="1.0" encoding="Shift_JIS"?><n>"#.to_vec();
    doc.extend_from_slice(&encoding_rs::SHIFT_JIS.encode("\u{FF11}\u{FF12}").0);
    doc.extend_from_slice(b"</n>");
    let reply = post(
        addr,
        "/payment-method",
        "application/json",
        format!(r#"{{"doc":"{}"}}"#, base64_encode(&doc)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    // Declarations of what the guard reads pass.
    for name in ["UTF-8", "ISO-8859-1", "windows-1252", "us-ascii"] {
        let body = format!(r#"<?xml version="1.0" encoding="{name}"?><pay><n>12</n></pay>"#);
        for path in ["/pt/a", "/payment-method"] {
            let reply = post(addr, path, "application/xml", body.clone()).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{name} {path}: {:?}",
                reply.body
            );
        }
    }
    echo.stop().await;
}

/// `bytes` in standard base64.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
