//! `vaultgate audit verify` (the real binary) on a log written by the real server:
//! intact passes; an edit, a deleted line and a reordering each fail.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;

use crate::common::*;
use http::StatusCode;
use serde_json::json;

fn verify(path: &Path) -> (bool, String) {
    let keyring = path.parent().unwrap().join("keyring.json");
    let out = Command::new(crate::common::binary::BIN)
        .arg("--keyring")
        .arg(&keyring)
        .args(["audit", "verify"])
        .arg(path)
        .env("VAULTGATE_PASSPHRASE", TEST_PASSPHRASE)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn audit_verify_catches_each_kind_of_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let c = api_client("auditor", "reveal = [\"pan\"]\ntokenize = [\"pan\"]");
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{}", audit_toml(&log), c.toml),
    );
    let handle = start_in(dir.path(), &toml).await;
    let addr = handle.api_addr();
    let r = api(
        addr,
        "POST",
        "/v1/tokenize",
        &c.key,
        json!({ "values": [
            { "class": "pan", "value": "4242424242424242" },
            { "class": "pan", "value": "4111111111111111" },
        ] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let tokens: Vec<String> = r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap().to_owned())
        .collect();
    for _ in 0..2 {
        let r = api(
            addr,
            "POST",
            "/v1/detokenize",
            &c.key,
            json!({ "tokens": tokens }),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    handle.stop().await;

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    let (ok, report) = verify(&log);
    assert!(ok, "{report}");

    let write = |name: &str, lines: &[String]| {
        let p = dir.path().join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    };
    let owned: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();

    // Edit: another client name on line 3.
    let mut edited = owned.clone();
    edited[2] = edited[2].replace("\"client\":\"auditor\"", "\"client\":\"someone\"");
    assert_ne!(edited[2], owned[2]);
    // Delete: line 3 gone.
    let mut deleted = owned.clone();
    deleted.remove(2);
    // Reorder: lines 3 and 4 swapped.
    let mut reordered = owned.clone();
    reordered.swap(2, 3);

    for (name, tampered) in [
        ("edited.log", edited),
        ("deleted.log", deleted),
        ("reordered.log", reordered),
    ] {
        let p = write(name, &tampered);
        let (ok, report) = verify(&p);
        assert!(!ok, "{name} passed verification: {report}");
    }
}
