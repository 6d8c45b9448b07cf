//! Upstream connections, per upstream and shard, so a shard's requests use its own
//! connections and nothing else's lock, and a cap on the requests in flight to each
//! upstream: HTTP/1.1 connections the shard keeps itself ([`H1Pool`]) for `http://`
//! upstreams, and a hyper-util pooled client over hyper-rustls (ring) for `https://`
//! ones, where ALPN may pick HTTP/2.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::body::Body;
use super::h1pool::H1Pool;
use super::{shard, tls};
use crate::{Error, Result};

/// `[[upstreams]]` (and an outbound route's destination): a backend to forward to.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub name: String,
    /// `http://host:port` or `https://host:port`, optionally with a path prefix.
    pub url: UpstreamUrl,
    /// A PEM file of CA certificates trusted for this upstream instead of the
    /// built-in web roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Requests in flight to this upstream at once, over all shards (default 256);
    /// more wait for a slot within the upstream timeout. Bounds the upstream
    /// connections, which are kept alive for reuse.
    #[serde(default = "default_upstream_connections")]
    pub max_connections: NonZeroUsize,
    /// Connections kept open for reuse while idle, over all shards (default 64,
    /// nginx's `keepalive`); past a burst the others are closed.
    #[serde(default = "default_idle_connections")]
    pub max_idle_connections: usize,
}

fn default_upstream_connections() -> NonZeroUsize {
    NonZeroUsize::new(256).unwrap_or(NonZeroUsize::MIN)
}

fn default_idle_connections() -> usize {
    64
}

impl UpstreamConfig {
    /// An upstream with the default limits.
    pub fn new(name: String, url: UpstreamUrl, ca: Option<PathBuf>) -> UpstreamConfig {
        UpstreamConfig {
            name,
            url,
            ca,
            max_connections: default_upstream_connections(),
            max_idle_connections: default_idle_connections(),
        }
    }
}

/// An upstream URL, checked once when the config is read: http or https, a host, an
/// optional path prefix, no query or fragment.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UpstreamUrl {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// A path prefix from the URL, without a trailing `/` (often empty).
    pub prefix: String,
}

impl TryFrom<String> for UpstreamUrl {
    type Error = &'static str;

    fn try_from(url: String) -> std::result::Result<UpstreamUrl, &'static str> {
        UpstreamUrl::parse(&url)
    }
}

impl UpstreamUrl {
    /// Check an upstream URL: http or https, a host, no query or fragment.
    pub fn parse(url: &str) -> std::result::Result<UpstreamUrl, &'static str> {
        let uri: Uri = url.parse().map_err(|_| "not a valid URL")?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err("the scheme must be http:// or https://"),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err("missing host");
        }
        if uri.query().is_some() || url.contains('#') {
            return Err("must not carry a query or fragment");
        }
        let parts = uri.into_parts();
        let (Some(scheme), Some(authority)) = (parts.scheme, parts.authority) else {
            return Err("missing scheme or host");
        };
        let prefix = parts
            .path_and_query
            .map(|pq| pq.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(UpstreamUrl {
            scheme,
            authority,
            prefix,
        })
    }
}

/// The connector of an https upstream's pooled client: the built-in web roots, or
/// only the CA in `ca`; HTTP/2 or HTTP/1.1 by ALPN.
fn https_connector(
    key: &str,
    cfg: &UpstreamConfig,
    connect_timeout: Duration,
) -> Result<HttpsConnector<HttpConnector>> {
    let builder = match &cfg.ca {
        Some(ca) => HttpsConnectorBuilder::new().with_tls_config(
            rustls::ClientConfig::builder_with_provider(tls::provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::Config(format!("{key}: {e}")))?
                .with_root_certificates(tls::root_store(&format!("{key}.ca"), ca)?)
                .with_no_client_auth(),
        ),
        None => HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(tls::provider())
            .map_err(|e| Error::Config(format!("{key}: {e}")))?,
    };

    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    Ok(builder
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http))
}

/// A pooled client.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// One shard's connections to an upstream, and its share of the in-flight cap.
#[derive(Debug)]
pub struct Pool {
    pub conns: Conns,
    pub slots: Arc<Semaphore>,
    /// The `Host` header for a plain-HTTP upstream (always HTTP/1.1), set once here
    /// rather than per request by the client; `None` for `https` (the client sets
    /// it, or `:authority` on HTTP/2). It and the authority are copied per pool, so
    /// that cloning them per request writes a reference count only this pool's
    /// shard uses.
    pub host: Option<http::HeaderValue>,
    authority: http::uri::Authority,
}

/// How a pool reaches its upstream.
#[derive(Debug)]
pub enum Conns {
    /// A plain-HTTP upstream: HTTP/1.1 connections kept by the shard itself.
    Http1(Arc<H1Pool>),
    /// An `https` upstream: hyper-util's pooled client, HTTP/2 where ALPN picks it.
    Pooled(Box<HttpClient>),
}

/// One upstream, ready to forward to.
#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    /// `http` or `https`.
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// A path prefix from the URL, without a trailing `/` (often empty).
    pub prefix: String,
    /// The shared runtime's pool (used off any shard).
    shared: Pool,
    /// Shard `i`'s pool at index `i` ([`shard::current`] is `i + 1` there).
    shards: Box<[Pool]>,
}

impl Upstream {
    /// Build the clients for an upstream served from `shards` shards (0: the shared
    /// runtime only); `key` names its config section in errors (`upstreams[2]`).
    /// `opened` counts the HTTP/1.1 connections opened to a plain-HTTP upstream.
    pub fn build(
        key: &str,
        cfg: &UpstreamConfig,
        connect_timeout: Duration,
        shards: usize,
        opened: Option<&metrics::Counter>,
    ) -> Result<Upstream> {
        let UpstreamUrl {
            scheme,
            authority,
            prefix,
        } = cfg.url.clone();

        // The caps are split over the shards (rounded up), each holding its share.
        let per_pool = cfg.max_connections.get().div_ceil(shards.max(1));
        let idle_per_pool = cfg.max_idle_connections.div_ceil(shards.max(1));
        let plain = scheme == http::uri::Scheme::HTTP;
        // TLS roots are loaded only for an https upstream.
        let connector = if plain {
            if cfg.ca.is_some() {
                tracing::warn!("{key}.ca is ignored: the upstream is plain http");
            }
            None
        } else {
            Some(https_connector(key, cfg, connect_timeout)?)
        };
        let pool = || Pool {
            conns: match &connector {
                None => Conns::Http1(Arc::new(H1Pool::new(
                    &authority,
                    connect_timeout,
                    idle_per_pool,
                    opened.cloned(),
                ))),
                Some(connector) => Conns::Pooled(Box::new(
                    Client::builder(TokioExecutor::new())
                        .pool_timer(TokioTimer::new())
                        .timer(TokioTimer::new())
                        .pool_idle_timeout(Duration::from_secs(90))
                        .pool_max_idle_per_host(idle_per_pool)
                        .build(connector.clone()),
                )),
            },
            slots: Arc::new(Semaphore::new(per_pool)),
            host: plain
                .then(|| http::HeaderValue::from_str(authority.as_str()).ok())
                .flatten(),
            // A copy of its own, not a clone sharing the same bytes.
            authority: http::uri::Authority::from_maybe_shared(bytes::Bytes::copy_from_slice(
                authority.as_str().as_bytes(),
            ))
            .unwrap_or_else(|_| authority.clone()),
        };
        let shared = pool();
        let shards = (0..shards).map(|_| pool()).collect();
        Ok(Upstream {
            name: cfg.name.clone(),
            scheme,
            authority,
            prefix,
            shared,
            shards,
        })
    }

    /// The calling shard's pool (the shared runtime's off any shard).
    pub fn pool(&self) -> &Pool {
        shard::current()
            .checked_sub(1)
            .and_then(|i| self.shards.get(i))
            .unwrap_or(&self.shared)
    }

    /// The upstream URI for a request path and (possibly rewritten) query: in origin
    /// form (`/path?query`) for a plain-HTTP upstream, which gets it over the proxy's
    /// own HTTP/1.1 connections as is, and absolute for an `https` one, whose pooled
    /// client picks its connection by the URI.
    /// [`uri`](Self::uri) for a request forwarded with its own path and query. A
    /// plain-HTTP upstream without a path prefix shares the request's bytes, which
    /// hyper checked when it parsed them: no copy, no second check.
    pub fn uri_as_sent(&self, uri: &Uri) -> Result<Uri> {
        if self.prefix.is_empty()
            && self.scheme == http::uri::Scheme::HTTP
            && let Some(pq) = uri.path_and_query()
            && pq.as_str().starts_with('/')
        {
            return Ok(Uri::from(pq.clone()));
        }
        self.uri(uri.path(), uri.query())
    }

    pub fn uri(&self, path: &str, query: Option<&str>) -> Result<Uri> {
        // Exactly sized: a `Vec` whose length is its capacity becomes `Bytes` (and the
        // URI) without another allocation.
        let len = self.prefix.len() + path.len() + query.map_or(0, |q| q.len() + 1);
        let mut pq = String::with_capacity(len);
        pq.push_str(&self.prefix);
        pq.push_str(path);
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        let unforwardable =
            || Error::BadRequest("the request target cannot be forwarded".to_owned());
        let pq = http::uri::PathAndQuery::from_maybe_shared(bytes::Bytes::from(pq))
            .map_err(|_| unforwardable())?;
        if self.scheme == http::uri::Scheme::HTTP {
            return Ok(Uri::from(pq));
        }
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.pool().authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|_| unforwardable())
    }
}
