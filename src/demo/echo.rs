//! An echo upstream: answers every request with JSON describing what it received, and
//! keeps the received requests in memory.
//!
//! Used by `vaultgate demo` and by the integration tests as "a real upstream that
//! records what it received". The response body is
//! `{"method","path","query","headers":{…},"body"}`, with `body_base64` in place of
//! `body` when the body is not UTF-8.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Result;
use crate::net::body::{Body, json};
use crate::net::listener::{self, ListenerOptions};

/// The largest body the echo server reads.
const MAX_ECHO_BODY: usize = 64 * 1024 * 1024;

/// One request as the echo upstream saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Header names (lower case) and values, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub version: Version,
}

impl Received {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the echo upstream behaves.
#[derive(Clone, Default)]
pub struct EchoOptions {
    /// Wait this long before answering (to provoke upstream timeouts).
    pub delay: Duration,
    /// Serve TLS with this config (h2 and http/1.1 by ALPN).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A running echo upstream.
#[derive(Debug)]
pub struct EchoHandle {
    received: Arc<Mutex<Vec<Received>>>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl EchoHandle {
    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        match self.received.lock() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Stop accepting and wait for in-flight requests (up to 5 s).
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        let _ = self.task.await;
    }
}

/// The echo upstream.
#[derive(Debug)]
pub struct EchoUpstream;

impl EchoUpstream {
    /// Start on `127.0.0.1:0`, plain HTTP, answering at once.
    pub async fn start() -> Result<(SocketAddr, EchoHandle)> {
        Self::start_with(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            EchoOptions::default(),
        )
        .await
    }

    /// Start on `addr` with options.
    pub async fn start_with(
        addr: SocketAddr,
        options: EchoOptions,
    ) -> Result<(SocketAddr, EchoHandle)> {
        let listener = listener::bind("echo.listen", addr)?;
        let bound = listener
            .local_addr()
            .map_err(|e| crate::Error::io("echo.listen: local address", e))?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let (shutdown, rx) = watch::channel(false);
        let opts = ListenerOptions {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tls: options
                .tls
                .clone()
                .map(|t| Arc::new(arc_swap::ArcSwap::new(t))),
            open: None,
            grace: Duration::from_secs(5),
            h2_max_concurrent_streams: 100,
        };
        let store = Arc::clone(&received);
        let delay = options.delay;
        let task = listener::spawn("echo", listener, opts, rx, move |_conn, req| {
            echo(Arc::clone(&store), delay, req)
        });
        Ok((
            bound,
            EchoHandle {
                received,
                shutdown,
                task,
            },
        ))
    }
}

async fn echo(
    store: Arc<Mutex<Vec<Received>>>,
    delay: Duration,
    req: Request<Incoming>,
) -> std::result::Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_ECHO_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Ok(json(
                StatusCode::BAD_REQUEST,
                r#"{"error":"body could not be read"}"#,
            ));
        }
    };
    let received = Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        version: parts.version,
    };
    let mut headers = BTreeMap::<&str, String>::new();
    for (n, v) in &received.headers {
        headers
            .entry(n.as_str())
            .and_modify(|all| {
                all.push_str(", ");
                all.push_str(v);
            })
            .or_insert_with(|| v.clone());
    }
    let mut doc = serde_json::json!({
        "method": received.method,
        "path": received.path,
        "query": received.query,
        "headers": headers,
    });
    if let serde_json::Value::Object(map) = &mut doc {
        match std::str::from_utf8(&received.body) {
            Ok(text) => map.insert("body".to_owned(), text.into()),
            Err(_) => map.insert(
                "body_base64".to_owned(),
                base64::engine::general_purpose::STANDARD
                    .encode(&received.body)
                    .into(),
            ),
        };
    }
    let out = doc.to_string();
    match store.lock() {
        Ok(mut r) => r.push(received),
        Err(p) => p.into_inner().push(received),
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(json(StatusCode::OK, out))
}
