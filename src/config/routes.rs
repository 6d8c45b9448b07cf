//! `[[routes]]`: which requests a route owns, where they go, and the body rules.

use serde::Deserialize;

use crate::net::matcher::{MethodFilter, PathPattern};
use crate::rules::path::KeyMatch;
use crate::rules::profiles::{self, ProfileName};
use crate::rules::{BodyKind, FieldRule, LeakPolicy, RouteRules};

/// `[[routes]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// The name of an `[[upstreams]]` entry.
    pub upstream: String,
    /// `POST`, `GET`, … or `*` for any method.
    #[serde(default)]
    pub method: MethodFilter,
    /// `/v1/payment`, `/accounts/{accountId}/paymentInfo`, `/static/*`.
    pub path: PathPattern,
    /// Media types (`application/json`); when set, a request must carry one of them.
    #[serde(default)]
    pub content_types: Option<Vec<MediaType>>,
    /// A built-in profile (see `rules::profiles::NAMES`).
    #[serde(default)]
    pub profile: Option<ProfileName>,
    #[serde(default)]
    pub fields: Option<Vec<FieldRule>>,
    #[serde(default)]
    pub body: Option<BodyKind>,
    #[serde(default)]
    pub leak_guard: Option<LeakPolicy>,
    /// How keys and `when` values are compared: `"insensitive"` (the default: ASCII
    /// letter case is ignored, as many backends bind keys) or `"exact"`.
    #[serde(default)]
    pub keys: Option<KeyMatch>,
}

/// A media type without parameters (`application/json`), lower-cased.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct MediaType(String);

impl TryFrom<String> for MediaType {
    type Error = &'static str;

    fn try_from(t: String) -> Result<MediaType, &'static str> {
        if !t.contains('/') || t.contains(';') || t.trim() != t {
            return Err("expected a media type like application/json");
        }
        Ok(MediaType(t.to_ascii_lowercase()))
    }
}

impl MediaType {
    /// The lower-cased type.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl RouteConfig {
    /// The body rules of this route: the profile's rules (if any), with `fields` added
    /// and `body` / `leak_guard` overriding.
    ///
    /// A route with neither profile nor fields nor leak_guard is a pure pass-through
    /// (leak guard `allow`); one with a profile or fields defaults to `tokenize`.
    pub fn rules(&self) -> RouteRules {
        let mut rules = match &self.profile {
            // Every name that parses has rules; should one ever lack them, the
            // fail-closed default holds: the leak guard tokenizes.
            Some(name) => profiles::get(name.as_str()).unwrap_or(RouteRules {
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
        if let Some(keys) = self.keys {
            rules.keys = keys;
        }
        rules
    }
}
