//! Transport behaviour: upstream failures, HTTP/2, TLS on both sides, graceful drain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::*;
use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::Full;
use vaultgate::config::Config;
use vaultgate::demo::echo::{EchoOptions, EchoUpstream};

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn post(addr: SocketAddr, path: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::post(url(addr, path))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

#[tokio::test]
async fn unreachable_upstream_is_502() {
    let gone = std::net::TcpListener::bind(local()).unwrap();
    let addr = gone.local_addr().unwrap();
    drop(gone);
    let server = start(&config_toml(&format!("http://{addr}"), ROUTES)).await;
    let client = http1();
    for path in ["/pass/x", "/tokenize"] {
        let reply = send(
            &client,
            post(server.proxy_addr(), path, br#"{"card":"4242424242424242"}"#),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{path}");
        assert_eq!(reply.json()["error"]["code"], "upstream_unavailable");
    }
    server.stop().await;
}

#[tokio::test]
async fn slow_upstream_is_504() {
    let (up, echo) = EchoUpstream::start_with(
        local(),
        EchoOptions {
            delay: Duration::from_millis(1500),
            tls: None,
        },
    )
    .await
    .unwrap();
    let toml = config_toml(&format!("http://{up}"), ROUTES)
        .replace("upstream_timeout_ms = 2000", "upstream_timeout_ms = 200");
    let server = start(&toml).await;
    let reply = send(&http1(), post(server.proxy_addr(), "/pass/slow", b"{}")).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(reply.json()["error"]["code"], "upstream_timeout");
    server.stop().await;
    echo.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_works() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let client = h2c();
    let reply = send(
        &client,
        post(server.proxy_addr(), "/pass/h2?q=1", b"over h2"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.version, Version::HTTP_2);
    let rules = send(
        &client,
        post(
            server.proxy_addr(),
            "/tokenize",
            br#"{"card":"4242424242424242"}"#,
        ),
    )
    .await;
    assert_eq!(rules.status, StatusCode::OK);
    let got = echo.received();
    assert_eq!(got.len(), 2);
    assert_eq!(&got[0].body[..], b"over h2");
    assert_eq!(got[0].query.as_deref(), Some("q=1"));
    assert_eq!(got[0].version, Version::HTTP_11);
    assert_eq!(
        got[0].header("x-forwarded-host"),
        Some(server.proxy_addr().to_string().as_str())
    );
    server.stop().await;
    echo.stop().await;
}

/// A request written a byte or two at a time, as a slow client may, still gets through:
/// the protocol is told from the first bytes only when they suffice.
#[tokio::test]
async fn a_request_trickled_in_pieces_is_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let server = start(&config_toml(&format!("http://{up}"), ROUTES)).await;
    let request = b"POST /pass/trickle HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\
                    connection: close\r\n\r\nhi";
    // "P", then "R"... would be HTTP/2's preface; "P", "O" is not.
    for split in [&[1usize, 2][..], &[1], &[3]] {
        let mut s = tokio::net::TcpStream::connect(server.proxy_addr())
            .await
            .unwrap();
        let mut at = 0;
        for n in split {
            s.write_all(&request[at..at + n]).await.unwrap();
            at += n;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s.write_all(&request[at..]).await.unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.unwrap();
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "split {split:?}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let got = echo.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| &r.body[..] == b"hi"));

    // HTTP/2's preface in two pieces, then an empty SETTINGS frame: the answer is the
    // server's own SETTINGS frame (type 4), not an HTTP/1 error.
    let mut s = tokio::net::TcpStream::connect(server.proxy_addr())
        .await
        .unwrap();
    s.write_all(b"PR").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b"I * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut frame = [0u8; 9];
    s.read_exact(&mut frame).await.unwrap();
    assert_eq!(frame[3], 4, "{frame:?}");
    server.stop().await;
    echo.stop().await;
}

#[tokio::test]
async fn tls_on_the_listener_and_to_an_https_upstream() {
    let proxy_certs = Certs::generate();
    let upstream_certs = Certs::generate();
    let (up, echo) = EchoUpstream::start_with(
        local(),
        EchoOptions {
            delay: Duration::ZERO,
            tls: Some(upstream_certs.server_config()),
        },
    )
    .await
    .unwrap();
    let toml = format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
tls = {{ cert = "{}", key = "{}" }}
[api]
listen = "127.0.0.1:0"
[[upstreams]]
name = "backend"
url = "https://localhost:{}"
ca = "{}"
[[routes]]
name = "all"
upstream = "backend"
path = "/*"
"#,
        path_str(&proxy_certs.cert),
        path_str(&proxy_certs.key),
        up.port(),
        path_str(&upstream_certs.ca),
    );
    let server = start(&toml).await;
    let client = proxy_certs.client();
    let port = server.proxy_addr().port();
    let reply = send(
        &client,
        Request::post(format!("https://localhost:{port}/secure?x=y"))
            .body(Full::new(Bytes::from_static(b"secret-free")))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.version, Version::HTTP_2, "ALPN h2 on the listener");
    let got = echo.received();
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].body[..], b"secret-free");
    assert_eq!(got[0].header("x-forwarded-proto"), Some("https"));
    assert_eq!(got[0].version, Version::HTTP_2, "ALPN h2 to the upstream");
    server.stop().await;
    echo.stop().await;
}

#[tokio::test]
async fn upstream_with_an_untrusted_certificate_is_502() {
    let upstream_certs = Certs::generate();
    let other = Certs::generate();
    let (up, echo) = EchoUpstream::start_with(
        local(),
        EchoOptions {
            delay: Duration::ZERO,
            tls: Some(upstream_certs.server_config()),
        },
    )
    .await
    .unwrap();
    let toml = config_toml(&format!("https://localhost:{}", up.port()), ROUTES).replacen(
        "[[routes]]",
        &format!("ca = \"{}\"\n[[routes]]", path_str(&other.ca)),
        1,
    );
    let server = start(&toml).await;
    let reply = send(&http1(), post(server.proxy_addr(), "/pass/x", b"{}")).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(echo.received().is_empty());
    server.stop().await;
    echo.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_drains_in_flight_requests() {
    let (up, echo) = EchoUpstream::start_with(
        local(),
        EchoOptions {
            delay: Duration::from_millis(400),
            tls: None,
        },
    )
    .await
    .unwrap();
    let config = Config::from_toml_str(&config_toml(&format!("http://{up}"), ROUTES)).unwrap();
    let server = start_config(&config, Duration::from_secs(5)).await;
    let addr = server.proxy_addr();
    let in_flight =
        tokio::spawn(async move { send(&http1(), post(addr, "/pass/slow", b"drain me")).await });
    // Wait until the upstream has the request, then stop.
    for _ in 0..100 {
        if !echo.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(echo.received().len(), 1);
    let started = std::time::Instant::now();
    server.stop().await;
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["body"], "drain me");
    assert!(started.elapsed() < Duration::from_secs(4));
    // The listener is closed.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    echo.stop().await;
}

/// Shutdown closes idle keep-alive connections at once and lets a request in flight
/// on another finish; neither waits out the idle timeout or the grace period.
#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_at_once() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (up, echo) = EchoUpstream::start_with(
        local(),
        EchoOptions {
            delay: Duration::from_millis(300),
            tls: None,
        },
    )
    .await
    .unwrap();
    let config = Config::from_toml_str(&config_toml(&format!("http://{up}"), ROUTES)).unwrap();
    let server = start_config(&config, Duration::from_secs(10)).await;
    let addr = server.proxy_addr();
    // One request on a keep-alive connection, answered; the connection then idles.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /pass/a HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = idle.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(buf.get(..n).unwrap());
    }
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let in_flight =
        tokio::spawn(async move { send(&http1(), post(addr, "/pass/slow", b"drain me")).await });
    for _ in 0..100 {
        if echo.received().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(echo.received().len(), 2);
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(in_flight.await.unwrap().status, StatusCode::OK);
    // The idle connection was closed by the proxy (its answer's body may come first).
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the idle connection stayed open");
    echo.stop().await;
}

#[tokio::test]
async fn demo_config_serves_every_profile_path() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::demo(
        "127.0.0.1:0",
        "127.0.0.1:0",
        &format!("http://{up}"),
        dir.path(),
    )
    .unwrap();
    config.validate().unwrap();
    let server = start_config(&config, Duration::from_secs(1)).await;
    let client = http1();
    for path in [
        "/v1/payment",
        "/brm/paymentMethods/v1/paymentMethod",
        "/accounts/42/paymentInfo",
        "/payment-method",
        "/payment-methods",
        "/anything/else",
    ] {
        // Plano's route reads base64 "sensitive params": `{"a":1}` encoded.
        let body: &'static [u8] = if path == "/payment-methods" {
            b"eyJhIjoxfQ=="
        } else {
            br#"{"a":1}"#
        };
        let reply = send(&client, post(server.proxy_addr(), path, body)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
    assert_eq!(echo.received().len(), 6);
    server.stop().await;
    echo.stop().await;
}
