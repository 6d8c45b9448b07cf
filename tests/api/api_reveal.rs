//! The vault API over real sockets: reveal (full, masked, hidden), CVV consumption,
//! tokenize, metadata, delete, authentication, rate limits, fail-closed audit, mTLS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use crate::common::*;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use vaultgate::app;
use vaultgate::config::Config;
use vaultgate::sensitive::{DataClass, Sensitive};
use vaultgate::vault::TokenizeOptions;

const CARD: &str = "4242424242424242";

async fn tokenize(addr: std::net::SocketAddr, key: &str, values: Value) -> Vec<String> {
    let r = api(
        addr,
        "POST",
        "/v1/tokenize",
        key,
        json!({ "values": values }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap().to_owned())
        .collect()
}

async fn reveal(addr: std::net::SocketAddr, key: &str, tokens: Value) -> Value {
    let r = api(
        addr,
        "POST",
        "/v1/detokenize",
        key,
        json!({ "tokens": tokens }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.json()["results"].clone()
}

#[tokio::test]
async fn reveal_modes_scopes_and_cvv_consumption() {
    let dir = tempfile::tempdir().unwrap();
    let full = api_client(
        "full",
        r#"reveal = ["pan", "cvv"]
tokenize = ["pan", "cvv", "bank_account"]
delete = true"#,
    );
    let masked = api_client("masked", r#"reveal_masked = ["pan", "cvv"]"#);
    let none = api_client("none", r#"tokenize = ["pan"]"#);
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!(
            "{}{}{}{}",
            audit_toml(&dir.path().join("audit.log")),
            full.toml,
            masked.toml,
            none.toml
        ),
    );
    let handle = start(&toml).await;
    let addr = handle.api_addr();

    let card = tokenize(addr, &full.key, json!([{ "class": "pan", "value": CARD }])).await;
    let card = &card[0];
    let cvv = tokenize(
        addr,
        &full.key,
        json!([{ "class": "cvv", "value": "123", "scope": card }]),
    )
    .await;
    let cvv = &cvv[0];
    let cvv_ref = json!({ "token": cvv, "scope": card });

    // Masked: the last four only.
    let out = reveal(addr, &masked.key, json!([card])).await;
    assert_eq!(out[0]["value"], "************4242");
    assert_eq!(out[0]["masked"], true);
    assert_eq!(out[0]["class"], "pan");

    // A class the client may not see answers exactly like a missing token.
    let hidden = reveal(addr, &none.key, json!([card, "4000000000009999"])).await;
    assert_eq!(hidden[0]["error"], hidden[1]["error"]);
    assert_eq!(hidden[0]["error"]["code"], "token_not_found");
    assert!(hidden[0].get("value").is_none());

    // A masked-only client cannot see a CVV (it answers like a missing token), and
    // does not consume it.
    let out = reveal(addr, &masked.key, json!([cvv_ref])).await;
    assert_eq!(out[0]["error"]["code"], "token_not_found");
    let out = reveal(addr, &full.key, json!([cvv_ref, card])).await;
    assert_eq!(out[0]["value"], "123");
    assert_eq!(out[0]["class"], "cvv");
    assert_eq!(out[1]["value"], CARD);
    // Consumed on reveal: from then on it answers like a token never issued (the audit
    // log says `cvv_expired`).
    let out = reveal(addr, &full.key, json!([cvv_ref])).await;
    assert_eq!(out[0]["error"]["code"], "token_not_found");

    // Tokenize outside the client's classes: 403, and nothing else in the batch.
    let r = api(
        addr,
        "POST",
        "/v1/tokenize",
        &none.key,
        json!({ "values": [{ "class": "pan", "value": CARD }, { "class": "cvv", "value": "999" }] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // No credential, a wrong one, a key-shaped wrong one: 401.
    let r = call(
        addr,
        "POST",
        "/v1/detokenize",
        None,
        json!({ "tokens": [card] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"]["code"], "unauthenticated");
    let (wrong, _) = vaultgate::auth::generate_api_key().unwrap();
    let r = api(
        addr,
        "POST",
        "/v1/detokenize",
        &wrong,
        json!({ "tokens": [card] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(
        addr,
        "POST",
        "/v1/detokenize",
        Some(("x-vaultgate-client", "full")),
        json!({ "tokens": [card] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Metadata: last four for a client that may see the class; hidden otherwise.
    let r = api(
        addr,
        "GET",
        &format!("/v1/tokens/{card}"),
        &masked.key,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let meta = r.json();
    assert_eq!(meta["class"], "pan");
    assert_eq!(meta["last4"], "4242");
    assert!(meta["created"].as_u64().unwrap() > 0);
    let r = api(
        addr,
        "GET",
        &format!("/v1/tokens/{card}"),
        &none.key,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], "token_not_found");

    // Delete: 403 without the right, then gone.
    let r = api(
        addr,
        "DELETE",
        &format!("/v1/tokens/{card}"),
        &masked.key,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api(
        addr,
        "DELETE",
        &format!("/v1/tokens/{card}"),
        &full.key,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let out = reveal(addr, &full.key, json!([card])).await;
    assert_eq!(out[0]["error"]["code"], "token_not_found");
    handle.stop().await;

    // Every reveal is in the audit log, and no value is.
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(!log.contains(CARD));
    assert!(log.contains(r#""action":"reveal_masked""#), "{log}");
    assert!(log.contains(r#""action":"auth_failure""#));
    assert!(log.contains(r#""action":"delete""#));
    assert!(log.contains(r#""action":"metadata""#));
    assert!(log.contains(r#""outcome":"cvv_expired""#));
    let reveals = log
        .lines()
        .filter(|l| l.contains(r#""client":"full""#) && l.contains(r#""action":"reveal""#))
        .count();
    assert_eq!(reveals, 4);
    assert!(
        vaultgate::audit::verify(dir.path().join("audit.log"), None)
            .unwrap()
            .is_intact()
    );
}

#[tokio::test]
async fn rate_limit_refuses_with_429_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let slow = api_client(
        "slow",
        "reveal = [\"pan\"]\ntokenize = [\"pan\"]\nrate_limit_per_minute = 3",
    );
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{}", audit_toml(&dir.path().join("audit.log")), slow.toml),
    );
    let handle = start(&toml).await;
    let addr = handle.api_addr();
    let t = tokenize(addr, &slow.key, json!([{ "class": "pan", "value": CARD }])).await;
    let out = reveal(addr, &slow.key, json!([t[0], t[0]])).await;
    assert_eq!(out[1]["value"], CARD);
    let r = api(
        addr,
        "POST",
        "/v1/detokenize",
        &slow.key,
        json!({ "tokens": [t[0], t[0]] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json()["error"]["code"], "rate_limited");
    assert!(!String::from_utf8_lossy(&r.body).contains(CARD));
    let m = call(addr, "GET", "/metrics", None, Value::Null).await;
    let text = String::from_utf8_lossy(&m.body);
    assert!(
        text.contains(r#"vaultgate_rate_limited_total{client="slow"} 1"#),
        "{text}"
    );
    handle.stop().await;
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(log.contains(r#""action":"rate_limited""#));
}

#[tokio::test]
async fn unwritable_audit_log_refuses_reveals() {
    let c = api_client("svc", "reveal = [\"pan\"]");
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!(
            "{}{}",
            audit_toml(std::path::Path::new("/dev/full")),
            c.toml
        ),
    );
    let config = Config::from_toml_str(&toml).unwrap();
    let vault = test_vault();
    let token = vault
        .tokenize(
            &Sensitive::parse(DataClass::Pan, CARD).unwrap(),
            &TokenizeOptions::default(),
        )
        .await
        .unwrap();
    let handle = app::start(&config, Arc::clone(&vault)).await.unwrap();
    let r = api(
        handle.api_addr(),
        "POST",
        "/v1/detokenize",
        &c.key,
        json!({ "tokens": [token] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"]["code"], "audit_unavailable");
    assert!(!String::from_utf8_lossy(&r.body).contains(CARD));
    assert!(!String::from_utf8_lossy(&r.body).contains("4242"));
    handle.stop().await;
}

#[tokio::test]
async fn mtls_identity_comes_from_the_verified_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("clients");
    let other = Pki::new("other");
    let (cert, key) = pki.server("api");
    let good = pki.client("good", "svc-client");
    let stranger = other.client("stranger", "svc-client");
    let toml = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
[api]
listen = "127.0.0.1:0"
tls = {{ cert = "{}", key = "{}", client_ca = "{}" }}
{}
[[clients]]
name = "svc"
cert_subject = "CN=svc-client"
reveal = ["pan"]
"#,
        cert.display(),
        key.display(),
        pki.ca.display(),
        audit_toml(&dir.path().join("audit.log")),
    );
    let config = Config::from_toml_str(&toml).unwrap();
    let vault = test_vault();
    let token = vault
        .tokenize(
            &Sensitive::parse(DataClass::Pan, CARD).unwrap(),
            &TokenizeOptions::default(),
        )
        .await
        .unwrap();
    let handle = app::start(&config, Arc::clone(&vault)).await.unwrap();
    let uri = format!(
        "https://localhost:{}/v1/detokenize",
        handle.api_addr().port()
    );
    let req = || {
        Request::post(&uri)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                json!({ "tokens": [token] }).to_string(),
            )))
            .unwrap()
    };

    let r = send(&pki.https_client(Some(&good)), req()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["results"][0]["value"], CARD);

    // No certificate, no key: 401 (the handshake allows it, the API does not).
    let r = send(&pki.https_client(None), req()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // The same name from another CA: refused at the handshake, or 401.
    match pki.https_client(Some(&stranger)).request(req()).await {
        Err(_) => {}
        Ok(res) => assert_eq!(res.status(), StatusCode::UNAUTHORIZED),
    }
    handle.stop().await;
}

/// A card number sent by mistake as a token is not echoed in its error; a request
/// with two `Authorization` headers is not authenticated (which one counts would be
/// a guess between the proxy in front and the server).
#[tokio::test]
async fn a_card_sent_as_a_token_is_not_echoed_and_two_credentials_are_refused() {
    let full = api_client(
        "full",
        r#"reveal = ["pan"]
tokenize = ["pan"]"#,
    );
    let other = api_client("other", r#"tokenize = ["pan"]"#);
    let dir = tempfile::tempdir().unwrap();
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!(
            "{}{}{}",
            audit_toml(&dir.path().join("audit.log")),
            full.toml,
            other.toml
        ),
    );
    let handle = start(&toml).await;
    let addr = handle.api_addr();
    let token = tokenize(addr, &full.key, json!([{ "class": "pan", "value": CARD }])).await;
    let out = reveal(
        addr,
        &full.key,
        json!(["4111111111111111", "no-such-token", token[0]]),
    )
    .await;
    assert_eq!(out[0]["error"]["code"], "token_not_found");
    let text = out.to_string();
    assert!(!text.contains("4111111111111111"), "{text}");
    assert_eq!(out[1]["token"], "no-such-token");
    assert_eq!(out[2]["value"], CARD);

    let req = Request::post(url(addr, "/v1/detokenize"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", other.key))
        .header("authorization", format!("Bearer {}", full.key))
        .body(Full::new(Bytes::from(
            json!({"tokens": [token[0]]}).to_string(),
        )))
        .unwrap();
    let r = send(&http1(), req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    handle.shutdown();
}
