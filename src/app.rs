//! Wiring: the handlers' states, the listeners, and shutdown.
//!
//! [`start`] binds the proxy and API listeners from a [`Config`] and returns a
//! [`ServerHandle`] with their bound addresses; [`ServerHandle::stop`] (or a signal, via
//! [`ServerHandle::run_until_signal`]) stops accepting, drains in-flight requests for
//! for up to each listener's `drain_timeout_ms` and returns, so the caller can then
//! flush the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::audit::{AuditKey, AuditLog};
use crate::auth::Access;
use crate::config::Config;
use crate::custody::{Custody, Gate, Slot};
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::net::{ListenerSettings, listener, tls};
use crate::vault::Vault;
use crate::{Error, Result};

/// A running proxy + API pair.
#[derive(Debug)]
pub struct ServerHandle {
    proxy_addr: SocketAddr,
    api_addr: SocketAddr,
    outbound_addr: Option<SocketAddr>,
    gate: Arc<Gate>,
    reloader: Reloader,
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
    pub fn access(&self) -> Arc<Access> {
        self.gate.access()
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

    /// Wait until both listeners have drained (or their grace period ran out), then
    /// write the audit log's shutdown checkpoint.
    pub async fn wait(self) {
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "listener task failed");
            }
        }
        if let Some(log) = self.gate.access().audit_log()
            && let Err(e) = log.checkpoint()
        {
            tracing::error!(error = %e, "the audit shutdown checkpoint failed");
        }
    }

    /// [`shutdown`](Self::shutdown) then [`wait`](Self::wait).
    pub async fn stop(self) {
        self.shutdown();
        self.wait().await;
    }

    /// Swap in a new config; see [`Reloader::reload`].
    pub fn reload(&self, config: Config) -> Result<()> {
        self.reloader.reload(config)
    }

    /// Re-read `path` and reload it, logging the outcome (what SIGHUP does).
    pub fn reload_file(&self, path: &std::path::Path) {
        self.reloader.reload_file(path);
    }

    /// Reload from `path` on every SIGHUP until shutdown; a refused config is logged
    /// at error and the old one keeps serving. (The audit log is reopened on SIGHUP
    /// as well, by its own task.)
    pub fn reload_on_hangup(&mut self, path: std::path::PathBuf) -> Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())
            .map_err(|e| Error::io("installing the SIGHUP handler", e))?;
        let mut shutdown = self.shutdown.subscribe();
        let reloader = self.reloader.clone();
        self.tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = hup.recv() => reloader.reload_file(&path),
                    () = stopped(&mut shutdown) => break,
                }
            }
        }));
        Ok(())
    }

    /// Serve until SIGTERM, SIGINT or SIGQUIT, then drain and return.
    pub async fn run_until_signal(self) -> Result<()> {
        shutdown_signal().await?;
        tracing::info!("shutdown signal received");
        self.stop().await;
        Ok(())
    }
}

/// What a config reload swaps: the gate's states and each TLS listener's config.
#[derive(Clone, Debug)]
pub struct Reloader {
    gate: Arc<Gate>,
    tls: Vec<(&'static str, Arc<ArcSwap<rustls::ServerConfig>>)>,
    metrics: Arc<Metrics>,
    /// The listener blocks the sockets were bound with (their TLS aside, which
    /// reloads): a change to the rest waits for a restart, and a reload says so.
    bound: Vec<(&'static str, ListenerSettings)>,
}

impl Reloader {
    /// Swap in a new config (see [`Gate::reload`]) and the TLS certificates and log
    /// level it names; new handshakes use the new certificates. A refused config
    /// changes nothing; either way `vaultgate_config_last_reload_success` says how it
    /// went, and `vaultgate_config_generation` counts the configs swapped in.
    pub fn reload(&self, config: Config) -> Result<()> {
        let result = self.try_reload(config);
        let ok = result.is_ok();
        self.metrics
            .config_reload_ok
            .set(if ok { 1.0 } else { 0.0 });
        if ok {
            self.metrics.config_generation.increment(1.0);
        }
        result
    }

    fn try_reload(&self, config: Config) -> Result<()> {
        crate::logging::check_level(&config.log.level)?;
        // Everything that can fail is built before anything is swapped.
        let mut certs = Vec::new();
        for (name, slot) in &self.tls {
            let Some(files) = listener_settings(&config, name).and_then(|l| l.tls.as_ref()) else {
                return Err(Error::Config(format!(
                    "{name}.tls removed; that needs a restart (the reload was refused)"
                )));
            };
            let server = tls::server_config(&format!("{name}.tls"), files)?;
            let expiry = tls::leaf_not_after(&format!("{name}.tls.cert"), &files.cert)?;
            certs.push((*name, Arc::clone(slot), server, expiry));
        }
        let level = config.log.level.clone();
        let pending: Vec<&'static str> = self
            .bound
            .iter()
            .filter(|(name, old)| {
                listener_settings(&config, name).map(|new| ListenerSettings {
                    tls: old.tls.clone(),
                    ..new.clone()
                }) != Some(old.clone())
            })
            .map(|(name, _)| *name)
            .collect();
        self.gate.reload(config)?;
        for name in pending {
            tracing::warn!(
                listener = name,
                "listen, max_connections, timeouts, workers or h2_max_concurrent_streams changed; they take effect at \
                 restart (the rest of the config was reloaded)"
            );
        }
        for (name, slot, server, expiry) in certs {
            slot.store(server);
            self.metrics.tls_expiry.set(&[name], expiry as f64);
        }
        if let Err(e) = crate::logging::set_level(&level) {
            tracing::warn!(error = %e, "the log level was not changed");
        }
        Ok(())
    }

    /// Re-read `path` and [`reload`](Self::reload) it, logging the outcome.
    pub fn reload_file(&self, path: &std::path::Path) {
        let result = Config::load(path).and_then(|config| self.reload(config));
        // The file is named: an operator reading the line may not know which one
        // the process was started with.
        let file = path.display();
        match result {
            Ok(()) => tracing::info!(config = %file, "config reloaded"),
            Err(e) => {
                // A file that does not parse is a refused reload too.
                self.metrics.config_reload_ok.set(0.0);
                tracing::error!(
                    config = %file,
                    error = %e,
                    "config reload refused; the old config keeps serving"
                );
            }
        }
    }
}

/// Wait for SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Error::io("installing the SIGTERM handler", e))?;
        // SIGQUIT stops gracefully too, as it does nginx.
        let mut quit = signal(SignalKind::quit())
            .map_err(|e| Error::io("installing the SIGQUIT handler", e))?;
        // SIGUSR2 means nothing here, and its default action would end the process
        // at once, without a drain: a stray one (a script written for another
        // daemon) is logged and ignored.
        let mut usr2 = signal(SignalKind::user_defined2())
            .map_err(|e| Error::io("installing the SIGUSR2 handler", e))?;
        loop {
            tokio::select! {
                _ = term.recv() => return Ok(()),
                _ = quit.recv() => return Ok(()),
                _ = usr2.recv() => tracing::warn!(
                    "SIGUSR2 ignored: SIGHUP reloads the config, SIGUSR1 reopens the audit \
                     log, SIGTERM, SIGINT or SIGQUIT stops"
                ),
                r = tokio::signal::ctrl_c() => {
                    return r.map_err(|e| Error::io("waiting for SIGINT", e));
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| Error::io("waiting for Ctrl-C", e))
    }
}

/// Take over SIGHUP, SIGUSR1 and SIGUSR2 from their default action (ending the
/// process) for as long as the returned handles live; what arrives meanwhile is
/// dropped. `serve` holds them from before the keyring unseals until its own
/// handlers are installed. Must be called within a Tokio runtime.
pub fn hold_signals() -> Result<Vec<tokio::signal::unix::Signal>> {
    use tokio::signal::unix::{SignalKind, signal};
    [
        ("SIGHUP", SignalKind::hangup()),
        ("SIGUSR1", SignalKind::user_defined1()),
        ("SIGUSR2", SignalKind::user_defined2()),
    ]
    .into_iter()
    .map(|(name, kind)| {
        signal(kind).map_err(|e| Error::io(format!("installing the {name} handler"), e))
    })
    .collect()
}

/// Bind and start both listeners from a validated config. `vault` must be open.
/// In-flight requests drain for each listener's `drain_timeout_ms` at shutdown.
pub async fn start(config: &Config, vault: Arc<Vault>) -> Result<ServerHandle> {
    let custody = Arc::new(Custody::unsealed(&config.vault, vault));
    start_custody(config, custody, None, false).await
}

/// [`start`] with one drain grace period for every listener, whatever the config says.
pub async fn start_with_grace(
    config: &Config,
    vault: Arc<Vault>,
    grace: Duration,
) -> Result<ServerHandle> {
    let custody = Arc::new(Custody::unsealed(&config.vault, vault));
    start_custody(config, custody, Some(grace), false).await
}

/// Start with the keys in `custody`, sealed or not: while sealed the proxy and the
/// vault API answer `503 sealed` and `/readyz` is 503, until the custody is unsealed
/// (`/v1/sys/unseal`). `sweep` runs the CVV sweeper while unsealed. `grace`, when
/// given, replaces every listener's `drain_timeout_ms`.
pub async fn start_custody(
    config: &Config,
    custody: Arc<Custody>,
    grace: Option<Duration>,
    sweep: bool,
) -> Result<ServerHandle> {
    let metrics = Arc::new(Metrics::new());
    let flush_duration = metrics.store_flush_duration.clone();
    custody
        .store()
        .observe_flushes(Arc::new(move |took| flush_duration.observe(took)));
    let readiness = Arc::new(Readiness::default());
    // The custody holds an open store, whether sealed or not.
    readiness.set_store_open(true);

    // The audit log is opened whenever anything can be revealed (and under a seal
    // other than a passphrase), so that a server that can reveal always audits. Its
    // key comes from the master key: a server that starts sealed opens it at unseal.
    let audit = match custody.vault() {
        Some(vault) if crate::custody::audit_wanted(config) => Some(Arc::new(AuditLog::open_with(
            config.audit_path(),
            AuditKey::new(vault.audit_key()?),
            crate::custody::audit_options(config),
        )?)),
        _ => None,
    };
    let access = Arc::new(Access::build(&config.clients, audit, &metrics)?);
    for (check, ok) in readiness.checks() {
        metrics.ready.set(&[check], if ok { 1.0 } else { 0.0 });
    }
    let gate = Arc::new(Gate::new(
        config,
        Arc::clone(&metrics),
        Arc::clone(&readiness),
        Arc::clone(&access),
        Arc::clone(&custody),
        sweep,
    ));
    custody.attach(Arc::clone(&gate) as Arc<dyn Slot>, Arc::clone(&access))?;

    let (shutdown, rx) = watch::channel(false);
    let proxy_gate = Arc::clone(&gate);
    let mut tls_slots = Vec::new();
    let mut open_counts = Vec::new();
    let (proxy_addr, proxy_task) = serve(
        Bind {
            name: "proxy",
            settings: &config.proxy,
            grace,
            metrics: &metrics,
            tls_slots: &mut tls_slots,
            open_counts: &mut open_counts,
            shards: config.proxy_shards(),
        },
        rx.clone(),
        move |conn, req| proxy_gate.proxy(conn, req),
    )?;
    let api_gate = Arc::clone(&gate);
    let (api_addr, api_task) = serve(
        Bind {
            name: "api",
            settings: &config.api,
            grace,
            metrics: &metrics,
            tls_slots: &mut tls_slots,
            open_counts: &mut open_counts,
            shards: config.api.workers.shards(false),
        },
        rx.clone(),
        move |conn, req| Arc::clone(&api_gate).api(conn, req),
    )?;
    let mut tasks = vec![
        proxy_task,
        api_task,
        spawn_audit_upkeep(&gate, rx.clone())?,
        spawn_share_expiry(&custody, rx.clone()),
    ];
    let mut outbound_addr = None;
    if let Some(outbound) = &config.outbound {
        let out_gate = Arc::clone(&gate);
        let (addr, task) = serve(
            Bind {
                name: "outbound",
                settings: &outbound.listener,
                grace,
                metrics: &metrics,
                tls_slots: &mut tls_slots,
                open_counts: &mut open_counts,
                shards: config.outbound_shards(),
            },
            rx,
            move |conn, req| Arc::clone(&out_gate).outbound(conn, req),
        )?;
        outbound_addr = Some(addr);
        tasks.push(task);
    }
    tasks.push(spawn_upkeep(&metrics, open_counts, shutdown.subscribe()));
    tracing::info!(%proxy_addr, %api_addr, ?outbound_addr, sealed = custody.is_sealed(), "listening");
    Ok(ServerHandle {
        proxy_addr,
        api_addr,
        outbound_addr,
        reloader: Reloader {
            gate: Arc::clone(&gate),
            tls: tls_slots,
            metrics: Arc::clone(&metrics),
            bound: ["proxy", "api", "outbound"]
                .into_iter()
                .filter_map(|name| Some((name, listener_settings(config, name)?.clone())))
                .collect(),
        },
        gate,
        shutdown,
        readiness,
        metrics,
        tasks,
    })
}

/// Forget unseal shares that waited too long (checked every second); ends at shutdown.
fn spawn_share_expiry(
    custody: &Arc<Custody>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let custody = Arc::clone(custody);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => { custody.expire(); }
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    })
}

/// Copy each listener's open connections into `vaultgate_open_connections` every few
/// seconds; ends at shutdown.
fn spawn_upkeep(
    metrics: &Arc<Metrics>,
    open: OpenCounts,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let metrics = Arc::clone(metrics);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    for (name, n) in &open {
                        let n = n.load(std::sync::atomic::Ordering::Relaxed);
                        metrics.open_connections.set(&[name], n as f64);
                    }
                }
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    })
}

/// The audit log's housekeeping: write aggregated auth failures every
/// [`AUTH_FAILURE_INTERVAL`](crate::auth::AUTH_FAILURE_INTERVAL) and at
/// shutdown, and reopen the file on SIGHUP or SIGUSR1 (logrotate renames the file, then
/// signals). A later config reload on SIGHUP can call [`AuditLog::reopen`] as well.
fn spawn_audit_upkeep(
    gate: &Arc<Gate>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let gate = Arc::clone(gate);
    let mut hup =
        signal(SignalKind::hangup()).map_err(|e| Error::io("installing the SIGHUP handler", e))?;
    let mut usr1 = signal(SignalKind::user_defined1())
        .map_err(|e| Error::io("installing the SIGUSR1 handler", e))?;
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::auth::AUTH_FAILURE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => gate.access().flush_auth_failures().await,
                _ = hup.recv() => reopen_audit(&gate.access()),
                _ = usr1.recv() => reopen_audit(&gate.access()),
                () = stopped(&mut shutdown) => break,
            }
        }
        gate.access().flush_auth_failures().await;
    }))
}

/// Until shutdown starts (the guard `wait_for` returns is not `Send`).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn reopen_audit(access: &Access) {
    if let Some(log) = access.audit_log() {
        match log.reopen() {
            Ok(()) => {}
            Err(e) => tracing::error!(error = %e, "reopening the audit log failed"),
        }
    }
}

/// The listener block named `name` (`proxy`, `api`, `outbound`) of a config.
fn listener_settings<'a>(config: &'a Config, name: &str) -> Option<&'a ListenerSettings> {
    match name {
        "proxy" => Some(&config.proxy),
        "api" => Some(&config.api),
        "outbound" => config.outbound.as_ref().map(|o| &o.listener),
        _ => None,
    }
}

/// One listener block to bind, and where its TLS config and metrics go.
struct Bind<'a> {
    /// Its config section.
    name: &'static str,
    settings: &'a ListenerSettings,
    /// The drain grace period, when not the listener's own `drain_timeout_ms`.
    grace: Option<Duration>,
    metrics: &'a Arc<Metrics>,
    tls_slots: &'a mut Vec<(&'static str, Arc<ArcSwap<rustls::ServerConfig>>)>,
    /// Each listener's open connections, copied into the gauge by the upkeep task.
    open_counts: &'a mut OpenCounts,
    /// Threads of its own (thread-per-core); 0 for the shared runtime.
    shards: usize,
}

/// Each listener's count of open connections.
type OpenCounts = Vec<(&'static str, Arc<std::sync::atomic::AtomicUsize>)>;

/// Bind one listener block and spawn its accept loop.
fn serve<H, F>(
    bind: Bind<'_>,
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
    let Bind {
        name,
        settings,
        grace,
        metrics,
        tls_slots,
        open_counts,
        shards,
    } = bind;
    let tls = match &settings.tls {
        Some(files) => {
            let server = tls::server_config(&format!("{name}.tls"), files)?;
            let expiry = tls::leaf_not_after(&format!("{name}.tls.cert"), &files.cert)?;
            metrics.tls_expiry.set(&[name], expiry as f64);
            let slot = Arc::new(ArcSwap::new(server));
            tls_slots.push((name, Arc::clone(&slot)));
            Some(slot)
        }
        None => None,
    };
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    metrics.open_connections.set(&[name], 0.0);
    open_counts.push((name, Arc::clone(&open)));
    let options = listener::ListenerOptions {
        max_connections: settings.max_connections.0,
        header_read_timeout: Duration::from_millis(settings.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(settings.idle_timeout_ms),
        tls,
        open: Some(open),
        grace: grace.unwrap_or(Duration::from_millis(settings.drain_timeout_ms)),
        h2_max_concurrent_streams: settings.h2_max_concurrent_streams.0,
    };
    let key = format!("{name}.listen");
    if shards > 0 {
        return listener::spawn_sharded(
            name,
            &key,
            settings.listen,
            shards,
            options,
            shutdown,
            handler,
        );
    }
    let socket = listener::bind(&key, settings.listen)?;
    let addr = socket
        .local_addr()
        .map_err(|e| Error::io(format!("{key}: local address"), e))?;
    Ok((
        addr,
        listener::spawn(name, socket, options, shutdown, handler),
    ))
}
