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
//! request that matches no route gets 403 `forbidden`.
//!
//! # Order of checks (nothing reaches the processor unless all pass)
//!
//! route → caller (verified client certificate, or `Proxy-Authorization: Bearer
//! <key>`, so that `Authorization` stays free for the processor's own credential) →
//! the caller may reveal every class the route reveals, in full → rate limit → reveal
//! each token (a CVV is consumed; its class is checked first) → audit every reveal
//! (fail closed) → forward. The processor's response passes back unchanged.

mod config;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Request, Response, Version, header};
use hyper::body::Incoming;
use zeroize::Zeroize;

pub use config::{HeaderReveal, OutboundConfig, OutboundRoute};

use crate::api::Access;
use crate::api::access::read_body;
use crate::audit::{Action, AuditEvent};
use crate::auth::{Client, RevealMode};
use crate::codec::{self, RequestParts};
use crate::config::UpstreamConfig;
use crate::pipeline::{CompiledRules, Vault};
use crate::proxy::client::Upstream;
use crate::proxy::headers;
use crate::proxy::routes::{PathPattern, canonical_path};
use crate::sensitive::DataClass;
use crate::server::ConnInfo;
use crate::server::body::{Body, boxed, error_response, full};
use crate::{Error, Result};

/// One allow-listed route, ready to serve.
#[derive(Debug)]
struct Route {
    method: Option<Method>,
    pattern: PathPattern,
    strip_prefix: Option<String>,
    destination: Upstream,
    rules: CompiledRules,
    headers: Vec<(HeaderName, DataClass)>,
    /// Every class the route reveals: the caller must be allowed all of them.
    classes: Vec<DataClass>,
}

/// Everything the outbound handler needs.
#[derive(Debug)]
pub struct OutboundState {
    routes: Vec<Route>,
    access: Arc<Access>,
    vault: Arc<Vault>,
    max_body: usize,
    timeout: Duration,
}

impl OutboundState {
    /// Build the routes and their destination clients from a validated config.
    pub fn build(
        config: &OutboundConfig,
        limits: &crate::config::Limits,
        access: Arc<Access>,
        vault: Arc<Vault>,
    ) -> Result<OutboundState> {
        let timeout = Duration::from_millis(limits.upstream_timeout_ms);
        let mut routes = Vec::with_capacity(config.routes.len());
        for (i, r) in config.routes.iter().enumerate() {
            let key = format!("outbound.routes[{i}]");
            let destination = Upstream::build(
                i,
                &UpstreamConfig {
                    name: r.name.clone(),
                    url: r.destination.clone(),
                    ca: r.ca.clone(),
                },
                timeout,
            )
            .map_err(|e| Error::Config(format!("{key}: {e}")))?;
            let method = match r.method.as_str() {
                "*" => None,
                m => Some(
                    Method::from_bytes(m.as_bytes())
                        .map_err(|_| Error::Config(format!("{key}.method")))?,
                ),
            };
            let pattern = PathPattern::parse(&r.path)
                .map_err(|m| Error::Config(format!("{key}.path: {m}")))?;
            let rules = CompiledRules::compile(&r.rules())?;
            let headers = r
                .reveal_headers
                .iter()
                .map(|h| {
                    HeaderName::from_bytes(h.name.as_bytes())
                        .map(|n| (n, h.class))
                        .map_err(|_| Error::Config(format!("{key}.reveal_headers")))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut classes: Vec<DataClass> = r
                .reveal
                .iter()
                .map(|f| f.class)
                .chain(r.reveal_headers.iter().map(|h| h.class))
                .collect();
            classes.sort_by_key(|c| c.tag());
            classes.dedup();
            routes.push(Route {
                method,
                pattern,
                strip_prefix: r.strip_prefix.clone(),
                destination,
                rules,
                headers,
                classes,
            });
        }
        Ok(OutboundState {
            routes,
            access,
            vault,
            max_body: limits.max_body_bytes,
            timeout,
        })
    }
}

/// The outbound service for one request.
pub async fn handle(
    state: Arc<OutboundState>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> std::result::Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    Ok(match forward(&state, &conn, req).await {
        Ok(res) => res,
        Err(err) => {
            tracing::debug!(%method, code = err.code(), "outbound request refused");
            error_response(&err)
        }
    })
}

/// The answer for a token the caller may not reveal: the same as for one that does
/// not exist.
fn hidden(class: DataClass) -> Error {
    if class == DataClass::Cvv {
        Error::CvvExpired
    } else {
        Error::TokenNotFound
    }
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
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    if req.method() == Method::CONNECT {
        return Err(Error::Forbidden("CONNECT is not allowed"));
    }
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
        .find(|r| r.method.as_ref().is_none_or(|m| m == req.method()) && r.pattern.matches(&path))
        .ok_or(Error::Forbidden(
            "no allow-listed destination matches this request",
        ))?;
    let client = state
        .access
        .authenticate(conn, req.headers(), &header::PROXY_AUTHORIZATION)
        .await?;
    if route
        .classes
        .iter()
        .any(|c| client.may_reveal(*c) != RevealMode::Full)
    {
        return Err(Error::Forbidden(
            "this client may not reveal what this route reveals",
        ));
    }

    let (mut parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body, state.max_body).await?;
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
    let n = wanted.iter().flatten().count();
    if n > 0 {
        state.access.rate_limit(&client, n, conn).await?;
    }

    let (values, events, first_error) = reveal_all(state, &client, conn, &wanted).await;
    // Audit before anything leaves: no log, no request.
    let mut values = values;
    let audited = state.access.record(&events).await;
    if let Err(err) = audited.and(first_error.map_or(Ok(()), Err)) {
        for v in values.iter_mut().flatten() {
            v.zeroize();
        }
        return Err(err);
    }

    let n_fields = findings.len();
    let mut replacements: Vec<Option<String>> = values;
    let header_values = replacements.split_off(n_fields.min(replacements.len()));
    drop(wanted);
    let out = extraction.apply(&replacements);
    for v in replacements.iter_mut().flatten() {
        v.zeroize();
    }
    let out = out?;
    for ((name, _), value) in route.headers.iter().zip(header_values) {
        if let Some(mut value) = value {
            let hv = HeaderValue::from_str(&value);
            value.zeroize();
            let mut hv = hv.map_err(|_| Error::BadRequest(format!("the {name} header")))?;
            hv.set_sensitive(true);
            parts.headers.insert(name.clone(), hv);
        }
    }

    let body_bytes = out.body.unwrap_or(bytes);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body_bytes.len()));
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::strip_own(&mut parts.headers);
    parts.headers.remove(header::HOST);
    parts.headers.remove(header::EXPECT);
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
    parts.uri = uri;
    parts.version = Version::HTTP_11;

    let request = Request::from_parts(parts, full(body_bytes));
    let response = match tokio::time::timeout(
        state.timeout,
        route.destination.client.request(request),
    )
    .await
    {
        Ok(Ok(res)) => res,
        Ok(Err(e)) => {
            tracing::warn!(destination = %route.destination.name, connect = e.is_connect(), "outbound request failed");
            return Err(Error::UpstreamUnavailable);
        }
        Err(_) => return Err(Error::UpstreamTimeout),
    };
    let (mut parts, body) = response.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, boxed(body)))
}

type Revealed = (Vec<Option<String>>, Vec<AuditEvent>, Option<Error>);

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
            if class == expect && client.may_reveal(class) == RevealMode::Full {
                Ok(())
            } else {
                Err(hidden(expect))
            }
        };
        let event = AuditEvent::new(client.name(), Action::Reveal)
            .token(w.token)
            .origin(origin.clone());
        match state
            .vault
            .detokenize_with(w.token, w.scope, &authorize)
            .await
        {
            Ok(revealed) => {
                events.push(event.class(revealed.class));
                values.push(Some(revealed.value.expose().to_owned()));
            }
            Err(e) => {
                events.push(event.failed(&e));
                values.push(None);
                first_error = Some(e);
            }
        }
    }
    (values, events, first_error)
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
