//! Crash consistency: the real binary under concurrent durable tokenizing load is
//! SIGKILLed at a random moment and restarted on the same store, 20 times. Every
//! token the upstream received must reveal to exactly the card number sent for it:
//! after each restart a sample is checked through the proxy (PAN tokens are
//! deterministic, so re-sending a card must give back its recorded token), and at
//! the end all of them through `vaultgate detokenize --batch`. On sled (the default
//! store) and on fjall.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::binary::{VaultDir, free_port};
use crate::common::*;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use rand::seq::IndexedRandom as _;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream};
use vaultgate::sensitive::luhn;

const CYCLES: usize = 20;
const TASKS: usize = 8;

const ROUTES: &str = r#"
[[upstreams]]
name = "backend"
url = "http://UPSTREAM"
[[routes]]
name = "q2open"
upstream = "backend"
method = "POST"
path = "/v1/payment"
profile = "q2open"
"#;

/// A Luhn-valid 16-digit number on the 424242 test BIN, unique per `id`.
fn card(id: u64) -> String {
    let payload = format!("424242{id:09}");
    format!("{payload}{}", luhn::check_digit(&payload))
}

fn body(id: u64, card: &str) -> String {
    format!(
        r#"{{"paymentType":"card","cardNumber":"{card}","cardCode":"123","orderId":"o{id}","amount":10}}"#
    )
}

fn request(proxy: SocketAddr, id: u64, card: &str) -> Request<Full<Bytes>> {
    Request::post(url(proxy, "/v1/payment"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body(id, card))))
        .unwrap()
}

/// The (order id → token) pairs the upstream has received so far.
fn forwarded(echo: &EchoHandle) -> HashMap<u64, String> {
    let mut out = HashMap::new();
    for r in echo.received() {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let id: u64 = v["orderId"].as_str().unwrap()[1..].parse().unwrap();
        let token = v["cardNumber"].as_str().unwrap().to_owned();
        assert!(luhn::is_valid(&card(id)));
        assert_ne!(token, card(id), "a card number reached the upstream");
        if let Some(prev) = out.insert(id, token.clone()) {
            assert_eq!(
                prev, token,
                "order {id} forwarded twice with different tokens"
            );
        }
    }
    out
}

async fn start(vault: &VaultDir, config: &std::path::Path, proxy: SocketAddr) -> Child {
    let mut child = vault.serve(config);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(proxy).await.is_ok() {
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let kept = keep_evidence(vault);
            panic!(
                "vaultgate serve did not come back ({status}); store kept at {}; log:\n{}",
                kept.display(),
                vault.serve_log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "vaultgate serve is not listening"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Copy the store, keyring and server log somewhere that outlives the test.
fn keep_evidence(vault: &VaultDir) -> std::path::PathBuf {
    let to = std::env::temp_dir().join(format!("vaultgate-crash-evidence-{}", std::process::id()));
    let _ = std::process::Command::new("cp")
        .arg("-a")
        .arg(vault.dir.path())
        .arg(&to)
        .status();
    to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_survive_sigkill() {
    survive_sigkill("sled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_survive_sigkill_on_fjall() {
    survive_sigkill("fjall").await;
}

async fn survive_sigkill(store: &'static str) {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let vault = VaultDir::init_on(store);
    let (proxy, api) = (free_port(), free_port());
    let config = vault.write_config(proxy, api, &ROUTES.replace("UPSTREAM", &up.to_string()));
    let next_id = Arc::new(AtomicU64::new(1));
    let mut sampled = 0usize;
    let mut resent_lost = Vec::new();
    let started = Instant::now();

    for cycle in 0..CYCLES {
        let mut child = start(&vault, &config, proxy).await;
        let client = http1();

        // After a restart: a sample of earlier tokens must come back unchanged.
        let known: Vec<(u64, String)> = forwarded(&echo).into_iter().collect();
        let sample: Vec<_> = known
            .choose_multiple(&mut rand::rng(), 20)
            .cloned()
            .collect();
        for (id, token) in &sample {
            let before = echo.received().len();
            let reply = send(&client, request(proxy, *id, &card(*id))).await;
            assert_eq!(reply.status, 200, "cycle {cycle}: re-sending order {id}");
            let got = echo.received();
            let v: serde_json::Value = serde_json::from_slice(&got[before].body).unwrap();
            if v["cardNumber"].as_str() != Some(token.as_str()) {
                resent_lost.push((cycle, *id));
            }
            sampled += 1;
        }

        // Load, then SIGKILL at a random moment while requests are in flight.
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (client, stop, next_id) =
                    (client.clone(), Arc::clone(&stop), Arc::clone(&next_id));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        // Errors are expected once the process is killed.
                        if let Ok(res) = client.request(request(proxy, id, &card(id))).await {
                            let _ = res.into_body().collect().await;
                        }
                    }
                })
            })
            .collect();
        let load = Duration::from_millis(rand::random_range(300..1000));
        tokio::time::sleep(load).await;
        child.kill().unwrap();
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
    }

    // Everything the upstream ever received, revealed by the CLI.
    let all: Vec<(u64, String)> = forwarded(&echo).into_iter().collect();
    let tokens: Vec<String> = all.iter().map(|(_, t)| t.clone()).collect();
    let revealed = vault.detokenize_batch(&tokens);
    assert_eq!(revealed.len(), tokens.len());
    let mut lost = Vec::new();
    for ((id, token), value) in all.iter().zip(&revealed) {
        if *value != card(*id) {
            lost.push(format!(
                "order {id}: token {token} revealed {}",
                if value.starts_with('!') {
                    value.as_str()
                } else {
                    "a different value"
                }
            ));
        }
    }
    println!(
        "crash consistency ({store}): {CYCLES} cycles, {} tokens checked, {} lost ({sampled} re-sent after restarts, {} changed) in {:?}",
        tokens.len(),
        lost.len(),
        resent_lost.len(),
        started.elapsed()
    );
    assert!(
        tokens.len() > CYCLES * 10,
        "too little load: {} tokens",
        tokens.len()
    );
    if !lost.is_empty() || !resent_lost.is_empty() {
        let kept = keep_evidence(&vault);
        panic!(
            "lost tokens (store kept at {}):\n{}\nchanged after restart: {resent_lost:?}",
            kept.display(),
            lost.join("\n")
        );
    }
    echo.stop().await;
}
