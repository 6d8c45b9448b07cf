//! HTTP conventions of the vault API: 405 with `Allow`, `WWW-Authenticate` on 401,
//! `Retry-After` on 429, the served OpenAPI document, and 404 for any token that does
//! not exist, whatever its scope.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use http::StatusCode;
use serde_json::{Value, json};

const CARD: &str = "4242424242424242";

#[tokio::test]
async fn wrong_methods_are_405_with_allow_and_401_says_bearer() {
    let dir = tempfile::tempdir().unwrap();
    let c = api_client("c", r#"reveal = ["pan"]"#);
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{}", audit_toml(&dir.path().join("audit.log")), c.toml),
    );
    let handle = start(&toml).await;
    let addr = handle.api_addr();

    let r = api(addr, "PUT", "/v1/tokenize", &c.key, json!({})).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "POST");
    assert_eq!(r.json()["error"]["code"], "method_not_allowed");
    let r = api(addr, "POST", "/v1/tokens/tok_x", &c.key, Value::Null).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "GET, DELETE");
    // TRACE on every endpoint, with or without a credential.
    for (path, allow) in [
        ("/healthz", "GET"),
        ("/readyz", "GET"),
        ("/metrics", "GET"),
        ("/openapi.json", "GET"),
        ("/v1/detokenize", "POST"),
        ("/v1/tokenize", "POST"),
        ("/v1/tokens/tok_x", "GET, DELETE"),
    ] {
        let r = call(addr, "TRACE", path, None, Value::Null).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "TRACE {path}");
        assert_eq!(r.headers["allow"], allow, "TRACE {path}");
    }
    // An unknown path is still 404 no_route.
    let r = call(addr, "TRACE", "/v2/nothing", None, Value::Null).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], "no_route");

    // Every 401 names the scheme: no credential, a wrong one, a malformed one.
    for auth in [
        None,
        Some((
            "authorization",
            "Bearer vg_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )),
        Some(("authorization", "Basic Zm9vOmJhcg==")),
    ] {
        let r = call(
            addr,
            "POST",
            "/v1/detokenize",
            auth,
            json!({ "tokens": [CARD] }),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let www = r.headers["www-authenticate"].to_str().unwrap();
        assert!(www.starts_with("Bearer"), "{www}");
    }
    handle.stop().await;
}

#[tokio::test]
async fn a_rate_limited_reveal_says_when_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let c = api_client(
        "slow",
        "reveal = [\"pan\"]\ntokenize = [\"pan\"]\nrate_limit_per_minute = 6",
    );
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{}", audit_toml(&dir.path().join("audit.log")), c.toml),
    );
    let handle = start(&toml).await;
    let addr = handle.api_addr();
    let body = json!({ "tokens": ["a", "b", "c", "d", "e", "f"] });
    let r = api(addr, "POST", "/v1/detokenize", &c.key, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api(addr, "POST", "/v1/detokenize", &c.key, body).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json()["error"]["code"], "rate_limited");
    // Six tokens at six a minute: about a minute.
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((55..=60).contains(&secs), "Retry-After: {secs}");
    // One token: ten seconds.
    let r = api(
        addr,
        "POST",
        "/v1/detokenize",
        &c.key,
        json!({ "tokens": ["a"] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((5..=10).contains(&secs), "Retry-After: {secs}");
    handle.stop().await;
}

#[tokio::test]
async fn the_spec_is_served_and_missing_tokens_are_404_whatever_the_scope() {
    let dir = tempfile::tempdir().unwrap();
    let c = api_client(
        "all",
        "reveal = [\"pan\", \"cvv\"]\ntokenize = [\"pan\", \"cvv\"]\ndelete = true",
    );
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{}", audit_toml(&dir.path().join("audit.log")), c.toml),
    );
    let handle = start(&toml).await;
    let addr = handle.api_addr();

    let r = call(addr, "GET", "/openapi.json", None, Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "application/json");
    let served: Value = r.json();
    let file: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    assert_eq!(served, file);
    assert!(served["paths"]["/openapi.json"]["get"].is_object());

    let r = api(
        addr,
        "POST",
        "/v1/tokenize",
        &c.key,
        json!({ "values": [{ "class": "pan", "value": CARD }] }),
    )
    .await;
    let card = r.json()["results"][0]["token"].as_str().unwrap().to_owned();
    let r = api(
        addr,
        "POST",
        "/v1/tokenize",
        &c.key,
        json!({ "values": [{ "class": "cvv", "value": "123", "scope": card }] }),
    )
    .await;
    let cvv = r.json()["results"][0]["token"].as_str().unwrap().to_owned();

    // Never issued, with any scope, a real card token's or not: 404.
    for (token, scope) in [
        ("tok_nope", None),
        ("tok_nope", Some("x")),
        ("999", Some("not-a-card-token")),
        ("999", Some(card.as_str())),
        ("cvv_nope", None),
        (card.as_str(), Some("x")),
    ] {
        let q = scope.map(|s| format!("?scope={s}")).unwrap_or_default();
        for m in ["GET", "DELETE"] {
            let r = api(
                addr,
                m,
                &format!("/v1/tokens/{token}{q}"),
                &c.key,
                Value::Null,
            )
            .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {token}{q}");
            assert_eq!(r.json()["error"]["code"], "token_not_found");
        }
    }
    let r = api(
        addr,
        "POST",
        "/v1/detokenize",
        &c.key,
        json!({ "tokens": [{ "token": "999", "scope": "nope" }, { "token": "999", "scope": card }] }),
    )
    .await;
    assert_eq!(r.json()["results"][0]["error"]["code"], "token_not_found");
    assert_eq!(r.json()["results"][1]["error"]["code"], "token_not_found");

    // The real CVV: metadata with its scope (percent-encoded works too), then a
    // reveal consumes it, and from then on it is 404 like one never issued.
    let r = api(
        addr,
        "GET",
        &format!("/v1/tokens/{cvv}?scope={card}"),
        &c.key,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["class"], "cvv");
    let encoded: String = card
        .chars()
        .map(|ch| format!("%{:02X}", ch as u32))
        .collect();
    let r = api(
        addr,
        "GET",
        &format!("/v1/tokens/{cvv}?scope={encoded}"),
        &c.key,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = api(
        addr,
        "POST",
        "/v1/detokenize",
        &c.key,
        json!({ "tokens": [{ "token": cvv, "scope": card }] }),
    )
    .await;
    assert_eq!(r.json()["results"][0]["value"], "123");
    let r = api(
        addr,
        "GET",
        &format!("/v1/tokens/{cvv}?scope={card}"),
        &c.key,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // What the spec says is refused, is: unknown properties, an empty CVV.
    for body in [
        json!({ "tokens": [CARD], "extra": 1 }),
        json!({ "tokens": [{ "token": CARD, "extra": 1 }] }),
    ] {
        let r = api(addr, "POST", "/v1/detokenize", &c.key, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    for body in [
        json!({ "values": [{ "class": "pan", "value": CARD, "extra": 1 }] }),
        json!({ "values": [{ "class": "cvv", "value": "" }] }),
    ] {
        let r = api(addr, "POST", "/v1/tokenize", &c.key, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    handle.stop().await;

    // The audit log keeps the vault's own reason for the used CVV.
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(log.contains(r#""outcome":"cvv_expired""#), "{log}");
}
