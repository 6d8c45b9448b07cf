//! Wiring: the handlers' states, the listeners, and shutdown.
//!
//! [`start`] binds the proxy and API listeners from a [`Config`] and returns a
//! [`ServerHandle`] with their bound addresses; [`ServerHandle::stop`] (or a signal, via
//! [`ServerHandle::run_until_signal`]) stops accepting, drains in-flight requests for
//! up to the grace period and returns, so the caller can then flush the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, ApiState};
use crate::audit::{AuditLog, AuditOptions};
use crate::auth::Access;
use crate::config::Config;
use crate::health::Readiness;
use crate::inbound::{self, ProxyState};
use crate::metrics::Metrics;
use crate::net::{ListenerSettings, listener, tls};
use crate::outbound::{self, OutboundState};
use crate::vault::Vault;
use crate::{Error, Result};

/// How long in-flight requests may run after shutdown starts, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// A running proxy + API pair.
#[derive(Debug)]
pub struct ServerHandle {
    proxy_addr: SocketAddr,
    api_addr: SocketAddr,
    outbound_addr: Option<SocketAddr>,
    access: Arc<Access>,
    shutdown: watch::Sender<bool>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// Where the proxy listener is bound.
    pub fn proxy_addr(&self) -> SocketAddr {
        self.proxy_addr
    }

    /// Where the API listener is bound.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where the outbound reveal proxy is bound, if `[outbound]` is configured.
    pub fn outbound_addr(&self) -> Option<SocketAddr> {
        self.outbound_addr
    }

    /// Authentication, rate limits and the audit log shared by the API and the
    /// outbound proxy.
    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }

    /// The metrics registry (for other components to register their counters).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The readiness flags behind `/readyz`.
    pub fn readiness(&self) -> &Arc<Readiness> {
        &self.readiness
    }

    /// Start shutting down: `/readyz` turns 503, the listeners stop accepting and
    /// connections drain. Returns at once; see [`ServerHandle::wait`].
    pub fn shutdown(&self) {
        self.readiness.set_draining();
        self.shutdown.send_replace(true);
    }

    /// Wait until both listeners have drained (or their grace period ran out).
    pub async fn wait(self) {
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "listener task failed");
            }
        }
    }

    /// [`shutdown`](Self::shutdown) then [`wait`](Self::wait).
    pub async fn stop(self) {
        self.shutdown();
        self.wait().await;
    }

    /// Serve until SIGTERM or SIGINT, then drain and return.
    pub async fn run_until_signal(self) -> Result<()> {
        shutdown_signal().await?;
        tracing::info!("shutdown signal received");
        self.stop().await;
        Ok(())
    }
}

/// Wait for SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Error::io("installing the SIGTERM handler", e))?;
        tokio::select! {
            _ = term.recv() => Ok(()),
            r = tokio::signal::ctrl_c() => r.map_err(|e| Error::io("waiting for SIGINT", e)),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| Error::io("waiting for Ctrl-C", e))
    }
}

/// Bind and start both listeners from a validated config. `vault` must be open.
pub async fn start(config: &Config, vault: Arc<Vault>) -> Result<ServerHandle> {
    start_with_grace(config, vault, DEFAULT_GRACE).await
}

/// [`start`] with a chosen drain grace period.
pub async fn start_with_grace(
    config: &Config,
    vault: Arc<Vault>,
    grace: Duration,
) -> Result<ServerHandle> {
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    // The caller hands over an opened vault.
    readiness.set_store_open(true);

    let proxy_state = Arc::new(ProxyState::build(
        config,
        Arc::clone(&vault),
        Arc::clone(&metrics),
    )?);
    // The audit log is opened whenever anything can be revealed, so that a server
    // that can reveal always audits.
    let audit = if config.clients.is_empty() && config.outbound.is_none() {
        None
    } else {
        let options = AuditOptions {
            fsync: config.audit.fsync.unwrap_or(true),
        };
        Some(Arc::new(AuditLog::open_with(config.audit_path(), options)?))
    };
    let access = Arc::new(Access::build(&config.clients, audit, &metrics)?);
    let outbound_state = config
        .outbound
        .as_ref()
        .map(|o| {
            OutboundState::build(o, &config.limits, Arc::clone(&access), Arc::clone(&vault))
                .map(Arc::new)
        })
        .transpose()?;
    readiness.set_upstreams_built(true);
    let api_state = Arc::new(ApiState {
        metrics: Arc::clone(&metrics),
        readiness: Arc::clone(&readiness),
        vault,
        access: Arc::clone(&access),
    });

    let (shutdown, rx) = watch::channel(false);
    let (proxy_addr, proxy_task) = serve(
        "proxy",
        &config.proxy,
        grace,
        rx.clone(),
        move |conn, req| inbound::handle(Arc::clone(&proxy_state), conn, req),
    )?;
    let (api_addr, api_task) = serve("api", &config.api, grace, rx.clone(), move |conn, req| {
        api::handle(Arc::clone(&api_state), conn, req)
    })?;
    let mut tasks = vec![proxy_task, api_task];
    let mut outbound_addr = None;
    if let (Some(outbound), Some(state)) = (&config.outbound, outbound_state) {
        let (addr, task) = serve(
            "outbound",
            &outbound.listener,
            grace,
            rx,
            move |conn, req| outbound::handle(Arc::clone(&state), conn, req),
        )?;
        outbound_addr = Some(addr);
        tasks.push(task);
    }
    tracing::info!(%proxy_addr, %api_addr, ?outbound_addr, "listening");
    Ok(ServerHandle {
        proxy_addr,
        api_addr,
        outbound_addr,
        access,
        shutdown,
        readiness,
        metrics,
        tasks,
    })
}

/// Bind one listener block and spawn its accept loop; `name` is its config section.
fn serve<H, F>(
    name: &'static str,
    settings: &ListenerSettings,
    grace: Duration,
    shutdown: watch::Receiver<bool>,
    handler: H,
) -> Result<(SocketAddr, JoinHandle<()>)>
where
    H: Fn(crate::net::ConnInfo, http::Request<hyper::body::Incoming>) -> F
        + Clone
        + Send
        + Sync
        + 'static,
    F: std::future::Future<
            Output = std::result::Result<
                http::Response<crate::net::body::Body>,
                std::convert::Infallible,
            >,
        > + Send
        + 'static,
{
    let options = listener::ListenerOptions {
        max_connections: settings.max_connections.0,
        header_read_timeout: Duration::from_millis(settings.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(settings.idle_timeout_ms),
        tls: settings
            .tls
            .as_ref()
            .map(|t| tls::server_config(&format!("{name}.tls"), t))
            .transpose()?,
        grace,
    };
    let key = format!("{name}.listen");
    let socket = listener::bind(&key, settings.listen)?;
    let addr = socket
        .local_addr()
        .map_err(|e| Error::io(format!("{key}: local address"), e))?;
    Ok((
        addr,
        listener::spawn(name, socket, options, shutdown, handler),
    ))
}
