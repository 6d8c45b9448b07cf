//! The tokenizing reverse proxy: route, read (or stream) the body, sanitize, forward,
//! answer.
//!
//! Pass-through routes stream both ways without buffering. Rules routes collect the
//! body under `limits.max_body_bytes` and hand it to [`sanitize::sanitize`]; any error
//! there becomes the JSON error response and nothing is forwarded.

pub mod routes;
pub mod sanitize;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;
use tracing::Instrument as _;

use crate::config::Config;
use crate::metrics::{Counter, Histogram, Metrics};
use crate::net::ConnInfo;
use crate::net::body::{Body, boxed, error_response, full, read_body};
use crate::net::forward;
use crate::net::upstream::Upstream;
use crate::vault::Vault;
use crate::{Error, Result};

use routes::{Route, RouteTable};

/// Per-route metric handles, resolved once so the hot path does no map lookups.
#[derive(Debug)]
struct RouteMetrics {
    ok: Counter,
    duration: Histogram,
}

/// Everything the proxy handler needs; shared by all connections.
#[derive(Debug)]
pub struct ProxyState {
    routes: RouteTable,
    upstreams: Vec<Upstream>,
    route_metrics: Vec<RouteMetrics>,
    vault: Arc<Vault>,
    metrics: Arc<Metrics>,
    max_body: usize,
    sanitize_limits: sanitize::Limits,
    upstream_timeout: Duration,
    body_read_timeout: Duration,
}

impl ProxyState {
    /// Build routes and upstream clients from a validated config.
    pub fn build(config: &Config, vault: Arc<Vault>, metrics: Arc<Metrics>) -> Result<ProxyState> {
        let upstream_timeout = Duration::from_millis(config.limits.upstream_timeout_ms.get());
        let upstreams = config
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| Upstream::build(&format!("upstreams[{i}]"), u, upstream_timeout))
            .collect::<Result<Vec<_>>>()?;
        let routes = RouteTable::build(config)?;
        let route_metrics = routes
            .iter()
            .map(|r| RouteMetrics {
                ok: metrics.requests.with(&[&r.name, "ok"]),
                duration: metrics.request_duration.with(&[&r.name]),
            })
            .collect();
        Ok(ProxyState {
            routes,
            upstreams,
            route_metrics,
            vault,
            metrics,
            max_body: config.limits.max_body_bytes.get(),
            sanitize_limits: sanitize::Limits::from(&config.limits),
            upstream_timeout,
            body_read_timeout: Duration::from_millis(config.limits.body_read_timeout_ms.get()),
        })
    }
}

/// The proxy service for one request.
pub async fn handle(
    state: Arc<ProxyState>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> std::result::Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let (index, route) = match state
        .routes
        .find(req.method(), req.uri().path(), req.headers())
    {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(unrouted(&state, &req, &Error::NoRoute)),
        Err(err) => return Ok(unrouted(&state, &req, &err)),
    };
    // Spans carry the route name and method only: never paths, queries, headers or
    // bodies.
    let method = req.method().clone();
    let span = tracing::info_span!("proxy", route = %route.name, method = %method);
    let result = forward(&state, conn, route, req).instrument(span).await;
    let elapsed = start.elapsed();
    let metrics = state.route_metrics.get(index);
    if let Some(m) = metrics {
        m.duration.observe(elapsed);
    }
    let response = match result {
        Ok(res) => {
            if let Some(m) = metrics {
                m.ok.increment(1);
            }
            res
        }
        Err(err) => {
            state.metrics.requests.inc(&[&route.name, err.code()]);
            error_response(&err)
        }
    };
    let status = response.status().as_u16();
    let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    // The access line names route and method itself, so it reads the same with or
    // without span context (JSON logs, filtered spans).
    let route_name: &str = &route.name;
    if status >= 500 {
        tracing::warn!(route = route_name, %method, status, latency_us, "request failed");
    } else {
        tracing::debug!(route = route_name, %method, status, latency_us, "request done");
    }
    Ok(response)
}

/// The answer to a request that matched no route (or had an unroutable path).
fn unrouted(state: &ProxyState, req: &Request<Incoming>, err: &Error) -> Response<Body> {
    state.metrics.requests.inc(&["", err.code()]);
    tracing::debug!(method = %req.method(), status = err.status().as_u16(), "not routed");
    error_response(err)
}

async fn forward(
    state: &ProxyState,
    conn: ConnInfo,
    route: &Route,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let upstream = state
        .upstreams
        .get(route.upstream)
        .ok_or(Error::Internal("a route names a missing upstream"))?;
    let (mut parts, body) = req.into_parts();

    let (body, new_query) = match &route.rules {
        None => (boxed(body), None),
        Some(rules) => {
            // A body dripped byte by byte would otherwise hold the connection (and
            // its slot under max_connections) for as long as the client likes.
            let bytes = tokio::time::timeout(
                state.body_read_timeout,
                read_body(&parts.headers, body, state.max_body),
            )
            .await
            .map_err(|_| {
                Error::BadRequest("the request body was not received in time".to_owned())
            })??;
            let out =
                sanitize::sanitize(&state.vault, rules, &parts, &bytes, &state.sanitize_limits)
                    .await?;
            let bytes = out.body.unwrap_or(bytes);
            // The body may have changed; either way it is now exactly these bytes.
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            (full(bytes), out.query)
        }
    };
    let query = new_query.as_deref().or(parts.uri.query());
    let uri = upstream.uri(parts.uri.path(), query)?;
    forward::send(
        upstream,
        parts,
        body,
        uri,
        Some(&conn),
        state.upstream_timeout,
    )
    .await
}
