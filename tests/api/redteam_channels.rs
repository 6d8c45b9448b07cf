//! Red-team round 5 on the API's other channels: what the audit log, the error
//! bodies and the metrics say about a string a client sends as a "token". A string in
//! an opaque token's shape (`tok_` and 22 base64url characters) was written to the
//! audit log as sent, a card number inside it included.

use http::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const CARD: &str = "4242424242424242";

#[tokio::test]
async fn a_card_inside_an_opaque_token_shape_reaches_no_audit_line_or_answer() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let c = api_client(
        "checkout",
        "reveal = [\"pan\", \"cvv\"]\ntokenize = [\"pan\"]\ndelete = true",
    );
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{}", audit_toml(&log), c.toml),
    );
    let handle = start_in(dir.path(), &toml).await;
    let addr = handle.api_addr();

    // `tok_`/`cvv_` and 22 base64url characters: the shape of an opaque token, with a
    // card number in it (and one made of a card's groups joined by `-` and `_`).
    let shaped = [
        format!("tok_{CARD}abcdef"),
        format!("cvv_{CARD}-_-_-_"),
        "tok_4242-4242-4242-4242xyz".to_owned(),
        "tok_378282246310005abcdefg".to_owned(),
    ];
    for s in &shaped {
        assert_eq!(s.len(), 26, "{s}");
    }
    let r = api(
        addr,
        "POST",
        "/v1/detokenize",
        &c.key,
        json!({ "tokens": shaped }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    for item in r.json()["results"].as_array().unwrap() {
        assert_eq!(item["error"]["code"], "token_not_found", "{item}");
    }
    assert_no_card(&r.body, "detokenize answer");
    for s in &shaped {
        for method in ["GET", "DELETE"] {
            let r = api(
                addr,
                method,
                &format!("/v1/tokens/{s}"),
                &c.key,
                Value::Null,
            )
            .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {s}");
            assert_no_card(&r.body, &format!("{method} answer"));
        }
    }
    let m = call(addr, "GET", "/metrics", None, Value::Null).await;
    assert_no_card(&m.body, "metrics");
    handle.stop().await;

    let bytes = std::fs::read(&log).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("\"action\":\"reveal\""), "{text}");
    assert_no_card(&bytes, "the audit log");
    assert!(vaultgate::audit::verify(&log, None).unwrap().is_intact());
}

/// No test card in any reading of `bytes`.
fn assert_no_card(bytes: &[u8], what: &str) {
    for card in [CARD, "378282246310005"] {
        assert!(
            !holds_raw(bytes, card),
            "{card} in {what}: {}",
            String::from_utf8_lossy(bytes)
        );
    }
}
