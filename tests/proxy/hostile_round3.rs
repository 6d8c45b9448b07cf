//! Red-team round 3: places a card reached that the request's readers did not —
//! an error message naming a form key's bracket index. Each runs the real server in
//! front of the recording echo upstream.

use http::StatusCode;
use vaultgate::demo::echo::EchoUpstream;

use crate::common::*;

const CARD: &str = "4242424242424242";

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
