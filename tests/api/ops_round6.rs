//! Operator round 6, on the real binary: a second instance started on a port a
//! running one listens on exits instead of sharing the port.

use std::net::SocketAddr;
use std::process::Child;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::json;
use vaultgate::demo::echo::EchoUpstream;

use crate::common::binary::{VaultDir, free_port, wait_listening};
use crate::common::*;

const CARD: &str = "4242424242424242";

/// An upstream and a route that tokenizes `card` in a JSON body.
fn card_route(up: SocketAddr) -> String {
    format!(
        "[[upstreams]]\nname = \"backend\"\nurl = \"http://{up}\"\n\
         [[routes]]\nname = \"cards\"\nupstream = \"backend\"\nmethod = \"POST\"\n\
         path = \"/cards\"\nfields = [{{ path = \"card\", class = \"pan\" }}]\n"
    )
}

fn card_request(proxy: SocketAddr, card: &str) -> Request<Full<Bytes>> {
    Request::post(url(proxy, "/cards"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(json!({ "card": card }).to_string())))
        .unwrap()
}

fn stop(mut child: Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// With `workers` threads each binding the proxy port with `SO_REUSEPORT`, a second
/// `vaultgate serve` given the same `proxy.listen` (another store, by mistake) used
/// to start and take part of the connections into its own vault. It must exit with
/// the bind error, as it does for the API port, and the first one serve on.
#[tokio::test]
async fn a_second_instance_on_a_port_in_use_exits_instead_of_sharing_it() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let first = VaultDir::init();
    let (proxy, api_addr) = (free_port(), free_port());
    let config = first.write_config(proxy, api_addr, &card_route(up));
    let mut running = first.serve(&config);
    wait_listening(&mut running, proxy, Duration::from_secs(20)).await;

    let second = VaultDir::init();
    let other_api = free_port();
    let config = second.write_config(proxy, other_api, &card_route(up));
    let mut child = second.serve(&config);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if tokio::net::TcpStream::connect(other_api).await.is_ok() {
            stop(child);
            stop(running);
            panic!(
                "a second instance serves on {proxy}, which another one listens on:\n{}",
                second.serve_log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the second instance neither exits nor serves"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = second.serve_log();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!("proxy.listen: bind {proxy}")) && log.contains("in use"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");

    // The first instance was never disturbed.
    let r = send(&http1(), card_request(proxy, CARD)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(echo.received().len(), 1);
    stop(running);
    echo.stop().await;
}

