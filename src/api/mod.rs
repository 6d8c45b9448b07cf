//! The API listener: health, readiness, metrics and (later) the vault's `/v1/...`
//! endpoints.
//!
//! Adding an endpoint is one match arm in [`route`]; a handler returns
//! `Result<Response<Body>>` and its error becomes the JSON error response in [`handle`].

pub mod health;
pub mod metrics;

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;

use crate::pipeline::Vault;
use crate::server::body::{Body, error_response};
use crate::{Error, Result};

pub use health::Readiness;
pub use metrics::Metrics;

/// What the API handlers share.
#[derive(Debug)]
pub struct ApiState {
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub vault: Arc<Vault>,
}

/// The API service: route, run, and turn any error into its JSON response.
pub async fn handle(
    state: Arc<ApiState>,
    req: Request<Incoming>,
) -> std::result::Result<Response<Body>, Infallible> {
    Ok(match route(&state, req).await {
        Ok(res) => res,
        Err(err) => error_response(&err),
    })
}

/// The routing table of the API listener.
async fn route(state: &ApiState, req: Request<Incoming>) -> Result<Response<Body>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => Ok(health::healthz()),
        (&Method::GET, "/readyz") => Ok(health::readyz(&state.readiness)),
        (&Method::GET, "/metrics") => Ok(metrics::metrics(
            &state.metrics,
            state.vault.store().flushes(),
        )),
        // (&Method::POST, "/v1/detokenize") => reveal::detokenize(state, req).await,
        _ => Err(Error::NoRoute),
    }
}
