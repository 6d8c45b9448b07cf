//! The tokenizing reverse proxy: route, read (or stream) the body, sanitize, forward,
//! answer.
//!
//! Pass-through routes stream both ways without buffering, through the streaming leak
//! guard ([`stream_guard`]) unless the route turns it off. Rules routes collect the
//! body under `limits.max_body_bytes` and hand it to [`sanitize::sanitize`]; any error
//! there becomes the JSON error response and nothing is forwarded. After an early
//! error on HTTP/1 the unread rest of the body is drained ([`crate::net::linger`]).

pub mod exposure;
pub(crate) mod held;
pub mod plan;
pub mod routes;
pub mod sanitize;
pub mod stream_guard;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;
use tracing::Instrument as _;

use crate::config::{Config, GuardMode};
use crate::metrics::{Histogram, Metrics, ShardedCounter};
use crate::net::ConnInfo;
use crate::net::body::{Body, Idle, boxed_as_is, error_response, full_held};
use crate::net::budget::{BodyBudget, Lease};
use crate::net::forward;
use crate::net::linger::{self, should_linger};
use crate::net::trace::{AccessLine, RequestIds};
use crate::net::upstream::Upstream;
use crate::vault::Vault;
use crate::{Error, Result};

use routes::{Route, RouteTable};
use stream_guard::{GuardCtx, GuardOutcome, StreamGuard};

/// Per-route metric handles, resolved once so the hot path does no map lookups.
#[derive(Debug)]
struct RouteMetrics {
    ok: ShardedCounter,
    duration: Histogram,
    /// `vaultgate_upstream_responses_total` by status class, as in
    /// [`crate::metrics::STATUS_CLASSES`].
    upstream: [ShardedCounter; 5],
}

/// The proxy state as one shard's requests hold it. Cloning an `Arc` writes its
/// reference count, and a count that every core writes for every request is a
/// cache line they all pull back and forth: requests then wait on each other
/// without taking any lock. A shard makes this once (and again when the state is
/// replaced, see `Gate::proxy`), so a request clones a handle whose count only its
/// shard writes, and the shared state's count is written once per shard. The
/// stream guard's context, which every guarded body holds, is copied per shard
/// for the same reason.
pub struct ShardState {
    shared: Arc<ProxyState>,
    /// Per route (by index): a copy of `shared.guards`, this shard's own.
    guards: Box<[Option<Arc<GuardCtx>>]>,
}

impl ShardState {
    /// The calling shard's handle on `shared`.
    pub fn new(shared: Arc<ProxyState>) -> Arc<ShardState> {
        let guards = shared
            .guards
            .iter()
            .map(|g| g.as_deref().map(|g| Arc::new(g.clone())))
            .collect();
        Arc::new(ShardState { shared, guards })
    }
}

impl std::ops::Deref for ShardState {
    type Target = ProxyState;

    fn deref(&self) -> &ProxyState {
        &self.shared
    }
}

/// Everything the proxy handler needs; shared by all connections.
#[derive(Debug)]
pub struct ProxyState {
    routes: RouteTable,
    upstreams: Vec<Upstream>,
    route_metrics: Vec<RouteMetrics>,
    /// The streaming guard of each route (by index); `None` for rules routes and
    /// routes with `stream_guard = "off"`. Header scans on rules routes count here too.
    guards: Vec<Option<Arc<GuardCtx>>>,
    vault: Arc<Vault>,
    metrics: Arc<Metrics>,
    max_body: usize,
    /// The process's budget for bodies read whole (it outlives reloads).
    budget: Arc<BodyBudget>,
    sanitize_limits: sanitize::Limits,
    upstream_timeout: Duration,
    body_read_timeout: Duration,
    /// Write a `vaultgate::access` line per request (`proxy.access_log`).
    access_log: bool,
}

impl ProxyState {
    /// Build routes and upstream clients from a validated config.
    pub fn build(
        config: &Config,
        vault: Arc<Vault>,
        metrics: Arc<Metrics>,
        budget: Arc<BodyBudget>,
    ) -> Result<ProxyState> {
        let upstream_timeout = Duration::from_millis(config.limits.upstream_timeout_ms.get());
        let upstreams = config
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| {
                Upstream::build(
                    &format!("upstreams[{i}]"),
                    u,
                    upstream_timeout,
                    config.proxy_shards(),
                    Some(&metrics.upstream_connections.with(&[&u.name])),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let routes = RouteTable::build(config)?;
        let route_metrics = routes
            .iter()
            .map(|r| RouteMetrics {
                ok: metrics.requests.sharded(&[&r.name, "ok"]),
                duration: metrics.request_duration.with(&[&r.name]),
                upstream: crate::metrics::STATUS_CLASSES
                    .map(|class| metrics.upstream_responses.sharded(&[&r.name, class])),
            })
            .collect();
        let leak_hits = metrics.registry.counter_vec(
            "vaultgate_leak_guard_hits_total",
            "Card numbers found where no rule tokenizes them: paths, pass-through queries and \
             bodies, and scanned headers of rules routes.",
            &["route", "mode"],
        );
        let guards = routes
            .iter()
            .map(|r| {
                let mode = if r.rules.is_some() {
                    GuardMode::Block
                } else {
                    r.stream_guard
                };
                r.is_guarded().then(|| {
                    Arc::new(GuardCtx {
                        route: Arc::clone(&r.name),
                        mode,
                        vault: Arc::clone(&vault),
                        hits: leak_hits.with(&[&r.name, mode.as_str()]),
                    })
                })
            })
            .collect();
        Ok(ProxyState {
            routes,
            upstreams,
            route_metrics,
            guards,
            vault,
            metrics,
            max_body: config.limits.max_body_bytes.get(),
            budget,
            sanitize_limits: sanitize::Limits::from(&config.limits),
            upstream_timeout,
            body_read_timeout: Duration::from_millis(config.limits.body_read_timeout_ms.get()),
            access_log: config.proxy.access_log,
        })
    }
}

/// What one request's access line says beyond its status.
#[derive(Debug, Default)]
struct Seen {
    /// The route's index in the table (its name and template are read from there:
    /// no reference count written per request).
    route: Option<usize>,
    upstream_status: Option<u16>,
    upstream_latency: Option<Duration>,
    /// When the answer was ready (the upstream's head came back, or the request
    /// failed): read once for the route's latency, the upstream's and the access line.
    finished: Option<Instant>,
}

/// The proxy service for one request: its ids, its span, its access line.
///
/// Each layer of the request's future is a function returning an `async move` block,
/// not an `async fn`: an `async fn` keeps its arguments twice (as given and moved
/// into its body), and the whole future is boxed, so copied, per request.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments twice"
)]
pub fn handle(
    state: Arc<ShardState>,
    conn: ConnInfo,
    mut req: Request<Incoming>,
) -> impl Future<Output = std::result::Result<Response<Body>, Infallible>> + Send {
    async move {
        use hyper::body::Body as _;
        let start = Instant::now();
        let ids = RequestIds::take(req.headers_mut());
        let method = req.method().clone();
        let bytes_in = req.body().size_hint().exact();
        // The route is found before the span is made, so the span gets all its fields at
        // once (recording one later costs another formatting pass).
        let found = state
            .routes
            .find(&method, req.uri().path(), req.uri().query(), req.headers());
        let route_name = match &found {
            Ok(Some((_, route))) => Some(tracing::field::display(&*route.name)),
            _ => None,
        };
        // The span carries the ids, the method and the route (when one serves) only:
        // never paths, queries, headers or bodies. One span per request: each costs its
        // fields' formatting and an enter and exit per poll.
        let span = tracing::info_span!(
            "request",
            request_id = ids.request_id(),
            trace_id = ids.trace_id(),
            method = crate::net::trace::method_text(&method),
            route = route_name,
        );
        let mut seen = Seen::default();
        let mut response = serve(&state, conn, req, found, start, &mut seen)
            .instrument(span)
            .await;
        ids.answer(response.headers_mut());
        if state.access_log {
            let route = seen.route.and_then(|i| state.routes.get(i));
            AccessLine {
                listener: "proxy",
                route: route.map(|r| &*r.name),
                method: Some(&method),
                path: Some(route.map_or("-", |r| &*r.template)),
                status: response.status().as_u16(),
                upstream_status: seen.upstream_status,
                bytes_in,
                bytes_out: response.body().size_hint().exact(),
                latency: seen
                    .finished
                    .map_or_else(|| start.elapsed(), |at| at.saturating_duration_since(start)),
                upstream_latency: seen.upstream_latency,
                ..AccessLine::default()
            }
            .write(&ids);
        }
        Ok(response)
    }
}

/// Forward and answer one request (inside its span), `found` being what the route
/// table made of it.
fn serve<'a>(
    state: &'a ShardState,
    conn: ConnInfo,
    req: Request<Incoming>,
    found: Result<Option<(usize, &'a Route)>>,
    start: Instant,
    seen: &'a mut Seen,
) -> impl Future<Output = Response<Body>> + Send + 'a {
    let (parts, body) = req.into_parts();
    async move {
        let (index, route) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return unrouted(state, &parts, body, &Error::NoRoute),
            Err(err) => return unrouted(state, &parts, body, &err),
        };
        seen.route = Some(index);
        let method = parts.method.clone();
        let linger = should_linger(&parts);
        let mut body = Some(body);
        let result = forward(state, conn, index, route, parts, &mut body, seen).await;
        let finished = seen.finished.unwrap_or_else(Instant::now);
        seen.finished = Some(finished);
        let elapsed = finished.saturating_duration_since(start);
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
                if let (true, Some(body)) = (linger, body) {
                    linger::spawn_drain(body);
                }
                error_response(&err)
            }
        };
        let status = response.status().as_u16();
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        // The line names route and method itself, so it reads the same with or without
        // span context (JSON logs, filtered spans).
        let route_name: &str = &route.name;
        if status >= 500 {
            tracing::warn!(
                route = route_name,
                method = crate::net::trace::method_text(&method),
                status,
                latency_us,
                "request failed"
            );
        } else {
            tracing::debug!(
                route = route_name,
                method = crate::net::trace::method_text(&method),
                status,
                latency_us,
                "request done"
            );
        }
        response
    }
}

/// The answer to a request that no route serves: no pattern matches (404), an
/// unroutable path (400), a method (405, with `Allow`) or content type (415) the
/// owning route does not take, a method override (400).
fn unrouted(
    state: &ProxyState,
    parts: &http::request::Parts,
    body: Incoming,
    err: &Error,
) -> Response<Body> {
    state.metrics.requests.inc(&["", err.code()]);
    tracing::debug!(
        method = crate::net::trace::method_text(&parts.method),
        status = err.status().as_u16(),
        "not routed"
    );
    if should_linger(parts) {
        linger::spawn_drain(body);
    }
    error_response(err)
}

/// Refuse (block) or report (detect) card numbers found outside any rule; hits that are
/// our own tokens pass.
async fn guard_hits(
    guard: &GuardCtx,
    place: &'static str,
    hits: &[exposure::HitDigits],
) -> Result<()> {
    if hits.is_empty() || exposure::all_ours(&guard.vault, hits).await {
        return Ok(());
    }
    match guard.mode {
        GuardMode::Block => {
            guard.count_blocked(place);
            Err(Error::LeakRejected(place.to_owned()))
        }
        GuardMode::Detect | GuardMode::Off => {
            let masked: Vec<String> = hits.iter().map(|d| exposure::mask(d)).collect();
            guard.report(place, &masked);
            Ok(())
        }
    }
}

/// Refuse (or report) a card number in the path as it is forwarded.
async fn guard_path(guard: &GuardCtx, path: &str) -> Result<()> {
    if crate::rules::guard::may_contain(path.as_bytes()) {
        guard_hits(guard, "the path", &exposure::path_hits(path)).await?;
    }
    Ok(())
}

/// What a pass-through route's guard reads before the body ([`held::head_hits`]):
/// the charset the body is declared in, the path and the query string, each place
/// refused (or reported) unless its hits are tokens of this vault.
async fn guard_streamed_head(guard: &GuardCtx, parts: &http::request::Parts) -> Result<()> {
    for (place, hits) in held::head_hits(guard.mode, parts)? {
        guard_hits(guard, place, &hits).await?;
    }
    Ok(())
}

/// A guarded pass-through body with a content coding: the streaming guard reads the
/// bytes as sent, which compression hides. Such a body is read whole (under
/// `limits.max_body_bytes`, as a rules route's), read by [`held::body_hits`] and sent
/// on as it came.
async fn read_compressed(
    state: &ProxyState,
    guard: &GuardCtx,
    coding: crate::codec::Coding,
    (heads, width): (Option<crate::codec::PartHeads>, crate::codec::WidthWatch),
    parts: &mut http::request::Parts,
    incoming: &mut Incoming,
) -> Result<(bytes::Bytes, Lease)> {
    let (bytes, lease) = read_whole(state, &parts.headers, incoming).await?;
    let hits = held::body_hits(
        guard.mode,
        &guard.route,
        Some(coding),
        (heads, width),
        &bytes,
        state.max_body,
    )?;
    guard_hits(guard, "the request body", &hits).await?;
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok((bytes, lease))
}

/// A pass-through body, taken to stream on. One the client stops sending is its
/// fault, not the upstream's: 400 after `body_read_timeout` (a rules route reads its
/// whole body first, under the same limit).
fn streamed(state: &ProxyState, body: &mut Option<Incoming>) -> Result<Idle<Incoming>> {
    let incoming = body.take().ok_or(Error::Internal("the body was taken"))?;
    Ok(Idle::new(incoming, state.body_read_timeout))
}

/// A body read whole, under `limits.max_body_bytes` and within `body_read_timeout`,
/// counted on the process's body budget ([`linger::read_whole`]).
async fn read_whole(
    state: &ProxyState,
    headers: &http::HeaderMap,
    incoming: &mut Incoming,
) -> Result<(bytes::Bytes, Lease)> {
    linger::read_whole(
        headers,
        incoming,
        state.max_body,
        state.body_read_timeout,
        &state.budget,
    )
    .await
}

/// Read a tokenizing route's body and sanitize it and the query: the body to send
/// (its `Content-Length` set in `parts`), the lease it holds on the body budget, and
/// the query, if it changed.
async fn sanitized(
    state: &ProxyState,
    route: &Route,
    rules: &crate::rules::RouteRules,
    guard: Option<&Arc<GuardCtx>>,
    parts: &mut http::request::Parts,
    incoming: &mut Incoming,
) -> Result<(bytes::Bytes, Lease, Option<String>)> {
    if let Some(guard) = guard {
        guard_path(guard, parts.uri.path()).await?;
        if route.scan_headers {
            let hits = exposure::head_hits(parts);
            guard_hits(guard, "a header or a cookie", &hits).await?;
        }
    }
    let (bytes, lease) = read_whole(state, &parts.headers, incoming).await?;
    let out =
        sanitize::sanitize(&state.vault, rules, parts, &bytes, &state.sanitize_limits).await?;
    let bytes = out.body.unwrap_or(bytes);
    let declared = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if let Some(ct) = crate::codec::forwarded_content_type(rules, declared) {
        parts.headers.insert(header::CONTENT_TYPE, ct);
    }
    // The body may have changed; either way it is now exactly these bytes.
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok((bytes, lease, out.query))
}

/// Sanitize and send one routed request. `body` is taken when it is handed on; on an
/// error it holds the unread rest of the client's body, if any.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments twice"
)]
fn forward<'a>(
    state: &'a ShardState,
    conn: ConnInfo,
    index: usize,
    route: &'a Route,
    mut parts: http::request::Parts,
    body: &'a mut Option<Incoming>,
    seen: &'a mut Seen,
) -> impl Future<Output = Result<Response<Body>>> + Send + 'a {
    async move {
        crate::net::headers::check_transfer_coding(&parts.headers)?;
        // An extension method is sent on as it is: one that holds a card is refused
        // on every route, as a path that does.
        if !crate::net::trace::method_is_sane(&parts.method) {
            return Err(Error::LeakRejected("the method".to_owned()));
        }
        let upstream = state
            .upstreams
            .get(route.upstream)
            .ok_or(Error::Internal("a route names a missing upstream"))?;
        // This shard's copy: a guarded body clones it.
        let guard = state.guards.get(index).and_then(Option::as_ref);

        let (out_body, new_query, outcome) = match &route.rules {
            None => match guard {
                Some(guard) => {
                    // Refused here, the body is still the caller's to drain.
                    guard_streamed_head(guard, &parts).await?;
                    let content_type = parts.headers.get(header::CONTENT_TYPE);
                    let heads = held::part_heads(guard.mode, &guard.route, content_type)?;
                    let width = crate::codec::WidthWatch::for_header(content_type);
                    match held::coding(guard.mode, &guard.route, &parts.headers)? {
                        Some(coding) => {
                            let incoming =
                                body.as_mut().ok_or(Error::Internal("the body was taken"))?;
                            let (bytes, lease) = Box::pin(read_compressed(
                                state,
                                guard,
                                coding,
                                (heads, width),
                                &mut parts,
                                incoming,
                            ))
                            .await?;
                            (full_held(bytes, lease), None, None)
                        }
                        None => {
                            let outcome = GuardOutcome::new();
                            let guarded = StreamGuard::new(
                                streamed(state, body)?,
                                Arc::clone(guard),
                                Arc::clone(&outcome),
                                heads,
                                width,
                            );
                            (boxed_as_is(guarded), None, Some(outcome))
                        }
                    }
                }
                None => (boxed_as_is(streamed(state, body)?), None, None),
            },
            Some(rules) => {
                let incoming = body.as_mut().ok_or(Error::Internal("the body was taken"))?;
                // Boxed: a pass-through request's future then holds a pointer, not room
                // for reading and sanitizing a body.
                let (bytes, lease, query) =
                    Box::pin(sanitized(state, route, rules, guard, &mut parts, incoming)).await?;
                (full_held(bytes, lease), query, None)
            }
        };
        let uri = match new_query.as_deref() {
            Some(query) => upstream.uri(parts.uri.path(), Some(query))?,
            None => upstream.uri_as_sent(&parts.uri)?,
        };
        let sent_at = Instant::now();
        let sent = forward::send(
            upstream,
            parts,
            out_body,
            uri,
            Some(&conn),
            state.upstream_timeout,
        )
        .await;
        let answered = Instant::now();
        seen.finished = Some(answered);
        seen.upstream_latency = Some(answered.saturating_duration_since(sent_at));
        if let Ok(res) = &sent {
            let status = res.status().as_u16();
            seen.upstream_status = Some(status);
            if let Some(counter) = state
                .route_metrics
                .get(index)
                .and_then(|m| m.upstream.get(crate::metrics::status_class_index(status)))
            {
                counter.increment(1);
            }
        }
        // A blocked body fails the upstream send (or, if the upstream answered early, its
        // answer is dropped): the client gets 400 either way, and the rest of its body is
        // drained.
        if let Some(outcome) = outcome
            && outcome.blocked()
        {
            *body = outcome.take_rest().map(Idle::into_inner);
            return Err(outcome.error());
        }
        sent
    }
}
