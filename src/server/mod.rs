//! Listeners, TLS, logging and shutdown.
//!
//! [`start`] binds the proxy and API listeners from a [`Config`] and returns a
//! [`ServerHandle`] with their bound addresses; [`ServerHandle::stop`] (or a signal, via
//! [`ServerHandle::run_until_signal`]) stops accepting, drains in-flight requests for
//! up to the grace period and returns, so the caller can then flush the store.

pub mod body;
pub mod listener;
pub mod logging;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, Access, ApiState, Metrics, Readiness};
use crate::config::Config;
use crate::pipeline::Vault;
use crate::proxy::{self, ProxyState};
use crate::{Error, Result};

pub use listener::{ConnInfo, ListenerOptions};

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
    let access = Arc::new(Access::build(config, &metrics)?);
    let outbound_state = config
        .outbound
        .as_ref()
        .map(|o| {
            crate::outbound::OutboundState::build(
                o,
                &config.limits,
                Arc::clone(&access),
                Arc::clone(&vault),
            )
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

    let proxy_opts = ListenerOptions {
        max_connections: config.proxy.max_connections,
        header_read_timeout: Duration::from_millis(config.proxy.header_read_timeout_ms),
        tls: config
            .proxy
            .tls
            .as_ref()
            .map(|t| tls::server_config("proxy.tls", t))
            .transpose()?,
        grace,
    };
    let api_opts = ListenerOptions {
        max_connections: config.api.max_connections,
        header_read_timeout: Duration::from_millis(config.api.header_read_timeout_ms),
        tls: config
            .api
            .tls
            .as_ref()
            .map(|t| tls::server_config("api.tls", t))
            .transpose()?,
        grace,
    };

    let proxy_listener = listener::bind("proxy.listen", config.proxy_addr()?)?;
    let api_listener = listener::bind("api.listen", config.api_addr()?)?;
    let proxy_addr = local_addr("proxy.listen", &proxy_listener)?;
    let api_addr = local_addr("api.listen", &api_listener)?;

    let (shutdown, rx) = watch::channel(false);
    let proxy_task = listener::spawn(
        "proxy",
        proxy_listener,
        proxy_opts,
        rx.clone(),
        move |conn, req| proxy::handle(Arc::clone(&proxy_state), conn, req),
    );
    let api_task = listener::spawn(
        "api",
        api_listener,
        api_opts,
        rx.clone(),
        move |conn, req| api::handle(Arc::clone(&api_state), conn, req),
    );
    let mut tasks = vec![proxy_task, api_task];
    let mut outbound_addr = None;
    if let (Some(outbound), Some(state)) = (&config.outbound, outbound_state) {
        let opts = ListenerOptions {
            max_connections: outbound.max_connections,
            header_read_timeout: Duration::from_millis(outbound.header_read_timeout_ms),
            tls: outbound
                .tls
                .as_ref()
                .map(|t| tls::server_config("outbound.tls", t))
                .transpose()?,
            grace,
        };
        let addr: SocketAddr = outbound
            .listen
            .parse()
            .map_err(|_| Error::Config("outbound.listen: expected ip:port".into()))?;
        let l = listener::bind("outbound.listen", addr)?;
        outbound_addr = Some(local_addr("outbound.listen", &l)?);
        tasks.push(listener::spawn(
            "outbound",
            l,
            opts,
            rx,
            move |conn, req| crate::outbound::handle(Arc::clone(&state), conn, req),
        ));
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

fn local_addr(key: &str, listener: &tokio::net::TcpListener) -> Result<SocketAddr> {
    listener
        .local_addr()
        .map_err(|e| Error::io(format!("{key}: local address"), e))
}
