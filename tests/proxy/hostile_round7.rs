//! Red-team round 7: what the earlier rounds' readings still missed. Each runs the
//! real server in front of the recording echo upstream.

use http::StatusCode;
use vaultgate::demo::echo::EchoUpstream;

use crate::common::*;

const IBAN: &str = "DE89370400440532013000";
const ACCOUNT: &str = "000123456789";

const KEY_ROUTES: &str = r#"
[[routes]]
name = "brm"
upstream = "backend"
method = "POST"
path = "/brm"
profile = "oracle_brm"

[[routes]]
name = "hostway"
upstream = "backend"
method = "POST"
path = "/hostway"
profile = "hostway"

[[routes]]
name = "custom"
upstream = "backend"
method = "POST"
path = "/custom"
fields = [
  { path = "iban", class = "bank_account" },
  { path = "bank_kto", class = "bank_account" },
]

[[routes]]
name = "custom_insensitive"
upstream = "backend"
method = "POST"
path = "/custom-insensitive"
keys = "insensitive"
fields = [{ path = "iban", class = "bank_account" }]

[[routes]]
name = "nested"
upstream = "backend"
method = "POST"
path = "/nested"
fields = [{ path = "details.accountNumber", class = "bank_account" }]

[[routes]]
name = "pass"
upstream = "backend"
path = "/*"
"#;

/// A key written with a non-ASCII letter whose simple case mapping is an ASCII one
/// (`ſ` U+017F is `S` upper-cased, `ı` U+0131 is `I`, `İ` U+0130 is `i` lower-cased,
/// the Kelvin sign U+212A is `k`) is that key to Go's `encoding/json`, Java's
/// `equalsIgnoreCase` and .NET's `OrdinalIgnoreCase`: the field's value must be
/// tokenized as under the ASCII spelling. Before, each was forwarded in clear.
#[tokio::test]
async fn a_key_spelled_with_a_letter_that_case_folds_to_ascii_is_that_key() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), KEY_ROUTES)).await;
    let addr = server.proxy_addr();
    let json = "application/json";
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(&str, &str, String, &str)> = vec![
        // Go reads `detailſ` as `Details`.
        (
            "/brm",
            json,
            format!("{{\"detail\u{17f}\":{{\"accountNumber\":\"{IBAN}\"}}}}"),
            IBAN,
        ),
        (
            "/brm",
            json,
            format!("{{\"deta\u{131}ls\":{{\"accountNumber\":\"{IBAN}\"}}}}"),
            IBAN,
        ),
        (
            "/hostway",
            json,
            "{\"paymentInfoType\":\"credit_card\",\"accountNumber\":\"4242424242424242\",\"ver\u{131}ficationNumber\":\"218\"}".to_owned(),
            "\"218\"",
        ),
        (
            "/hostway",
            json,
            "{\"paymentInfoType\":\"credit_card\",\"accountNumber\":\"4242424242424242\",\"VER\u{130}FICATIONNUMBER\":\"218\"}".to_owned(),
            "\"218\"",
        ),
        (
            "/custom",
            json,
            format!("{{\"\u{131}ban\":\"{IBAN}\"}}"),
            IBAN,
        ),
        (
            "/custom",
            json,
            format!("{{\"bank_\u{212a}to\":\"{ACCOUNT}\"}}"),
            ACCOUNT,
        ),
        ("/custom", form, format!("%C4%B0BAN={IBAN}"), IBAN),
        (
            "/custom",
            form,
            format!("bank_%E2%84%AAto={ACCOUNT}"),
            ACCOUNT,
        ),
        (
            "/custom-insensitive",
            json,
            format!("{{\"\u{130}BAN\":\"{IBAN}\"}}"),
            IBAN,
        ),
    ];
    for (path, ct, body, value) in &cases {
        let before = echo.received().len();
        let reply = post(addr, path, ct, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{path} {body}: {:?}",
            reply.body
        );
        let got = echo.received();
        assert_eq!(got.len(), before + 1, "{path} {body}: forwarded once");
        let sent = received_bytes(got.last().unwrap());
        assert!(
            !holds_raw(&sent, value),
            "{path} {body}: the value went upstream in clear: {}",
            String::from_utf8_lossy(&sent)
        );
    }
    // Controls: a key that only looks alike (`ß` is `SS` in full case mapping only, a
    // Cyrillic `і` is another letter) is another field, forwarded as it came.
    for body in [
        format!("{{\"\u{456}ban\":\"{IBAN}\"}}"),
        format!("{{\"iban\u{df}\":\"{IBAN}\"}}"),
    ] {
        let reply = post(addr, "/custom", json, body.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{body}");
        let got = echo.received();
        assert!(
            holds_raw(&received_bytes(got.last().unwrap()), IBAN),
            "{body}"
        );
    }
}

const FORM_ROUTES: &str = concat!(
    form_route!(),
    r#"
[[routes]]
name = "form_forced"
upstream = "backend"
method = "POST"
path = "/form-forced"
body = "form"
fields = [
  { path = "card_number", class = "pan" },
  { path = "cvv", class = "cvv", scope = "card_number" },
]
"#
);

/// A form or multipart body that opens a JSON document is two documents: a backend
/// that decodes JSON whatever the Content-Type (Go's `json.NewDecoder(r.Body)`,
/// Flask's `get_json(force=True)`) binds the JSON one, whose fields no rule read.
/// Before, `{"cvv":"218","a":"&card_number=4242…&"}` declared as a form had its card
/// tokenized and went upstream with the CVV in clear, and a multipart body whose
/// preamble was a JSON document went as it came. Now both are refused (415).
#[tokio::test]
async fn a_form_or_multipart_body_that_opens_a_json_document_is_refused() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), FORM_ROUTES)).await;
    let addr = server.proxy_addr();
    let form = "application/x-www-form-urlencoded";
    let multipart = "multipart/form-data; boundary=xx";
    let cases = [
        (form, r#"{"cvv":"218","a":"&card_number=4242424242424242&"}"#.to_owned()),
        (form, r#"{"cvv":"218"}"#.to_owned()),
        (form, "\u{feff} \r\n[{\"cvv\":\"218\"}]".to_owned()),
        (form, r#"{"cvv":"218"}&card_number=4242424242424242"#.to_owned()),
        (
            multipart,
            "{\"cvv\":\"218\"}\r\n--xx\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--xx--\r\n"
                .to_owned(),
        ),
    ];
    for path in ["/form", "/form-forced"] {
        for (ct, body) in &cases {
            if path == "/form-forced" && *ct == multipart {
                continue;
            }
            let reply = post(addr, path, ct, body.clone()).await;
            assert_eq!(
                reply.status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{path} {body}: {:?}",
                reply.body
            );
            assert_eq!(code(&reply), "unsupported_media", "{path} {body}");
        }
    }
    assert!(echo.received().is_empty(), "nothing forwarded");
    // Controls: ordinary forms, a JSON document as a form value, multipart pass.
    for (ct, body) in [
        (form, "card_number=4242424242424242&cvv=218&x={\"a\":1}".to_owned()),
        // A form key may open with `[` (qs and Rack read `[a]=…`): no JSON value.
        (form, "[card_number]=4242424242424242&[x]=1".to_owned()),
        (
            multipart,
            "--xx\r\nContent-Disposition: form-data; name=card_number\r\n\r\n4242424242424242\r\n--xx--\r\n"
                .to_owned(),
        ),
    ] {
        let reply = post(addr, "/form", ct, body.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{body}: {:?}", reply.body);
        let got = echo.received();
        assert!(!holds_raw(&received_bytes(got.last().unwrap()), "4242424242424242"));
    }
}

/// A card written in characters that each stand for two digits: circled numbers ten
/// to fifty (`㊷`, U+32B7, is `42` to NFKC, which Japanese forms commonly apply to
/// their input), parenthesized and full-stop ones (`⑾` is `(11)`, `⒒` is `11.`) and
/// their negative and double circled look-alikes. Before, every route let
/// `㊷㊷㊷㊷㊷㊷㊷㊷` through (200, forwarded); now it is a card wherever the guard reads
/// (400 `card_number_detected`), streamed a byte at a time too.
#[tokio::test]
async fn a_card_in_two_digit_circled_numbers_is_a_card() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let addr = server.proxy_addr();
    let cards = [
        "\u{32b7}".repeat(8),                          // ㊷ ×8: 4242424242424242
        format!("\u{32b6}{}", "\u{246a}".repeat(7)),   // ㊶⑪…: 4111111111111111
        format!("\u{32b6}{}", "\u{247e}".repeat(7)),   // ㊶⑾…
        format!("\u{32b6}{}", "\u{2492}".repeat(7)),   // ㊶⒒…
        format!("\u{32b6} {}", "\u{24eb} ".repeat(7)), // ㊶ ⓫ …, spaced
        format!("4{}", "\u{246a}".repeat(7) + "1"),    // 4 ⑪… 1: mixed with ASCII
    ];
    for card in &cards {
        for (path, ct, body) in [
            (
                "/tokenize",
                "application/json",
                format!(r#"{{"card":"tok","memo":"{card}"}}"#),
            ),
            (
                "/pass/a",
                "application/json",
                format!(r#"{{"memo":"{card}"}}"#),
            ),
            ("/pass/a", "text/plain", card.clone()),
        ] {
            let reply = post(addr, path, ct, body.clone()).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path} {body}");
            assert_eq!(code(&reply), "card_number_detected", "{path} {body}");
        }
        let bytes = card.as_bytes();
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        let answer = drip(
            addr,
            "/pass/a",
            "text/plain",
            &pieces,
            std::time::Duration::ZERO,
        )
        .await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{card} dripped: {answer}"
        );
    }
    assert!(
        echo.received()
            .iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains('\u{32b7}')),
        "no circled card forwarded"
    );
    // Controls: circled numbers that are no card pass.
    for text in [
        "\u{2473}\u{2473} ok",
        "steps \u{2469} \u{246a} \u{246b} \u{32b7}",
    ] {
        let reply = post(addr, "/pass/a", "text/plain", text.to_owned()).await;
        assert_eq!(reply.status, StatusCode::OK, "{text}");
    }
}

/// A number with a fraction whose integer neighbour is a card: Jackson binds a JSON
/// number to a `long` by truncating it (`ACCEPT_FLOAT_AS_INT`, on by default), and
/// Python's `int()` of a float, JavaScript's `Math.trunc` and `Math.round` make an
/// integer of it too. `424242424242424.25e1` is 4242424242424242.5, a double that
/// keeps its fraction, and neither its digits as written nor its double are the
/// card; nor are `37828224631000.53e1` (378282246310005.3) and `4242424242424241.5`
/// (rounded up). Before, each went through every route (200); now 400.
#[tokio::test]
async fn a_number_with_a_fraction_next_to_a_card_is_a_card() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let addr = server.proxy_addr();
    for n in [
        "424242424242424.25e1",
        "37828224631000.53e1",
        "3782822463100.053e2",
        "4242424242424241.5",
        "-424242424242424.25e1",
    ] {
        for (path, ct, body) in [
            (
                "/tokenize",
                "application/json",
                format!(r#"{{"card":"tok","n":{n}}}"#),
            ),
            (
                "/tokenize",
                "application/json",
                format!(r#"{{"card":"tok","n":"{n}"}}"#),
            ),
            ("/pass/a", "application/json", format!(r#"{{"n":{n}}}"#)),
        ] {
            let reply = post(addr, path, ct, body.clone()).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path} {body}");
            assert_eq!(code(&reply), "card_number_detected", "{path} {body}");
        }
        let reply = send(
            &http1(),
            http::Request::get(url(addr, &format!("/pass/a?n={n}")))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "query {n}");
        let body = format!(r#"{{"n":{n}}}"#);
        let pieces: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
        let answer = drip(
            addr,
            "/pass/a",
            "application/json",
            &pieces,
            std::time::Duration::ZERO,
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{n} dripped: {answer}");
    }
    assert!(echo.received().is_empty(), "nothing forwarded");
    // Controls: amounts and numbers whose neighbours are no card pass.
    for n in [
        "12345.67",
        "1234567890123.45",
        "4242424242424243.0",
        "4242424242424243.25",
    ] {
        let reply = post(
            addr,
            "/pass/a",
            "application/json",
            format!(r#"{{"n":{n}}}"#),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{n}");
    }
}

/// A rules route's path with a format suffix (`/brm.json`) is that route's path to
/// Rails (`(.:format)` on every route), Spring's suffix pattern match and the like:
/// before, it fell to the pass-through catch-all, and the bank account went upstream
/// in clear (200); now the rules route owns it and tokenizes the field.
#[tokio::test]
async fn a_rules_route_path_with_a_format_suffix_is_that_route() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), KEY_ROUTES)).await;
    let addr = server.proxy_addr();
    let body = format!(r#"{{"details":{{"accountNumber":"{IBAN}"}}}}"#);
    for path in ["/brm.json", "/BRM.xml", "/brm.json/", "/brm%2Ejson"] {
        let reply = post(addr, path, "application/json", body.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
        let got = echo.received();
        let sent = received_bytes(got.last().unwrap());
        assert!(
            !holds_raw(&sent, IBAN),
            "{path}: the account went upstream in clear: {}",
            String::from_utf8_lossy(&sent)
        );
    }
    // Control: another path is the pass-through's, as before.
    let reply = post(addr, "/brms", "application/json", body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(holds_raw(
        &received_bytes(echo.received().last().unwrap()),
        IBAN
    ));
}

const HEADER_ROUTES: &str = r#"
[[routes]]
name = "headers"
upstream = "backend"
method = "POST"
path = "/hdr"
scan_headers = true
fields = [{ path = "card", class = "pan" }]
"#;

/// On a route that scans headers, a header value is read as a free field of the
/// body is: a backend may parse it as JSON, a number, an HTML-escaped or base64
/// string as readily. Before, only the raw value and `%XX` decoded once were read:
/// each of these went upstream (200); now 400.
#[tokio::test]
async fn a_header_value_is_read_as_a_free_field_is() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), HEADER_ROUTES)).await;
    let addr = server.proxy_addr();
    let headers = [
        ("x-data", r#"{"n":"\u0034111111111111111"}"#.to_owned()),
        ("x-card", "&#52;111111111111111".to_owned()),
        ("cookie", "c=%2534111111111111111".to_owned()),
        ("x-card", "41111111111111.115e2".to_owned()),
        ("x-card", "4.111111111111111e15".to_owned()),
        ("x-card", "NDExMTExMTExMTExMTExMQ==".to_owned()),
    ];
    for (name, value) in &headers {
        let req = http::Request::post(url(addr, "/hdr"))
            .header("content-type", "application/json")
            .header(*name, value.as_str())
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                br#"{"card":"4242424242424242"}"#,
            )))
            .unwrap();
        let reply = send(&http1(), req).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}: {value}");
        assert_eq!(code(&reply), "card_number_detected", "{name}: {value}");
    }
    assert!(echo.received().is_empty(), "nothing forwarded");
    // Controls: ids, trace context, a signed session cookie and an amount pass.
    for (name, value) in [
        ("x-request-id", "123e4567-e89b-12d3-a456-426614174000"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("cookie", "session=eyJ1c2VyIjoxMjM0NTZ9.ZmFrZXNpZw"),
        ("x-amount", "1234.56"),
    ] {
        let req = http::Request::post(url(addr, "/hdr"))
            .header("content-type", "application/json")
            .header(name, value)
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                br#"{"card":"4242424242424242"}"#,
            )))
            .unwrap();
        let reply = send(&http1(), req).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {value}");
    }
}

/// A JSON document sent inside a string (`"details": "{\"accountNumber\": …}"`, or a
/// body that is one JSON string) is a document to a backend that decodes the string
/// again (`json.loads(body["details"])`, a JSON column read back and parsed). The
/// rules did not look inside: the IBAN and the CVV went upstream in clear (200), as
/// they did in a form or query value holding the document. A field a rule names
/// inside such a value, at any depth of strings, now refuses the
/// request (400 `invalid_body`, nothing forwarded); a document in a string that holds
/// no such field is forwarded as it came.
#[tokio::test]
async fn a_rule_field_inside_a_json_document_in_a_string_is_refused() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), KEY_ROUTES)).await;
    let addr = server.proxy_addr();
    let json = "application/json";
    let inner = serde_json::json!({ "accountNumber": IBAN }).to_string();
    let twice = serde_json::json!({ "details": inner }).to_string();
    let hostway = serde_json::json!({
        "paymentInfoType": "credit_card",
        "accountNumber": "4242424242424242",
        "verificationNumber": "218",
    })
    .to_string();
    let refused = [
        (
            "/brm",
            serde_json::json!({ "details": inner }).to_string(),
            IBAN,
        ),
        // A body that is a string holding a document whose string holds the document.
        ("/brm", serde_json::json!(twice).to_string(), IBAN),
        ("/hostway", serde_json::json!(hostway).to_string(), "218"),
        (
            "/custom",
            serde_json::json!(serde_json::json!({ "iban": IBAN }).to_string()).to_string(),
            IBAN,
        ),
    ];
    let form = "application/x-www-form-urlencoded";
    let in_form = format!("details={}", percent_encode(&inner));
    let in_query = format!("/nested?details={}", percent_encode(&inner));
    let refused = refused
        .into_iter()
        .map(|(path, body, raw)| (path.to_owned(), json, body, raw))
        .chain([
            // A form value, and a query value, holding the document.
            ("/nested".to_owned(), form, in_form, IBAN),
            (in_query, json, "{}".to_owned(), IBAN),
        ]);
    for (path, json, body, raw) in refused {
        let r = post(addr, &path, json, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {body}");
        // (A query string's parse errors answer `bad_request`.)
        let want = if path.contains('?') {
            "bad_request"
        } else {
            "invalid_body"
        };
        assert_eq!(code(&r), want, "{path} {body}");
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(text.contains("a field this route tokenizes"), "{text}");
        assert!(!text.contains(raw), "{text}");
    }
    assert!(echo.received().is_empty(), "nothing is forwarded");

    // Documents in strings with no field a rule names pass untouched.
    let metadata = serde_json::json!({ "source": "web", "items": [1, 2] }).to_string();
    let body = serde_json::json!({
        "details": { "accountNumber": IBAN },
        "metadata": metadata,
    })
    .to_string();
    let r = post(addr, "/brm", json, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", code(&r));
    let got = received_bytes(&echo.received()[0]);
    assert!(!holds_raw(&got, IBAN));
    assert!(String::from_utf8_lossy(&got).contains("source"));
    server.stop().await;
    echo.stop().await;
}

/// Every byte but unreserved ones as `%XX`.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
