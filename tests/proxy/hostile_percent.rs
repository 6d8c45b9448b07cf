//! A `%` that begins no `%XX` escape in a form body or a query string on a rules
//! route: `50%off`, and the `%uXXXX` escapes of JavaScript's `escape` (which ASP.NET
//! decodes; Python, PHP, Express and Tomcat keep them as they are). A value holding
//! one is read as it is, and by the leak guard with its `%uXXXX` escapes decoded: a
//! card behind them is refused as a card (`card_number_detected`, not a generic
//! parse error), and a value without one is forwarded as sent. A `%uXXXX` escape in a
//! key, whose decoding could name another field, is refused. Each runs the real
//! server in front of the recording echo upstream.

use http::StatusCode;
use vaultgate::app;
use vaultgate::config::Config;
use vaultgate::demo::echo::EchoUpstream;

use crate::common::*;

const RULES: &str = "/payment-method";
const FORM: &str = "application/x-www-form-urlencoded";

/// 4242424242424242 with each `4` written `%u0034`.
const PERCENT_U_CARD: &str = "%u0034242%u0034242%u0034242%u0034242";

#[tokio::test]
async fn a_stray_percent_in_a_form_or_query_value_is_read_not_refused() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let dir = std::env::temp_dir();
    let config = Config::demo("127.0.0.1:0", "127.0.0.1:0", &format!("http://{up}"), &dir).unwrap();
    let server = app::start(&config, test_vault()).await.unwrap();
    let addr = server.proxy_addr();

    // A card behind `%uXXXX` escapes, in a query value or a form value: refused as a
    // card, nothing forwarded.
    let hidden = [
        (
            format!("{RULES}?id=abc&note={PERCENT_U_CARD}"),
            "id=abc".to_owned(),
        ),
        (
            format!("{RULES}?note=%u0034%32%u0034%32+4242%2D4242%u002D4242"),
            "id=abc".to_owned(),
        ),
        (
            RULES.to_owned(),
            format!("id=abc&note={PERCENT_U_CARD}&x=y"),
        ),
        (RULES.to_owned(), format!("note=100%&n={PERCENT_U_CARD}")),
    ];
    for (path, body) in hidden {
        let before = echo.received().len();
        let reply = post(addr, &path, FORM, body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path} {body}");
        assert_eq!(code(&reply), "card_number_detected", "{path} {body}");
        assert!(
            !String::from_utf8_lossy(&reply.body).contains("4242"),
            "the error names no digits"
        );
        assert_eq!(echo.received().len(), before, "{path}: forwarded");
    }

    // No card: forwarded as sent, the stray `%` kept.
    let plain = [
        (
            format!("{RULES}?promo=50%off&name=Jos%u00E9"),
            "a=1".to_owned(),
        ),
        (format!("{RULES}?q=100%"), "a=1".to_owned()),
        (
            RULES.to_owned(),
            "note=50%off&name=Jos%u00E9&pct=%&tail=%4".to_owned(),
        ),
    ];
    for (path, body) in plain {
        let reply = post(addr, &path, FORM, body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{path} {body}: {:?}",
            reply.body
        );
        let got = echo.received().pop().unwrap();
        let (_, query) = path.split_once('?').unwrap_or((&path, ""));
        assert_eq!(got.query.as_deref().unwrap_or(""), query);
        assert_eq!(got.body, body.as_bytes());
    }

    // A card beside a stray `%` is tokenized in place, the rest kept.
    let reply = post(addr, RULES, FORM, "note=50%off&card=4242424242424242").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let got = echo.received().pop().unwrap();
    let body = String::from_utf8_lossy(&got.body).into_owned();
    assert!(body.starts_with("note=50%off&card="), "{body}");
    assert!(!body.contains("4242424242424242"));

    // A `%uXXXX` escape in a key (ASP.NET reads `c%u0076v` as `cvv`): refused.
    let before = echo.received().len();
    let reply = post(addr, RULES, FORM, "c%u0076v=123").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&reply), "invalid_body");
    assert_eq!(echo.received().len(), before);

    server.stop().await;
    echo.stop().await;
}
