//! The reverse proxy: route, read (or stream) the body, sanitize, forward, answer.
//!
//! Pass-through routes stream both ways without buffering. Rules routes collect the
//! body under `limits.max_body_bytes` and hand it to [`crate::pipeline::sanitize`];
//! any error there becomes the JSON error response and nothing is forwarded.

pub mod client;
pub mod headers;
pub mod routes;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response, Version, header};
use hyper::body::Incoming;
use tracing::Instrument as _;

use crate::api::Metrics;
use crate::api::metrics::Histogram;
use crate::config::Config;
use crate::pipeline::{self, Vault};
use crate::server::ConnInfo;
use crate::server::body::{Body, boxed, error_response, full};
use crate::{Error, Result};

use client::Upstream;
use routes::{Route, RouteTable};

/// Per-route metric handles, resolved once so the hot path does no map lookups.
#[derive(Debug)]
struct RouteMetrics {
    ok: Arc<AtomicU64>,
    duration: Arc<Histogram>,
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
    upstream_timeout: Duration,
    body_read_timeout: Duration,
}

impl ProxyState {
    /// Build routes and upstream clients from a validated config.
    pub fn build(config: &Config, vault: Arc<Vault>, metrics: Arc<Metrics>) -> Result<ProxyState> {
        let upstream_timeout = Duration::from_millis(config.limits.upstream_timeout_ms);
        let upstreams = config
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| Upstream::build(i, u, upstream_timeout))
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
            max_body: config.limits.max_body_bytes,
            upstream_timeout,
            body_read_timeout: Duration::from_millis(config.limits.body_read_timeout_ms),
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
                m.ok.fetch_add(1, Ordering::Relaxed);
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
                crate::server::body::read_body(&parts.headers, body, state.max_body),
            )
            .await
            .map_err(|_| {
                Error::BadRequest("the request body was not received in time".to_owned())
            })??;
            let out =
                pipeline::sanitize(&state.vault, rules, &parts, &bytes, state.max_body).await?;
            let bytes = out.body.unwrap_or(bytes);
            // The body may have changed; either way it is now exactly these bytes.
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            (full(bytes), out.query)
        }
    };

    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()));
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::strip_own(&mut parts.headers);
    headers::set_forwarded(
        &mut parts.headers,
        conn.peer.ip(),
        conn.tls,
        host.as_deref(),
    );
    // The client sets Host (HTTP/1) or :authority (HTTP/2) from the upstream URI.
    parts.headers.remove(header::HOST);
    // `100-continue` was answered on the client's side (hyper does so when the body is
    // first read); the upstream gets the body without waiting.
    parts.headers.remove(header::EXPECT);

    let query = new_query.as_deref().or(parts.uri.query());
    parts.uri = upstream.uri(parts.uri.path(), query)?;
    // The pool picks HTTP/2 only where the upstream negotiated it by ALPN.
    parts.version = Version::HTTP_11;

    let request = Request::from_parts(parts, body);
    let response = match tokio::time::timeout(
        state.upstream_timeout,
        upstream.client.request(request),
    )
    .await
    {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => {
            tracing::warn!(upstream = %upstream.name, connect = e.is_connect(), "upstream request failed");
            return Err(Error::UpstreamUnavailable);
        }
        Err(_) => return Err(Error::UpstreamTimeout),
    };
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, boxed(body)))
}
