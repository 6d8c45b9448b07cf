//! Who is calling, may they, how fast, and the audit trail: shared by the vault API
//! and the outbound reveal proxy.
//!
//! Identity comes from the client certificate the TLS handshake verified
//! ([`ConnInfo::peer_names`]) or from a checked API key; never from any other header.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use http::{HeaderMap, HeaderName, header};

use super::{Authenticator, Client, ClientConfig, RateLimiter};
use crate::audit::{Action, AuditEvent, AuditLog};
use crate::metrics::{CounterVec, Metrics};
use crate::net::ConnInfo;
use crate::{Error, Result};

/// Authentication, authorization state, rate limits and the audit log.
#[derive(Debug)]
pub struct Access {
    auth: Authenticator,
    limiter: RateLimiter,
    /// `None` when no client is configured: nothing can be revealed then.
    audit: arc_swap::ArcSwapOption<AuditLog>,
    rate_limited: Arc<CounterVec>,
    auth_failures: Arc<CounterVec>,
    /// Failed authentications not yet written, per source address (`None`: the
    /// sources past [`MAX_FAILURE_SOURCES`]) and error code.
    pending_failures: Mutex<HashMap<(Option<IpAddr>, &'static str), u64>>,
}

/// How often failed authentications are written to the audit log, in aggregate.
pub const AUTH_FAILURE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// The most source addresses counted separately between two writes; the rest are
/// counted together (origin `*`), so that memory stays bounded.
const MAX_FAILURE_SOURCES: usize = 4096;

impl Access {
    /// Build from the configured clients and the audit log (the caller opens one
    /// whenever anything can be revealed, so that a server that can reveal always
    /// audits).
    pub fn build(
        clients: &[ClientConfig],
        audit: Option<Arc<AuditLog>>,
        metrics: &Metrics,
    ) -> Result<Access> {
        let auth = Authenticator::new(clients)?;
        let rate_limited = metrics.registry.counter_vec(
            "vaultgate_rate_limited_total",
            "API and outbound calls refused by a client's rate limit.",
            &["client"],
        );
        let auth_failures = metrics.registry.counter_vec(
            "vaultgate_auth_failures_total",
            "Requests whose credential was refused, per listener.",
            &["listener"],
        );
        Ok(Access {
            auth,
            limiter: RateLimiter::new(),
            audit: arc_swap::ArcSwapOption::new(audit),
            rate_limited,
            auth_failures,
            pending_failures: Mutex::new(HashMap::new()),
        })
    }

    /// The audit log, if one is open.
    pub fn audit_log(&self) -> Option<Arc<AuditLog>> {
        self.audit.load_full()
    }

    /// Install the audit log once it can be opened: a server that starts sealed gets
    /// its audit key (derived from the master key) only at unseal.
    pub fn install_audit_log(&self, log: Arc<AuditLog>) {
        self.audit.store(Some(log));
    }

    /// The caller: by verified client certificate, else by `Bearer` key in `header`
    /// (`Authorization` on the API, `Proxy-Authorization` on the outbound proxy).
    /// A refusal is audited.
    pub async fn authenticate(
        &self,
        conn: &ConnInfo,
        headers: &HeaderMap,
        header: &HeaderName,
    ) -> Result<Arc<Client>> {
        if let Some(names) = &conn.peer_names
            && let Ok(client) = self
                .auth
                .authenticate_cert_names(names.iter().map(String::as_str))
        {
            return Ok(client);
        }
        let result = match bearer(headers, header) {
            Some(key) => self.auth.authenticate_bearer(key).await,
            None => Err(Error::Unauthenticated),
        };
        if let Err(err) = &result {
            let listener = if *header == http::header::PROXY_AUTHORIZATION {
                "outbound"
            } else {
                "api"
            };
            self.auth_failures.inc(&[listener]);
            self.note_failure(conn.peer.ip(), err.code());
        }
        result
    }

    /// Count a refused credential; [`Access::flush_auth_failures`] writes the counts.
    /// No write and no fsync per request: an unauthenticated caller cannot turn
    /// requests into disk syncs.
    fn note_failure(&self, ip: IpAddr, code: &'static str) {
        let mut pending = self
            .pending_failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let source =
            if pending.len() < MAX_FAILURE_SOURCES || pending.contains_key(&(Some(ip), code)) {
                Some(ip)
            } else {
                None
            };
        *pending.entry((source, code)).or_insert(0) += 1;
    }

    /// Write the failed authentications counted since the last call: one
    /// `auth_failure` entry per source address and error code, with a `count`, in one
    /// batch. Run every [`AUTH_FAILURE_INTERVAL`] and at shutdown.
    pub async fn flush_auth_failures(&self) {
        let pending = std::mem::take(
            &mut *self
                .pending_failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if pending.is_empty() {
            return;
        }
        let events: Vec<AuditEvent> = pending
            .into_iter()
            .map(|((source, code), n)| {
                let mut event = AuditEvent::new("-", Action::AuthFailure)
                    .origin(source.map_or_else(|| "*".to_owned(), |ip| ip.to_string()))
                    .count(n);
                event.outcome = code;
                event
            })
            .collect();
        if let Err(e) = self.record(&events).await {
            tracing::error!(error = %e, "failed authentications could not be audited");
        }
    }

    /// Take `n` reveals from the client's budget; a refusal is audited and counted.
    pub async fn rate_limit(&self, client: &Client, n: usize, conn: &ConnInfo) -> Result<()> {
        let result = self.limiter.check(client, n);
        if let Err(err) = &result {
            self.rate_limited.inc(&[client.name()]);
            let event = AuditEvent::new(client.name(), Action::RateLimited)
                .origin(conn.peer.to_string())
                .failed(err);
            let _ = self.record(std::slice::from_ref(&event)).await;
        }
        result
    }

    /// Write audit entries (one write, one group commit). Without a log, or when it
    /// cannot be written: `AuditUnavailable`, and the caller must refuse.
    pub async fn record(&self, events: &[AuditEvent]) -> Result<()> {
        match self.audit.load_full() {
            Some(log) => log.record_batch(events).await,
            None => Err(Error::AuditUnavailable),
        }
    }
}

/// The key of the one `Bearer` credential in `name`; none when the header is
/// missing, malformed, or sent more than once (which value counts would be a guess).
fn bearer<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let value = value.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim())
        .filter(|k| !k.is_empty())
}

/// Authenticate a vault API request: its bearer key or its client certificate.
pub async fn api_client(
    access: &Access,
    conn: &ConnInfo,
    headers: &HeaderMap,
) -> Result<Arc<Client>> {
    access.authenticate(conn, headers, api_auth_header()).await
}

/// The header the vault API reads a bearer key from.
pub fn api_auth_header() -> &'static HeaderName {
    &header::AUTHORIZATION
}
