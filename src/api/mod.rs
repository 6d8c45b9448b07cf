//! The API listener: health, readiness, metrics and the vault's `/v1/...` endpoints.
//!
//! Adding an endpoint is one match arm in [`route`]; a handler returns
//! `Result<Response<Body>>` and its error becomes the JSON error response in [`handle`].

pub mod health;
pub mod reveal;
pub mod tokens;

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;

use bytes::Bytes;

use crate::auth::Access;
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::net::ConnInfo;
use crate::net::body::{Body, error_response, full};
use crate::vault::Vault;
use crate::{Error, Result};

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
    for class in crate::sensitive::DataClass::ALL {
        state
            .metrics
            .tokens_issued
            .with(&[class.as_str()])
            .absolute(state.vault.issued(class));
    }
    let gauge = |name, help, v: usize| {
        let v = u64::try_from(v).unwrap_or(u64::MAX);
        state
            .metrics
            .registry
            .gauge_vec(name, help, &[])
            .set(&[], v as f64);
    };
    gauge(
        "vaultgate_cvv_store_entries",
        "CVV records held in memory.",
        state.vault.cvv_store_len(),
    );
    gauge(
        "vaultgate_cvv_store_capacity",
        "CVV records memory may hold.",
        state.vault.cvv_store_capacity(),
    );
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
            Ok(metrics(state.metrics.render(state.vault.store().flushes())))
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

/// `GET /metrics`: the text exposition format.
fn metrics(text: String) -> Response<Body> {
    let mut res = Response::new(full(Bytes::from(text)));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}
