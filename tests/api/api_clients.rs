//! `vaultgate clients add` and `clients list` (the real binary), the `deterministic`
//! grant, and two keys per client during a rollover.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

use crate::common::binary::BIN;
use crate::common::*;
use http::StatusCode;
use serde_json::{Value, json};

const CARD: &str = "4242424242424242";

/// Run `vaultgate clients add …`: (the key, the `[[clients]]` snippet).
fn clients_add(args: &[&str]) -> (String, String) {
    let out = Command::new(BIN)
        .args(["clients", "add"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text.lines().nth(1).unwrap().to_owned();
    let snippet = text[text.find("[[clients]]").unwrap()..].to_owned();
    (key, snippet)
}

async fn tokenize(
    addr: std::net::SocketAddr,
    key: &str,
    class: &str,
    value: &str,
) -> (StatusCode, String) {
    let r = api(
        addr,
        "POST",
        "/v1/tokenize",
        key,
        json!({ "values": [{ "class": class, "value": value }] }),
    )
    .await;
    let token = if r.status == StatusCode::OK {
        r.json()["results"][0]["token"].as_str().unwrap().to_owned()
    } else {
        String::new()
    };
    (r.status, token)
}

#[tokio::test]
async fn a_clients_add_snippet_is_a_working_client_with_its_grants() {
    let (key, snippet) = clients_add(&[
        "billing",
        "--reveal",
        "pan,bank_account",
        "--reveal-masked",
        "secret",
        "--tokenize",
        "pan,secret",
        "--deterministic",
        "pan",
        "--delete",
        "--rate-limit",
        "120",
    ]);
    assert!(key.starts_with("vg_live_"), "{key}");
    assert!(
        snippet.contains(r#"reveal = ["pan", "bank_account"]"#),
        "{snippet}"
    );
    assert!(snippet.contains("rate_limit_per_minute = 120"), "{snippet}");
    // A client without the deterministic grant, for comparison.
    let (plain_key, plain) = clients_add(&["plain", "--tokenize", "pan", "--reveal", "pan"]);
    assert!(plain.contains("deterministic = []"), "{plain}");
    assert!(plain.contains("delete = false"), "{plain}");

    let dir = tempfile::tempdir().unwrap();
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!(
            "{}\n{snippet}\n{plain}",
            audit_toml(&dir.path().join("audit.log"))
        ),
    );
    let handle = start(&toml).await;
    let addr = handle.api_addr();

    // Granted deterministic PANs: the same card, the same token.
    let (status, a) = tokenize(addr, &key, "pan", CARD).await;
    assert_eq!(status, StatusCode::OK);
    let (_, b) = tokenize(addr, &key, "pan", CARD).await;
    assert_eq!(a, b);
    // Not granted: a fresh token each time, even when asked for.
    let (_, c) = tokenize(addr, &plain_key, "pan", CARD).await;
    let r = api(
        addr,
        "POST",
        "/v1/tokenize",
        &plain_key,
        json!({ "values": [{ "class": "pan", "value": CARD, "deterministic": true }] }),
    )
    .await;
    let d = r.json()["results"][0]["token"].as_str().unwrap().to_owned();
    assert_ne!(c, a);
    assert_ne!(c, d);
    // Outside the grant: 403.
    let (status, _) = tokenize(addr, &key, "cvv", "123").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Reveal in full, masked, and delete.
    let (_, secret) = tokenize(addr, &key, "secret", "hunter2-hunter2").await;
    let r = api(
        addr,
        "POST",
        "/v1/detokenize",
        &key,
        json!({ "tokens": [a, secret] }),
    )
    .await;
    let out = r.json()["results"].clone();
    assert_eq!(out[0]["value"], CARD);
    assert_eq!(out[1]["masked"], true);
    let r = api(
        addr,
        "DELETE",
        &format!("/v1/tokens/{c}"),
        &key,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api(
        addr,
        "DELETE",
        &format!("/v1/tokens/{d}"),
        &plain_key,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    handle.stop().await;

    // Grants are checked before a key is printed.
    let out = Command::new(BIN)
        .args([
            "clients",
            "add",
            "x",
            "--reveal",
            "pan",
            "--reveal-masked",
            "pan",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("vg_live_"));
}

#[tokio::test]
async fn two_keys_authenticate_one_client_during_a_rollover() {
    let (old_key, old_hash) = vaultgate::auth::generate_api_key().unwrap();
    let (new_key, new_hash) = vaultgate::auth::generate_api_key().unwrap();
    let (third_key, third_hash) = vaultgate::auth::generate_api_key().unwrap();
    let (other_key, other_hash) = vaultgate::auth::generate_api_key().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clients = format!(
        r#"
[[clients]]
name = "list"
api_key_hash = ["{old_hash}", "{new_hash}"]
reveal = ["pan"]

[[clients]]
name = "split"
api_key_hash = "{third_hash}"
api_key_hashes = ["{other_hash}"]
reveal = ["pan"]
"#
    );
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{clients}", audit_toml(&dir.path().join("audit.log"))),
    );
    let handle = start(&toml).await;
    let addr = handle.api_addr();
    for key in [&old_key, &new_key, &third_key, &other_key] {
        let r = api(
            addr,
            "POST",
            "/v1/detokenize",
            key,
            json!({ "tokens": ["x"] }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    handle.stop().await;
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert_eq!(log.matches(r#""client":"list""#).count(), 2, "{log}");
    assert_eq!(log.matches(r#""client":"split""#).count(), 2, "{log}");

    // The same hash twice is refused.
    let dup =
        format!("[[clients]]\nname = \"d\"\napi_key_hash = [\"{old_hash}\", \"{old_hash}\"]\n");
    let err = vaultgate::config::Config::from_toml_str(&config_toml("http://127.0.0.1:9", &dup))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("listed twice"), "{err}");
}

#[test]
fn clients_list_shows_names_grants_and_key_ids_never_hashes() {
    let (_, h1) = vaultgate::auth::generate_api_key().unwrap();
    let (_, h2) = vaultgate::auth::generate_api_key().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vaultgate.toml");
    let clients = format!(
        r#"
[[clients]]
name = "billing"
api_key_hash = ["{h1}", "{h2}"]
reveal = ["pan", "cvv"]
deterministic = ["pan"]
delete = true

[[clients]]
name = "support"
cert_subject = "CN=support.internal"
reveal_masked = ["pan"]
"#
    );
    std::fs::write(&path, config_toml("http://127.0.0.1:9", &clients)).unwrap();
    let out = Command::new(BIN)
        .args(["clients", "list", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let billing = text.lines().find(|l| l.starts_with("billing")).unwrap();
    let id1 = vaultgate::auth::key_id(&h1);
    let id2 = vaultgate::auth::key_id(&h2);
    assert_eq!(id1.len(), 8);
    assert!(billing.contains(&format!("{id1},{id2}")), "{text}");
    assert!(billing.contains("pan,cvv"), "{text}");
    assert!(billing.contains("yes"), "{text}");
    let support = text.lines().find(|l| l.starts_with("support")).unwrap();
    assert!(support.contains("CN=support.internal"), "{text}");
    assert!(!text.contains("argon2"), "{text}");
    for hash in [&h1, &h2] {
        let tail = hash.rsplit('$').next().unwrap();
        assert!(!text.contains(tail), "{text}");
    }
}
