//! The API listener: health, readiness, metrics and (later) the vault's `/v1/...`
//! endpoints.
//!
//! Adding an endpoint is one match arm in [`route`]; a handler returns
//! `Result<Response<Body>>` and its error becomes the JSON error response in [`handle`].

pub mod access;
pub mod health;
pub mod metrics;
pub mod reveal;
pub mod tokens;

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;

use crate::pipeline::Vault;
use crate::server::ConnInfo;
use crate::server::body::{Body, error_response};
use crate::{Error, Result};

pub use access::Access;
pub use health::Readiness;
pub use metrics::Metrics;

/// What the API handlers share.
#[derive(Debug)]
pub struct ApiState {
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub vault: Arc<Vault>,
    pub access: Arc<Access>,
}

/// The API service: route, run, and turn any error into its JSON response.
pub async fn handle(
    state: Arc<ApiState>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> std::result::Result<Response<Body>, Infallible> {
    Ok(match route(&state, &conn, req).await {
        Ok(res) => res,
        Err(err) => error_response(&err),
    })
}

/// Copy the vault's own counters into the registry before it is rendered.
fn sync_vault_counters(state: &ApiState) {
    use std::sync::atomic::Ordering;
    for class in crate::sensitive::DataClass::ALL {
        state
            .metrics
            .tokens_issued
            .with(&[class.as_str()])
            .store(state.vault.issued(class), Ordering::Relaxed);
    }
}

/// The routing table of the API listener.
///
/// Every route here is documented in `openapi.json` at the repository root; the
/// `api_openapi` test keeps the two in step.
async fn route(
    state: &ApiState,
    conn: &ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => Ok(health::healthz()),
        (&Method::GET, "/readyz") => Ok(health::readyz(&state.readiness)),
        (&Method::GET, "/metrics") => {
            sync_vault_counters(state);
            Ok(metrics::metrics(
                &state.metrics,
                state.vault.store().flushes(),
            ))
        }
        (&Method::POST, "/v1/detokenize") => reveal::detokenize(state, conn, req).await,
        (&Method::POST, "/v1/tokenize") => tokens::tokenize(state, conn, req).await,
        (&Method::GET, p) if p.starts_with("/v1/tokens/") => {
            tokens::metadata(state, conn, req).await
        }
        (&Method::DELETE, p) if p.starts_with("/v1/tokens/") => {
            tokens::delete(state, conn, req).await
        }
        _ => Err(Error::NoRoute),
    }
}
