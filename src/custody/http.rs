//! The seal endpoints on the API listener, served whether sealed or not:
//!
//! - `GET /v1/sys/seal-status`: sealed or not, the seal's kind, and for Shamir the
//!   threshold and the shares received so far;
//! - `POST /v1/sys/unseal`: `{"share": "vgshare1-…"}` (one share per call), or `{}`
//!   for an HSM seal, or `{"passphrase": …}` for a passphrase seal, after a seal;
//! - `POST /v1/sys/seal`: drop the keys from memory; an authenticated client with
//!   `seal = true` only.
//! - `POST /v1/sys/rewrap`: re-encrypt every record under the active data key
//!   version, through the running server (whose sled store no other process can
//!   open); a client with `seal = true` only. Picks up a rotated keyring first.
//!   Resumable: run it again after an interruption. Progress is in the
//!   `vaultgate_rewrap_*` metrics.
//!
//! Unsealing takes no API key: the share (or the HSM) is the credential, as each
//! share's holder is a different operator. Every call is audited with its peer
//! address and never with share material.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::Custody;
use crate::auth::{Access, api_client};
use crate::error::{Error, Result};
use crate::net::ConnInfo;
use crate::net::body::{Body, error_response, json, read_body};
use crate::vault::keys::seal::Passphrase;

/// The largest unseal request body.
const MAX_BODY: usize = 4096;

/// Whether `path` is one of the seal endpoints.
pub fn is_sys(path: &str) -> bool {
    path.starts_with("/v1/sys/")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsealRequest {
    #[serde(default)]
    share: Option<String>,
    #[serde(default)]
    passphrase: Option<String>,
}

/// Serve one seal endpoint; errors become their JSON response.
pub async fn handle(
    custody: Arc<Custody>,
    access: Arc<Access>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Response<Body> {
    match route(&custody, &access, &conn, req).await {
        Ok(res) => res,
        Err(err) => error_response(&err),
    }
}

async fn route(
    custody: &Custody,
    access: &Access,
    conn: &ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let origin = conn.peer.to_string();
    let status = match (req.method(), req.uri().path()) {
        (&Method::GET, "/v1/sys/seal-status") => custody.status()?,
        (&Method::POST, "/v1/sys/unseal") => {
            let (parts, body) = req.into_parts();
            let bytes = Zeroizing::new(read_body(&parts.headers, body, MAX_BODY).await?.to_vec());
            let request: UnsealRequest = if bytes.is_empty() {
                UnsealRequest {
                    share: None,
                    passphrase: None,
                }
            } else {
                serde_json::from_slice(&bytes).map_err(|_| {
                    Error::BadRequest("expected {\"share\": \"vgshare1-…\"} or {}".to_owned())
                })?
            };
            let share = request.share.map(Zeroizing::new);
            let passphrase = request.passphrase.map(Passphrase::new).transpose()?;
            match share {
                Some(share) => custody.submit_share(&share, &origin).await?,
                None => custody.unseal_other(passphrase, &origin).await?,
            }
        }
        (&Method::POST, "/v1/sys/rewrap") => {
            let client = api_client(access, conn, req.headers()).await?;
            if !client.may_seal() {
                return Err(Error::Forbidden("this client may not rewrap the vault"));
            }
            let vault = custody.vault_or_sealed()?;
            let result = vault.rewrap().await;
            if let Some(log) = access.audit_log() {
                let event =
                    crate::audit::AuditEvent::new(client.name(), crate::audit::Action::KeyRewrap)
                        .origin(&origin)
                        .outcome_of(&result);
                log.record(event).await?;
            }
            let report = result?;
            let body = serde_json::json!({
                "rewrapped": report.rewrapped,
                "current": report.current,
                "active_version": vault.active_key_version(),
            });
            return Ok(json(StatusCode::OK, Bytes::from(body.to_string())));
        }
        (&Method::POST, "/v1/sys/seal") => {
            let client = api_client(access, conn, req.headers()).await?;
            if !client.may_seal() {
                return Err(Error::Forbidden("this client may not seal the vault"));
            }
            custody.seal(client.name(), &origin).await?
        }
        _ => return Err(Error::NoRoute),
    };
    let body = serde_json::to_vec(&status).map_err(|_| Error::Internal("seal status"))?;
    Ok(json(StatusCode::OK, Bytes::from(body)))
}
