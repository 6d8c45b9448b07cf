//! The outbound reveal proxy: trusted services send their requests to a card
//! processor through it, and it swaps tokens back for values on the way out.
//!
//! # Naming the destination
//!
//! The route *is* the destination. A caller sends `POST /processor/charges` to the
//! outbound listener; the first `[[outbound.routes]]` entry whose method and path
//! pattern match names the destination (`https://processor.example`), and the path,
//! less the route's `strip_prefix`, is appended to it
//! (`https://processor.example/charges`). There is no way to name any other host:
//! `CONNECT` and absolute-form targets (`POST https://elsewhere/…`) are refused, and a
//! request that matches no route gets 403 `forbidden`. Only the path exactly as
//! configured matches ([`PathPattern::matches_exactly`]), and it goes on as it was
//! sent; a route with `exact = false` matches as inbound routes do (any case, a
//! `.json` suffix, `%` escapes, `;` parameters), the path still going on as sent.
//!
//! # Order of checks (nothing reaches the processor unless all pass)
//!
//! route → caller (verified client certificate, or `Proxy-Authorization: Bearer
//! <key>`, so that `Authorization` stays free for the processor's own credential) →
//! its hop-by-hop headers (and those `Connection` names) dropped → the caller may
//! reveal every class the route reveals, in full → the body read
//! (`limits.body_read_timeout_ms`, the body budget) → rate limit → reveal each token
//! (a CVV is taken out of the store; its class is checked first) → audit every
//! reveal (fail closed) → forward. A CVV is consumed only once the request was
//! handed to the processor: a refusal of another field, a failed audit write or a
//! connect failure before any byte was sent puts it back.
//!
//! # The answer
//!
//! The processor's answer passes back unchanged, except that every value revealed
//! into the request that it shows (a processor quoting the card in an error, echoing
//! the request's JSON, a redirect URL) is swapped back for its token ([`echo`]; a
//! route's `swap_echoes = false` turns this off), and every other card number it
//! shows (an account updater's new card, a stored payment method) becomes a new token
//! ([`cards`]; `answer_guard`), or the answer is refused with 502 where that cannot
//! be done. Such answers are read whole ([`answer`]); only an answer of a route with
//! `answer_guard = "off"` to a request that revealed nothing streams through unread.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Request, Response, Version, header};
use hyper::body::Incoming;
use tracing::Instrument as _;
use zeroize::Zeroizing;

mod answer;
mod cards;
mod echo;

use crate::audit::{Action, AuditEvent};
use crate::auth::{Access, Client, Purpose, hidden};
use crate::codec::{self, RequestParts};
use crate::config::{AnswerGuard, Limits, OutboundConfig, UpstreamConfig};
use crate::metrics::{CounterVec, Metrics};
use crate::net::ConnInfo;
use crate::net::body::{Body, error_response, full};
use crate::net::budget::BodyBudget;
use crate::net::forward;
use crate::net::matcher::{MethodFilter, PathPattern, canonical_path};
use crate::net::trace::{AccessLine, RequestIds};
use crate::net::upstream::Upstream;
use crate::rules::RouteRules;
use crate::sensitive::DataClass;
use crate::vault::{CvvHold, Vault};
use crate::{Error, Result};

/// One allow-listed route, ready to serve.
#[derive(Debug)]
struct Route {
    /// The route's name, for the access line.
    name: Arc<str>,
    method: MethodFilter,
    pattern: PathPattern,
    /// Match the path as written and the method in its case (`exact`).
    exact: bool,
    strip_prefix: Option<String>,
    destination: Upstream,
    rules: RouteRules,
    headers: Vec<(HeaderName, DataClass)>,
    /// Every class the route reveals: the caller must be allowed all of them.
    classes: Vec<DataClass>,
    /// Swap revealed values in the answer back for their tokens (`swap_echoes`).
    swap_echoes: bool,
    /// What other card numbers in the answer become (`answer_guard`).
    answer_guard: AnswerGuard,
}

/// Everything the outbound handler needs.
#[derive(Debug)]
pub struct OutboundState {
    routes: Vec<Route>,
    access: Arc<Access>,
    vault: Arc<Vault>,
    max_body: usize,
    /// `limits.max_sensitive_values`: also the most distinct card numbers one answer
    /// may show.
    max_sensitive_values: usize,
    /// `limits.max_decode_depth`: how deep the answer guard reads.
    max_decode_depth: usize,
    /// `limits.body_read_timeout_ms`: the whole request body arrives within it.
    body_read_timeout: Duration,
    timeout: Duration,
    /// Write a `vaultgate::access` line per request (`outbound.access_log`).
    access_log: bool,
    /// The process's budget for bodies held whole: request bodies and answers read
    /// for echoes count.
    budget: Arc<BodyBudget>,
    /// `vaultgate_outbound_echoes_total{route,outcome}`.
    echoes: Arc<CounterVec>,
    /// `vaultgate_outbound_answer_tokens_total{route,outcome}`.
    answer_tokens: Arc<CounterVec>,
    /// `vaultgate_reveals_total{class}`, which counts the outbound proxy's reveals too.
    reveals: Arc<CounterVec>,
}

impl OutboundState {
    /// Build the routes and their destination clients from a validated config.
    pub fn build(
        config: &OutboundConfig,
        limits: &Limits,
        access: Arc<Access>,
        vault: Arc<Vault>,
        shards: usize,
        metrics: &Metrics,
        budget: Arc<BodyBudget>,
    ) -> Result<OutboundState> {
        let timeout = Duration::from_millis(limits.upstream_timeout_ms.get());
        let mut routes = Vec::with_capacity(config.routes.len());
        for (i, r) in config.routes.iter().enumerate() {
            let destination = Upstream::build(
                &format!("outbound.routes[{i}]"),
                &UpstreamConfig::new(r.name.clone(), r.destination.clone(), r.ca.clone()),
                timeout,
                shards,
                None,
            )?;
            let headers = r
                .reveal_headers
                .iter()
                .map(|h| (h.name.clone(), h.class))
                .collect();
            let mut classes: Vec<DataClass> = r
                .reveal
                .iter()
                .map(|f| f.class)
                .chain(r.reveal_headers.iter().map(|h| h.class))
                .collect();
            classes.sort_by_key(|c| c.tag());
            classes.dedup();
            routes.push(Route {
                name: Arc::from(r.name.as_str()),
                method: r.method.clone(),
                pattern: r.path.clone(),
                exact: r.exact,
                strip_prefix: r.strip_prefix.clone(),
                destination,
                rules: r.rules(),
                headers,
                classes,
                swap_echoes: r.swap_echoes,
                answer_guard: r.answer_guard,
            });
        }
        Ok(OutboundState {
            routes,
            access,
            vault,
            max_body: limits.max_body_bytes.get(),
            max_sensitive_values: limits.max_sensitive_values.get(),
            max_decode_depth: limits.max_decode_depth,
            body_read_timeout: Duration::from_millis(limits.body_read_timeout_ms.get()),
            timeout,
            access_log: config.listener.access_log,
            budget,
            echoes: Arc::clone(&metrics.outbound_echoes),
            answer_tokens: Arc::clone(&metrics.outbound_answer_tokens),
            reveals: Arc::clone(&metrics.reveals),
        })
    }
}

/// The outbound service for one request.
pub async fn handle(
    state: Arc<OutboundState>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> std::result::Result<Response<Body>, Infallible> {
    let started = std::time::Instant::now();
    let mut req = req;
    // The request id and trace context go on to the processor and back to the caller.
    let ids = RequestIds::take(req.headers_mut());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "outbound",
        request_id = ids.request_id(),
        trace_id = ids.trace_id()
    );
    let mut route: Option<Arc<str>> = None;
    let (mut res, outcome) = match forward(&state, &conn, req, &mut route)
        .instrument(span.clone())
        .await
    {
        Ok(res) => (res, "ok"),
        Err(err) => {
            span.in_scope(|| {
                tracing::debug!(
                    method = crate::net::trace::method_text(&method),
                    code = err.code(),
                    "outbound request refused"
                );
            });
            (error_response(&err), err.code())
        }
    };
    ids.answer(res.headers_mut());
    if state.access_log {
        // The route's name only: never the path, query, headers or body.
        AccessLine {
            listener: "outbound",
            route: route.as_deref(),
            method: Some(&method),
            status: res.status().as_u16(),
            latency: started.elapsed(),
            outcome: Some(outcome),
            ..AccessLine::default()
        }
        .write(&ids);
    }
    Ok(res)
}

/// One token to reveal: where it goes, what it is, and what it must be.
struct Wanted<'a> {
    token: &'a str,
    scope: Option<&'a str>,
    expect: DataClass,
}

async fn forward(
    state: &OutboundState,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
    matched: &mut Option<Arc<str>>,
) -> Result<Response<Body>> {
    if req.method() == Method::CONNECT {
        return Err(Error::Forbidden("CONNECT is not allowed"));
    }
    crate::net::headers::check_transfer_coding(req.headers())?;
    // HTTP/2 always carries :authority; in HTTP/1 an absolute-form target names a host
    // of the caller's choosing.
    if req.version() < Version::HTTP_2 && req.uri().authority().is_some() {
        return Err(Error::Forbidden(
            "absolute-form targets are not allowed; send the route's path",
        ));
    }
    let path = canonical_path(req.uri().path())?;
    let route = state
        .routes
        .iter()
        .find(|r| match r.exact {
            true => {
                r.method.method().is_none_or(|m| m == req.method())
                    && r.pattern.matches_exactly(req.uri().path())
            }
            false => r.method.allows(req.method()) && r.pattern.matches(&path),
        })
        .ok_or(Error::Forbidden(
            "no allow-listed destination matches this request",
        ))?;
    *matched = Some(Arc::clone(&route.name));
    let client = state
        .access
        .authenticate(conn, req.headers(), &header::PROXY_AUTHORIZATION)
        .await?;
    // The caller's hop-by-hop headers, and those its `Connection` names, go before
    // any is read for a token: a reveal header named there (`Connection: x-card`)
    // was revealed, audited (a CVV consumed) and then dropped unsent.
    crate::net::headers::strip_request(req.headers_mut());
    if route
        .classes
        .iter()
        .any(|c| client.visible(*c, Purpose::RevealFull).is_err())
    {
        return Err(Error::Forbidden(
            "this client may not reveal what this route reveals",
        ));
    }

    let (parts, mut body) = req.into_parts();
    // Under the limits of the proxy's rules routes: a body dripped, or many held at
    // once, hold a connection or memory for no longer and no more than theirs. The
    // lease lasts until the answer is back.
    let (bytes, _lease) = crate::net::linger::read_whole(
        &parts.headers,
        &mut body,
        state.max_body,
        state.body_read_timeout,
        &state.budget,
    )
    .await?;
    drop(body);
    let extraction = codec::extract(
        &route.rules,
        RequestParts {
            content_type: header_str(&parts.headers, &header::CONTENT_TYPE)?,
            content_encoding: header_str(&parts.headers, &header::CONTENT_ENCODING)?,
            query: parts.uri.query(),
            body: &bytes,
            max_body: state.max_body,
        },
    )?;
    let findings = extraction.findings();
    let mut wanted: Vec<Option<Wanted<'_>>> = findings
        .iter()
        .map(|f| {
            let token = f.value.expose();
            (!token.is_empty()).then(|| Wanted {
                token,
                scope: f
                    .scope
                    .and_then(|j| findings.get(j))
                    .map(|s| s.value.expose()),
                expect: f.class,
            })
        })
        .collect();
    for (name, class) in &route.headers {
        let token = parts
            .headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| Error::BadRequest(format!("the {name} header is not ASCII")))
            })
            .transpose()?;
        wanted.push(token.filter(|t| !t.is_empty()).map(|token| Wanted {
            token,
            scope: None,
            expect: *class,
        }));
    }
    for w in wanted.iter().flatten() {
        crate::vault::token::check_token_len(w.token)?;
    }
    let n = wanted.iter().flatten().count();
    if n > 0 {
        state.access.rate_limit(&client, n, conn).await?;
    }

    // Revealed values stay in zeroizing buffers on every path out of here.
    let (values, events, first_error, holds) = reveal_all(state, &client, conn, &wanted).await;
    // CVVs are taken out of the store but consumed only once the request carrying
    // them has been handed to the processor: on any failure before that, they go back.
    let mut holds = Holds {
        vault: &state.vault,
        holds,
    };
    // Audit before anything leaves: no log, no request.
    if let Err(e) = state.access.record(&events).await {
        holds.restore().await;
        return Err(e);
    }
    if let Some(err) = first_error {
        holds.restore().await;
        return Err(err);
    }
    let n_fields = findings.len();
    // What the answer must not show: each value revealed, with its token.
    let revealed = match route.swap_echoes {
        true => echo::Revealed::new(
            wanted
                .iter()
                .zip(&values)
                .filter_map(|(w, v)| Some((w.as_ref()?.token, v.as_deref()?.as_str()))),
        ),
        false => echo::Revealed::default(),
    };
    drop(wanted);
    let answer = answer::AnswerCtx {
        route: &route.name,
        guard: route.answer_guard,
        vault: &state.vault,
        max_body: state.max_body,
        max_cards: state.max_sensitive_values,
        decode_depth: state.max_decode_depth,
        timeout: state.timeout,
        budget: &state.budget,
        echoes: &state.echoes,
        tokens: &state.answer_tokens,
    };
    let mut parts = parts;
    if answer.reads(&revealed) {
        echo::readable_codings(&mut parts.headers);
    }
    let result = forward_revealed(state, route, parts, bytes, extraction, values, n_fields).await;
    let response = match result {
        Ok(Sent { response, handed }) => {
            if !handed {
                holds.restore().await;
            }
            response?
        }
        Err(e) => {
            holds.restore().await;
            return Err(e);
        }
    };
    answer::pass_back(response, &revealed, &answer).await
}

/// CVVs revealed for one request, not yet consumed.
struct Holds<'a> {
    vault: &'a Vault,
    holds: Vec<CvvHold>,
}

impl Holds<'_> {
    /// Put every CVV back: the request did not reach the processor.
    async fn restore(&mut self) {
        for hold in self.holds.drain(..) {
            if let Err(e) = self.vault.restore_cvv(hold).await {
                tracing::error!(error = %e, "a CVV could not be put back after a failed request");
            }
        }
    }
}

/// What [`forward_revealed`] did: the upstream's answer, and whether the request may
/// have reached it.
struct Sent {
    response: Result<Response<Body>>,
    handed: bool,
}

/// Put the revealed values into the request and send it.
async fn forward_revealed(
    state: &OutboundState,
    route: &Route,
    mut parts: http::request::Parts,
    bytes: bytes::Bytes,
    extraction: codec::Extraction,
    mut values: Vec<Option<Zeroizing<String>>>,
    n_fields: usize,
) -> Result<Sent> {
    let header_values = values.split_off(n_fields.min(values.len()));
    let out = extraction.apply_with(&values)?;
    drop(values);
    for ((name, _), value) in route.headers.iter().zip(header_values) {
        if let Some(value) = value {
            let mut hv = HeaderValue::from_str(&value)
                .map_err(|_| Error::BadRequest(format!("the {name} header")))?;
            hv.set_sensitive(true);
            parts.headers.insert(name.clone(), hv);
        }
    }

    let body_bytes = out.body.unwrap_or(bytes);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body_bytes.len()));
    let raw_path = parts.uri.path();
    let rest = match &route.strip_prefix {
        Some(prefix) => raw_path
            .strip_prefix(prefix.as_str())
            .filter(|r| r.is_empty() || r.starts_with('/'))
            .ok_or(Error::Forbidden(
                "no allow-listed destination matches this request",
            ))?,
        None => raw_path,
    };
    let query = out.query.as_deref().or(parts.uri.query());
    let uri = route.destination.uri(rest, query)?;
    let (response, handed) = forward::send_tracked(
        &route.destination,
        parts,
        full(body_bytes),
        uri,
        None,
        state.timeout,
    )
    .await;
    Ok(Sent { response, handed })
}

type Revealed = (
    Vec<Option<Zeroizing<String>>>,
    Vec<AuditEvent>,
    Option<Error>,
    Vec<CvvHold>,
);

/// Reveal every wanted token, in order; stop revealing at the first failure (so no
/// further CVV is consumed), and audit what was attempted.
async fn reveal_all(
    state: &OutboundState,
    client: &Client,
    conn: &ConnInfo,
    wanted: &[Option<Wanted<'_>>],
) -> Revealed {
    let origin = conn.peer.to_string();
    let mut values = Vec::with_capacity(wanted.len());
    let mut events = Vec::with_capacity(wanted.len());
    let mut first_error = None;
    let mut holds = Vec::new();
    for w in wanted {
        let Some(w) = w else {
            values.push(None);
            continue;
        };
        if first_error.is_some() {
            values.push(None);
            continue;
        }
        let expect = w.expect;
        let authorize = |class: DataClass| {
            if class != expect {
                return Err(hidden(expect));
            }
            client.visible(class, Purpose::RevealFull).map(|_| ())
        };
        let event = AuditEvent::new(client.name(), Action::Reveal)
            .token(w.token)
            .origin(origin.clone());
        match state
            .vault
            .detokenize_held(w.token, w.scope, &authorize)
            .await
        {
            Ok((revealed, hold)) => {
                holds.extend(hold);
                state.reveals.inc(&[revealed.class.as_str()]);
                events.push(event.class(revealed.class));
                values.push(Some(Zeroizing::new(revealed.value.expose().to_owned())));
            }
            Err(e) => {
                events.push(event.failed(&e));
                values.push(None);
                first_error = Some(e);
            }
        }
    }
    (values, events, first_error, holds)
}

fn header_str<'a>(headers: &'a http::HeaderMap, name: &HeaderName) -> Result<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| Error::UnsupportedMedia(format!("the {name} header is not ASCII"))),
    }
}
