//! One listening socket: accept under a connection limit, optional TLS, HTTP/1.1 and
//! HTTP/2 (ALPN over TLS, prior knowledge in clear text), graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use serde::Deserialize;

use super::body::Body;
use super::tls::TlsFiles;
use crate::{Error, Result};

/// A listener block of the config file (`[proxy]`, `[api]`, `[outbound]`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerSettings {
    /// `ip:port` to bind, e.g. `127.0.0.1:8080` (port 0 picks a free port).
    pub listen: SocketAddr,
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Connections served at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: MaxConnections,
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
}

impl ListenerSettings {
    /// A plain listener on `listen` with the default limits.
    pub fn on(listen: SocketAddr) -> ListenerSettings {
        ListenerSettings {
            listen,
            tls: None,
            max_connections: default_max_connections(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
        }
    }
}

/// A connection limit: at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "usize")]
pub struct MaxConnections(pub usize);

impl TryFrom<usize> for MaxConnections {
    type Error = &'static str;

    fn try_from(n: usize) -> std::result::Result<MaxConnections, &'static str> {
        if n == 0 {
            Err("must be at least 1")
        } else {
            Ok(MaxConnections(n))
        }
    }
}

impl PartialEq<usize> for MaxConnections {
    fn eq(&self, other: &usize) -> bool {
        self.0 == *other
    }
}

fn default_max_connections() -> MaxConnections {
    MaxConnections(10_000)
}

fn default_header_read_timeout_ms() -> u64 {
    10_000
}

/// HTTP/2 limit on the decoded header list (64 KiB).
const H2_MAX_HEADER_LIST: u32 = 64 * 1024;

/// How a listener behaves.
#[derive(Clone)]
pub struct ListenerOptions {
    /// Connections served at once; beyond it the listener stops accepting (the
    /// kernel backlog holds the rest).
    pub max_connections: usize,
    /// Time allowed for the TLS handshake and for each request head (HTTP/1).
    pub header_read_timeout: Duration,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long in-flight requests may run after shutdown starts.
    pub grace: Duration,
}

/// What a handler knows about the connection a request came on.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The names (CN, DNS SANs) of the client certificate that the TLS handshake
    /// verified, if the client sent one. The only source of certificate identity.
    pub peer_names: Option<Arc<[String]>>,
}

/// Bind a listening socket (SO_REUSEADDR, backlog 1024).
pub fn bind(key: &str, addr: SocketAddr) -> Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| Error::io(format!("{key}: socket"), e))?;
    socket
        .set_reuseaddr(true)
        .map_err(|e| Error::io(format!("{key}: SO_REUSEADDR"), e))?;
    socket
        .bind(addr)
        .map_err(|e| Error::io(format!("{key}: bind {addr}"), e))?;
    socket
        .listen(1024)
        .map_err(|e| Error::io(format!("{key}: listen on {addr}"), e))
}

/// Spawn the accept loop on a bound listener. The task ends after `shutdown` turns
/// true (or its sender is dropped) and the in-flight connections drained, or the
/// grace period ran out.
pub fn spawn<H, F>(
    name: &'static str,
    listener: TcpListener,
    options: ListenerOptions,
    mut shutdown: watch::Receiver<bool>,
    handler: H,
) -> JoinHandle<()>
where
    H: Fn(ConnInfo, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = std::result::Result<Response<Body>, Infallible>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(H2_MAX_HEADER_LIST);
    let builder = Arc::new(builder);
    let acceptor = options.tls.clone().map(TlsAcceptor::from);
    let limit = Arc::new(Semaphore::new(options.max_connections));

    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        loop {
            let permit = tokio::select! {
                biased;
                () = stopped(&mut shutdown) => break,
                permit = Arc::clone(&limit).acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                biased;
                () = stopped(&mut shutdown) => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(listener = name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let watcher = graceful.watcher();
            let builder = Arc::clone(&builder);
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            let timeout = options.header_read_timeout;
            tokio::spawn(async move {
                let _permit = permit;
                let mut info = ConnInfo {
                    peer,
                    tls: acceptor.is_some(),
                    peer_names: None,
                };
                match acceptor {
                    None => {
                        let service = service_fn(move |req| handler(info.clone(), req));
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!(listener = name, error = %e, "connection ended with an error");
                        }
                    }
                    Some(acceptor) => {
                        let Some(tls) = handshake(name, &acceptor, stream, timeout).await else {
                            return;
                        };
                        info.peer_names = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .map(|leaf| super::tls::peer_names(leaf).into());
                        let service = service_fn(move |req| handler(info.clone(), req));
                        let conn = builder.serve_connection(TokioIo::new(tls), service);
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!(listener = name, error = %e, "connection ended with an error");
                        }
                    }
                }
            });
        }
        drop(listener);
        tracing::info!(listener = name, "stopped accepting; draining connections");
        if tokio::time::timeout(options.grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(listener = name, "grace period over; dropping connections");
        }
    })
}

/// Resolves once shutdown is requested (or the handle that could request it is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn handshake(
    name: &'static str,
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(listener = name, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(listener = name, "TLS handshake timed out");
            None
        }
    }
}
