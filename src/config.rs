//! The configuration file: TOML → serde structs, then [`Config::validate`].
//!
//! Parsing and validation are separate steps so that tests can hand a config string in
//! directly ([`Config::from_toml_str`]) and every error names the offending key
//! (`routes[2].upstream: …`). Nothing here reads process environment variables.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::select::{BodyKind, FieldRule, LeakPolicy, RouteRules, profiles};
use crate::vault::VaultSettings;
use crate::{Error, Result};

/// The whole config file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub proxy: ProxySettings,
    #[serde(default)]
    pub api: ApiSettings,
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
    pub clients: Vec<crate::auth::ClientConfig>,
    /// `[audit]`: where reveals, API tokenizations, deletes and refusals are logged.
    #[serde(default)]
    pub audit: AuditSettings,
    /// `[outbound]`: the reveal proxy trusted services send processor requests through.
    #[serde(default)]
    pub outbound: Option<crate::outbound::OutboundConfig>,
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

/// `[proxy]`: the listener that fronts the upstreams.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProxySettings {
    /// `host:port` to bind, e.g. `127.0.0.1:8080` (port 0 picks a free port).
    pub listen: String,
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
}

/// `[api]`: the admin / vault API listener.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    pub listen: String,
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            listen: "127.0.0.1:8081".to_owned(),
            tls: None,
            max_connections: default_max_connections(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
        }
    }
}

/// `tls = { cert = "…", key = "…", client_ca = "…" }`: PEM files.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain (leaf first).
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates for verifying client certificates (mTLS). Parsed, and only
    /// allowed on the API listener; verification is wired up by the API work.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// `[[upstreams]]`: a backend that routes forward to.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub name: String,
    /// `http://host:port` or `https://host:port`, optionally with a path prefix.
    pub url: String,
    /// A PEM file of CA certificates trusted for this upstream instead of the
    /// built-in web roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The largest body read on a route with rules.
    pub max_body_bytes: usize,
    /// How long to wait for an upstream's response head.
    pub upstream_timeout_ms: u64,
    /// How long a rules route waits for the whole request body (a slowly dripped
    /// body is cut off with 400, like a slow request head is with 408).
    pub body_read_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1_048_576,
            upstream_timeout_ms: 30_000,
            body_read_timeout_ms: 10_000,
        }
    }
}

/// `[[routes]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// The name of an `[[upstreams]]` entry.
    pub upstream: String,
    /// `POST`, `GET`, … or `*` for any method.
    #[serde(default = "default_method")]
    pub method: String,
    /// `/v1/payment`, `/accounts/{accountId}/paymentInfo`, `/static/*`.
    pub path: String,
    /// Media types (`application/json`); when set, a request must carry one of them.
    #[serde(default)]
    pub content_types: Option<Vec<String>>,
    /// A built-in profile (see `select::profiles::NAMES`).
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub fields: Option<Vec<FieldRule>>,
    #[serde(default)]
    pub body: Option<BodyKind>,
    #[serde(default)]
    pub leak_guard: Option<LeakPolicy>,
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter directive: `info`, `vaultgate=debug,hyper=warn`, …
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

/// The log line format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

pub(crate) fn default_max_connections() -> usize {
    10_000
}

pub(crate) fn default_header_read_timeout_ms() -> u64 {
    10_000
}

pub(crate) fn default_method() -> String {
    "*".to_owned()
}

// === impl Config ===

impl Config {
    /// Parse and validate a config held in a string.
    pub fn from_toml_str(text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| before.matches('\n').count() + 1);
            match line {
                Some(line) => Error::Config(format!("line {line}: {}", e.message())),
                None => Error::Config(e.message().to_owned()),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading config {}", path.display()), e))?;
        Config::from_toml_str(&text)
    }

    /// Check everything serde cannot: addresses, URLs, references between sections,
    /// unique names, field rules.
    pub fn validate(&self) -> Result<()> {
        parse_listen("proxy.listen", &self.proxy.listen)?;
        parse_listen("api.listen", &self.api.listen)?;
        self.vault.validate()?;
        if self.proxy.max_connections == 0 {
            return Err(Error::Config(
                "proxy.max_connections: must be at least 1".into(),
            ));
        }
        if self.api.max_connections == 0 {
            return Err(Error::Config(
                "api.max_connections: must be at least 1".into(),
            ));
        }
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
        crate::auth::validate_clients(&self.clients)?;
        if let Some(outbound) = &self.outbound {
            outbound.validate()?;
        }
        if self.limits.max_body_bytes == 0 {
            return Err(Error::Config(
                "limits.max_body_bytes: must be at least 1".into(),
            ));
        }
        if self.limits.upstream_timeout_ms == 0 {
            return Err(Error::Config(
                "limits.upstream_timeout_ms: must be at least 1".into(),
            ));
        }
        if self.limits.body_read_timeout_ms == 0 {
            return Err(Error::Config(
                "limits.body_read_timeout_ms: must be at least 1".into(),
            ));
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
            parse_upstream_url(&up.url)
                .map_err(|msg| Error::Config(format!("upstreams[{i}].url: {msg}")))?;
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
            if route.method != "*" && http::Method::from_bytes(route.method.as_bytes()).is_err() {
                return Err(Error::Config(format!(
                    "{key}.method: not an HTTP method or \"*\""
                )));
            }
            crate::proxy::routes::PathPattern::parse(&route.path)
                .map_err(|msg| Error::Config(format!("{key}.path: {msg}")))?;
            if let Some(types) = &route.content_types {
                for (j, t) in types.iter().enumerate() {
                    if !t.contains('/') || t.contains(';') {
                        return Err(Error::Config(format!(
                            "{key}.content_types[{j}]: expected a media type like application/json"
                        )));
                    }
                }
            }
            if let Some(profile) = &route.profile
                && !profiles::NAMES.contains(&profile.as_str())
            {
                return Err(Error::Config(format!(
                    "{key}.profile: unknown profile {profile:?} (known: {})",
                    profiles::NAMES.join(", ")
                )));
            }
            for (j, field) in route.fields.iter().flatten().enumerate() {
                if field.path.trim().is_empty() {
                    return Err(Error::Config(format!(
                        "{key}.fields[{j}].path: must not be empty"
                    )));
                }
            }
            let rules = route.rules();
            // Compiling parses every field path; its error names the bad path.
            crate::pipeline::CompiledRules::compile(&rules)
                .map_err(|e| Error::Config(format!("{key}.fields: {e}")))?;
        }
        Ok(())
    }

    /// The address of the proxy listener.
    pub fn proxy_addr(&self) -> Result<SocketAddr> {
        parse_listen("proxy.listen", &self.proxy.listen)
    }

    /// The address of the API listener.
    pub fn api_addr(&self) -> Result<SocketAddr> {
        parse_listen("api.listen", &self.api.listen)
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
    ) -> Config {
        let route = |name: &str, path: &str, profile: Option<&str>| RouteConfig {
            name: name.to_owned(),
            upstream: "backend".to_owned(),
            method: if profile.is_some() { "POST" } else { "*" }.to_owned(),
            path: path.to_owned(),
            content_types: None,
            profile: profile.map(str::to_owned),
            fields: None,
            body: None,
            leak_guard: None,
        };
        Config {
            proxy: ProxySettings {
                listen: proxy_listen.to_owned(),
                tls: None,
                max_connections: default_max_connections(),
                header_read_timeout_ms: default_header_read_timeout_ms(),
            },
            api: ApiSettings {
                listen: api_listen.to_owned(),
                ..ApiSettings::default()
            },
            vault: VaultSettings {
                keyring: data_dir.join("keyring.json"),
                data: data_dir.join("store"),
                ..VaultSettings::default()
            },
            upstreams: vec![UpstreamConfig {
                name: "backend".to_owned(),
                url: upstream_url.to_owned(),
                ca: None,
            }],
            limits: Limits::default(),
            routes: vec![
                route("q2open", "/v1/payment", Some("q2open")),
                route(
                    "oracle_brm",
                    "/brm/paymentMethods/{version}/paymentMethod",
                    Some("oracle_brm"),
                ),
                route(
                    "hostway",
                    "/accounts/{accountId}/paymentInfo",
                    Some("hostway"),
                ),
                route("payment_method", "/payment-method", Some("payment_method")),
                route("plano", "/payment-methods", Some("plano")),
                route("pass_through", "/*", None),
            ],
            log: LogSettings::default(),
            clients: Vec::new(),
            audit: AuditSettings::default(),
            outbound: None,
        }
    }
}

// === impl RouteConfig ===

impl RouteConfig {
    /// The body rules of this route: the profile's rules (if any), with `fields` added
    /// and `body` / `leak_guard` overriding.
    ///
    /// A route with neither profile nor fields nor leak_guard is a pure pass-through
    /// (leak guard `allow`); one with a profile or fields defaults to `tokenize`.
    pub fn rules(&self) -> RouteRules {
        let mut rules = match &self.profile {
            // A known name whose rules are not registered yet (the registry is still a
            // stub) keeps the fail-closed default: the leak guard tokenizes.
            Some(name) => profiles::get(name).unwrap_or(RouteRules {
                leak_guard: LeakPolicy::Tokenize,
                ..RouteRules::default()
            }),
            None => RouteRules {
                leak_guard: if self.fields.is_some() {
                    LeakPolicy::Tokenize
                } else {
                    LeakPolicy::Allow
                },
                ..RouteRules::default()
            },
        };
        if let Some(fields) = &self.fields {
            rules.fields.extend(fields.iter().cloned());
        }
        if let Some(body) = self.body {
            rules.body = body;
        }
        if let Some(leak) = self.leak_guard {
            rules.leak_guard = leak;
        }
        rules
    }
}

// === helpers ===

pub(crate) fn parse_listen(key: &str, value: &str) -> Result<SocketAddr> {
    value
        .parse::<SocketAddr>()
        .map_err(|_| Error::Config(format!("{key}: expected ip:port, like 127.0.0.1:8080")))
}

/// Check an upstream URL: http or https, a host, no query or fragment.
pub(crate) fn parse_upstream_url(url: &str) -> std::result::Result<http::Uri, &'static str> {
    let uri: http::Uri = url.parse().map_err(|_| "not a valid URL")?;
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
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [proxy]
        listen = "127.0.0.1:0"
        [api]
        listen = "127.0.0.1:0"
        [[upstreams]]
        name = "backend"
        url = "http://127.0.0.1:9000"
    "#;

    fn with(extra: &str) -> Result<Config> {
        Config::from_toml_str(&format!("{BASE}\n{extra}"))
    }

    fn err(extra: &str) -> String {
        match with(extra) {
            Err(Error::Config(msg)) => msg,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply() {
        let c = with("").unwrap();
        assert_eq!(c.proxy.max_connections, 10_000);
        assert_eq!(c.proxy.header_read_timeout_ms, 10_000);
        assert_eq!(c.limits.max_body_bytes, 1_048_576);
        assert_eq!(c.limits.upstream_timeout_ms, 30_000);
        assert_eq!(c.limits.body_read_timeout_ms, 10_000);
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(c.vault, VaultSettings::default());
    }

    #[test]
    fn full_route_parses_and_resolves_rules() {
        let c = with(
            r#"
            [[routes]]
            name = "cards"
            upstream = "backend"
            method = "POST"
            path = "/accounts/{id}/paymentInfo"
            content_types = ["application/json"]
            body = "json"
            fields = [{ path = "card.number", class = "pan" }]

            [[routes]]
            name = "rest"
            upstream = "backend"
            path = "/*"
            "#,
        )
        .unwrap();
        let cards = c.routes[0].rules();
        assert_eq!(cards.leak_guard, LeakPolicy::Tokenize);
        assert_eq!(cards.body, BodyKind::Json);
        assert_eq!(cards.fields.len(), 1);
        assert!(c.routes[1].rules().is_pass_through());
        assert_eq!(c.routes[1].method, "*");
    }

    #[test]
    fn profile_route_is_not_pass_through() {
        let c = with(
            r#"
            [[routes]]
            name = "q2"
            upstream = "backend"
            path = "/v1/payment"
            profile = "q2open"
            "#,
        )
        .unwrap();
        assert!(!c.routes[0].rules().is_pass_through());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(err("[limits]\nmax_body = 3").contains("max_body"));
        let msg = err(r#"
            [[routes]]
            name = "a"
            upstream = "backend"
            path = "/x"
            fields = [{ path = "a", class = "pan", colour = "red" }]
            "#);
        assert!(msg.contains("colour"), "{msg}");
    }

    #[test]
    fn errors_name_the_key() {
        let route = |name: &str, upstream: &str, path: &str, extra: &str| {
            format!(
                "[[routes]]\nname = \"{name}\"\nupstream = \"{upstream}\"\npath = \"{path}\"\n{extra}\n"
            )
        };
        let ok = route("a", "backend", "/a", "");
        assert!(
            err(&format!("{ok}{}", route("b", "nope", "/b", ""))).starts_with("routes[1].upstream")
        );
        assert!(
            err(&format!("{ok}{}", route("a", "backend", "/b", ""))).starts_with("routes[1].name")
        );
        assert!(
            err(&route("a", "backend", "/a", "profile = \"visa\""))
                .starts_with("routes[0].profile")
        );
        assert!(err(&route("a", "backend", "no-slash", "")).starts_with("routes[0].path"));
        assert!(err(&route("a", "backend", "/a/{x", "")).starts_with("routes[0].path"));
        assert!(
            err(&route("a", "backend", "/a", "method = \"PO ST\"")).starts_with("routes[0].method")
        );
        assert!(
            err(&route(
                "a",
                "backend",
                "/a",
                "fields = [{ path = \"\", class = \"pan\" }]"
            ))
            .starts_with("routes[0].fields[0].path")
        );
        assert!(
            err("[[upstreams]]\nname = \"x\"\nurl = \"ftp://h\"").starts_with("upstreams[1].url")
        );
        assert!(
            err("[[upstreams]]\nname = \"backend\"\nurl = \"http://h\"")
                .starts_with("upstreams[1].name")
        );
        let bad_listen = Config::from_toml_str("[proxy]\nlisten = \"localhost\"");
        assert!(matches!(bad_listen, Err(Error::Config(m)) if m.starts_with("proxy.listen")));
    }

    #[test]
    fn tls_shape_parses() {
        let c = Config::from_toml_str(
            r#"
            [proxy]
            listen = "127.0.0.1:0"
            tls = { cert = "c.pem", key = "k.pem" }
            [api]
            listen = "127.0.0.1:0"
            tls = { cert = "c.pem", key = "k.pem", client_ca = "ca.pem" }
            [log]
            format = "json"
            level = "debug"
            "#,
        )
        .unwrap();
        assert_eq!(c.api.tls.unwrap().client_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(c.log.format, LogFormat::Json);
        let msg = Config::from_toml_str(
            "[proxy]\nlisten = \"127.0.0.1:0\"\ntls = { cert = \"c\", key = \"k\", client_ca = \"x\" }",
        );
        assert!(matches!(msg, Err(Error::Config(m)) if m.starts_with("proxy.tls.client_ca")));
    }

    #[test]
    fn example_configs_validate() {
        let full =
            Config::from_toml_str(include_str!("../examples/config/vaultgate.toml")).unwrap();
        assert_eq!(full.routes.len(), 5);
        assert_eq!(full.routes[2].rules().leak_guard, LeakPolicy::Reject);
        assert!(full.routes[4].rules().is_pass_through());
        Config::from_toml_str(include_str!("../examples/config/minimal.toml")).unwrap();
        for (profile, text) in [
            ("q2open", include_str!("../examples/config/q2open.toml")),
            (
                "oracle_brm",
                include_str!("../examples/config/oracle_brm.toml"),
            ),
            ("hostway", include_str!("../examples/config/hostway.toml")),
            (
                "payment_method",
                include_str!("../examples/config/payment_method.toml"),
            ),
            ("plano", include_str!("../examples/config/plano.toml")),
        ] {
            let c = Config::from_toml_str(text).unwrap();
            assert_eq!(c.routes[0].profile.as_deref(), Some(profile));
            assert!(!c.routes[0].rules().is_pass_through());
        }
    }

    #[test]
    fn demo_config_validates() {
        let c = Config::demo(
            "127.0.0.1:0",
            "127.0.0.1:0",
            "http://127.0.0.1:9",
            Path::new("/tmp/x"),
        );
        c.validate().unwrap();
        assert_eq!(c.routes.len(), profiles::NAMES.len() + 1);
    }
}
