//! The configuration file: TOML → section types, parsed once.
//!
//! Every value that has a shape (listen addresses, URLs, methods, path patterns, field
//! paths, token formats, media types, profile names) becomes its type while the file
//! is deserialized, and an error names the key path (`routes[2].fields[0].path: …`).
//! [`Config::validate`] then only cross-checks names: unique route and upstream names,
//! routes naming known upstreams, distinct listeners. Tests hand a config string in
//! directly ([`Config::from_toml_str`]); nothing here reads process environment
//! variables.

mod outbound;
mod routes;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::auth::ClientConfig;
pub use crate::logging::{LogFormat, LogSettings};
pub use crate::net::{ListenerSettings, TlsFiles, UpstreamConfig, UpstreamUrl};
pub use crate::positive::Positive;
pub use crate::vault::VaultSettings;
pub use outbound::{AnswerGuard, HeaderReveal, OutboundConfig, OutboundRoute};
pub use routes::{GuardMode, MediaType, RouteConfig, route_warnings};

use crate::{Error, Result};

/// The whole config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[proxy]`: the listener that fronts the upstreams.
    pub proxy: ListenerSettings,
    /// `[api]`: the vault API listener (default `127.0.0.1:8081`).
    #[serde(default = "default_api")]
    pub api: ListenerSettings,
    #[serde(default)]
    pub vault: VaultSettings,
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub log: LogSettings,
    /// `[[clients]]`: who may use the vault API and the outbound proxy, and for what.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// `[audit]`: where reveals, API tokenizations, deletes and refusals are logged.
    #[serde(default)]
    pub audit: AuditSettings,
    /// `[outbound]`: the reveal proxy trusted services send processor requests through.
    #[serde(default)]
    pub outbound: Option<OutboundConfig>,
}

fn default_api() -> ListenerSettings {
    ListenerSettings::on(std::net::SocketAddr::from(([127, 0, 0, 1], 8081)))
}

/// `[audit]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// The audit log file. Default: `audit.log` in the vault's data directory
    /// (`data/audit.log`). It is opened at start-up when clients are configured.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Group-committed `fdatasync` before a reveal is answered (default true).
    #[serde(default)]
    pub fsync: Option<bool>,
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The largest body read on a route with rules.
    pub max_body_bytes: Positive<usize>,
    /// The most request body bytes the proxy holds in memory at once, over every
    /// body it reads whole (rules routes, guarded pass-through bodies with a content
    /// coding); a read that would go over it is refused with 503 `overloaded`. At
    /// least `max_body_bytes`.
    pub max_buffered_body_bytes: Positive<usize>,
    /// How long to wait for an upstream's response head.
    pub upstream_timeout_ms: Positive<u64>,
    /// How long a rules route waits for the whole request body (a slowly dripped
    /// body is cut off with 400, like a slow request head is with 408), and a
    /// pass-through route for the next piece of a streamed body (a client that stops
    /// sending gets 400, not a gateway timeout).
    pub body_read_timeout_ms: Positive<u64>,
    /// The most sensitive values (rule fields and leak-guard hits, tokens of this
    /// vault included) one request may carry; more is refused with 400
    /// `too_many_sensitive_values` before anything is stored.
    pub max_sensitive_values: Positive<usize>,
    /// How many layers of encoding (a JSON document inside a string, base64, `\u`,
    /// `&#…;` or `%` escapes) the leak guard decodes inside a free field, at most
    /// [`MAX_DECODE_DEPTH`]. 0 scans field text only as it is.
    pub max_decode_depth: usize,
}

/// The largest `limits.max_decode_depth`.
pub const MAX_DECODE_DEPTH: usize = 8;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: Positive(1_048_576),
            max_buffered_body_bytes: Positive(256 * 1_048_576),
            upstream_timeout_ms: Positive(30_000),
            body_read_timeout_ms: Positive(10_000),
            max_sensitive_values: Positive(64),
            max_decode_depth: 3,
        }
    }
}

impl Limits {
    /// What serde cannot say per field.
    pub fn validate(&self) -> Result<()> {
        if self.max_buffered_body_bytes.get() < self.max_body_bytes.get() {
            return Err(Error::Config(
                "limits.max_buffered_body_bytes: at least limits.max_body_bytes (one body \
                 of the largest size must fit)"
                    .to_owned(),
            ));
        }
        if self.max_decode_depth > MAX_DECODE_DEPTH {
            return Err(Error::Config(format!(
                "limits.max_decode_depth: at most {MAX_DECODE_DEPTH}"
            )));
        }
        Ok(())
    }
}

// === impl Config ===

impl Config {
    /// The proxy's shards (`proxy.workers`): one per CPU unless set otherwise.
    pub fn proxy_shards(&self) -> usize {
        self.proxy.workers.shards(true)
    }

    /// The outbound proxy's shards (`outbound.workers`): the shared runtime unless set.
    pub fn outbound_shards(&self) -> usize {
        self.outbound
            .as_ref()
            .map_or(0, |o| o.listener.workers.shards(false))
    }

    /// Parse and validate a config held in a string. A parse error names the key
    /// path and the line.
    pub fn from_toml_str(text: &str) -> Result<Config> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, "", &e))?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            toml_error(text, &path, e.inner())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading config {}", path.display()), e))?;
        let mut config = Config::from_toml_str(&text)?;
        if let Some(dir) = path.parent() {
            config.resolve_paths(dir);
        }
        Ok(config)
    }

    /// Make every relative path in the config (keyring, data, audit log, TLS and CA
    /// files) relative to `dir`, the config file's folder, instead of the working
    /// directory.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        let fix_tls = |t: &mut Option<TlsFiles>| {
            if let Some(t) = t {
                fix(&mut t.cert);
                fix(&mut t.key);
                if let Some(ca) = &mut t.client_ca {
                    fix(ca);
                }
            }
        };
        fix(&mut self.vault.keyring);
        fix(&mut self.vault.data);
        if let Some(p) = &mut self.vault.postgres_ca {
            fix(p);
        }
        if let Some(p) = &mut self.audit.path {
            fix(p);
        }
        fix_tls(&mut self.proxy.tls);
        fix_tls(&mut self.api.tls);
        for up in &mut self.upstreams {
            if let Some(ca) = &mut up.ca {
                fix(ca);
            }
        }
        if let Some(o) = &mut self.outbound {
            fix_tls(&mut o.listener.tls);
            for r in &mut o.routes {
                if let Some(ca) = &mut r.ca {
                    fix(ca);
                }
            }
        }
    }

    /// Cross-check names: unique upstream and route names, routes that name known
    /// upstreams, clients, distinct listener addresses. Shapes were checked while
    /// parsing.
    pub fn validate(&self) -> Result<()> {
        if self
            .proxy
            .tls
            .as_ref()
            .is_some_and(|t| t.client_ca.is_some())
        {
            return Err(Error::Config(
                "proxy.tls.client_ca: client certificates are only supported on the api and \
                 outbound listeners"
                    .into(),
            ));
        }
        crate::logging::check_level(&self.log.level)?;
        self.vault.validate()?;
        self.limits.validate()?;
        crate::auth::validate_clients(&self.clients)?;
        if let Some(outbound) = &self.outbound {
            outbound.validate()?;
        }
        let mut upstream_names = HashSet::new();
        for (i, up) in self.upstreams.iter().enumerate() {
            if up.name.is_empty() {
                return Err(Error::Config(format!(
                    "upstreams[{i}].name: must not be empty"
                )));
            }
            if !upstream_names.insert(up.name.as_str()) {
                return Err(Error::Config(format!(
                    "upstreams[{i}].name: duplicate upstream name {:?}",
                    up.name
                )));
            }
        }
        let mut route_names = HashSet::new();
        for (i, route) in self.routes.iter().enumerate() {
            let key = format!("routes[{i}]");
            if route.name.is_empty() {
                return Err(Error::Config(format!("{key}.name: must not be empty")));
            }
            if !route_names.insert(route.name.as_str()) {
                return Err(Error::Config(format!(
                    "{key}.name: duplicate route name {:?}",
                    route.name
                )));
            }
            if !upstream_names.contains(route.upstream.as_str()) {
                return Err(Error::Config(format!(
                    "{key}.upstream: unknown upstream {:?}",
                    route.upstream
                )));
            }
        }
        self.check_listeners_distinct()
    }

    /// Two listeners on one address would fail at bind time; say so before.
    fn check_listeners_distinct(&self) -> Result<()> {
        let mut seen: Vec<(&str, std::net::SocketAddr)> = vec![("proxy", self.proxy.listen)];
        let mut others = vec![("api", self.api.listen)];
        if let Some(o) = &self.outbound {
            others.push(("outbound", o.listener.listen));
        }
        for (name, addr) in others {
            if let Some((first, _)) = seen.iter().find(|(_, a)| a.port() != 0 && *a == addr) {
                return Err(Error::Config(format!(
                    "{name}.listen: the same address as {first}.listen"
                )));
            }
            seen.push((name, addr));
        }
        Ok(())
    }

    /// The audit log file: `[audit] path`, or `audit.log` in the vault's data dir.
    pub fn audit_path(&self) -> PathBuf {
        self.audit
            .path
            .clone()
            .unwrap_or_else(|| self.vault.data.join("audit.log"))
    }

    /// A config for `vaultgate demo`: every built-in profile on its documented path, in
    /// front of one upstream, plus a pass-through catch-all.
    pub fn demo(
        proxy_listen: &str,
        api_listen: &str,
        upstream_url: &str,
        data_dir: &Path,
    ) -> Result<Config> {
        let listen = |key: &str, value: &str| {
            value
                .parse()
                .map(ListenerSettings::on)
                .map_err(|_| Error::Config(format!("{key}: expected ip:port")))
        };
        let url = UpstreamUrl::parse(upstream_url)
            .map_err(|msg| Error::Config(format!("upstreams[0].url: {msg}")))?;
        let route = |name: &str, path: &str, profile: Option<&str>| -> Result<RouteConfig> {
            Ok(RouteConfig {
                name: name.to_owned(),
                upstream: "backend".to_owned(),
                method: match profile {
                    Some(_) => crate::net::matcher::MethodFilter::One(http::Method::POST),
                    None => crate::net::matcher::MethodFilter::Any,
                },
                path: crate::net::matcher::PathPattern::parse(path)
                    .map_err(|msg| Error::Config(format!("demo route {name}: {msg}")))?,
                content_types: None,
                profile: profile
                    .map(|p| crate::rules::profiles::ProfileName::try_from(p.to_owned()))
                    .transpose()
                    .map_err(Error::Config)?,
                fields: None,
                body: None,
                leak_guard: None,
                keys: None,
                stream_guard: None,
                scan_headers: None,
                join_lists: None,
            })
        };
        Ok(Config {
            proxy: listen("proxy.listen", proxy_listen)?,
            api: listen("api.listen", api_listen)?,
            vault: VaultSettings {
                keyring: data_dir.join("keyring.json"),
                data: data_dir.join("store"),
                ..VaultSettings::default()
            },
            upstreams: vec![UpstreamConfig::new("backend".to_owned(), url, None)],
            limits: Limits::default(),
            routes: vec![
                route("q2open", "/v1/payment", Some("q2open"))?,
                route(
                    "oracle_brm",
                    "/brm/paymentMethods/{version}/paymentMethod",
                    Some("oracle_brm"),
                )?,
                route(
                    "hostway",
                    "/accounts/{accountId}/paymentInfo",
                    Some("hostway"),
                )?,
                route("payment_method", "/payment-method", Some("payment_method"))?,
                route("plano", "/payment-methods", Some("plano"))?,
                route("pass_through", "/*", None)?,
            ],
            log: LogSettings::default(),
            clients: Vec::new(),
            audit: AuditSettings::default(),
            outbound: None,
        })
    }
}

/// A TOML error as a config error: the key path when known, then the line.
fn toml_error(text: &str, path: &str, e: &toml::de::Error) -> Error {
    let line = e
        .span()
        .and_then(|span| text.get(..span.start))
        .map(|before| before.matches('\n').count() + 1);
    let at = match line {
        Some(line) => format!(" (line {line})"),
        None => String::new(),
    };
    let message = e.message().trim_end();
    if path.is_empty() || path == "." {
        Error::Config(format!("{message}{at}"))
    } else {
        Error::Config(format!("{path}: {message}{at}"))
    }
}
