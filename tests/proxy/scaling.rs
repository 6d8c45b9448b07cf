//! Thread-per-core and the upstream connection cap: the proxy runs on the workers
//! it is given, and never has more requests in flight to an upstream than its
//! `max_connections`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::common::binary::{VaultDir, free_port, wait_listening};
use crate::common::*;

/// What a slow upstream saw: connections accepted, requests at once (peak).
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    requests: AtomicUsize,
}

/// An HTTP/1 upstream that answers every request after `delay`.
async fn slow_upstream(delay: Duration) -> (SocketAddr, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counts.connections.fetch_add(1, Ordering::SeqCst);
            let counts = Arc::clone(&counts);
            tokio::spawn(async move {
                let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let counts = Arc::clone(&counts);
                    async move {
                        let now = counts.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        counts.peak.fetch_max(now, Ordering::SeqCst);
                        counts.requests.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        counts.in_flight.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_to_an_upstream_stay_under_its_cap() {
    let (up, seen) = slow_upstream(Duration::from_millis(150)).await;
    let toml = config_toml(&format!("http://{up}"), ROUTES)
        .replace("[api]", "workers = 2\n[api]")
        .replace(
            &format!("url = \"http://{up}\"\n"),
            &format!("url = \"http://{up}\"\nmax_connections = 2\n"),
        );
    assert!(toml.contains("max_connections = 2"), "{toml}");
    let server = start(&toml).await;

    // 12 clients at once, each on its own connection.
    let proxy = server.proxy_addr();
    let calls = (0..12).map(|i| {
        tokio::spawn(async move {
            let client = http1();
            send(
                &client,
                Request::get(url(proxy, &format!("/pass/{i}")))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .status
        })
    });
    let statuses = futures_join(calls).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(seen.requests.load(Ordering::SeqCst), 12);
    let peak = seen.peak.load(Ordering::SeqCst);
    assert!(
        peak <= 2,
        "{peak} requests were in flight to the upstream at once"
    );
    let connections = seen.connections.load(Ordering::SeqCst);
    assert!(
        connections < 12,
        "{connections} upstream connections for 12 requests under a cap of 2"
    );
    server.stop().await;
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

/// Names of the threads of a process (`/proc/<pid>/task/*/comm`).
fn thread_names(pid: u32) -> HashSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn the_binary_serves_the_proxy_on_one_thread_per_worker() {
    let (up, seen) = slow_upstream(Duration::ZERO).await;
    let v = VaultDir::init();
    let (proxy, api) = (free_port(), free_port());
    let config = v.write_config(
        proxy,
        api,
        &format!(
            "[[upstreams]]\nname = \"backend\"\nurl = \"http://{up}\"\n\n\
             [[routes]]\nname = \"pass\"\nupstream = \"backend\"\npath = \"/pass/*\"\n"
        ),
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replacen("[api]", "workers = 3\n[api]", 1);
    std::fs::write(&config, text).unwrap();
    let mut child = v.serve(&config);
    wait_listening(&mut child, proxy, Duration::from_secs(20)).await;

    // The sockets listen before the shard threads start: wait for the threads.
    let shards = ["vg-proxy-0", "vg-proxy-1", "vg-proxy-2"];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let names = loop {
        let names = thread_names(child.id());
        if shards.iter().all(|s| names.contains(*s)) {
            break names;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every shard thread runs: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!names.contains("vg-proxy-3"), "{names:?}");
    // Fresh connections, spread by the kernel over the shards' sockets, are served.
    let client = http1();
    for i in 0..30 {
        let r = send(
            &client,
            Request::get(url(proxy, &format!("/pass/{i}")))
                .header("connection", "close")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "request {i}: {}", v.serve_log());
    }
    assert_eq!(seen.requests.load(Ordering::SeqCst), 30);

    // A reload cannot re-shard bound sockets: it says so, and serves on as it was.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replacen("workers = 3", "workers = 2", 1);
    std::fs::write(&config, text).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !v.serve_log().contains("take effect at restart") {
        assert!(
            std::time::Instant::now() < deadline,
            "no warning: {}",
            v.serve_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(thread_names(child.id()).contains("vg-proxy-2"));
    let r = send(
        &client,
        Request::get(url(proxy, "/pass/after-reload"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    child.kill().unwrap();
    child.wait().unwrap();
}
