//! Hostile bodies for the codecs (issue 11, classes 2, 3, 4 and 6) through the real
//! server in front of the recording echo upstream: multipart, bodies no codec reads,
//! keys in another case or shape, ambiguous and duplicate fields, data after a
//! compressed stream, Plano bodies, form keys as other parsers read them.
//!
//! Every case asserts its status (and error code), that a refused request forwards
//! nothing, and that the upstream never received a raw value of the case, in any
//! reading (decompressed, base64, UTF-16, escapes, character references).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use base64::Engine as _;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use vaultgate::app;
use vaultgate::config::Config;
use vaultgate::demo::echo::EchoUpstream;

const CARD: &str = "4242424242424242";
const AMEX: &str = "378282246310005";
const VISA: &str = "4111111111111111";
const MC: &str = "5555555555554444";
const CVV: &str = "739";
const ACCOUNT: &str = "DE89370400440532013000";
const BANK: &str = "98765432";

const EXTRA_ROUTES: &str = r#"
[proxy]
listen = "127.0.0.1:0"
[[upstreams]]
name = "backend"
url = "http://127.0.0.1:9"
[[routes]]
name = "rules_auto"
upstream = "backend"
method = "POST"
path = "/rules-auto"
profile = "q2open"
body = "auto"
[[routes]]
name = "exact"
upstream = "backend"
method = "POST"
path = "/exact"
profile = "q2open"
keys = "exact"
[[routes]]
name = "plano_form"
upstream = "backend"
method = "POST"
path = "/plano-form"
profile = "plano"
body = "form"
"#;

/// The CVV of the form-key cases.
const CVV4: &str = "1234";

/// Form keys a backend parser reads as `payment_method[...]` though ours, strictly,
/// does not (`{card}`, `{cvv}` stand for the values): the name of the case on the
/// Plano route (base64 of the form), on the plain form route, and the form.
const FORM_READINGS: [(&str, &str, &str); 7] = [
    (
        "plano: leading [ (qs, Rack)",
        "plano form: leading [ (qs, Rack)",
        "[payment_method][card_number]={card}&[payment_method][cvc]={cvv}",
    ),
    (
        "plano: unclosed [ (Rack)",
        "plano form: unclosed [ (Rack)",
        "payment_method[card_number={card}&payment_method[cvc={cvv}",
    ),
    (
        "plano: stray ] (Rack)",
        "plano form: stray ] (Rack)",
        "payment_method]][card_number]={card}&payment_method]][cvc]={cvv}",
    ),
    (
        "plano: %20 in the name (PHP)",
        "plano form: %20 in the name (PHP)",
        "payment%20method[card_number]={card}&payment%20method[cvc]={cvv}",
    ),
    (
        "plano: + in the name (PHP)",
        "plano form: + in the name (PHP)",
        "payment+method[card_number]={card}&payment+method[cvc]={cvv}",
    ),
    (
        "plano: . in the name (PHP)",
        "plano form: . in the name (PHP)",
        "payment.method[card_number]={card}&payment.method[cvc]={cvv}",
    ),
    (
        "plano: pair after a ; (old Python, Go)",
        "plano form: pair after a ; (old Python, Go)",
        "payment_method[card_number]={card}&x=1;payment_method[cvc]={cvv}",
    ),
];

/// The demo config (five profiles), the routes above, the catch-all under /pass/.
pub fn codec_config(upstream: std::net::SocketAddr) -> Config {
    let dir = std::env::temp_dir();
    let mut c = Config::demo(
        "127.0.0.1:0",
        "127.0.0.1:0",
        &format!("http://{upstream}"),
        &dir,
    )
    .unwrap();
    let extra = Config::from_toml_str(EXTRA_ROUTES).unwrap();
    let last = c.routes.len() - 1;
    for (i, r) in extra.routes.into_iter().enumerate() {
        c.routes.insert(last + i, r);
    }
    if let Some(pass) = c.routes.last_mut() {
        pass.path = vaultgate::net::matcher::PathPattern::parse("/pass/*").unwrap();
    }
    c.validate().unwrap();
    c
}

struct Case {
    name: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// The status, and for a refusal the error code.
    expect: (u16, Option<&'static str>),
    /// Values that must not reach the upstream.
    raw: Vec<&'static str>,
}

fn case(
    name: &'static str,
    path: &'static str,
    ct: Option<&str>,
    body: impl Into<Vec<u8>>,
    expect: (u16, Option<&'static str>),
    raw: &[&'static str],
) -> Case {
    Case {
        name,
        path,
        headers: ct
            .map(|c| vec![("content-type", c.to_owned())])
            .unwrap_or_default(),
        body: body.into(),
        expect,
        raw: raw.to_vec(),
    }
}

const OK: (u16, Option<&str>) = (200, None);
const DETECTED: (u16, Option<&str>) = (400, Some("card_number_detected"));
const AMBIGUOUS: (u16, Option<&str>) = (400, Some("ambiguous_sensitive_field"));
const DUPLICATE: (u16, Option<&str>) = (400, Some("duplicate_sensitive_field"));
const INVALID: (u16, Option<&str>) = (400, Some("invalid_body"));
const JSON: Option<&str> = Some("application/json");
const BOUNDARY: &str = "vg-b0undary";

fn multipart(parts: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (head, content) in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n{head}\r\n\r\n").as_bytes());
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

fn part(name: &str, extra: &str, content: impl Into<Vec<u8>>) -> (String, Vec<u8>) {
    let mut head = format!("Content-Disposition: form-data; name=\"{name}\"");
    if !extra.is_empty() {
        head.push_str("\r\n");
        head.push_str(extra);
    }
    (head, content.into())
}

fn mp_ct() -> Option<String> {
    Some(format!("multipart/form-data; boundary={BOUNDARY}"))
}

fn b64(s: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn escaped(s: &str) -> String {
    s.chars().map(|c| format!("\\u{:04x}", c as u32)).collect()
}

fn with_encoding(mut c: Case, coding: &str) -> Case {
    c.headers.push(("content-encoding", coding.to_owned()));
    c
}

fn cases() -> Vec<Case> {
    let q2 = |pt: &str, extra: &str| {
        format!(r#"{{"paymentType":"{pt}","cardNumber":"{CARD}","cardCode":"{CVV}"{extra}}}"#)
    };
    let mp = |parts: &[(String, Vec<u8>)]| multipart(parts);
    let mp_case = |name, path, parts: Vec<(String, Vec<u8>)>, expect, raw: &[&'static str]| {
        case(name, path, mp_ct().as_deref(), mp(&parts), expect, raw)
    };
    let note = format!(r#"{{"note":"{}"}}"#, escaped(CARD));
    let plaintext_after =
        format!(r#"{{"paymentType":"card","cardNumber":"{CARD}","cardCode":"{CVV}"}}"#);
    let trailing = |compressed: Vec<u8>| {
        let mut b = compressed;
        b.extend_from_slice(plaintext_after.as_bytes());
        b
    };
    let mut binary = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0xff];
    binary.extend_from_slice(CARD.as_bytes());
    binary.extend_from_slice(&[0x00, 0xfe, 0x01]);
    let mut one_bad_byte = format!("my card is {VISA} ok").into_bytes();
    one_bad_byte.push(0xff);
    let plano_json = |inner: &str| b64(inner);

    let mut all = vec![
        // --- class 2: multipart ---
        mp_case(
            "multipart: binary part",
            "/payment-method",
            vec![
                part(
                    "file",
                    "Content-Type: application/octet-stream",
                    binary.clone(),
                ),
                part("note", "", format!("card {MC}")),
            ],
            OK,
            &[CARD, MC],
        ),
        mp_case(
            "multipart: base64 part",
            "/payment-method",
            vec![part(
                "doc",
                "Content-Type: application/json\r\nContent-Transfer-Encoding: base64",
                b64(format!(r#"{{"pan":"{CARD}"}}"#)),
            )],
            OK,
            &[CARD],
        ),
        mp_case(
            "multipart: quoted-printable part, soft break in the digits",
            "/payment-method",
            vec![part(
                "note",
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable",
                format!("card=3D{}=\r\n{}", &VISA[..8], &VISA[8..]),
            )],
            OK,
            &[VISA],
        ),
        mp_case(
            "multipart: rule fields as parts",
            "/rules-auto",
            vec![
                part("paymentType", "", "card"),
                part("CardNumber", "", AMEX),
                part("cardCode", "", CVV),
            ],
            OK,
            &[AMEX, CVV],
        ),
        mp_case(
            "multipart: json part with rule fields",
            "/rules-auto",
            vec![part(
                "payment",
                "Content-Type: application/json",
                q2("card", ""),
            )],
            OK,
            &[CARD, CVV],
        ),
        mp_case(
            "multipart: utf-16 part",
            "/payment-method",
            vec![part(
                "file",
                "Content-Type: application/octet-stream",
                utf16le(&format!("card {CARD}")),
            )],
            DETECTED,
            &[CARD],
        ),
        mp_case(
            "multipart: card in a filename",
            "/payment-method",
            vec![(
                format!("Content-Disposition: form-data; name=\"f\"; filename=\"{CARD}.txt\""),
                b"x".to_vec(),
            )],
            DETECTED,
            &[CARD],
        ),
        mp_case(
            "multipart: ambiguous payment type",
            "/rules-auto",
            vec![part("paymentType", "", "paypal"), part("cardCode", "", CVV)],
            AMBIGUOUS,
            &[CVV],
        ),
        // --- class 2: bodies the codecs cannot decode ---
        case(
            "text with one byte that is not utf-8",
            "/payment-method",
            Some("text/plain"),
            one_bad_byte,
            OK,
            &[VISA],
        ),
        with_encoding(
            case(
                "gzip of a binary body",
                "/payment-method",
                Some("application/octet-stream"),
                gzip(&binary),
                OK,
                &[CARD],
            ),
            "gzip",
        ),
        case(
            "utf-16 under text/json",
            "/payment-method",
            Some("text/json"),
            utf16le(&format!(r#"{{"note":"{CARD}"}}"#)),
            DETECTED,
            &[CARD],
        ),
        case(
            "utf-16 with a BOM, no type",
            "/payment-method",
            None,
            [&[0xff, 0xfe][..], &utf16le(&format!("card {AMEX}"))].concat(),
            DETECTED,
            &[AMEX],
        ),
        case(
            "escaped json as text/plain",
            "/payment-method",
            Some("text/plain"),
            note.clone(),
            DETECTED,
            &[CARD],
        ),
        case(
            "escaped json as a form",
            "/payment-method",
            Some("application/x-www-form-urlencoded"),
            note.clone(),
            DETECTED,
            &[CARD],
        ),
        case(
            "escaped json with no type",
            "/payment-method",
            None,
            note.clone(),
            DETECTED,
            &[CARD],
        ),
        case(
            "decimal character references",
            "/payment-method",
            Some("application/xml"),
            format!(
                "<card>{}</card>",
                CARD.chars()
                    .map(|c| format!("&#{};", c as u32))
                    .collect::<String>()
            ),
            DETECTED,
            &[CARD],
        ),
        case(
            "hex character references",
            "/payment-method",
            Some("text/html"),
            format!(
                "<p>{}</p>",
                VISA.chars()
                    .map(|c| format!("&#x{:x};", c as u32))
                    .collect::<String>()
            ),
            DETECTED,
            &[VISA],
        ),
        Case {
            name: "two content-type headers",
            path: "/payment-method",
            headers: vec![
                ("content-type", "text/plain".into()),
                ("content-type", "application/json".into()),
            ],
            body: note.clone().into_bytes(),
            expect: (400, Some("duplicate_content_type")),
            raw: vec![CARD],
        },
        // --- class 3: key case and shape ---
        case(
            "keys in another case (q2open)",
            "/v1/payment",
            JSON,
            format!(r#"{{"PaymentType":"card","CardNumber":"{CARD}","CardCode":"{CVV}"}}"#),
            OK,
            &[CARD, CVV],
        ),
        case(
            "VerificationNumber (hostway)",
            "/accounts/7/paymentInfo",
            JSON,
            format!(
                r#"{{"paymentInfoType":"credit_card","AccountNumber":"{VISA}","VerificationNumber":"{CVV}"}}"#
            ),
            OK,
            &[VISA, CVV],
        ),
        case(
            "Details.AccountNumber (oracle)",
            "/brm/paymentMethods/v1/paymentMethod",
            JSON,
            format!(r#"{{"Details":{{"AccountNumber":"{ACCOUNT}"}}}}"#),
            OK,
            &[ACCOUNT],
        ),
        case(
            "Payment_Method.CVC (plano)",
            "/payment-methods",
            Some("text/plain"),
            plano_json(&format!(
                r#"{{"Payment_Method":{{"Card_Number":"{MC}","CVC":"{CVV}"}}}}"#
            )),
            OK,
            &[MC, CVV],
        ),
        case(
            "condition value in another case (CARD)",
            "/v1/payment",
            JSON,
            q2("CARD", ""),
            OK,
            &[CARD, CVV],
        ),
        case(
            "condition value in another case (Direct_Debit)",
            "/accounts/7/paymentInfo",
            JSON,
            format!(r#"{{"paymentInfoType":"Direct_Debit","accountNumber":"{BANK}"}}"#),
            OK,
            &[BANK],
        ),
        case(
            "cvv in an array",
            "/v1/payment",
            JSON,
            format!(r#"{{"paymentType":"card","cardNumber":"{CARD}","cardCode":["{CVV}"]}}"#),
            OK,
            &[CARD, CVV],
        ),
        case(
            "cvv in an object",
            "/v1/payment",
            JSON,
            format!(
                r#"{{"paymentType":"card","cardNumber":"{CARD}","cardCode":{{"value":"{CVV}"}}}}"#
            ),
            OK,
            &[CARD, CVV],
        ),
        case(
            "details as an array",
            "/brm/paymentMethods/v1/paymentMethod",
            JSON,
            format!(r#"{{"details":[{{"accountNumber":"{ACCOUNT}"}}]}}"#),
            OK,
            &[ACCOUNT],
        ),
        case(
            "form keys with []",
            "/rules-auto",
            Some("application/x-www-form-urlencoded"),
            format!("paymentType=card&cardNumber[]={CARD}&cardCode[]={CVV}"),
            OK,
            &[CARD, CVV],
        ),
        case(
            "unknown condition value (hostway paypal)",
            "/accounts/7/paymentInfo",
            JSON,
            format!(r#"{{"paymentInfoType":"paypal","accountNumber":"{BANK}"}}"#),
            AMBIGUOUS,
            &[BANK],
        ),
        case(
            "condition field missing",
            "/v1/payment",
            JSON,
            format!(r#"{{"cardCode":"{CVV}"}}"#),
            AMBIGUOUS,
            &[CVV],
        ),
        case(
            "bank payment with a cvv",
            "/v1/payment",
            JSON,
            format!(r#"{{"paymentType":"bank","cardCode":"{CVV}"}}"#),
            AMBIGUOUS,
            &[CVV],
        ),
        case(
            "exact keys: CARD is unknown",
            "/exact",
            JSON,
            q2("CARD", ""),
            AMBIGUOUS,
            &[CARD, CVV],
        ),
        case(
            "duplicate card numbers",
            "/v1/payment",
            JSON,
            q2("card", &format!(r#","cardNumber":"{VISA}""#)),
            DUPLICATE,
            &[CARD, CVV, VISA],
        ),
        case(
            "duplicate cvv in another case",
            "/v1/payment",
            JSON,
            q2("card", r#","CARDCODE":"740""#),
            DUPLICATE,
            &[CARD, CVV],
        ),
        case(
            "repeated form keys",
            "/rules-auto",
            Some("application/x-www-form-urlencoded"),
            format!("paymentType=card&cardNumber={CARD}&cardCode={CVV}&cardCode=740"),
            DUPLICATE,
            &[CARD, CVV],
        ),
        // --- class 6: Plano ---
        case(
            "plano: json with a BOM",
            "/payment-methods",
            Some("text/plain"),
            plano_json(&format!(
                "\u{feff}{{\"payment_method\":{{\"card_number\":\"{CARD}\",\"cvc\":\"{CVV}\"}}}}"
            )),
            OK,
            &[CARD, CVV],
        ),
        case(
            "plano: a json string",
            "/payment-methods",
            Some("text/plain"),
            plano_json(&format!(
                "\"payment_method[card_number]={CARD}&payment_method[cvc]={CVV}\""
            )),
            INVALID,
            &[CARD, CVV],
        ),
        case(
            "plano: an array",
            "/payment-methods",
            Some("text/plain"),
            plano_json(&format!("[{{\"payment_method\":{{\"cvc\":\"{CVV}\"}}}}]")),
            INVALID,
            &[CVV],
        ),
    ];
    // --- form keys as other parsers read them ---
    let form_ct = Some("application/x-www-form-urlencoded");
    for (plano_name, form_name, template) in FORM_READINGS {
        let form = template.replace("{card}", VISA).replace("{cvv}", CVV4);
        let plano = case(
            plano_name,
            "/payment-methods",
            Some("text/plain"),
            b64(&form),
            OK,
            &[VISA, CVV4],
        );
        all.push(plano);
        all.push(case(
            form_name,
            "/plano-form",
            form_ct,
            form,
            OK,
            &[VISA, CVV4],
        ));
    }
    // A value one parser reads whole holds the pair another splits off: refused.
    let joined = format!("payment_method[card_number]={VISA};payment_method[cvc]={CVV4}");
    all.push(case(
        "plano: ;-joined card and cvc",
        "/payment-methods",
        Some("text/plain"),
        b64(&joined),
        AMBIGUOUS,
        &[VISA, CVV4],
    ));
    all.push(case(
        "plano form: ;-joined card and cvc",
        "/plano-form",
        form_ct,
        joined,
        AMBIGUOUS,
        &[VISA, CVV4],
    ));
    // --- class 4: data after a compressed stream ---
    for (name, path, body, coding) in [
        (
            "zlib of {} then plaintext (q2open)",
            "/v1/payment",
            trailing(zlib(b"{}")),
            "deflate",
        ),
        (
            "raw deflate of {} then plaintext (q2open)",
            "/v1/payment",
            trailing(raw_deflate(b"{}")),
            "deflate",
        ),
        (
            "gzip of {} then plaintext (q2open)",
            "/v1/payment",
            trailing(gzip(b"{}")),
            "gzip",
        ),
        (
            "zlib of {} then plaintext (leak guard)",
            "/payment-method",
            trailing(zlib(b"{}")),
            "deflate",
        ),
        (
            "raw deflate of {} then plaintext (leak guard)",
            "/payment-method",
            trailing(raw_deflate(b"{}")),
            "deflate",
        ),
    ] {
        all.push(with_encoding(
            case(name, path, JSON, body, INVALID, &[CARD, CVV]),
            coding,
        ));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_codec_catalogue() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = app::start(&codec_config(up), test_vault()).await.unwrap();
    let addr = server.proxy_addr();
    let client = http1();
    let cases = cases();
    let mut failures = Vec::new();
    for c in &cases {
        let before = echo.received().len();
        let mut b = Request::post(url(addr, c.path));
        for (n, v) in &c.headers {
            b = b.header(*n, v.as_str());
        }
        let reply = send(
            &client,
            b.body(Full::new(Bytes::from(c.body.clone()))).unwrap(),
        )
        .await;
        let code = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
        if reply.status.as_u16() != c.expect.0
            || (c.expect.1.is_some() && code.as_deref() != c.expect.1)
        {
            failures.push(format!(
                "{}: expected {:?}, got {} {:?}",
                c.name, c.expect, reply.status, code
            ));
        }
        let received = echo.received();
        let new = &received[before..];
        if reply.status.is_success() {
            assert_eq!(new.len(), 1, "{}: forwarded {} requests", c.name, new.len());
        } else {
            assert!(new.is_empty(), "{}: refused but forwarded", c.name);
        }
        for r in new {
            let bytes = received_bytes(r);
            for v in &c.raw {
                assert!(
                    !holds_raw(&bytes, v),
                    "{}: the upstream received {v}",
                    c.name
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} case(s) failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!("hostile codec catalogue: {} cases passed", cases.len());
    server.stop().await;
    echo.stop().await;
}

/// The scanner of what the upstream received sees every reading used above.
#[test]
fn the_upstream_scanner_sees_every_reading() {
    let card_body = format!(r#"{{"n":"{CARD}","c":"{CVV}"}}"#);
    for bytes in [
        card_body.clone().into_bytes(),
        gzip(card_body.as_bytes()),
        zlib(card_body.as_bytes()),
        raw_deflate(card_body.as_bytes()),
        utf16le(&card_body),
        escaped(&card_body).into_bytes(),
        b64(&card_body).into_bytes(),
        CARD.chars()
            .map(|c| format!("&#{};", c as u32))
            .collect::<String>()
            .into_bytes(),
    ] {
        assert!(
            holds_raw(&bytes, CARD),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }
    assert!(holds_raw(card_body.as_bytes(), CVV));
    assert!(!holds_raw(b"{\"c\":\"17390\"}", CVV));
    assert!(!luhn_runs(card_body.as_bytes()).is_empty());
}

/// A part no codec reads holding one of our tokens in UTF-16 (a client sending back
/// what it was given, in a file) is forwarded as it is: the token cannot be replaced
/// in place, so it is a hidden hit and the store is asked. The same part with a card
/// is refused (the catalogue's "multipart: utf-16 part").
#[tokio::test]
async fn our_token_in_a_utf16_part_is_forwarded() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = app::start(&codec_config(up), test_vault()).await.unwrap();
    let addr = server.proxy_addr();
    let client = http1();
    let post = |path: &str, ct: String, body: Vec<u8>| {
        Request::post(url(addr, path))
            .header("content-type", ct)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let json = format!(r#"{{"paymentType":"card","cardNumber":"{CARD}"}}"#);
    let reply = send(
        &client,
        post("/rules-auto", "application/json".into(), json.into_bytes()),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 200);
    let got = echo.received();
    let sent: serde_json::Value = serde_json::from_slice(&got.last().unwrap().body).unwrap();
    let token = sent["cardNumber"].as_str().unwrap().to_owned();
    assert_ne!(token, CARD);

    let file = |digits: &str| {
        multipart(&[part(
            "file",
            "Content-Type: application/octet-stream",
            utf16le(&format!("card {digits}")),
        )])
    };
    let before = echo.received().len();
    let reply = send(
        &client,
        post("/payment-method", mp_ct().unwrap(), file(CARD)),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 400);
    assert_eq!(
        echo.received().len(),
        before,
        "a refused request was forwarded"
    );

    let reply = send(
        &client,
        post("/payment-method", mp_ct().unwrap(), file(&token)),
    )
    .await;
    assert_eq!(
        reply.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let got = echo.received();
    let body = &got.last().unwrap().body;
    let wide = utf16le(&token);
    assert!(body.windows(wide.len()).any(|w| w == wide.as_slice()));
    assert!(!holds_raw(&received_bytes(got.last().unwrap()), CARD));
    server.stop().await;
    echo.stop().await;
}
