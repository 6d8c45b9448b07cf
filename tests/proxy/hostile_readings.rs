//! Requests a backend would read differently from the way vaultgate read them: a
//! charset that decodes the scanned bytes into other characters, a JSON body declared
//! as a form (a second document in the same bytes), a body field sent in the
//! query string (which frameworks merge into the body's parameters), a number a float
//! parser rounds to a card, and keys a binder maps onto a sensitive field.
//!
//! Each case runs against the real server and a real upstream that records what it
//! received, and asserts the status, the error code and what reached the upstream.

use std::net::SocketAddr;

use crate::common::*;
use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use vaultgate::app::ServerHandle;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream, Received};

const CARD: &str = "4242424242424242";

/// The four JSON and base64 profiles and a pass-through route for the rest.
const ROUTES: &str = r#"
[[routes]]
name = "q2open"
upstream = "backend"
method = "POST"
path = "/v1/payment"
profile = "q2open"

[[routes]]
name = "hostway"
upstream = "backend"
method = "POST"
path = "/accounts/{accountId}/paymentInfo"
profile = "hostway"

[[routes]]
name = "oracle_brm"
upstream = "backend"
method = "POST"
path = "/brm/paymentMethods/{version}/paymentMethod"
profile = "oracle_brm"

[[routes]]
name = "plano"
upstream = "backend"
method = "POST"
path = "/payment-methods"
profile = "plano"

[[routes]]
name = "pass"
upstream = "backend"
path = "/*"
"#;

async fn start_with() -> (ServerHandle, EchoHandle) {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    (
        start(&config_toml(&format!("http://{up}"), ROUTES)).await,
        echo,
    )
}

async fn post(addr: SocketAddr, path: &str, content_type: &str, body: &str) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri(url(addr, path))
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    send(&http1(), req).await
}

fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn everything(r: &Received) -> String {
    let mut all = String::from_utf8_lossy(&r.body).into_owned();
    all.push_str(&r.path);
    all.push_str(r.query.as_deref().unwrap_or(""));
    all
}

/// Tokenize `CARD` through the q2open route: the token the upstream received.
async fn token_for_card(addr: SocketAddr, echo: &EchoHandle) -> String {
    let r = post(
        addr,
        "/v1/payment",
        "application/json",
        &format!(r#"{{"paymentType":"card","cardNumber":"{CARD}"}}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let got = echo.received();
    let forwarded: serde_json::Value = serde_json::from_slice(&got.last().unwrap().body).unwrap();
    let token = forwarded["cardNumber"].as_str().unwrap().to_owned();
    assert_ne!(token, CARD);
    token
}

/// A request refused with `status` and `code`, and nothing more reached the upstream.
async fn refused(
    echo: &EchoHandle,
    reply: Reply,
    status: StatusCode,
    expected: &str,
    before: usize,
    name: &str,
) {
    assert_eq!(reply.status, status, "{name}: {}", text(&reply));
    assert_eq!(code(&reply), expected, "{name}");
    assert_eq!(
        echo.received().len(),
        before,
        "{name}: something was forwarded"
    );
}

#[tokio::test]
async fn a_charset_whose_bytes_decode_to_other_characters_is_refused() {
    let (server, echo) = start_with().await;
    let addr = server.proxy_addr();
    // UTF-7 spells `cardNumber` and a `4` with letters and punctuation: the backend's
    // decoder (body-parser reads any `utf-*` through iconv) would get the card.
    let utf7 =
        r#"{"paymentType":"card","+AGM-ardNumber":"+ADQ-242424242424242","+AGM-ardCode":"218"}"#;
    let cases = [
        ("/v1/payment", "application/json; charset=utf-7", utf7),
        ("/v1/payment", "application/json; charset=UTF-16", utf7),
        // The JSON routes read a curl `-d` form as JSON: its charset counts too.
        (
            "/v1/payment",
            "application/x-www-form-urlencoded; charset=utf-7",
            utf7,
        ),
        (
            "/accounts/1042/paymentInfo",
            "application/json; charset=\"utf-7\"",
            r#"{"paymentInfoType":"credit_card","+AGE-ccountNumber":"+ADQ-111111111111111"}"#,
        ),
        (
            "/brm/paymentMethods/v1/paymentMethod",
            "application/json; charset=iso-2022-jp",
            r#"{"details":{"+AGE-ccountNumber":"000123456789"}}"#,
        ),
        // A pass-through body: the streaming guard reads bytes.
        (
            "/other/thing",
            "application/json; charset=utf-7",
            r#"{"pan":"+ADQ-242424242424242"}"#,
        ),
        ("/other/thing", "text/plain; charset=ebcdic-cp-us", "x"),
    ];
    for (path, ct, body) in cases {
        let before = echo.received().len();
        let r = post(addr, path, ct, body).await;
        refused(
            &echo,
            r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media",
            before,
            &format!("{path} {ct}"),
        )
        .await;
    }
    // Two Content-Type headers on a pass-through route: the one the backend reads
    // may be the second.
    let before = echo.received().len();
    let req = Request::builder()
        .method(Method::POST)
        .uri(url(addr, "/other/thing"))
        .header("content-type", "application/json; charset=utf-8")
        .header("content-type", "application/json; charset=utf-7")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let r = send(&http1(), req).await;
    refused(
        &echo,
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media",
        before,
        "two content types",
    )
    .await;

    // Charsets in which an ASCII byte is that character pass, and cards are still
    // tokenized or blocked.
    let card = format!(r#"{{"paymentType":"card","cardNumber":"{CARD}","cardCode":"218"}}"#);
    for ct in ["application/json; charset=UTF-8", "application/json"] {
        let r = post(addr, "/v1/payment", ct, &card).await;
        assert_eq!(r.status, StatusCode::OK, "{ct}");
        assert!(!everything(echo.received().last().unwrap()).contains(CARD));
    }
    for ct in [
        "text/plain; charset=iso-8859-1",
        "text/plain; charset=windows-1252",
        "text/plain; charset=latin1",
    ] {
        let r = post(addr, "/other/thing", ct, "caf\u{e9} 12").await;
        assert_eq!(r.status, StatusCode::OK, "{ct}");
        let r = post(addr, "/other/thing", ct, &card).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{ct}: the card is blocked"
        );
    }
    // The Plano route's base64 text reads the same in a single-byte charset.
    let params = base64::engine::general_purpose::STANDARD.encode(format!(
        r#"{{"payment_method":{{"card_number":"{CARD}","cvc":"123"}}}}"#
    ));
    let r = post(
        addr,
        "/payment-methods",
        "text/plain; charset=windows-1252",
        &params,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let before = echo.received().len();
    let r = post(
        addr,
        "/payment-methods",
        "text/plain; charset=utf-7",
        &params,
    )
    .await;
    refused(
        &echo,
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media",
        before,
        "plano utf-7",
    )
    .await;
}

#[tokio::test]
async fn a_json_route_forwards_a_body_declared_as_a_form_as_json() {
    let (server, echo) = start_with().await;
    let addr = server.proxy_addr();
    // Valid JSON, and as a form it carries a raw CVV and bank account: the backend
    // must not be told to read it as a form.
    let body = format!(
        r#"{{"paymentType":"card","cardNumber":"{CARD}","x":"&paymentType=card&cardCode=218&accountNumber=000123456789&"}}"#
    );
    for (path, ct) in [
        ("/v1/payment", "application/x-www-form-urlencoded"),
        ("/v1/payment", "multipart/form-data; boundary=x"),
        (
            "/accounts/1042/paymentInfo",
            "application/x-www-form-urlencoded",
        ),
    ] {
        let r = post(addr, path, ct, &body).await;
        assert_eq!(r.status, StatusCode::OK, "{path} {ct}: {}", text(&r));
        let got = echo.received();
        let last = got.last().unwrap();
        assert_eq!(
            last.header("content-type"),
            Some("application/json"),
            "{path} {ct}"
        );
        assert!(!everything(last).contains(CARD), "{path} {ct}");
    }
    // A body sent as JSON keeps its header as it came.
    let r = post(
        addr,
        "/v1/payment",
        "application/json; charset=utf-8",
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        echo.received().last().unwrap().header("content-type"),
        Some("application/json; charset=utf-8")
    );
    // So does any body on a route that chooses its codec by the header.
    let r = post(
        addr,
        "/other/thing",
        "application/x-www-form-urlencoded",
        "a=1",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        echo.received().last().unwrap().header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn a_body_field_sent_in_the_query_string_is_refused() {
    let (server, echo) = start_with().await;
    let addr = server.proxy_addr();
    let card = format!(r#"{{"paymentType":"card","cardNumber":"{CARD}"}}"#);
    let bank = r#"{"paymentType":"bank","routingNumber":"021000021"}"#;
    let hostway = r#"{"paymentInfoType":"credit_card","accountNumber":"4111111111111111"}"#;
    let cases = [
        ("/v1/payment?cardCode=218", card.as_str()),
        ("/v1/payment?CardCode=218&x=1", card.as_str()),
        ("/v1/payment?accountNumber=000123456789", bank),
        ("/accounts/1042/paymentInfo?verificationNumber=218", hostway),
        (
            "/brm/paymentMethods/v1/paymentMethod?details.accountNumber=000123456789",
            r#"{"details":{"BIC":"x"}}"#,
        ),
        (
            "/brm/paymentMethods/v1/paymentMethod?details%5BaccountNumber%5D=000123456789",
            r#"{"details":{"BIC":"x"}}"#,
        ),
    ];
    for (path, body) in cases {
        let before = echo.received().len();
        let r = post(addr, path, "application/json", body).await;
        assert!(
            !text(&r).contains("218") && !text(&r).contains("000123456789"),
            "{path}: the error names the value"
        );
        refused(
            &echo,
            r,
            StatusCode::BAD_REQUEST,
            "ambiguous_sensitive_field",
            before,
            path,
        )
        .await;
    }
    // Other parameters, and an empty one, pass.
    for path in ["/v1/payment?trace=1", "/v1/payment?cardCode="] {
        let r = post(addr, path, "application/json", &card).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", text(&r));
        let got = echo.received();
        let last = got.last().unwrap();
        assert!(!everything(last).contains(CARD), "{path}");
    }
}

/// A pass-through body or query spelling a card with escapes a backend decodes (a
/// JSON `\u` escape, percent-encoding, `%u`, double percent-encoding, character
/// references) is blocked like one written plainly; one of our tokens next to an
/// escape still passes.
#[tokio::test]
async fn a_card_behind_escapes_on_a_pass_through_route_is_blocked() {
    let (server, echo) = start_with().await;
    let addr = server.proxy_addr();
    let bodies = [
        (
            "application/json",
            r#"{"cardNumber":"\u0034242424242424242"}"#,
        ),
        (
            "application/json",
            r#"{"pan":"\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032\u0034\u0032"}"#,
        ),
        (
            "application/x-www-form-urlencoded",
            "cardNumber=%34242424242424242",
        ),
        (
            "application/x-www-form-urlencoded",
            "card%5Bnumber%5D=%34%32%34%32424242424242",
        ),
        ("text/html", "<p>&#52;&#50;&#x34;&#x32;424242424242</p>"),
        ("text/plain", "pan=%u0034242424242424242"),
    ];
    for (ct, body) in bodies {
        let before = echo.received().len();
        let r = post(addr, "/other/thing", ct, body).await;
        refused(
            &echo,
            r,
            StatusCode::BAD_REQUEST,
            "card_number_detected",
            before,
            body,
        )
        .await;
    }
    for query in [
        "pan=%2534%2532%2534%2532424242424242",
        "pan=%u0034242424242424242",
    ] {
        let before = echo.received().len();
        let r = post(addr, &format!("/other/thing?{query}"), "text/plain", "x").await;
        refused(
            &echo,
            r,
            StatusCode::BAD_REQUEST,
            "card_number_detected",
            before,
            query,
        )
        .await;
    }
    // A token of ours, written plainly beside escapes, is forwarded.
    let token = token_for_card(addr, &echo).await;
    let body = format!(r#"{{"token":"{token}","note":"caf\u00e9 50%25"}}"#);
    let r = post(addr, "/other/thing", "application/json", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let r = post(
        addr,
        &format!("/other/thing?token={token}&note=50%2525"),
        "text/plain",
        "x",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
}

/// A JSON number that a float parser (JavaScript, Python) rounds to a card is refused,
/// in any spelling, in a free field of every JSON profile.
#[tokio::test]
async fn a_number_a_float_parser_rounds_to_a_card_is_refused() {
    let (server, echo) = start_with().await;
    let addr = server.proxy_addr();
    for number in ROUNDED_TO_CARDS {
        for (path, body) in [
            (
                "/v1/payment",
                format!(r#"{{"paymentType":"card","amount":{number}}}"#),
            ),
            (
                "/brm/paymentMethods/v1/paymentMethod",
                format!(r#"{{"details":{{"BIC":"x"}},"amounts":[1,{number}]}}"#),
            ),
        ] {
            let before = echo.received().len();
            let r = post(addr, path, "application/json", &body).await;
            assert!(
                !text(&r).contains(number),
                "{path}: the error names the value"
            );
            let name = format!("{path} {number}");
            refused(
                &echo,
                r,
                StatusCode::BAD_REQUEST,
                "card_number_detected",
                before,
                &name,
            )
            .await;
        }
    }
    // A number no parser reads as a card passes untouched.
    let body = r#"{"paymentType":"card","amount":4242.19}"#;
    let r = post(addr, "/v1/payment", "application/json", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let got = echo.received();
    assert!(everything(got.last().unwrap()).contains("4242.19"));
}

/// Keys a backend's binder maps onto a sensitive field (snake or kebab case, a
/// trailing space, a dotted key, JavaScript's `__proto__`) are tokenized like the
/// field itself.
#[tokio::test]
async fn keys_binders_map_onto_a_sensitive_field_are_tokenized() {
    let (server, echo) = start_with().await;
    let addr = server.proxy_addr();
    let account = "000123456789";
    for (path, body, value) in [
        (
            "/v1/payment",
            format!(r#"{{"paymentType":"card","card_number":"{CARD}","card_code":"7391"}}"#),
            "7391",
        ),
        (
            "/v1/payment",
            r#"{"payment-type":"card","Card-Code ":"7391"}"#.to_owned(),
            "7391",
        ),
        (
            "/v1/payment",
            r#"{"paymentType":"card","__proto__":{"cardCode":"7391"}}"#.to_owned(),
            "7391",
        ),
        (
            "/brm/paymentMethods/v1/paymentMethod",
            format!(r#"{{"details.accountNumber":"{account}"}}"#),
            account,
        ),
    ] {
        let r = post(addr, path, "application/json", &body).await;
        assert_eq!(r.status, StatusCode::OK, "{body}: {}", text(&r));
        let got = echo.received();
        let sent = everything(got.last().unwrap());
        assert!(!sent.contains(value), "{body}: forwarded {sent}");
        assert!(!sent.contains(CARD), "{body}: forwarded {sent}");
    }
}

/// A digit written as a character reference right after a number makes one group
/// with it to a reader that decodes references (`&#1636;` is `٤`, an Arabic-Indic
/// four). The group mixes scripts, so its ASCII digits cannot be replaced in place:
/// a card there is refused. One of our tokens there (a client sending back what it
/// was given) is forwarded as it is.
#[tokio::test]
async fn a_token_of_ours_beside_a_referenced_digit_is_forwarded() {
    let (server, echo) = start_with().await;
    let addr = server.proxy_addr();
    let other = "4111111111111111";
    let body = |note: &str| {
        format!(r#"{{"paymentType":"card","cardNumber":"{other}","note":"{note}&#1636; on file"}}"#)
    };
    let before = echo.received().len();
    let r = post(addr, "/v1/payment", "application/json", &body(CARD)).await;
    refused(
        &echo,
        r,
        StatusCode::BAD_REQUEST,
        "card_number_detected",
        before,
        "a card",
    )
    .await;
    let token = token_for_card(addr, &echo).await;

    let r = post(addr, "/v1/payment", "application/json", &body(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    let got = echo.received();
    let last = got.last().unwrap();
    let forwarded: serde_json::Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(forwarded["note"], format!("{token}&#1636; on file"));
    assert_ne!(forwarded["cardNumber"], other);
    let all = everything(last);
    assert!(!all.contains(CARD) && !all.contains(other), "{all}");
}
