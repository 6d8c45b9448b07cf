//! The audit log over time, with the real binary and real sled: CLI key rotation while
//! a server reveals, CLI reveals audited, strings that are not tokens never logged,
//! failed authentications in aggregate, and logrotate's rename-then-signal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use http::StatusCode;
use serde_json::{Value, json};

use crate::common::binary::{BIN, PASS, VaultDir, free_port, wait_listening};
use crate::common::*;

const CARD: &str = "4242424242424242";

/// `vaultgate --keyring … --data … ARGS` with the test passphrase, `USER=auditor`.
fn cli(vault: &VaultDir, args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(BIN)
        .arg("--keyring")
        .arg(&vault.keyring)
        .arg("--data")
        .arg(&vault.data)
        .args(args)
        .env("VAULTGATE_PASSPHRASE", PASS)
        .env("USER", "auditor")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `vaultgate audit verify` with the keyring: (passed, report).
fn verify(vault: &VaultDir, log: &Path, checkpoints: Option<&Path>) -> (bool, String) {
    let mut args = vec!["audit".to_owned(), "verify".to_owned(), path_str(log)];
    if let Some(c) = checkpoints {
        args.push("--checkpoints".to_owned());
        args.push(path_str(c));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cli(vault, &args, "");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn audit_log(vault: &VaultDir) -> PathBuf {
    vault.data.join("audit.log")
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// SIGTERM, then wait for a clean exit.
fn stop(mut child: Child) {
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
}

/// A server (the real binary) with one client that may tokenize and reveal cards.
async fn serve(vault: &VaultDir, client: &ApiClient) -> (Child, std::net::SocketAddr) {
    let api = free_port();
    let config = vault.write_config(free_port(), api, &client.toml);
    let mut child = vault.serve(&config);
    wait_listening(&mut child, api, Duration::from_secs(20)).await;
    (child, api)
}

fn card_client() -> ApiClient {
    api_client("checkout", "reveal = [\"pan\"]\ntokenize = [\"pan\"]")
}

async fn tokenize_card(api: std::net::SocketAddr, key: &str, card: &str) -> String {
    let r = crate::common::api(
        api,
        "POST",
        "/v1/tokenize",
        key,
        json!({ "values": [{ "class": "pan", "value": card }] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["results"][0]["token"].as_str().unwrap().to_owned()
}

async fn reveal(api: std::net::SocketAddr, key: &str, tokens: Value) -> Value {
    let r = crate::common::api(
        api,
        "POST",
        "/v1/detokenize",
        key,
        json!({ "tokens": tokens }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    r.json()["results"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_while_serving_keeps_one_chain_and_the_server_restarts() {
    let vault = VaultDir::init();
    let client = card_client();
    let (server, api) = serve(&vault, &client).await;
    let token = tokenize_card(api, &client.key, CARD).await;

    // Reveal in a loop while the CLI rotates keys three times.
    let stop_flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop_flag);
    let key = client.key.clone();
    let t = token.clone();
    let loop_task = tokio::spawn(async move {
        let mut n = 0u32;
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            let out = reveal(api, &key, json!([t, t])).await;
            assert_eq!(out[0]["value"], CARD);
            n += 1;
        }
        n
    });
    for _ in 0..3 {
        let out = tokio::task::spawn_blocking({
            let keyring = vault.keyring.clone();
            let data = vault.data.clone();
            move || {
                Command::new(BIN)
                    .arg("--keyring")
                    .arg(keyring)
                    .arg("--data")
                    .arg(data)
                    .args(["keys", "rotate"])
                    .env("VAULTGATE_PASSPHRASE", PASS)
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        ok(&out);
    }
    stop_flag.store(true, std::sync::atomic::Ordering::SeqCst);
    let reveals = loop_task.await.unwrap();
    assert!(reveals > 0);
    stop(server);

    let text = std::fs::read_to_string(audit_log(&vault)).unwrap();
    assert_eq!(text.matches("\"action\":\"key_rotate\"").count(), 3);
    assert!(text.contains("\"client\":\"cli:"));
    let (passed, report) = verify(&vault, &audit_log(&vault), None);
    assert!(passed, "{report}");
    assert!(report.contains("checkpoints: "), "{report}");

    // The next serve starts, continues the chain, and reveals.
    let (server, api) = serve(&vault, &client).await;
    let out = reveal(api, &client.key, json!([token])).await;
    assert_eq!(out[0]["value"], CARD);
    stop(server);
    let (passed, report) = verify(&vault, &audit_log(&vault), None);
    assert!(passed, "{report}");
}

#[tokio::test]
async fn cli_reveals_are_audited_as_the_os_user() {
    let vault = VaultDir::init();
    let token = ok(&cli(&vault, &["tokenize", "--class", "pan"], CARD))
        .trim()
        .to_owned();
    assert_eq!(ok(&cli(&vault, &["detokenize", &token], "")).trim(), CARD);
    let batch = ok(&cli(
        &vault,
        &["detokenize", "--batch"],
        &format!("{token}\n{}\n", "4111111111111111"),
    ));
    assert_eq!(
        batch.lines().collect::<Vec<_>>(),
        [CARD, "!token_not_found"]
    );

    let text = std::fs::read_to_string(audit_log(&vault)).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by = |action: &str| {
        lines
            .iter()
            .filter(|l| l["action"] == action && l["client"] == "cli:auditor")
            .count()
    };
    assert_eq!(by("tokenize"), 1, "{text}");
    assert_eq!(by("reveal"), 3, "{text}");
    assert!(
        lines.iter().any(|l| l["action"] == "reveal"
            && l["token"] == token.as_str()
            && l["class"] == "pan")
    );
    // The card sent as a token is not in the log, in any form.
    assert!(!text.contains(CARD) && !text.contains("4111111111111111"));
    assert!(lines.iter().any(
        |l| l["outcome"] == "token_not_found" && l["token"].as_str().unwrap().starts_with("h:")
    ));
    let (passed, report) = verify(&vault, &audit_log(&vault), None);
    assert!(passed, "{report}");
}

#[tokio::test]
async fn strings_that_are_not_tokens_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    // A client with no scopes at all, and one that may reveal.
    let nobody = api_client("nobody", "");
    let c = card_client();
    let toml = config_toml(
        "http://127.0.0.1:9",
        &format!("{}{}{}", audit_toml(&log), nobody.toml, c.toml),
    );
    let handle = start_in(dir.path(), &toml).await;
    let addr = handle.api_addr();
    let token = tokenize_card(addr, &c.key, "4111111111111111").await;

    // A card number as a "token": to detokenize, metadata and delete.
    let out = reveal(addr, &nobody.key, json!([CARD])).await;
    assert_eq!(out[0]["error"]["code"], "token_not_found");
    let r = crate::common::api(
        addr,
        "GET",
        &format!("/v1/tokens/{CARD}"),
        &nobody.key,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = crate::common::api(
        addr,
        "DELETE",
        &format!("/v1/tokens/{CARD}"),
        &nobody.key,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A 900 kB "token", and a path longer than any token: 400, before the log.
    let huge = "9".repeat(900 * 1024);
    let r = crate::common::api(
        addr,
        "POST",
        "/v1/detokenize",
        &nobody.key,
        json!({ "tokens": [huge] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let long = "7".repeat(100);
    let r = crate::common::api(
        addr,
        "GET",
        &format!("/v1/tokens/{long}"),
        &nobody.key,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The genuine token is named.
    assert_eq!(
        reveal(addr, &c.key, json!([token])).await[0]["value"],
        "4111111111111111"
    );

    // Twenty bad keys from one source: a metric, and one aggregated entry at shutdown.
    for _ in 0..20 {
        let r = crate::common::api(
            addr,
            "POST",
            "/v1/detokenize",
            "vg_wrong",
            json!({ "tokens": [token] }),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let m = call(addr, "GET", "/metrics", None, Value::Null).await;
    let metrics = String::from_utf8_lossy(&m.body).into_owned();
    assert!(
        metrics.contains("vaultgate_auth_failures_total{listener=\"api\"} 20"),
        "{metrics}"
    );
    handle.stop().await;

    let bytes = std::fs::read(&log).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(!bytes.windows(CARD.len()).any(|w| w == CARD.as_bytes()));
    assert!(!text.contains(&"9".repeat(64)));
    assert!(!text.contains(&long));
    assert!(bytes.len() < 8 * 1024, "{} bytes", bytes.len());
    assert!(text.contains(&token));
    let failures: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"action\":\"auth_failure\""))
        .collect();
    assert_eq!(failures.len(), 1, "{text}");
    assert!(
        failures[0].contains("\"count\":20") && failures[0].contains("\"origin\":\"127.0.0.1\"")
    );
    assert!(vaultgate::audit::verify(&log, None).unwrap().is_intact());
}

#[tokio::test]
async fn logrotate_rename_then_sighup_reopens_the_file() {
    let vault = VaultDir::init();
    let client = card_client();
    let (server, api) = serve(&vault, &client).await;
    let token = tokenize_card(api, &client.key, CARD).await;
    reveal(api, &client.key, json!([token])).await;

    let log = audit_log(&vault);
    let rotated = vault.data.join("audit.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    let before = std::fs::read(&rotated).unwrap();
    signal(&server, "HUP");
    // The reopen is asynchronous: reveal until an entry lands in the new file.
    let mut landed = false;
    for _ in 0..100 {
        reveal(api, &client.key, json!([token])).await;
        if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"action\":\"reveal\"")) {
            landed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        landed,
        "no entry in the new audit.log: {}",
        vault.serve_log()
    );
    // SIGUSR1 reopens too (same file now: the chain continues).
    signal(&server, "USR1");
    tokio::time::sleep(Duration::from_millis(200)).await;
    reveal(api, &client.key, json!([token])).await;
    stop(server);

    // The old file kept its entries (plus only what was written before the reopen).
    let old = std::fs::read(&rotated).unwrap();
    assert!(old.starts_with(&before));
    let (passed, report) = verify(&vault, &log, None);
    assert!(passed, "{report}");
    let (passed, report) = verify(
        &vault,
        &rotated,
        Some(&vault.data.join("audit.log.checkpoints")),
    );
    assert!(passed, "{report}");
    assert!(
        report.contains("checkpoints: ") && !report.contains("checkpoints: 0"),
        "{report}"
    );
}
