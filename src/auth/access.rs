//! Who is calling, may they, how fast, and the audit trail: shared by the vault API
//! and the outbound reveal proxy.
//!
//! Identity comes from the client certificate the TLS handshake verified
//! ([`ConnInfo::peer_names`]) or from a checked API key; never from any other header.

use std::sync::Arc;

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
    audit: Option<Arc<AuditLog>>,
    rate_limited: Arc<CounterVec>,
}

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
            "Reveal requests refused by a client's rate limit.",
            &["client"],
        );
        Ok(Access {
            auth,
            limiter: RateLimiter::new(),
            audit,
            rate_limited,
        })
    }

    /// The audit log, if one is open.
    pub fn audit_log(&self) -> Option<&Arc<AuditLog>> {
        self.audit.as_ref()
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
            let event = AuditEvent::new("-", Action::AuthFailure)
                .origin(conn.peer.to_string())
                .failed(err);
            // The caller gets 401 either way; a failed audit write is logged by the log.
            let _ = self.record(std::slice::from_ref(&event)).await;
        }
        result
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
        match &self.audit {
            Some(log) => log.record_batch(events).await,
            None => Err(Error::AuditUnavailable),
        }
    }
}

/// The key of `Bearer <key>` in a header, if well-formed.
fn bearer<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let value = headers.get(name)?.to_str().ok()?;
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
