//! What ends up in the logs: route, method, status, latency — never paths, query
//! strings, header values or bodies. Its own test binary, so that no other test's
//! thread races the scoped subscriber for tracing's callsite interest cache.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::common::*;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use vaultgate::demo::echo::EchoUpstream;

/// A writer that appends to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_carry_no_paths_queries_headers_or_bodies() {
    let capture = Capture::default();
    let writer = capture.clone();
    use tracing_subscriber::layer::SubscriberExt as _;
    let subscriber = tracing_subscriber::registry()
        .with(
            "vaultgate=trace"
                .parse::<tracing_subscriber::filter::Targets>()
                .unwrap(),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_ansi(false),
        );
    let _guard = tracing::subscriber::set_default(subscriber);

    let (up, echo) = EchoUpstream::start().await.unwrap();
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = gone.local_addr().unwrap();
    drop(gone);
    let extra = format!(
        "[[upstreams]]\nname = \"dead\"\nurl = \"http://{dead}\"\n\n\
         [[routes]]\nname = \"dead\"\nupstream = \"dead\"\npath = \"/dead/*\"\n\
         stream_guard = \"off\"\n{ROUTES}"
    );
    let toml = config_toml(&format!("http://{up}"), &extra);
    let server = start(&toml).await;
    let client = http1();
    let card = "4111111111111111";
    for path in [
        format!("/pass/{card}?pan={card}"),
        format!("/tokenize?pan={card}"),
        format!("/dead/{card}?pan={card}"),
        format!("/nowhere/{card}"),
    ] {
        let _ = send(
            &client,
            Request::post(url(server.proxy_addr(), &path))
                .header("x-card", card)
                // An id is logged and forwarded: one holding a card number is replaced.
                .header("x-request-id", format!("order-{card}"))
                .body(Full::new(Bytes::from(format!(r#"{{"card":"{card}"}}"#))))
                .unwrap(),
        )
        .await;
    }
    let big = send(
        &client,
        Request::post(url(server.proxy_addr(), "/tokenize"))
            .body(Full::new(Bytes::from(card.repeat(100))))
            .unwrap(),
    )
    .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    let clean = send(
        &client,
        Request::post(url(server.proxy_addr(), "/pass/clean"))
            .header("x-request-id", format!("order-{card}"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap(),
    )
    .await;
    assert_eq!(clean.status, StatusCode::OK);
    let received = echo.received();
    assert!(!received.is_empty());
    for r in &received {
        let ids: Vec<&String> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-request-id"))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(ids.len(), 1, "{:?}", r.headers);
        assert!(!ids[0].contains(card), "forwarded id {}", ids[0]);
    }
    server.stop().await;
    echo.stop().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("route=dead"), "{logs}");
    assert!(logs.contains("status=502"), "{logs}");
    assert!(!logs.contains(card), "{logs}");
    assert!(!logs.contains("pan="), "{logs}");
}
