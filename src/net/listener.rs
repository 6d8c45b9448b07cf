//! One listening socket: accept under a connection limit, optional TLS, HTTP/1.1 and
//! HTTP/2 (ALPN over TLS, prior knowledge in clear text), graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use serde::Deserialize;

use super::body::Body;
use super::conns::{ConnSlot, ConnTable, Registered, Sending, Watched};
use super::shard::Workers;
use super::tls::TlsFiles;
use crate::positive::Positive;
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
    pub max_connections: Positive<usize>,
    /// Time allowed for the TLS handshake, for each HTTP/1 request head (from its
    /// first byte; a head is cut off between 1 and 1.5 times this), and for a new
    /// connection's first request (a connection that sends nothing, or only the HTTP/2
    /// preface, is closed after it).
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight is closed after this long (HTTP/1
    /// keep-alive and HTTP/2 alike). HTTP/2 connections are also pinged, and closed
    /// when a ping goes unanswered. A connection whose client takes no byte of an
    /// answer for this long (a socket left unread, an HTTP/2 window left at zero) is
    /// closed too, so that it does not hold the answer's upstream connection.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// On SIGTERM or SIGINT, how long requests in flight may take to finish before
    /// their connections are closed (default 30000; 0 closes them at once). Match it
    /// to the orchestrator's own grace period (Kubernetes'
    /// `terminationGracePeriodSeconds`, 30 s by default), less the time the load
    /// balancer takes to stop sending.
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// One `vaultgate::access` line per request at info (default true).
    #[serde(default = "default_access_log")]
    pub access_log: bool,
    /// Threads serving this listener: `"auto"` (one shard per CPU, each with its own
    /// runtime, socket and upstream connections; the proxy's default), `"shared"`
    /// (the process's shared runtime; the default of the others) or a number.
    #[serde(default)]
    pub workers: Workers,
    /// HTTP/2 streams one connection may have open at once (default 100, the least
    /// RFC 9113 recommends; nginx's is 128). A stream past it is refused
    /// (`REFUSED_STREAM`); a client that honours the setting waits instead. Each open
    /// stream on a rules route may hold up to `limits.max_body_bytes` of body.
    #[serde(default = "default_h2_max_concurrent_streams")]
    pub h2_max_concurrent_streams: Positive<u32>,
}

impl ListenerSettings {
    /// A plain listener on `listen` with the default limits.
    pub fn on(listen: SocketAddr) -> ListenerSettings {
        ListenerSettings {
            listen,
            tls: None,
            max_connections: default_max_connections(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
            drain_timeout_ms: default_drain_timeout_ms(),
            access_log: default_access_log(),
            workers: Workers::Default,
            h2_max_concurrent_streams: default_h2_max_concurrent_streams(),
        }
    }
}

fn default_h2_max_concurrent_streams() -> Positive<u32> {
    Positive(100)
}

fn default_max_connections() -> Positive<usize> {
    Positive(10_000)
}

fn default_header_read_timeout_ms() -> u64 {
    10_000
}

fn default_idle_timeout_ms() -> u64 {
    60_000
}

fn default_drain_timeout_ms() -> u64 {
    30_000
}

fn default_access_log() -> bool {
    true
}

/// How often an HTTP/2 connection is pinged, and how long the answer may take.
const H2_PING_INTERVAL: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an idle connection that was told to close may take to do so.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long a new connection at `max_connections` waits for an evicted idle one: as
/// long as that one may take to close (a loaded machine can take most of it).
const EVICT_WAIT: Duration = Duration::from_millis(1_200);

/// HTTP/2 limit on the decoded header list (64 KiB).
const H2_MAX_HEADER_LIST: u32 = 64 * 1024;
/// Streams a client may reset before vaultgate accepted them, pending at once, before
/// the connection gets GOAWAY `ENHANCE_YOUR_CALM` (the CVE-2023-44487 bound). h2's
/// default, set here so that a new h2 cannot loosen it unseen.
const H2_MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams vaultgate may reset for the client's protocol errors before GOAWAY
/// (RUSTSEC-2024-0003). hyper's default, pinned for the same reason.
const H2_MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// How a listener behaves.
#[derive(Clone)]
pub struct ListenerOptions {
    /// Connections served at once. At the limit, the connection idle longest is
    /// closed to make room; when none is idle, the new one is refused at once (a 503
    /// over clear-text HTTP/1, or closed).
    pub max_connections: usize,
    /// Time allowed for the TLS handshake, each request head (HTTP/1) and a new
    /// connection's first request.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight, or whose client takes no byte of an
    /// answer, is closed after this long.
    pub idle_timeout: Duration,
    /// The TLS config, read at each handshake: a reload swaps in new certificates
    /// for new connections while open ones keep theirs.
    pub tls: Option<Arc<ArcSwap<rustls::ServerConfig>>>,
    /// Counts the open connections (for the `vaultgate_open_connections` gauge).
    pub open: Option<Arc<std::sync::atomic::AtomicUsize>>,
    /// How long in-flight requests may run after shutdown starts.
    pub grace: Duration,
    /// HTTP/2 streams open at once on one connection.
    pub h2_max_concurrent_streams: u32,
}

/// What a handler knows about the connection a request came on.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The names (CN, DNS SANs) of the client certificate that the TLS handshake
    /// verified, if the client sent one. The only source of certificate identity.
    pub peer_names: Option<Arc<[String]>>,
    /// The peer's address as an `X-Forwarded-For` entry, made once per connection.
    pub forwarded_for: http::HeaderValue,
}

impl ConnInfo {
    /// A connection from `peer`, over TLS or not, with no client certificate (yet).
    pub fn new(peer: SocketAddr, tls: bool) -> ConnInfo {
        ConnInfo {
            peer,
            tls,
            peer_names: None,
            forwarded_for: http::HeaderValue::from_str(&peer.ip().to_string())
                .unwrap_or_else(|_| http::HeaderValue::from_static("unknown")),
        }
    }
}

/// Bind a listening socket (SO_REUSEADDR, backlog 1024).
pub fn bind(key: &str, addr: SocketAddr) -> Result<TcpListener> {
    listen(key, addr, false)
}

/// Bind one shard's socket (also `SO_REUSEPORT`), as a non-blocking std listener to
/// be registered on the shard's own runtime.
fn bind_shard(key: &str, addr: SocketAddr) -> Result<std::net::TcpListener> {
    listen(key, addr, true)?
        .into_std()
        .map_err(|e| Error::io(format!("{key}: listen on {addr}"), e))
}

/// Fail, as a plain bind does, when a socket already listens on `addr`.
/// `SO_REUSEPORT` lets a second process of the same user bind a port that a first
/// one listens on with `SO_REUSEPORT` too, and the kernel then splits new
/// connections between the two: a second vaultgate started by mistake (another
/// store, another version) would take part of the traffic without a word. A probe
/// without `SO_REUSEPORT` is refused where any listener is; it is closed before the
/// shards bind. Port 0 is always free.
fn ensure_no_listener(key: &str, addr: SocketAddr) -> Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = reusable_socket(key, addr)?;
    probe
        .bind(addr)
        .map_err(|e| Error::io(format!("{key}: bind {addr}"), e))
}

/// A TCP socket for `addr`'s family with `SO_REUSEADDR` (a restart binds over
/// connections in TIME_WAIT).
fn reusable_socket(key: &str, addr: SocketAddr) -> Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| Error::io(format!("{key}: socket"), e))?;
    socket
        .set_reuseaddr(true)
        .map_err(|e| Error::io(format!("{key}: SO_REUSEADDR"), e))?;
    Ok(socket)
}

fn listen(key: &str, addr: SocketAddr, reuse_port: bool) -> Result<TcpListener> {
    let socket = reusable_socket(key, addr)?;
    if reuse_port {
        socket
            .set_reuseport(true)
            .map_err(|e| Error::io(format!("{key}: SO_REUSEPORT"), e))?;
    }
    socket
        .bind(addr)
        .map_err(|e| Error::io(format!("{key}: bind {addr}"), e))?;
    socket
        .listen(1024)
        .map_err(|e| Error::io(format!("{key}: listen on {addr}"), e))
}

/// Spawn the accept loop on a bound listener, on the calling runtime. The task ends
/// after `shutdown` turns true (or its sender is dropped) and the in-flight
/// connections drained, or the grace period ran out.
pub fn spawn<H, F>(
    name: &'static str,
    listener: TcpListener,
    options: ListenerOptions,
    shutdown: watch::Receiver<bool>,
    handler: H,
) -> JoinHandle<()>
where
    H: Fn(ConnInfo, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = std::result::Result<Response<Body>, Infallible>> + Send + 'static,
{
    let shared = Shared::new(&options);
    tokio::spawn(accept_loop(
        name, listener, options, shared, shutdown, handler,
    ))
}

/// Bind `addr` once per shard (`SO_REUSEPORT`) and run one accept loop per shard,
/// each on its own thread and current-thread runtime ([`super::shard`]). The shards
/// share the connection limit. Returns the bound address (the port is chosen once,
/// when `addr` asks for port 0) and a task that ends once every shard has drained.
pub fn spawn_sharded<H, F>(
    name: &'static str,
    key: &str,
    addr: std::net::SocketAddr,
    shards: usize,
    options: ListenerOptions,
    shutdown: watch::Receiver<bool>,
    handler: H,
) -> Result<(std::net::SocketAddr, JoinHandle<()>)>
where
    H: Fn(ConnInfo, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = std::result::Result<Response<Body>, Infallible>> + Send + 'static,
{
    ensure_no_listener(key, addr)?;
    let first = bind_shard(key, addr)?;
    let bound = first
        .local_addr()
        .map_err(|e| Error::io(format!("{key}: local address"), e))?;
    let mut sockets = vec![first];
    for _ in 1..shards {
        sockets.push(bind_shard(key, bound)?);
    }
    let shared = Shared::new(&options);
    let mut done = Vec::with_capacity(shards);
    for (index, socket) in sockets.into_iter().enumerate() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (options, shared, shutdown, handler) = (
            options.clone(),
            shared.clone(),
            shutdown.clone(),
            handler.clone(),
        );
        super::shard::start(
            format!("vg-{name}-{index}"),
            index,
            move || async move {
                match TcpListener::from_std(socket) {
                    Ok(listener) => {
                        accept_loop(name, listener, options, shared, shutdown, handler).await;
                    }
                    Err(e) => {
                        tracing::error!(listener = name, shard = index, error = %e, "cannot register the listening socket")
                    }
                }
            },
            tx,
        )?;
        done.push(rx);
    }
    tracing::debug!(listener = name, shards, %bound, "listening on every shard");
    Ok((
        bound,
        tokio::spawn(async move {
            for rx in done {
                let _ = rx.await;
            }
        }),
    ))
}

/// What the accept loops of one listener share: the HTTP builders, the connection
/// limit and the table of open connections.
#[derive(Clone)]
struct Shared {
    builders: Arc<Builders>,
    limit: Arc<Semaphore>,
    table: Arc<ConnTable>,
}

type Builder = auto::Builder<TokioExecutor>;

/// One HTTP builder for a connection whose protocol is known before it is served
/// (by ALPN, or by its first bytes), and one that reads the protocol itself.
///
/// A connection served by protocol skips hyper-util's version sniffing. That sniffing
/// hands the first bytes of a request to HTTP/1 in a read of their own, and HTTP/1's
/// read buffer then doubles to 16 KiB, which an idle keep-alive connection holds.
/// HTTP/1 is served by hyper's own builder: hyper-util's would put every read through
/// its rewind buffer and its connection state (about 500 instructions a request).
struct Builders {
    http1: Arc<http1::Builder>,
    http2: Arc<Builder>,
    either: Arc<Builder>,
}

/// The builder that serves one connection.
#[derive(Clone)]
enum Serving {
    Http1(Arc<http1::Builder>),
    Auto(Arc<Builder>),
}

/// What a connection speaks, as far as is known before it is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Http1,
    Http2,
    Unknown,
}

impl Builders {
    fn pick(&self, proto: Proto) -> Serving {
        match proto {
            Proto::Http1 => Serving::Http1(Arc::clone(&self.http1)),
            Proto::Http2 => Serving::Auto(Arc::clone(&self.http2)),
            Proto::Unknown => Serving::Auto(Arc::clone(&self.either)),
        }
    }
}

impl Shared {
    fn new(options: &ListenerOptions) -> Shared {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(H2_MAX_HEADER_LIST)
            .max_concurrent_streams(options.h2_max_concurrent_streams)
            .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESETS)
            .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESETS)
            .keep_alive_interval(H2_PING_INTERVAL)
            .keep_alive_timeout(H2_PING_TIMEOUT);
        // A connection known to be HTTP/1 times its request heads itself
        // (`ConnSlot::idle_expired`): hyper's timer would also close a keep-alive
        // connection idle for longer than a head may take, and costs a timer armed and
        // cancelled per request.
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .keep_alive(true);
        Shared {
            builders: Arc::new(Builders {
                http1: Arc::new(http1),
                http2: Arc::new(builder.clone().http2_only()),
                either: Arc::new(builder),
            }),
            limit: Arc::new(Semaphore::new(options.max_connections)),
            table: ConnTable::new(),
        }
    }
}

/// Accept connections until shutdown, serving each on a task of the current
/// runtime; then wait for them to drain (at most the grace period).
async fn accept_loop<H, F>(
    name: &'static str,
    listener: TcpListener,
    options: ListenerOptions,
    shared: Shared,
    mut shutdown: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(ConnInfo, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = std::result::Result<Response<Body>, Infallible>> + Send + 'static,
{
    let Shared {
        builders,
        limit,
        table,
    } = shared;
    let tls = options.tls.clone();
    let open = options.open.clone().unwrap_or_default();
    // Every connection task holds a sender; `recv` returns `None` once all ended.
    let (drained_tx, mut drained) = mpsc::channel::<()>(1);
    loop {
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
        let Some(permit) = make_room(&limit, &table).await else {
            tracing::debug!(listener = name, "at max_connections; connection refused");
            refuse(stream, tls.is_some());
            continue;
        };
        let _ = stream.set_nodelay(true);
        let builders = Arc::clone(&builders);
        let mut conn = Conn {
            name,
            builder: Serving::Auto(Arc::clone(&builders.either)),
            registered: table.register(),
            shutdown: shutdown.clone(),
            first: options.header_read_timeout,
            idle: options.idle_timeout,
            head: None,
        };
        let acceptor = tls.as_ref().map(|t| TlsAcceptor::from(t.load_full()));
        let handler = handler.clone();
        let drained_tx = drained_tx.clone();
        let open = Arc::clone(&open);
        tokio::spawn(async move {
            let _permit = permit;
            let _open = OpenGuard::enter(open);
            let _drained = drained_tx;
            let mut info = ConnInfo::new(peer, acceptor.is_some());
            match acceptor {
                None => {
                    let slot = Arc::clone(&conn.registered.slot);
                    let proto = tokio::select! {
                        proto = sniff(&stream, conn.first) => proto,
                        () = slot.evicted() => None,
                    };
                    let Some(proto) = proto else {
                        return;
                    };
                    conn.pick(&builders, proto);
                    conn.serve(stream, info, handler).await;
                }
                // Boxed: a TLS session's state is large, and a clear-text connection's
                // task would otherwise hold room for it.
                Some(acceptor) => {
                    Box::pin(async move {
                        let slot = Arc::clone(&conn.registered.slot);
                        let tls = tokio::select! {
                            tls = handshake(name, &acceptor, stream, conn.first) => tls,
                            () = slot.evicted() => None,
                        };
                        let Some(tls) = tls else {
                            return;
                        };
                        info.peer_names = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .map(|leaf| super::tls::peer_names(leaf).into());
                        // HTTP/2 over TLS needs ALPN (RFC 9113 §3.2): a client that
                        // names no protocol speaks HTTP/1.1.
                        let proto = match tls.get_ref().1.alpn_protocol() {
                            Some(b"h2") => Proto::Http2,
                            _ => Proto::Http1,
                        };
                        conn.pick(&builders, proto);
                        conn.serve(tls, info, handler).await;
                    })
                    .await
                }
            }
        });
    }
    drop(listener);
    drop(drained_tx);
    tracing::info!(listener = name, "stopped accepting; draining connections");
    if tokio::time::timeout(options.grace, drained.recv())
        .await
        .is_err()
    {
        tracing::warn!(listener = name, "grace period over; dropping connections");
    }
}

/// One open connection, counted in while it lives.
struct OpenGuard(Arc<std::sync::atomic::AtomicUsize>);

impl OpenGuard {
    fn enter(count: Arc<std::sync::atomic::AtomicUsize>) -> OpenGuard {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenGuard(count)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A connection slot: at once if one is free, else after the connection idle longest
/// closed; `None` when every connection is busy.
async fn make_room(limit: &Arc<Semaphore>, table: &ConnTable) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = Arc::clone(limit).try_acquire_owned() {
        return Some(permit);
    }
    if !table.evict_oldest_idle() {
        return None;
    }
    tokio::time::timeout(EVICT_WAIT, Arc::clone(limit).acquire_owned())
        .await
        .ok()
        .and_then(std::result::Result::ok)
}

/// Turn a connection away: a 503 over clear text (read by HTTP/1 clients), then close.
fn refuse(stream: TcpStream, tls: bool) {
    use std::io::Write as _;
    if tls {
        return;
    }
    let body = Error::Overloaded.to_json();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // A fresh socket's send buffer has room; if not, the client only sees the close.
    // (The socket stays non-blocking; tokio's readiness is not known yet this early.)
    if let Ok(std) = stream.into_std() {
        let _ = (&std).write(answer.as_bytes());
    }
}

/// One accepted connection and what serving it needs.
struct Conn {
    name: &'static str,
    builder: Serving,
    registered: Registered,
    shutdown: watch::Receiver<bool>,
    first: Duration,
    idle: Duration,
    /// The time allowed for each request head, where the connection times its heads
    /// itself (HTTP/1); hyper's builder does it otherwise.
    head: Option<Duration>,
}

impl Conn {
    /// Serve the connection as `proto`; on HTTP/1 it times its request heads itself,
    /// allowing each the header read timeout (`first`).
    fn pick(&mut self, builders: &Builders, proto: Proto) {
        self.builder = builders.pick(proto);
        self.head = matches!(proto, Proto::Http1).then_some(self.first);
    }

    /// Serve HTTP on `io` until the client closes, the connection stays idle too long
    /// or is evicted, or shutdown drains it.
    async fn serve<I, H, F>(mut self, io: I, info: ConnInfo, handler: H)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        H: Fn(ConnInfo, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = std::result::Result<Response<Body>, Infallible>> + Send + 'static,
    {
        let slot = Arc::clone(&self.registered.slot);
        let tracked = Arc::clone(&slot);
        let service = service_fn(move |req| {
            let busy = tracked.busy();
            let answering = tracked.answering();
            // Boxed: an idle connection's task then holds a pointer, not room for the
            // whole handler future (4.3 KiB for the proxy's), at one allocation per
            // request.
            let answer = Box::pin(handler(info.clone(), req));
            async move {
                let res = answer.await?;
                answering.done();
                Ok::<_, Infallible>(res.map(|body| Sending::new(body, busy)))
            }
        });
        let watched = self.head.map(|_| Arc::clone(&slot));
        let io = TokioIo::new(Watched::new(io, watched));
        match self.builder.clone() {
            Serving::Http1(b) => {
                let conn = b.serve_connection(io, service);
                self.drive(conn, &slot, |c| c.graceful_shutdown()).await;
            }
            Serving::Auto(b) => {
                let conn = b.serve_connection(io, service);
                self.drive(conn, &slot, |c| c.graceful_shutdown()).await;
            }
        }
    }

    /// Run `conn` to its end, asking it to finish (`shutdown`) when the connection
    /// idles out, is evicted, or the listener stops.
    ///
    /// The connection's task wakes several times per request, and `select!` polls
    /// every branch on every wake. The three reasons to finish wake only when they
    /// happen, so they wait in a `FuturesUnordered`, which polls one of them only when
    /// its own waker fired: a wake for the connection costs one empty queue, not three
    /// polls (about 1,200 instructions per pass-through request; `bench/RESULTS.md`).
    async fn drive<C, E>(&mut self, conn: C, slot: &ConnSlot, shutdown: impl Fn(Pin<&mut C>))
    where
        C: Future<Output = std::result::Result<(), E>>,
        E: std::fmt::Display,
    {
        use futures_util::future::{Either, FutureExt as _};
        use futures_util::stream::{FuturesUnordered, StreamExt as _};

        tokio::pin!(conn);
        let idle = slot
            .idle_expired(self.first, self.idle, self.head)
            .map(|()| Finish::Idle);
        let evicted = slot.evicted().map(|()| Finish::Evicted);
        let cancels = slot.cancel_flood().map(|()| Finish::Cancels);
        let stalled = slot.send_stalled(self.idle).map(|()| Finish::Stalled);
        let stop = stopped(&mut self.shutdown).map(|()| Finish::Stop);
        let mut finish = FuturesUnordered::new();
        finish.push(Either::Left(Either::Left(Either::Left(idle))));
        finish.push(Either::Left(Either::Left(Either::Right(stalled))));
        finish.push(Either::Left(Either::Right(cancels)));
        finish.push(Either::Right(Either::Left(evicted)));
        finish.push(Either::Right(Either::Right(stop)));
        let close_by = tokio::time::sleep(Duration::from_secs(86_400 * 365));
        tokio::pin!(close_by);
        let mut closing = false;
        let name = self.name;
        loop {
            tokio::select! {
                biased;
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(listener = name, error = %e, "connection ended with an error");
                    }
                    return;
                }
                Some(why) = finish.next(), if !closing => {
                    shutdown(conn.as_mut());
                    match why {
                        Finish::Idle => tracing::debug!(listener = name, "idle connection closed"),
                        Finish::Evicted => {
                            tracing::debug!(listener = name, "idle connection closed to make room");
                        }
                        Finish::Stalled => tracing::debug!(
                            listener = name,
                            "connection closed: the client took no byte of an answer for the idle timeout"
                        ),
                        Finish::Cancels => tracing::warn!(
                            listener = name,
                            "connection closed: the client cancelled most of its requests"
                        ),
                        // Draining: an idle timeout or an eviction may still close it
                        // sooner.
                        Finish::Stop => continue,
                    }
                    closing = true;
                    close_by.as_mut().reset(tokio::time::Instant::now() + CLOSE_GRACE);
                }
                () = &mut close_by, if closing => return,
            }
        }
    }
}

/// Why a connection is asked to finish.
enum Finish {
    /// Idle past its timeout, or a request head took too long.
    Idle,
    /// The client took no byte of an answer for the idle timeout.
    Stalled,
    /// Chosen to make room at `max_connections`.
    Evicted,
    /// The client cancelled most of its requests (HTTP/2 resets after accept).
    Cancels,
    /// The listener is stopping: the connection drains.
    Stop,
}

/// The protocol of a clear-text connection from its first bytes, left unread: HTTP/2's
/// preface starts with `PRI`, a method HTTP/1 never uses (RFC 9113 §3.4). `None` when
/// the client closes or sends nothing within `timeout`.
async fn sniff(stream: &TcpStream, timeout: Duration) -> Option<Proto> {
    const PREFACE: &[u8] = b"PRI";
    let mut first = [0u8; 3];
    let n = tokio::time::timeout(timeout, stream.peek(&mut first))
        .await
        .ok()?
        .ok()?;
    match first.get(..n)? {
        [] => None,
        b"PRI" => Some(Proto::Http2),
        // Too few bytes yet to tell: hyper-util reads on until it can.
        some if PREFACE.starts_with(some) => Some(Proto::Unknown),
        _ => Some(Proto::Http1),
    }
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
