//! `[outbound]` in the config file: the listener and its allow-listed routes.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{
    TlsFiles, default_header_read_timeout_ms, default_max_connections, default_method,
    parse_listen, parse_upstream_url,
};
use crate::select::{BodyKind, FieldRule, LeakPolicy, RouteRules};
use crate::sensitive::DataClass;
use crate::{Error, Result};

/// `[outbound]`: the reveal proxy.
///
/// ```toml
/// [outbound]
/// listen = "127.0.0.1:8082"
/// tls = { cert = "…", key = "…", client_ca = "…" }   # optional; client_ca = mTLS
///
/// [[outbound.routes]]
/// name = "processor_charges"
/// method = "POST"
/// path = "/processor/charges"           # what the caller sends
/// strip_prefix = "/processor"           # removed before appending to the destination
/// destination = "https://processor.example"
/// ca = "certs/processor-ca.pem"         # optional: trust only this CA
/// reveal = [
///   { path = "card.number", class = "pan" },
///   { path = "card.cvc", class = "cvv", scope = "card.number" },
/// ]
/// reveal_headers = [{ name = "x-card-token", class = "pan" }]
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// `host:port` to bind.
    pub listen: String,
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// The allow-list. A request that matches none of them gets 403.
    #[serde(default)]
    pub routes: Vec<OutboundRoute>,
}

/// `[[outbound.routes]]`: one allow-listed destination endpoint.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutboundRoute {
    pub name: String,
    /// `https://host[:port][/prefix]` (or `http://` for a processor on a trusted
    /// network): where matching requests go.
    pub destination: String,
    /// A PEM file of CA certificates trusted for the destination instead of the web
    /// PKI roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// `POST`, `GET`, … or `*`.
    #[serde(default = "default_method")]
    pub method: String,
    /// The path pattern callers send (`/processor/charges`, `/processor/*`).
    pub path: String,
    /// A leading path removed before the rest is appended to the destination.
    #[serde(default)]
    pub strip_prefix: Option<String>,
    /// How the body is read (default: by Content-Type).
    #[serde(default)]
    pub body: Option<BodyKind>,
    /// Fields whose tokens are replaced by their values. `class` is the class the
    /// token must have; `scope` names the card-token field of a same-length CVV token.
    #[serde(default)]
    pub reveal: Vec<FieldRule>,
    /// Headers whose whole value is a token to replace.
    #[serde(default)]
    pub reveal_headers: Vec<HeaderReveal>,
}

/// `{ name = "x-card-token", class = "pan" }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderReveal {
    pub name: String,
    pub class: DataClass,
}

impl OutboundRoute {
    /// The body rules: the reveal fields, with the leak guard off (values here are
    /// tokens, and what the caller sends beyond them is its own business).
    pub fn rules(&self) -> RouteRules {
        RouteRules {
            body: self.body.unwrap_or_default(),
            fields: self.reveal.clone(),
            leak_guard: LeakPolicy::Allow,
        }
    }
}

impl OutboundConfig {
    /// Check addresses, destinations, patterns and reveal rules.
    pub fn validate(&self) -> Result<()> {
        parse_listen("outbound.listen", &self.listen)?;
        if self.max_connections == 0 {
            return Err(Error::Config(
                "outbound.max_connections: must be at least 1".into(),
            ));
        }
        let mut names = HashSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            let key = format!("outbound.routes[{i}]");
            if r.name.is_empty() || !names.insert(r.name.as_str()) {
                return Err(Error::Config(format!(
                    "{key}.name: must be non-empty and unique"
                )));
            }
            parse_upstream_url(&r.destination)
                .map_err(|msg| Error::Config(format!("{key}.destination: {msg}")))?;
            if r.method != "*" && http::Method::from_bytes(r.method.as_bytes()).is_err() {
                return Err(Error::Config(format!(
                    "{key}.method: not an HTTP method or \"*\""
                )));
            }
            if r.method.eq_ignore_ascii_case("CONNECT") {
                return Err(Error::Config(format!(
                    "{key}.method: CONNECT is not proxied"
                )));
            }
            crate::proxy::routes::PathPattern::parse(&r.path)
                .map_err(|msg| Error::Config(format!("{key}.path: {msg}")))?;
            if let Some(prefix) = &r.strip_prefix
                && (!prefix.starts_with('/') || prefix.ends_with('/'))
            {
                return Err(Error::Config(format!(
                    "{key}.strip_prefix: must start with '/' and not end with '/'"
                )));
            }
            for (j, h) in r.reveal_headers.iter().enumerate() {
                if http::HeaderName::from_bytes(h.name.as_bytes()).is_err() {
                    return Err(Error::Config(format!(
                        "{key}.reveal_headers[{j}].name: not a header name"
                    )));
                }
            }
            crate::pipeline::CompiledRules::compile(&r.rules())
                .map_err(|e| Error::Config(format!("{key}.reveal: {e}")))?;
        }
        Ok(())
    }
}
