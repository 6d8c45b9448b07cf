//! The API listener: health, readiness, metrics, the OpenAPI document and the
//! vault's `/v1/...` endpoints.
//!
//! Adding an endpoint is an [`Endpoint`] and its match arm in [`route`]; a handler returns
//! `Result<Response<Body>>` and its error becomes the JSON error response in [`handle`].

pub mod health;
pub mod reveal;
pub mod tokens;

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use bytes::Bytes;

use crate::auth::Access;
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::net::ConnInfo;
use crate::net::body::{Body, error_response, full, json};
use crate::net::budget::BodyBudget;
use crate::net::trace::{AccessLine, RequestIds};
use crate::vault::Vault;
use crate::{Error, Result};

/// What the API handlers share.
#[derive(Debug)]
pub struct ApiState {
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub vault: Arc<Vault>,
    pub access: Arc<Access>,
    /// The proxy's body budget, for its gauges.
    pub body_budget: Arc<BodyBudget>,
    /// Write a `vaultgate::access` line per request (`api.access_log`).
    pub access_log: bool,
}

/// The API service: route, run, and turn any error into its JSON response.
pub async fn handle(
    state: Arc<ApiState>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> std::result::Result<Response<Body>, Infallible> {
    use hyper::body::Body as _;
    use tracing::Instrument as _;
    let started = std::time::Instant::now();
    let mut req = req;
    let ids = RequestIds::take(req.headers_mut());
    let note = Arc::new(Note::default());
    req.extensions_mut().insert(Arc::clone(&note));
    let method = req.method().clone();
    let endpoint = Endpoint::of(req.uri().path()).map_or("-", Endpoint::template);
    let bytes_in = req.body().size_hint().exact();
    let span = tracing::info_span!(
        "api",
        request_id = ids.request_id(),
        trace_id = ids.trace_id()
    );
    let (mut res, outcome) = match route(&state, &conn, req).instrument(span.clone()).await {
        Ok(res) => (res, "ok"),
        Err(err) => (error_response(&err), err.code()),
    };
    ids.answer(res.headers_mut());
    let status = res.status().as_u16();
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let client = note.client.get().map_or("-", |c| c.as_str());
    let values = note.values.load(std::sync::atomic::Ordering::Relaxed);
    if endpoint.starts_with("/v1/") {
        state.metrics.api_requests.inc(&[endpoint, client, outcome]);
    }
    // The path template, never the path: a token in a path is not logged.
    span.in_scope(|| {
        tracing::debug!(
            endpoint,
            method = crate::net::trace::method_text(&method),
            status,
            latency_us,
            "api request done"
        );
    });
    if state.access_log {
        AccessLine {
            listener: "api",
            route: Some(endpoint),
            method: Some(&method),
            path: Some(endpoint),
            status,
            bytes_in,
            bytes_out: res.body().size_hint().exact(),
            latency: started.elapsed(),
            client: Some(client),
            values: Some(values),
            outcome: Some(outcome),
            ..AccessLine::default()
        }
        .write(&ids);
    }
    Ok(res)
}

/// What a handler learns about a request for its access line and metrics: the
/// authenticated client and the number of values tokenized or revealed. Travels in
/// the request's extensions.
#[derive(Debug, Default)]
pub struct Note {
    client: std::sync::OnceLock<String>,
    values: std::sync::atomic::AtomicUsize,
}

/// Authenticate an API request and note its client.
async fn authenticate(
    access: &Access,
    conn: &ConnInfo,
    req: &Request<Incoming>,
) -> Result<Arc<crate::auth::Client>> {
    let client = crate::auth::api_client(access, conn, req.headers()).await?;
    if let Some(note) = req.extensions().get::<Arc<Note>>() {
        let _ = note.client.set(client.name().to_owned());
    }
    Ok(client)
}

/// Note how many values a request tokenized or revealed.
fn note_values(extensions: &http::Extensions, n: usize) {
    if let Some(note) = extensions.get::<Arc<Note>>() {
        note.values.store(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Write audit events, counting a failed write.
async fn record(state: &ApiState, events: &[crate::audit::AuditEvent]) -> Result<()> {
    let timer = std::time::Instant::now();
    let result = state.access.record(events).await;
    state
        .metrics
        .store_ops
        .with(&["durable"])
        .observe(timer.elapsed());
    if result.is_err() {
        state.metrics.audit_write_failures.increment(1);
    }
    result
}

/// Copy the vault's own counters into the registry before it is rendered.
fn sync_vault_counters(state: &ApiState) {
    for (check, ok) in state.readiness.checks() {
        state
            .metrics
            .ready
            .set(&[check], if ok { 1.0 } else { 0.0 });
    }
    for class in crate::sensitive::DataClass::ALL {
        state
            .metrics
            .tokens_issued
            .with(&[class.as_str()])
            .absolute(state.vault.issued(class));
    }
    state
        .metrics
        .registry
        .counter_vec(
            "vaultgate_sweep_refusals_total",
            "Tokenizations refused by the sweep detector (too many new card numbers sharing a first six and last four).",
            &[],
        )
        .with(&[])
        .absolute(state.vault.sweep_refusals());
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
    gauge(
        "vaultgate_buffered_body_bytes",
        "Request body bytes the proxy holds in memory, read whole (rules routes, compressed \
         guarded bodies).",
        state.body_budget.held(),
    );
    gauge(
        "vaultgate_buffered_body_limit_bytes",
        "limits.max_buffered_body_bytes: past it, a read is refused with 503 overloaded.",
        state.body_budget.limit(),
    );
    let registry = &state.metrics.registry;
    registry
        .counter_vec(
            "vaultgate_rewrap_records_total",
            "Records re-encrypted under the active data key by this process.",
            &[],
        )
        .with(&[])
        .absolute(state.vault.rewrapped_total());
    registry
        .gauge_vec(
            "vaultgate_rewrap_remaining",
            "Records still under an older data key in the rewrap under way.",
            &[],
        )
        .set(&[], state.vault.rewrap_remaining() as f64);
    registry
        .gauge_vec(
            "vaultgate_key_active_version",
            "The data key version new records are sealed under.",
            &[],
        )
        .set(&[], f64::from(state.vault.active_key_version()));
}

/// The paths the API listener answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    Detokenize,
    Tokenize,
    /// `/v1/tokens/{token}`.
    Token,
}

impl Endpoint {
    /// The endpoint a path names, if any.
    fn of(path: &str) -> Option<Endpoint> {
        Some(match path {
            "/healthz" => Endpoint::Healthz,
            "/readyz" => Endpoint::Readyz,
            "/metrics" => Endpoint::Metrics,
            "/openapi.json" => Endpoint::OpenApi,
            "/v1/detokenize" => Endpoint::Detokenize,
            "/v1/tokenize" => Endpoint::Tokenize,
            p if p
                .strip_prefix("/v1/tokens/")
                .is_some_and(|t| !t.is_empty() && !t.contains('/')) =>
            {
                Endpoint::Token
            }
            _ => return None,
        })
    }

    /// Its path template, for logs.
    fn template(self) -> &'static str {
        match self {
            Endpoint::Healthz => "/healthz",
            Endpoint::Readyz => "/readyz",
            Endpoint::Metrics => "/metrics",
            Endpoint::OpenApi => "/openapi.json",
            Endpoint::Detokenize => "/v1/detokenize",
            Endpoint::Tokenize => "/v1/tokenize",
            Endpoint::Token => "/v1/tokens/{token}",
        }
    }

    /// The methods it answers: the `Allow` header of a 405.
    fn allow(self) -> &'static str {
        match self {
            Endpoint::Healthz | Endpoint::Readyz | Endpoint::Metrics | Endpoint::OpenApi => "GET",
            Endpoint::Detokenize | Endpoint::Tokenize => "POST",
            Endpoint::Token => "GET, DELETE",
        }
    }
}

/// The routing table of the API listener. A known path with another method answers
/// 405 with `Allow`; an unknown path 404 `no_route`.
///
/// Every route here is documented in `openapi.json` at the repository root (served
/// at `/openapi.json`); the `api_openapi` test keeps the two in step.
async fn route(
    state: &ApiState,
    conn: &ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let endpoint = Endpoint::of(req.uri().path()).ok_or(Error::NoRoute)?;
    match (endpoint, req.method()) {
        (Endpoint::Healthz, &Method::GET) => Ok(health::healthz()),
        (Endpoint::Readyz, &Method::GET) => Ok(health::readyz(&state.readiness)),
        (Endpoint::Metrics, &Method::GET) => {
            sync_vault_counters(state);
            Ok(metrics(
                state.metrics.render(state.vault.store().flush_figures()),
            ))
        }
        (Endpoint::OpenApi, &Method::GET) => Ok(json(StatusCode::OK, OPENAPI)),
        (Endpoint::Detokenize, &Method::POST) => reveal::detokenize(state, conn, req).await,
        (Endpoint::Tokenize, &Method::POST) => tokens::tokenize(state, conn, req).await,
        (Endpoint::Token, &Method::GET) => tokens::metadata(state, conn, req).await,
        (Endpoint::Token, &Method::DELETE) => tokens::delete(state, conn, req).await,
        (e, _) => Err(Error::MethodNotAllowed {
            allow: e.allow().to_owned(),
        }),
    }
}

/// The API's OpenAPI document, served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// `GET /metrics`: the text exposition format.
fn metrics(text: String) -> Response<Body> {
    let mut res = Response::new(full(Bytes::from(text)));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}
