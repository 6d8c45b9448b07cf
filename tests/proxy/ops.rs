//! Running it: config reload under load, refused reloads, certificate reload, the
//! access log, request ids and trace context, and the operational metrics.

use std::sync::Arc;
use std::time::Duration;

use crate::common::binary::{VaultDir, free_port, wait_listening};
use crate::common::*;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use vaultgate::config::Config;
use vaultgate::demo::echo::EchoUpstream;

const NEW_ROUTE: &str = r#"
[[routes]]
name = "fresh"
upstream = "backend"
path = "/fresh/*"
"#;

fn get(addr: std::net::SocketAddr, path: &str) -> Request<Full<Bytes>> {
    Request::get(url(addr, path))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn metrics_text(server: &vaultgate::app::ServerHandle) -> String {
    let reply = send(&http1(), get(server.api_addr(), "/metrics")).await;
    String::from_utf8(reply.body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_fails_no_request() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let old = config_toml(&format!("http://{up}"), ROUTES);
    let new = config_toml(&format!("http://{up}"), &format!("{ROUTES}{NEW_ROUTE}"));
    let server = start(&old).await;
    let addr = server.proxy_addr();
    // A keep-alive connection served under the old config: its shard holds the
    // old state until the reload tells it otherwise.
    let kept = http1();
    assert_eq!(
        send(&kept, get(addr, "/fresh/a")).await.status,
        StatusCode::NOT_FOUND
    );

    // Four keep-alive clients loop across the reloads.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loops = Vec::new();
    for _ in 0..4 {
        let stop = Arc::clone(&stop);
        loops.push(tokio::spawn(async move {
            let client = http1();
            let (mut ok, mut failed) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match client.request(get(addr, "/pass/x")).await {
                    Ok(res) if res.status() == StatusCode::OK => {
                        let _ = http_body_util::BodyExt::collect(res.into_body()).await;
                        ok += 1;
                    }
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let toml = if i % 2 == 0 { &new } else { &old };
        server.reload(Config::from_toml_str(toml).unwrap()).unwrap();
    }
    server.reload(Config::from_toml_str(&new).unwrap()).unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for l in loops {
        let (ok, failed) = l.await.unwrap();
        assert_eq!(failed, 0, "requests failed across the reload");
        total += ok;
    }
    assert!(total > 0);
    // The changed route serves after the reload, on a new connection and on the
    // one kept from before.
    assert_eq!(
        send(&http1(), get(addr, "/fresh/a")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&kept, get(addr, "/fresh/a")).await.status,
        StatusCode::OK
    );
    let text = metrics_text(&server).await;
    assert!(text.contains("vaultgate_config_generation 8"), "{text}");
    assert!(
        text.contains("vaultgate_config_last_reload_success 1"),
        "{text}"
    );
    server.stop().await;
    echo.stop().await;
}

#[tokio::test]
async fn a_refused_reload_keeps_the_old_config() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let toml = config_toml(&format!("http://{up}"), ROUTES);
    let server = start(&toml).await;

    // A listener address needs a restart.
    let moved = toml.replacen(
        "[proxy]\nlisten = \"127.0.0.1:0\"",
        "[proxy]\nlisten = \"127.0.0.1:1\"",
        1,
    );
    let err = server
        .reload(Config::from_toml_str(&moved).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("proxy.listen") && err.contains("restart"),
        "{err}"
    );
    // So does `[vault]`.
    let vault = format!("{toml}\n[vault]\ncvv_ttl_secs = 5\n");
    let err = server
        .reload(Config::from_toml_str(&vault).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("[vault]"), "{err}");
    // A file that does not parse is refused, logged, and counted.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vaultgate.toml");
    std::fs::write(&file, format!("{toml}\n[[routes]]\nname = 1\n")).unwrap();
    server.reload_file(&file);

    let reply = send(&http1(), get(server.proxy_addr(), "/pass/x")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = metrics_text(&server).await;
    assert!(
        text.contains("vaultgate_config_last_reload_success 0"),
        "{text}"
    );
    assert!(text.contains("vaultgate_config_generation 1"), "{text}");
    server.stop().await;
    echo.stop().await;
}

#[tokio::test]
async fn new_handshakes_get_the_reloaded_certificate() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let first = Pki::new("first");
    let second = Pki::new("second");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let install = |pki: &Pki| {
        let (c, k) = pki.server("leaf");
        std::fs::copy(c, &cert).unwrap();
        std::fs::copy(k, &key).unwrap();
    };
    install(&first);
    let toml = config_toml(&format!("http://{up}"), ROUTES).replacen(
        "[proxy]\nlisten = \"127.0.0.1:0\"",
        &format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\ntls = {{ cert = \"{}\", key = \"{}\" }}",
            path_str(&cert),
            path_str(&key)
        ),
        1,
    );
    let server = start(&toml).await;
    let at = |pki: &Pki| {
        let client = pki.https_client(None);
        let uri = format!("https://localhost:{}/pass/x", server.proxy_addr().port());
        async move {
            client
                .request(Request::get(uri).body(Full::new(Bytes::new())).unwrap())
                .await
                .map(|r| r.status())
        }
    };
    assert_eq!(at(&first).await.unwrap(), StatusCode::OK);
    assert!(at(&second).await.is_err());
    // A client holding a connection from before keeps it.
    let kept = first.https_client(None);
    let uri = format!("https://localhost:{}/pass/x", server.proxy_addr().port());
    let r = kept
        .request(Request::get(&uri).body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    install(&second);
    server
        .reload(Config::from_toml_str(&toml).unwrap())
        .unwrap();
    assert_eq!(at(&second).await.unwrap(), StatusCode::OK);
    assert!(at(&first).await.is_err());
    let r = kept
        .request(Request::get(&uri).body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = metrics_text(&server).await;
    assert!(
        text.contains("vaultgate_tls_cert_expiry_timestamp_seconds{listener=\"proxy\"}"),
        "{text}"
    );
    server.stop().await;
    echo.stop().await;
}

/// Serve `routes` with the real binary (JSON logs at info) and wait for it.
async fn serve_binary(
    v: &VaultDir,
    up: std::net::SocketAddr,
    proxy_extra: &str,
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::net::SocketAddr,
) {
    let (proxy, api) = (free_port(), free_port());
    let text = format!(
        "[proxy]\nlisten = \"{proxy}\"\n{proxy_extra}\n[api]\nlisten = \"{api}\"\n[vault]\n\
         keyring = \"{}\"\ndata = \"{}\"\ncache_capacity_mb = 16\n[log]\nlevel = \"info\"\n\
         format = \"json\"\n[[upstreams]]\nname = \"backend\"\nurl = \"http://{up}\"\n{ROUTES}",
        path_str(&v.keyring),
        path_str(&v.data)
    );
    let path = v.dir.path().join("vaultgate.toml");
    std::fs::write(&path, text).unwrap();
    let mut child = v.serve(&path);
    wait_listening(&mut child, proxy, Duration::from_secs(20)).await;
    wait_listening(&mut child, api, Duration::from_secs(20)).await;
    (child, proxy, api)
}

fn stop(mut child: std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[tokio::test]
async fn access_lines_request_ids_and_trace_context() {
    let v = VaultDir::init();
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let (child, proxy_addr, api_addr) = serve_binary(&v, up, "").await;
    let secret = "s3cr3t-segment";
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let reply = send(
        &http1(),
        Request::get(url(proxy_addr, &format!("/pass/{secret}?q={secret}")))
            .header("x-request-id", "req-42")
            .header("traceparent", trace)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["x-request-id"], "req-42");
    let seen = echo.received();
    let got = seen.last().unwrap();
    assert_eq!(got.header("x-request-id"), Some("req-42"));
    assert_eq!(got.header("traceparent"), Some(trace));

    // No id, or an unusable one: a UUIDv7 is made up, sent upstream and back, and a
    // trace is started.
    let reply = send(
        &http1(),
        Request::get(url(proxy_addr, "/pass/y"))
            .header("x-request-id", "x".repeat(200))
            .header("traceparent", "garbage")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    let id = reply.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    let seen = echo.received();
    let got = seen.last().unwrap();
    assert_eq!(got.header("x-request-id"), Some(id.as_str()));
    let tp = got.header("traceparent").unwrap();
    assert!(tp.starts_with("00-") && tp.len() == 55, "{tp}");

    // The API answers with an id and logs an access line too.
    let reply = send(&http1(), get(api_addr, "/healthz")).await;
    assert!(reply.headers.contains_key("x-request-id"));
    stop(child);
    let logs = v.serve_log();

    // Turned off per listener: no line.
    let quiet = VaultDir::init();
    let (child, proxy_addr, _) = serve_binary(&quiet, up, "access_log = false").await;
    let _ = send(&http1(), get(proxy_addr, "/pass/quiet")).await;
    stop(child);
    echo.stop().await;
    let quiet_logs = quiet.serve_log();
    assert!(!quiet_logs.contains("vaultgate::access"), "{quiet_logs}");

    let access: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "vaultgate::access")
        .collect();
    let proxy: Vec<_> = access.iter().filter(|v| v["listener"] == "proxy").collect();
    assert_eq!(proxy.len(), 2, "{logs}");
    // Each worker writes its lines in batches: lines from two connections (perhaps
    // on two workers) come in either order.
    let line = *proxy
        .iter()
        .find(|v| v["request_id"] == "req-42")
        .expect(&logs);
    assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(line["route"], "pass");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/pass/*");
    assert_eq!(line["status"], 200);
    assert_eq!(line["upstream_status"], 200);
    assert!(line["latency_us"].is_u64() && line["upstream_latency_us"].is_u64());
    assert!(line["bytes_in"].is_u64());
    assert_eq!(line["level"], "INFO");
    assert!(
        proxy.iter().any(|v| v["request_id"] == id.as_str()),
        "{logs}"
    );
    assert!(
        access
            .iter()
            .any(|v| v["listener"] == "api" && v["path"] == "/healthz")
    );
    assert!(!logs.contains(secret), "{logs}");
    assert!(!logs.contains("q="), "{logs}");
    assert!(!logs.contains("/pass/y"), "{logs}");
}

#[tokio::test]
async fn operational_metrics_are_exported() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let reply = send(&http1(), get(server.proxy_addr(), "/pass/x")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = metrics_text(&server).await;
    for want in [
        "vaultgate_upstream_responses_total{route=\"pass\",status_class=\"2xx\"} 1",
        "vaultgate_open_connections{listener=\"proxy\"}",
        "vaultgate_ready{check=\"store\"} 1",
        "vaultgate_ready{check=\"unsealed\"} 1",
        "vaultgate_config_generation 1",
        "vaultgate_config_last_reload_success 1",
        "vaultgate_audit_write_failures_total 0",
    ] {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }
    server.stop().await;
    echo.stop().await;
}
