//! The gate in front of the handlers: each request reads the current handler states
//! once; while sealed there are none, and the request is answered `503 sealed`
//! without reaching a handler (so nothing is forwarded upstream). The API's health,
//! readiness and metrics, and the seal endpoints, answer either way.

use std::cell::RefCell;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;
use http::{Method, Request, Response};
use hyper::body::Incoming;
use tokio::task::JoinHandle;

use super::{Custody, Slot};
use crate::api::{self, ApiState};
use crate::audit::{AuditKey, AuditLog, AuditOptions};
use crate::auth::Access;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::health::Readiness;
use crate::inbound::{self, ProxyState, ShardState};
use crate::metrics::Metrics;
use crate::net::ConnInfo;
use crate::net::body::{Body, error_response, full};
use crate::net::budget::BodyBudget;
use crate::outbound::{self, OutboundState};
use crate::vault::{Vault, WATCH_PERIOD};

type Answer = std::result::Result<Response<Body>, Infallible>;

/// Gives every gate its own id, so a thread's cached handle names the gate it is for.
static NEXT_GATE: AtomicU64 = AtomicU64::new(1);

/// A thread's handle on a gate's proxy state.
struct CachedProxy {
    /// The gate's id.
    gate: u64,
    /// The generation of the gate's handler states the handle was made from.
    generation: u64,
    /// None while sealed.
    state: Option<Arc<ShardState>>,
}

thread_local! {
    static PROXY: RefCell<Option<CachedProxy>> = const { RefCell::new(None) };
}

/// The handler states built on one unsealed vault.
struct Live {
    proxy: Arc<ProxyState>,
    api: Arc<ApiState>,
    outbound: Option<Arc<OutboundState>>,
}

/// What the listeners share: the config to build handler states from, and the
/// current ones (none while sealed).
pub struct Gate {
    /// The config in use; a reload swaps it.
    config: ArcSwap<Config>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    /// The body budget of the proxy's whole-body reads; it outlives reloads, which
    /// set its limit.
    budget: Arc<BodyBudget>,
    /// Clients, rate limits and the audit log; a reload builds a new one around the
    /// same audit log.
    access: ArcSwap<Access>,
    /// Held while the handler states are swapped (install, clear, reload), so a
    /// reload cannot put states back after a seal.
    swapping: Mutex<()>,
    custody: Arc<Custody>,
    live: ArcSwapOption<Live>,
    /// This gate, among the process's gates (tests run several).
    id: u64,
    /// Bumped after every store into `live`: a thread's handle on the proxy state
    /// is remade when it moved ([`Gate::proxy`]).
    generation: AtomicU64,
    /// Run the CVV sweeper while unsealed.
    sweep: bool,
    sweeper: Mutex<Option<JoinHandle<()>>>,
    /// The key and readiness watch of the vault in service.
    watch: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("sealed", &self.live.load().is_none())
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// A gate with no handler states yet (sealed until the custody installs a vault).
    pub fn new(
        config: &Config,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        access: Arc<Access>,
        custody: Arc<Custody>,
        sweep: bool,
    ) -> Gate {
        readiness.set_sealed(true);
        Gate {
            config: ArcSwap::from_pointee(config.clone()),
            metrics,
            readiness,
            budget: BodyBudget::new(config.limits.max_buffered_body_bytes.get()),
            access: ArcSwap::new(access),
            swapping: Mutex::new(()),
            custody,
            live: ArcSwapOption::empty(),
            id: NEXT_GATE.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            sweep,
            sweeper: Mutex::new(None),
            watch: Mutex::new(None),
        }
    }

    /// The proxy listener's handler. It takes the proxy state through this thread's
    /// handle ([`ShardState`]): a request writes no reference count that requests
    /// on other cores write too.
    pub fn proxy(
        &self,
        conn: ConnInfo,
        req: Request<Incoming>,
    ) -> impl Future<Output = Answer> + Send + use<> {
        use futures_util::future::{Either, ready};
        // The handler's own future, not one wrapped around it: the future is boxed per
        // request, and a wrapper would hold the request a second time.
        match self.proxy_state() {
            Some(state) => Either::Left(inbound::handle(state, conn, req)),
            None => Either::Right(ready(Ok(error_response(&Error::Sealed)))),
        }
    }

    /// This thread's handle on the proxy state, remade when the states changed since
    /// it was made (a reload, a seal, an unseal). The generation is read before the
    /// states and bumped after they are stored, so a handle is never older than the
    /// generation it is cached under. A worker that serves no request after a reload
    /// keeps the old states (and their idle upstream connections) until its next
    /// request.
    fn proxy_state(&self) -> Option<Arc<ShardState>> {
        let generation = self.generation.load(Ordering::Acquire);
        PROXY.with(|cached| {
            let mut cached = cached.borrow_mut();
            if let Some(c) = cached.as_ref()
                && c.gate == self.id
                && c.generation == generation
            {
                return c.state.clone();
            }
            let state = self
                .live
                .load()
                .as_ref()
                .map(|live| ShardState::new(Arc::clone(&live.proxy)));
            *cached = Some(CachedProxy {
                gate: self.id,
                generation,
                state: state.clone(),
            });
            state
        })
    }

    /// Store new handler states (or none) and tell every thread's cached handle.
    fn set_live(&self, live: Option<Live>) {
        self.live.store(live.map(Arc::new));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The outbound listener's handler.
    pub async fn outbound(self: Arc<Self>, conn: ConnInfo, req: Request<Incoming>) -> Answer {
        let live = self.live.load_full();
        match live.as_ref().and_then(|l| l.outbound.clone()) {
            Some(state) => outbound::handle(state, conn, req).await,
            None => Ok(error_response(&Error::Sealed)),
        }
    }

    /// The API listener's handler: the seal endpoints first, then the vault API.
    pub async fn api(self: Arc<Self>, conn: ConnInfo, req: Request<Incoming>) -> Answer {
        if super::http::is_sys(req.uri().path()) {
            return Ok(super::http::handle(
                Arc::clone(&self.custody),
                self.access.load_full(),
                conn,
                req,
            )
            .await);
        }
        let live = self.live.load_full();
        match live {
            Some(live) => api::handle(Arc::clone(&live.api), conn, req).await,
            None => Ok(self.sealed_api(&req)),
        }
    }

    /// The API while sealed: health, readiness and metrics only.
    fn sealed_api(&self, req: &Request<Incoming>) -> Response<Body> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/healthz") => api::health::healthz(),
            (&Method::GET, "/readyz") => api::health::readyz(&self.readiness),
            (&Method::GET, "/metrics") => {
                for (check, ok) in self.readiness.checks() {
                    self.metrics.ready.set(&[check], if ok { 1.0 } else { 0.0 });
                }
                let text = self.metrics.render(self.custody.store().flush_figures());
                let mut res = Response::new(full(Bytes::from(text)));
                res.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                res
            }
            _ => error_response(&Error::Sealed),
        }
    }

    fn sweeper(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        self.sweeper.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn watch(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        self.watch.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn swapping(&self) -> std::sync::MutexGuard<'_, ()> {
        self.swapping.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The access (clients, limits, audit log) in use.
    pub fn access(&self) -> Arc<Access> {
        self.access.load_full()
    }

    /// The budget of the proxy's whole-body reads.
    pub fn body_budget(&self) -> &Arc<BodyBudget> {
        &self.budget
    }

    /// The config in use.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Swap in a new config: routes, upstreams, clients and limits. Refused, with the
    /// reason, when it changes what needs a restart (listener addresses, TLS on or
    /// off, `[vault]`, the audit log's path) or when its states cannot be built; the
    /// old config then keeps serving. Requests in flight finish on the old states.
    pub fn reload(&self, new: Config) -> Result<()> {
        let old = self.config.load_full();
        restart_needed(&old, &new)?;
        let _swapping = self.swapping();
        let access = Arc::new(Access::build(
            &new.clients,
            self.access.load().audit_log(),
            &self.metrics,
        )?);
        let live = match self.custody.vault() {
            Some(vault) => {
                if audit_wanted(&new) && access.audit_log().is_none() {
                    access.install_audit_log(Arc::new(AuditLog::open_with(
                        new.audit_path(),
                        AuditKey::new(vault.audit_key()?),
                        audit_options(&new),
                    )?));
                }
                Some(build_live(
                    &new,
                    &access,
                    &self.metrics,
                    &self.readiness,
                    &self.budget,
                    vault,
                )?)
            }
            None => None,
        };
        self.budget
            .set_limit(new.limits.max_buffered_body_bytes.get());
        self.config.store(Arc::new(new));
        self.access.store(access);
        if let Some(live) = live {
            self.set_live(Some(live));
        }
        Ok(())
    }
}

/// Why `new` cannot be swapped in without a restart, if it cannot.
fn restart_needed(old: &Config, new: &Config) -> Result<()> {
    let refuse = |what: &str| {
        Err(Error::Config(format!(
            "{what} changed; that needs a restart (the reload was refused)"
        )))
    };
    let listeners = |c: &Config| {
        let mut l = vec![
            ("proxy", c.proxy.listen, c.proxy.tls.is_some()),
            ("api", c.api.listen, c.api.tls.is_some()),
        ];
        if let Some(o) = &c.outbound {
            l.push(("outbound", o.listener.listen, o.listener.tls.is_some()));
        }
        l
    };
    let (a, b) = (listeners(old), listeners(new));
    if a.len() != b.len() {
        return refuse("[outbound] (added or removed)");
    }
    for ((name, old_addr, old_tls), (_, new_addr, new_tls)) in a.iter().zip(&b) {
        if old_addr != new_addr {
            return refuse(&format!("{name}.listen"));
        }
        if old_tls != new_tls {
            return refuse(&format!("{name}.tls (turned on or off)"));
        }
    }
    if old.vault != new.vault {
        return refuse("[vault]");
    }
    if old.audit_path() != new.audit_path() {
        return refuse("audit.path");
    }
    Ok(())
}

/// The handler states of `config` on an unsealed vault.
fn build_live(
    config: &Config,
    access: &Arc<Access>,
    metrics: &Arc<Metrics>,
    readiness: &Arc<Readiness>,
    budget: &Arc<BodyBudget>,
    vault: Arc<Vault>,
) -> Result<Live> {
    let proxy = Arc::new(ProxyState::build(
        config,
        Arc::clone(&vault),
        Arc::clone(metrics),
        Arc::clone(budget),
    )?);
    let outbound = config
        .outbound
        .as_ref()
        .map(|o| {
            OutboundState::build(
                o,
                &config.limits,
                Arc::clone(access),
                Arc::clone(&vault),
                config.outbound_shards(),
                metrics,
                Arc::clone(budget),
            )
            .map(Arc::new)
        })
        .transpose()?;
    let api = Arc::new(ApiState {
        metrics: Arc::clone(metrics),
        readiness: Arc::clone(readiness),
        vault,
        access: Arc::clone(access),
        body_budget: Arc::clone(budget),
        access_log: config.api.access_log,
    });
    Ok(Live {
        proxy,
        api,
        outbound,
    })
}

impl Gate {
    /// Open the audit log with the vault's audit key if the server audits and it is
    /// not open yet (a server that started sealed had no key until now).
    fn open_audit(&self, vault: &Vault) -> Result<()> {
        let config = self.config.load();
        let access = self.access.load();
        if !audit_wanted(&config) || access.audit_log().is_some() {
            return Ok(());
        }
        let log = AuditLog::open_with(
            config.audit_path(),
            AuditKey::new(vault.audit_key()?),
            audit_options(&config),
        )?;
        access.install_audit_log(Arc::new(log));
        Ok(())
    }
}

/// Whether this server keeps an audit log: whenever anything can be revealed, and
/// whenever the seal is not a passphrase (unseal and seal events are audited).
pub fn audit_wanted(config: &Config) -> bool {
    !config.clients.is_empty()
        || config.outbound.is_some()
        || config.vault.seal.kind != crate::vault::keys::seal::SealKind::Passphrase
}

/// The audit log's options from the config.
pub fn audit_options(config: &Config) -> AuditOptions {
    AuditOptions {
        fsync: config.audit.fsync.unwrap_or(true),
        timeout: config.vault.flush_timeout(),
        ..AuditOptions::default()
    }
}

impl Slot for Gate {
    fn install(&self, vault: Arc<Vault>) -> Result<()> {
        let _swapping = self.swapping();
        self.open_audit(&vault)?;
        let config = self.config.load_full();
        let live = build_live(
            &config,
            &self.access.load_full(),
            &self.metrics,
            &self.readiness,
            &self.budget,
            Arc::clone(&vault),
        )?;
        self.readiness.set_upstreams_built(true);
        self.set_live(Some(live));
        if self.sweep
            && let Some(old) = self.sweeper().replace(spawn_sweeper(Arc::clone(&vault)))
        {
            old.abort();
        }
        // The watch checks the audit log's file: the log itself outlives reloads
        // (a reloaded access keeps the same one).
        if let Some(old) = self.watch().replace(spawn_watch(
            vault,
            Arc::clone(&self.readiness),
            self.access.load_full(),
        )) {
            old.abort();
        }
        self.readiness.set_sealed(false);
        Ok(())
    }

    fn clear(&self) {
        let _swapping = self.swapping();
        self.readiness.set_sealed(true);
        self.set_live(None);
        if let Some(sweeper) = self.sweeper().take() {
            sweeper.abort();
        }
        if let Some(watch) = self.watch().take() {
            watch.abort();
        }
    }
}

/// Every [`WATCH_PERIOD`]: pick up a rotated keyring (and, on a shared store, the
/// published active version), ping the store, and check that the audit log can be
/// written; `/readyz` follows. A change of state is logged once, not at every tick.
pub fn spawn_watch(
    vault: Arc<Vault>,
    readiness: Arc<Readiness>,
    access: Arc<Access>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = (true, true, true);
        loop {
            tick.tick().await;
            let ping = tokio::time::timeout(WATCH_PERIOD * 2, vault.store().ping()).await;
            let store_ok = matches!(ping, Ok(Ok(())));
            let keys_ok = if store_ok {
                match tokio::time::timeout(WATCH_PERIOD * 2, vault.refresh_keys()).await {
                    Ok(Ok(_)) => true,
                    Ok(Err(Error::StoreUnavailable | Error::Store(_))) | Err(_) => last.1,
                    Ok(Err(_)) => false,
                }
            } else {
                last.1
            };
            // A hung write or sync (a frozen disk) is not writable either.
            let audit_ok = access
                .audit_log()
                .is_none_or(|log| !log.stalled() && audit_writable(log.path()));
            readiness.set_store_reachable(store_ok);
            readiness.set_keys_available(keys_ok);
            readiness.set_audit_writable(audit_ok);
            let now = (store_ok, keys_ok, audit_ok);
            if now != last {
                if store_ok && keys_ok && audit_ok {
                    tracing::info!("store, keyring and audit log available again: ready");
                } else {
                    tracing::error!(
                        store = store_ok,
                        keyring = keys_ok,
                        audit_log = audit_ok,
                        "not ready: a dependency is unavailable"
                    );
                }
                last = now;
            }
        }
    })
}

/// Whether the audit log file can be opened for appending (nothing is written).
fn audit_writable(path: &std::path::Path) -> bool {
    std::fs::OpenOptions::new().append(true).open(path).is_ok()
}

/// Drop expired CVVs once a minute (and once at start, for records left by a restart).
pub fn spawn_sweeper(vault: Arc<Vault>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            match vault.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(swept = n, "expired CVV records removed"),
                Err(e) => tracing::warn!(error = %e, "CVV sweep failed"),
            }
        }
    })
}
