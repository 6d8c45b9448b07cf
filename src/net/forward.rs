//! The one way a request leaves vaultgate, for the inbound and the outbound proxy
//! alike: header hygiene, the upstream URI, a send bounded in time, and the mapping
//! of upstream failures to errors.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, Uri, Version, header};
use tokio::sync::TryAcquireError;

use super::body::{Body, BodyStalled, Hold, boxed, boxed_as_is};
use super::headers;
use super::listener::ConnInfo;
use super::upstream::{Conns, Upstream};
use crate::{Error, Result};

/// Send a request to an upstream and return its response head with the body
/// streaming.
///
/// `uri` is where it goes ([`Upstream::uri`]). With `via` (the client's connection),
/// `X-Forwarded-*` headers name the client; without, none are added (the outbound
/// proxy does not tell a processor who called it).
pub fn send<'u>(
    upstream: &'u Upstream,
    parts: http::request::Parts,
    body: Body,
    uri: Uri,
    via: Option<&ConnInfo>,
    timeout: Duration,
) -> impl Future<Output = Result<Response<Body>>> + Send + use<'u> {
    use futures_util::FutureExt as _;
    send_tracked(upstream, parts, body, uri, via, timeout).map(|(result, _)| result)
}

/// [`send`], also telling whether the request may have reached the upstream: false
/// only when the connection failed before any byte of the request was sent (the
/// outbound proxy then keeps the CVVs it revealed for it).
///
/// The head is made ready before the future is: the future holds the request once,
/// not also the parts it was made of (the per-request future is boxed, and each
/// layer's size is copied on every request).
pub fn send_tracked<'u>(
    upstream: &'u Upstream,
    mut parts: http::request::Parts,
    body: Body,
    uri: Uri,
    via: Option<&ConnInfo>,
    timeout: Duration,
) -> impl Future<Output = (Result<Response<Body>>, bool)> + Send + use<'u> {
    let host = parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
    });
    // Hop-by-hop headers, vaultgate's own and `Expect`: `100-continue` was answered
    // on the client's side (hyper does so when the body is first read), and the
    // upstream gets the body without waiting.
    headers::strip_request(&mut parts.headers);
    if let Some(conn) = via {
        headers::set_forwarded(&mut parts.headers, &conn.forwarded_for, conn.tls, host);
    }
    // The upstream's own Host; for https the client sets Host (HTTP/1) or
    // :authority (HTTP/2) from the upstream URI.
    let pool = upstream.pool();
    match &pool.host {
        Some(host) => parts.headers.insert(header::HOST, host.clone()),
        None => parts.headers.remove(header::HOST),
    };
    parts.uri = uri;
    // The pool picks HTTP/2 only where the upstream negotiated it by ALPN.
    parts.version = Version::HTTP_11;
    let request = Request::from_parts(parts, body);
    // A slot under the upstream's cap first, within the same time limit; the response
    // body holds it until it ends.
    let deadline = tokio::time::Instant::now() + timeout;
    async move {
        // (Usually a slot is free: taken without arming a timer.)
        let slot = match Arc::clone(&pool.slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(TryAcquireError::Closed) => return (Err(Error::UpstreamUnavailable), false),
            Err(TryAcquireError::NoPermits) => {
                match tokio::time::timeout_at(deadline, Arc::clone(&pool.slots).acquire_owned())
                    .await
                {
                    Ok(Ok(slot)) => slot,
                    Ok(Err(_)) => return (Err(Error::UpstreamUnavailable), false),
                    Err(_) => {
                        tracing::warn!(upstream = %upstream.name, "no upstream connection free within the timeout");
                        return (Err(Error::UpstreamTimeout), false);
                    }
                }
            }
        };
        let response = match &pool.conns {
            Conns::Http1(conns) => {
                // The URI is in origin form already ([`Upstream::uri`]). The response
                // body holds the slot with its connection.
                match tokio::time::timeout_at(deadline, conns.send(request, slot)).await {
                    Ok(Ok(res)) => res,
                    Ok(Err(failed)) => {
                        let sent = failed.may_have_sent();
                        if body_stalled(&failed) {
                            return (Err(BodyStalled.into()), sent);
                        }
                        tracing::warn!(upstream = %upstream.name, connect = failed.is_connect(), sent, error = %failed, "upstream request failed");
                        return (Err(Error::UpstreamUnavailable), sent);
                    }
                    Err(_) => return (Err(Error::UpstreamTimeout), true),
                }
            }
            Conns::Pooled(client) => {
                match tokio::time::timeout_at(deadline, client.request(request)).await {
                    // The response body holds the slot until it ends.
                    Ok(Ok(res)) => res.map(|body| boxed_as_is(Hold::new(boxed(body), slot))),
                    Ok(Err(e)) => {
                        if body_stalled(&e) {
                            return (Err(BodyStalled.into()), true);
                        }
                        tracing::warn!(upstream = %upstream.name, connect = e.is_connect(), "upstream request failed");
                        return (Err(Error::UpstreamUnavailable), !e.is_connect());
                    }
                    // The request may be on the wire: count it as sent.
                    Err(_) => return (Err(Error::UpstreamTimeout), true),
                }
            }
        };
        let (mut parts, body) = response.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        (Ok(Response::from_parts(parts, body)), true)
    }
}

/// Whether a send failed because the client stopped sending the request body
/// ([`BodyStalled`] somewhere in its causes): the client's fault, not the upstream's.
fn body_stalled(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<BodyStalled>() {
            return true;
        }
        cause = c.source();
    }
    false
}
