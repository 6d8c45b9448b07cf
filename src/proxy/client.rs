//! Pooled upstream clients: one hyper-util legacy client per upstream, over
//! hyper-rustls (ring), for both `http://` and `https://` upstreams.

use std::time::Duration;

use http::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{UpstreamConfig, parse_upstream_url};
use crate::server::body::Body;
use crate::server::tls;
use crate::{Error, Result};

/// A pooled client.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

/// One upstream, ready to forward to.
#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    /// `http` or `https`.
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// A path prefix from the URL, without a trailing `/` (often empty).
    pub prefix: String,
    pub client: HttpClient,
}

impl Upstream {
    /// Build the upstream `i` of the config.
    pub fn build(i: usize, cfg: &UpstreamConfig, connect_timeout: Duration) -> Result<Upstream> {
        let key = format!("upstreams[{i}]");
        let uri = parse_upstream_url(&cfg.url)
            .map_err(|msg| Error::Config(format!("{key}.url: {msg}")))?;
        let parts = uri.into_parts();
        let (Some(scheme), Some(authority)) = (parts.scheme, parts.authority) else {
            return Err(Error::Config(format!("{key}.url: missing scheme or host")));
        };
        let prefix = parts
            .path_and_query
            .map(|pq| pq.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();

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
        let connector = builder
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Ok(Upstream {
            name: cfg.name.clone(),
            scheme,
            authority,
            prefix,
            client,
        })
    }

    /// The upstream URI for a request path and (possibly rewritten) query.
    pub fn uri(&self, path: &str, query: Option<&str>) -> Result<Uri> {
        let mut pq = String::with_capacity(self.prefix.len() + path.len() + 1);
        pq.push_str(&self.prefix);
        pq.push_str(path);
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|_| Error::BadRequest("the request target cannot be forwarded".to_owned()))
    }
}
