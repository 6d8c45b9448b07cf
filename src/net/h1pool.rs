//! One shard's HTTP/1.1 connections to a plain-HTTP upstream, used without
//! hyper-util's pooled client.
//!
//! A request takes an idle connection (the most recently used first) or opens one. Its
//! response body carries the connection back to the idle list when the body ends.
//! There is no pool task, no per-request task to watch the connection come back, and
//! no lock another shard takes: the list is the shard's own, and the connection task
//! runs on the shard's runtime.
//!
//! A request that an idle connection could not take, because the upstream had just
//! closed it, goes out again. It goes out on the next idle connection or a new one;
//! hyper hands such a request back before any byte of it is written.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::body::Body;

/// How long a connection may sit idle before it is closed rather than reused
/// (hyper-util's pool default, above nginx's 75 s `keepalive_timeout`).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a request got no response.
#[derive(Debug)]
pub enum Failed {
    /// No connection could be opened: nothing was sent.
    Connect(io::Error),
    /// A new connection failed before it took the request: nothing was sent.
    NotSent(hyper::Error),
    /// The connection failed while the request or response was under way.
    Request(hyper::Error),
}

impl Failed {
    /// Whether no connection could be opened.
    pub fn is_connect(&self) -> bool {
        matches!(self, Failed::Connect(_))
    }

    /// Whether any byte of the request may have reached the upstream.
    pub fn may_have_sent(&self) -> bool {
        matches!(self, Failed::Request(_))
    }
}

impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Failed::Connect(e) => Some(e),
            Failed::NotSent(e) | Failed::Request(e) => Some(e),
        }
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Connect(e) => write!(f, "connect: {e}"),
            Failed::NotSent(e) | Failed::Request(e) => e.fmt(f),
        }
    }
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

/// Idle HTTP/1.1 connections to one `host:port`, for one shard.
pub struct H1Pool {
    host: String,
    port: u16,
    connect_timeout: Duration,
    max_idle: usize,
    idle: Mutex<VecDeque<Idle>>,
    /// Counts the connections opened, when the caller keeps such a metric.
    opened: Option<metrics::Counter>,
}

impl std::fmt::Debug for H1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Pool")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

impl H1Pool {
    /// Connections to `authority` (port 80 when it names none), at most `max_idle`
    /// of them kept while idle, each new one counted in `opened`.
    pub fn new(
        authority: &http::uri::Authority,
        connect_timeout: Duration,
        max_idle: usize,
        opened: Option<metrics::Counter>,
    ) -> H1Pool {
        // An IPv6 literal comes bracketed in an authority, not in a socket address.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        H1Pool {
            host,
            port: authority.port_u16().unwrap_or(80),
            connect_timeout,
            max_idle,
            idle: Mutex::new(VecDeque::new()),
            opened,
        }
    }

    /// Send `request` (its URI in origin form) and return the response, its body
    /// bringing the connection back when it ends.
    /// `slot` (the request's place under the upstream's cap) is held by the response
    /// body with its connection, until the body ends or is dropped.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would keep the request twice in its future"
    )]
    pub fn send(
        self: &Arc<Self>,
        mut request: Request<Body>,
        slot: OwnedSemaphorePermit,
    ) -> impl Future<Output = Result<Response<Body>, Failed>> + Send + '_ {
        async move {
            loop {
                let (mut sender, reused) = match self.checkout().await {
                    Some(sender) => (sender, true),
                    // Boxed: connecting is rare, and its future is large.
                    None => (Box::pin(self.connect()).await?, false),
                };
                match sender.try_send_request(request).await {
                    Ok(response) => {
                        let lease = Lease {
                            sender,
                            pool: Arc::clone(self),
                            _slot: slot,
                        };
                        return Ok(response.map(|body| Leased::boxed(body, lease)));
                    }
                    Err(mut e) => match e.take_message() {
                        // An idle connection the upstream had closed: nothing was written.
                        Some(back) if reused => request = back,
                        Some(_) => return Err(Failed::NotSent(e.into_error())),
                        None => return Err(Failed::Request(e.into_error())),
                    },
                }
            }
        }
    }

    /// The most recently used idle connection that is open and ready for a request now.
    async fn checkout(&self) -> Option<SendRequest<Body>> {
        std::future::poll_fn(|cx| Poll::Ready(self.take_ready(cx))).await
    }

    /// Take the newest ready connection off the idle list, closing the ones found
    /// closed or expired on the way. A connection whose response has ended while its
    /// request is still being written (the upstream answered before reading the whole
    /// body) is not ready: it goes back to the cold end of the list rather than make
    /// this request wait on another client's upload.
    fn take_ready(&self, cx: &mut Context<'_>) -> Option<SendRequest<Body>> {
        let mut idle = self.list();
        let mut busy = Vec::new();
        let found = loop {
            let Some(mut entry) = idle.pop_back() else {
                break None;
            };
            if entry.sender.is_closed() || entry.since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            match entry.sender.poll_ready(cx) {
                Poll::Ready(Ok(())) => break Some(entry.sender),
                Poll::Ready(Err(_)) => {}
                Poll::Pending => busy.push(entry),
            }
        };
        for entry in busy.into_iter().rev() {
            idle.push_front(entry);
        }
        found
    }

    /// Put a connection whose response has ended back on the idle list, closing the
    /// oldest ones past the cap or the idle timeout.
    fn checkin(&self, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.list();
        while idle.front().is_some_and(|oldest| {
            idle.len() >= self.max_idle
                || oldest.sender.is_closed()
                || now.duration_since(oldest.since) > IDLE_TIMEOUT
        }) {
            idle.pop_front();
        }
        if self.max_idle > 0 {
            idle.push_back(Idle { sender, since: now });
        }
    }

    fn list(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new connection, its task spawned on the calling runtime (the shard's own).
    async fn connect(&self) -> Result<SendRequest<Body>, Failed> {
        let stream = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| Failed::Connect(io::ErrorKind::TimedOut.into()))?
        .map_err(Failed::Connect)?;
        stream.set_nodelay(true).map_err(Failed::Connect)?;
        if let Some(opened) = &self.opened {
            opened.increment(1);
        }
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(Failed::NotSent)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

/// A connection lent to one response, with the request's slot under the upstream's
/// cap: both are given back when the response body ends (or is dropped).
struct Lease {
    sender: SendRequest<Body>,
    pool: Arc<H1Pool>,
    _slot: OwnedSemaphorePermit,
}

/// A response body that returns its connection once it has been read to the end.
pub struct Leased {
    body: Incoming,
    lease: Option<Lease>,
}

impl Leased {
    /// The response body, boxed, holding its connection.
    fn boxed(body: Incoming, lease: Lease) -> Body {
        super::body::boxed_as_is(Leased {
            body,
            lease: Some(lease),
        })
    }

    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.pool.checkin(lease.sender);
        }
    }
}

impl hyper::body::Body for Leased {
    type Data = Bytes;
    // Boxed here, so the body is boxed once without an error-mapping layer around it.
    type Error = super::body::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(None) => {
                this.release();
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame.map_err(Into::into))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Leased {
    fn drop(&mut self) {
        // hyper's server stops reading a body once it reports its end, without a
        // last poll; a body dropped before its end leaves the connection unusable,
        // and dropping the lease closes it.
        if hyper::body::Body::is_end_stream(&self.body) {
            self.release();
        }
    }
}
