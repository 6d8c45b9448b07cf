//! Running it: API access lines and metrics, client revocation by reload, and a
//! `check-config` that catches what `serve` would fail on.

use std::process::Command;
use std::time::Duration;

use crate::common::binary::{BIN, VaultDir, free_port, wait_listening};
use crate::common::*;
use http::StatusCode;
use serde_json::json;

const CARD: &str = "4242424242424242";

/// A config for the real binary: JSON logs at info, the vault in `v`, `rest` after.
fn binary_config(
    v: &VaultDir,
    proxy: std::net::SocketAddr,
    api: std::net::SocketAddr,
    rest: &str,
) -> std::path::PathBuf {
    binary_config_at(v, proxy, api, "info", rest)
}

/// [`binary_config`] with logs at `level`.
fn binary_config_at(
    v: &VaultDir,
    proxy: std::net::SocketAddr,
    api: std::net::SocketAddr,
    level: &str,
    rest: &str,
) -> std::path::PathBuf {
    let text = format!(
        "[proxy]\nlisten = \"{proxy}\"\n[api]\nlisten = \"{api}\"\n[vault]\nkeyring = \"{}\"\n\
         data = \"{}\"\ncache_capacity_mb = 16\n[log]\nlevel = \"{level}\"\nformat = \"json\"\n{rest}\n",
        path_str(&v.keyring),
        path_str(&v.data)
    );
    let path = v.dir.path().join("vaultgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn api_access_lines_metrics_and_revocation_by_sighup() {
    let v = VaultDir::init();
    let (proxy, addr) = (free_port(), free_port());
    let svc = api_client("svc", "tokenize = [\"pan\"]\nreveal = [\"pan\"]");
    let config = binary_config(&v, proxy, addr, &svc.toml);
    let mut child = v.serve(&config);
    wait_listening(&mut child, addr, Duration::from_secs(20)).await;

    let r = api(
        addr,
        "POST",
        "/v1/tokenize",
        &svc.key,
        json!({"values": [{"class": "pan", "value": CARD}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.contains_key("x-request-id"));
    let token = r.json()["results"][0]["token"].as_str().unwrap().to_owned();
    let r = api(
        addr,
        "POST",
        "/v1/detokenize",
        &svc.key,
        json!({"tokens": [token]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    let metrics = metrics_text(addr).await;
    for want in [
        "vaultgate_api_requests_total{endpoint=\"/v1/tokenize\",client=\"svc\",outcome=\"ok\"} 1",
        "vaultgate_api_requests_total{endpoint=\"/v1/detokenize\",client=\"svc\",outcome=\"ok\"} 1",
        "vaultgate_reveals_total{class=\"pan\"} 1",
        "vaultgate_store_operation_duration_seconds_bucket{op=\"tokenize\"",
        "vaultgate_store_operation_duration_seconds_bucket{op=\"detokenize\"",
        "vaultgate_store_operation_duration_seconds_bucket{op=\"durable\"",
        "vaultgate_config_generation 1",
    ] {
        assert!(metrics.contains(want), "{want} missing from\n{metrics}");
    }
    // Every family the operator can scrape is in the deployment guide's reference.
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/deploy.md"),
    )
    .unwrap();
    let undocumented: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split(' ').next())
        .filter(|name| !guide.contains(&format!("`{name}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/deploy.md's metric reference: {undocumented:?}"
    );

    // Revocation: remove the client, SIGHUP; the same process serves on.
    binary_config(&v, proxy, addr, "");
    let hup = |sig: &str| {
        Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
    };
    assert!(hup("-HUP").success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = api(
            addr,
            "POST",
            "/v1/detokenize",
            &svc.key,
            json!({"tokens": ["x"]}),
        )
        .await;
        if r.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the client was not revoked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The reload counts itself just after it swapped the config in: the revocation
    // can be seen a moment before the count.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = metrics_text(addr).await;
        if metrics.contains("vaultgate_config_generation 2") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hup("-TERM").success());
    let status = child.wait().unwrap();
    assert!(status.success());

    let logs = v.serve_log();
    assert!(!logs.contains(CARD), "{logs}");
    let access: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "vaultgate::access")
        .collect();
    let tokenize = access
        .iter()
        .find(|v| v["path"] == "/v1/tokenize")
        .expect(&logs);
    assert_eq!(tokenize["client"], "svc");
    assert_eq!(tokenize["values"], 1);
    assert_eq!(tokenize["status"], 200);
    assert_eq!(tokenize["listener"], "api");
    assert_eq!(tokenize["request_id"].as_str().unwrap().len(), 36);
    let reveal = access
        .iter()
        .find(|v| v["path"] == "/v1/detokenize")
        .unwrap();
    assert_eq!(reveal["values"], 1);
    assert!(logs.contains("config reloaded"), "{logs}");
}

fn check(config: &std::path::Path, cwd: &std::path::Path) -> (bool, String) {
    let out = Command::new(BIN)
        .current_dir(cwd)
        .args(["check-config", "--config", path_str(config).as_str()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_catches_what_serve_would_fail_on() {
    let v = VaultDir::init();
    let elsewhere = tempfile::tempdir().unwrap();
    let (proxy, api) = (free_port(), free_port());
    let write = |extra: &str, vault: &str| {
        let text = format!(
            "[proxy]\nlisten = \"{proxy}\"\n{extra}\n[api]\nlisten = \"{api}\"\n[vault]\n{vault}\n"
        );
        let path = v.dir.path().join("check.toml");
        std::fs::write(&path, text).unwrap();
        path
    };
    // Relative paths resolve against the config's folder, not the working directory.
    let good = write("", "keyring = \"keyring.json\"\ndata = \"data\"");
    let (ok, err) = check(&good, elsewhere.path());
    assert!(ok, "{err}");

    let keys = "keyring = \"keyring.json\"\ndata = \"data\"";
    let pki = Pki::new("check");
    let other = Pki::new("other");
    let (cert, _) = pki.server("a");
    let (_, key) = other.server("b");
    for (extra, vault, want) in [
        (
            "tls = { cert = \"missing.pem\", key = \"missing-key.pem\" }",
            keys,
            "proxy.tls.cert",
        ),
        (
            &*format!(
                "tls = {{ cert = \"{}\", key = \"{}\" }}",
                path_str(&cert),
                path_str(&key)
            ),
            keys,
            "do not fit",
        ),
        (
            "",
            "keyring = \"nope.json\"\ndata = \"data\"",
            "vault.keyring",
        ),
        (
            "",
            "keyring = \"keyring.json\"\ndata = \"check.toml\"",
            "vault.data",
        ),
    ] {
        let path = write(extra, vault);
        let (ok, err) = check(&path, elsewhere.path());
        assert!(!ok && err.contains(want), "{want}: {err}");
        // `--offline` parses and validates only: the same file passes.
        let offline = Command::new(BIN)
            .current_dir(elsewhere.path())
            .args([
                "check-config",
                "--offline",
                "--config",
                path_str(&path).as_str(),
            ])
            .output()
            .unwrap();
        assert!(
            offline.status.success(),
            "--offline, {want}: {}",
            String::from_utf8_lossy(&offline.stderr)
        );
    }
    let write_raw = |text: String| {
        let path = v.dir.path().join("raw.toml");
        std::fs::write(&path, text).unwrap();
        path
    };
    for (text, want) in [
        (
            format!(
                "[proxy]\nlisten = \"{proxy}\"\n[api]\nlisten = \"{proxy}\"\n[vault]\n{keys}\n"
            ),
            "api.listen",
        ),
        (
            format!(
                "[proxy]\nlisten = \"{proxy}\"\n[api]\nlisten = \"{api}\"\n[vault]\n{keys}\n[log]\nlevel = \"information\"\n"
            ),
            "log.level",
        ),
        (
            format!(
                "[proxy]\nlisten = \"{proxy}\"\n[api]\nlisten = \"{api}\"\n[vault]\n{keys}\n[[upstreams]]\nname = \"b\"\nurl = \"http://127.0.0.1:9\"\n[[routes]]\nname = \"r\"\nupstream = \"b\"\npath = \"/x\"\nfields = [{{ path = \"\", class = \"pan\" }}]\n"
            ),
            "routes[0].fields[0]",
        ),
    ] {
        let (ok, err) = check(&write_raw(text), elsewhere.path());
        assert!(!ok && err.contains(want), "{want}: {err}");
    }
}

/// A proxy shard writes its access lines in batches: they reach the log within the
/// flush interval while the server runs, and none is lost when it stops.
#[tokio::test]
async fn proxy_access_lines_arrive_while_serving_and_none_is_lost_at_shutdown() {
    let (up, echo) = vaultgate::demo::echo::EchoUpstream::start().await.unwrap();
    let v = VaultDir::init();
    let (proxy, addr) = (free_port(), free_port());
    let routes = pass_route(up);
    let config = binary_config(&v, proxy, addr, &routes);
    let mut child = v.serve(&config);
    wait_listening(&mut child, proxy, Duration::from_secs(20)).await;
    let access = |logs: &str| proxy_access_lines(logs, "/pass/*");

    // Twenty lines are far below a batch's size: only the shard's timer writes them.
    let client = http1();
    for _ in 0..20 {
        let r = send(&client, pass_get(proxy, "/pass/x")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while access(&v.serve_log()) < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the access lines were not written while serving:\n{}",
            v.serve_log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Stopped right after more requests: their held lines are written on the way out.
    for _ in 0..30 {
        let r = send(&client, pass_get(proxy, "/pass/y")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    stop(&mut child);
    assert_eq!(access(&v.serve_log()), 50, "{}", v.serve_log());
    echo.stop().await;
}

/// An upstream `up` at `addr` and a pass-through route `pass` on `/pass/*` to it.
fn pass_route(addr: std::net::SocketAddr) -> String {
    format!(
        "[[upstreams]]\nname = \"up\"\nurl = \"http://{addr}\"\n\
         [[routes]]\nname = \"pass\"\nupstream = \"up\"\nmethod = \"*\"\npath = \"/pass/*\"\n"
    )
}

/// The proxy's access lines for the route template `path` in a JSON log.
fn proxy_access_lines(logs: &str, path: &str) -> usize {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["target"] == "vaultgate::access" && v["listener"] == "proxy" && v["path"] == path
        })
        .count()
}

/// SIGTERM, and a clean exit.
fn stop(child: &mut std::process::Child) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success());
}

fn pass_get(
    addr: std::net::SocketAddr,
    path: &str,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::get(url(addr, path))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap()
}

/// `log.level` changes with a SIGHUP: access lines (info) appear once the level is
/// `info` and stop again at `warn`, in the same process.
#[tokio::test]
async fn sighup_changes_the_log_level() {
    let (up, echo) = vaultgate::demo::echo::EchoUpstream::start().await.unwrap();
    let v = VaultDir::init();
    let (proxy, addr) = (free_port(), free_port());
    let routes = pass_route(up);
    let config = binary_config_at(&v, proxy, addr, "warn", &routes);
    let mut child = v.serve(&config);
    wait_listening(&mut child, proxy, Duration::from_secs(20)).await;
    let client = http1();
    let generation = |n: u32| async move {
        let text = metrics_text(addr).await;
        text.contains(&format!("vaultgate_config_generation {n}"))
    };
    let reload = |level: &str, n: u32| {
        binary_config_at(&v, proxy, addr, level, &routes);
        let hup = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(hup.success());
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !generation(n).await {
                assert!(std::time::Instant::now() < deadline, "no reload");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let hit = |path: &'static str| {
        let client = client.clone();
        async move {
            let r = send(&client, pass_get(proxy, path)).await;
            assert_eq!(r.status, StatusCode::OK);
        }
    };

    hit("/pass/*").await;
    reload("info", 2).await;
    hit("/pass/*").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while proxy_access_lines(&v.serve_log(), "/pass/*") < 1 {
        assert!(std::time::Instant::now() < deadline, "{}", v.serve_log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reload("warn", 3).await;
    hit("/pass/*").await;
    stop(&mut child);
    // One line: the request at info; none at warn, before or after.
    assert_eq!(
        proxy_access_lines(&v.serve_log(), "/pass/*"),
        1,
        "{}",
        v.serve_log()
    );
    echo.stop().await;
}

/// The API's `/metrics` text.
async fn metrics_text(api: std::net::SocketAddr) -> String {
    String::from_utf8(
        call(api, "GET", "/metrics", None, serde_json::Value::Null)
            .await
            .body
            .to_vec(),
    )
    .unwrap()
}
