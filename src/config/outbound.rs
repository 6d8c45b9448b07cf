//! `[outbound]` in the config file: the listener and its allow-listed routes.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;

use crate::net::matcher::{MethodFilter, PathPattern};
use crate::net::{ListenerSettings, UpstreamUrl};
use crate::rules::{BodyKind, FieldRule, LeakPolicy, RouteRules};
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
/// exact = true                          # default: byte for byte, no `.json`, case, `/`, `%`, `;`
/// strip_prefix = "/processor"           # removed before appending to the destination
/// destination = "https://processor.example"
/// ca = "certs/processor-ca.pem"         # optional: trust only this CA
/// reveal = [
///   { path = "card.number", class = "pan" },
///   { path = "card.cvc", class = "cvv", scope = "card.number" },
/// ]
/// reveal_headers = [{ name = "x-card-token", class = "pan" }]
/// swap_echoes = true                    # default: revealed values in the answer go back to tokens
/// answer_guard = "tokenize"             # default: other cards in the answer become new tokens
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct OutboundConfig {
    /// `listen`, `tls`, `max_connections`, `header_read_timeout_ms`: as on every
    /// listener (unknown keys are refused there).
    #[serde(flatten)]
    pub listener: ListenerSettings,
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
    pub destination: UpstreamUrl,
    /// A PEM file of CA certificates trusted for the destination instead of the web
    /// PKI roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// `POST`, `GET`, … or `*`.
    #[serde(default)]
    pub method: MethodFilter,
    /// The path pattern callers send (`/processor/charges`, `/processor/*`).
    pub path: PathPattern,
    /// Match the path exactly as written (`path` byte for byte: no other case, no
    /// format suffix such as `.json`, no trailing `/`, no `%` escape or `;` parameter)
    /// and the method in its case. On by default: the path forwarded is the one sent,
    /// so a loose match would let `/charges.json`, `/CHARGES` or `/charg%65s` reach
    /// endpoints of the destination the allow-list does not name, with tokens
    /// revealed. `false` matches as inbound routes do.
    #[serde(default = "on")]
    pub exact: bool,
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
    /// Swap every value revealed into a request back for its token wherever the
    /// destination's answer shows it (body and header values), and refuse (502) an
    /// answer that shows one where it cannot be swapped. On by default; turn off only
    /// for a destination whose answers the caller may see raw.
    #[serde(default = "on")]
    pub swap_echoes: bool,
    /// What happens to a card number in the destination's answer that the request
    /// did not reveal (an account updater's new card, a network token's PAN, a
    /// stored payment method): the caller is kept out of PCI DSS scope only if it
    /// never gets one raw. Default `tokenize`.
    #[serde(default)]
    pub answer_guard: AnswerGuard,
}

/// `answer_guard`: what the outbound proxy does with a card number in a destination's
/// answer that the request did not reveal.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AnswerGuard {
    /// Each becomes a new token of this vault, in place; one that cannot be replaced
    /// in place (base64, escaped twice, UTF-16) refuses the answer (502). The default:
    /// fail closed.
    #[default]
    Tokenize,
    /// Any card refuses the answer (502 `answer_card_refused`).
    Refuse,
    /// Answers pass as they come (only the echo swap reads them): for a destination
    /// whose answers the caller may see raw, or that streams large downloads.
    Off,
}

fn on() -> bool {
    true
}

/// `{ name = "x-card-token", class = "pan" }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderReveal {
    #[serde(with = "header_name")]
    pub name: http::HeaderName,
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
            // Reveal only into the fields exactly as configured.
            keys: crate::rules::path::KeyMatch::Exact,
            lists_alone: false,
        }
    }
}

impl OutboundConfig {
    /// Cross-check route names and what serde cannot say per field.
    pub fn validate(&self) -> Result<()> {
        let mut names = HashSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            let key = format!("outbound.routes[{i}]");
            if r.name.is_empty() || !names.insert(r.name.as_str()) {
                return Err(Error::Config(format!(
                    "{key}.name: must be non-empty and unique"
                )));
            }
            if r.method.method() == Some(&http::Method::CONNECT) {
                return Err(Error::Config(format!(
                    "{key}.method: CONNECT is not proxied"
                )));
            }
            if let Some(prefix) = &r.strip_prefix
                && (!prefix.starts_with('/') || prefix.ends_with('/'))
            {
                return Err(Error::Config(format!(
                    "{key}.strip_prefix: must start with '/' and not end with '/'"
                )));
            }
        }
        Ok(())
    }
}

/// Header names as strings in the config file.
mod header_name {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<http::HeaderName, D::Error> {
        let name = String::deserialize(d)?;
        http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| serde::de::Error::custom("not a header name"))
    }
}
