//! The live key lifecycle on a real `vaultgate serve`: a rotated keyring is picked up
//! without a restart, `keys rewrap --api` rewraps through the server that holds the
//! sled store, and `/readyz` follows the database (cut and restored through a TCP
//! proxy this test controls; the shared test cluster is never stopped).

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;

use crate::common::binary::{BIN, PASS, VaultDir, free_port, wait_listening};
use crate::common::{PgSchema, api, call, path_str};

fn client_toml(hash: &str) -> String {
    format!(
        "[[clients]]\nname = \"ops\"\napi_key_hash = \"{hash}\"\nreveal = [\"pan\", \"secret\"]\n\
         tokenize = [\"pan\", \"secret\"]\nseal = true\n"
    )
}

fn cli(vd: &VaultDir, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["--keyring", path_str(&vd.keyring).as_str()])
        .args(["--data", path_str(&vd.data).as_str()])
        .args(args)
        .env("VAULTGATE_PASSPHRASE", PASS)
        .output()
        .unwrap()
}

async fn tokenize(addr: SocketAddr, key: &str, value: &str) -> String {
    let r = api(
        addr,
        "POST",
        "/v1/tokenize",
        key,
        json!({ "values": [{ "class": "secret", "value": value }] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "tokenize");
    r.json()["results"][0]["token"].as_str().unwrap().to_owned()
}

async fn reveal(addr: SocketAddr, key: &str, token: &str) -> serde_json::Value {
    let r = api(
        addr,
        "POST",
        "/v1/detokenize",
        key,
        json!({ "tokens": [token] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "detokenize");
    r.json()["results"][0].clone()
}

async fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let r = call(addr, "GET", "/metrics", None, serde_json::Value::Null).await;
    String::from_utf8_lossy(&r.body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

async fn wait_for(what: &str, patience: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_is_picked_up_live_and_rewrapped_through_the_server_on_sled() {
    let vd = VaultDir::init();
    let (key, hash) = vaultgate::auth::generate_api_key().unwrap();
    let (proxy, api_addr) = (free_port(), free_port());
    let config = vd.write_config(proxy, api_addr, &client_toml(&hash));
    let mut server = vd.serve(&config);
    wait_listening(&mut server, api_addr, Duration::from_secs(20)).await;

    let mut tokens = Vec::new();
    for i in 0..20 {
        let value = format!("before rotation {i}");
        tokens.push((tokenize(api_addr, &key, &value).await, value));
    }
    assert_eq!(
        metric(api_addr, "vaultgate_key_active_version").await,
        Some(1.0)
    );

    // Rotate while the server runs: it seals under version 2 without a restart.
    let out = cli(&vd, &["keys", "rotate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        "the server picks up version 2",
        Duration::from_secs(10),
        async || metric(api_addr, "vaultgate_key_active_version").await == Some(2.0),
    )
    .await;
    for i in 0..20 {
        let value = format!("after rotation {i}");
        tokens.push((tokenize(api_addr, &key, &value).await, value));
    }

    // The CLI cannot open the store the server holds: it asks the server.
    let out = Command::new(BIN)
        .args(["--keyring", path_str(&vd.keyring).as_str()])
        .args(["--data", path_str(&vd.data).as_str()])
        .args(["keys", "rewrap", "--api", &format!("http://{api_addr}")])
        .env("VAULTGATE_API_KEY", &key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("\"rewrapped\":20"), "{stderr}");
    assert_eq!(
        metric(api_addr, "vaultgate_rewrap_records_total").await,
        Some(20.0)
    );
    assert_eq!(
        metric(api_addr, "vaultgate_rewrap_remaining").await,
        Some(0.0)
    );
    // Without a seal-permitted key the endpoint refuses.
    let r = api(
        api_addr,
        "POST",
        "/v1/sys/rewrap",
        "vg_not_a_key",
        serde_json::Value::Null,
    )
    .await;
    assert!(r.status == StatusCode::UNAUTHORIZED || r.status == StatusCode::FORBIDDEN);

    for (token, value) in &tokens {
        assert_eq!(reveal(api_addr, &key, token).await["value"], value.as_str());
    }
    stop(server);

    // No record is left under version 1: a second rewrap has nothing to do, and every
    // token reveals offline.
    let out = cli(&vd, &["keys", "rewrap"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rewrapped 0 records"), "{stderr}");
    let list: Vec<String> = tokens.iter().map(|(t, _)| t.clone()).collect();
    let values: Vec<String> = tokens.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(vd.detokenize_batch(&list), values);
}

/// A TCP proxy to the test database that can be cut (every connection dropped, new
/// ones refused) and restored.
async fn cuttable_proxy(target: SocketAddr, cut: Arc<AtomicBool>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            if cut.load(Ordering::SeqCst) {
                continue;
            }
            let cut = Arc::clone(&cut);
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                let watch = async {
                    while !cut.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                };
                tokio::select! {
                    _ = copy => {}
                    _ = watch => {}
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_the_database_is_down_and_200_when_it_is_back() {
    let Some(pg) = PgSchema::new().await else {
        eprintln!("skipped: VAULTGATE_TEST_POSTGRES_URL not set");
        return;
    };
    let cut = Arc::new(AtomicBool::new(false));
    let via = cuttable_proxy(pg.server, Arc::clone(&cut)).await;
    let url = pg.url_via(via, "&connect_timeout=2");

    let vd = VaultDir::init();
    let (proxy, api_addr) = (free_port(), free_port());
    let config = vd.write_config(proxy, api_addr, "");
    // The store settings belong to [vault].
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "store = \"sled\"\n",
        &format!("store = \"postgres\"\npostgres_url = \"{url}\"\n"),
    );
    std::fs::write(&config, text).unwrap();
    let mut server = vd.serve(&config);
    wait_listening(&mut server, api_addr, Duration::from_secs(20)).await;
    let ready = async || {
        call(api_addr, "GET", "/readyz", None, serde_json::Value::Null)
            .await
            .status
    };
    wait_for("ready at start", Duration::from_secs(10), async || {
        ready().await == StatusCode::OK
    })
    .await;

    cut.store(true, Ordering::SeqCst);
    wait_for(
        "503 with the database down",
        Duration::from_secs(15),
        async || ready().await == StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;

    cut.store(false, Ordering::SeqCst);
    wait_for(
        "200 with the database back",
        Duration::from_secs(20),
        async || ready().await == StatusCode::OK,
    )
    .await;
    let log = vd.serve_log();
    stop(server);
    assert!(log.contains("not ready"), "the outage is logged: {log}");
    pg.admin
        .batch_execute(&format!("DROP SCHEMA {} CASCADE", pg.schema))
        .await
        .unwrap();
}
