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
    /// The streaming leak guard of a pass-through route (default `block`).
    #[serde(default)]
    pub stream_guard: Option<GuardMode>,
    /// Scan header values (not `Authorization`), cookies and the path of a rules
    /// route for card numbers (default false: numeric ids are common there).
    #[serde(default)]
    pub scan_headers: Option<bool>,
    /// The leak guard also reads a list's values, a key given twice and numbered keys
    /// joined, as a backend joining them does (default true; `rules::pieces`).
    #[serde(default)]
    pub join_lists: Option<bool>,
}

/// `stream_guard = "block" | "detect" | "off"`: what the streaming leak guard of a
/// pass-through route does with a card number in the query or the body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardMode {
    /// Refuse with 400 `card_number_detected`; the upstream never gets the digits.
    #[default]
    Block,
    /// Log (masked), count, forward.
    Detect,
    /// Stream unread.
    Off,
}

impl GuardMode {
    /// The config spelling, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardMode::Block => "block",
            GuardMode::Detect => "detect",
            GuardMode::Off => "off",
        }
    }
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
        rules.lists_alone = !self.join_lists.unwrap_or(true);
        rules
    }
}

/// Routing hazards worth a warning (`check-config`): a pass-through route that takes
/// requests for a path a rules route is meant to sanitize. With "the path decides", an
/// earlier pass-through route whose pattern overlaps a later rules route's owns those
/// paths; one with the very same pattern takes the methods the rules route does not.
pub fn route_warnings(routes: &[RouteConfig]) -> Vec<String> {
    let mut out = Vec::new();
    for (j, rules) in routes.iter().enumerate() {
        if rules.rules().is_pass_through() {
            continue;
        }
        for (i, pass) in routes.iter().enumerate() {
            if i == j || !pass.rules().is_pass_through() {
                continue;
            }
            if pass.path == rules.path {
                if pass.method != rules.method {
                    out.push(format!(
                        "routes[{i}] ({:?}) is a pass-through route on the same path as the \
                         rules route routes[{j}] ({:?}) under other methods: requests with \
                         those methods are forwarded without tokenization",
                        pass.name, rules.name
                    ));
                }
            } else if i < j && pass.path.overlaps(&rules.path) {
                out.push(format!(
                    "routes[{i}] ({:?}) is a pass-through route before the rules route \
                     routes[{j}] ({:?}) and its path pattern covers paths of that route: \
                     it owns them, and their bodies are forwarded without tokenization",
                    pass.name, rules.name
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn warnings(routes: &str) -> Vec<String> {
        let toml = format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\n[[upstreams]]\nname = \"b\"\nurl = \"http://127.0.0.1:9\"\n{routes}"
        );
        route_warnings(&Config::from_toml_str(&toml).unwrap().routes)
    }

    const RULES: &str = "[[routes]]\nname = \"r\"\nupstream = \"b\"\nmethod = \"POST\"\npath = \"/v1/payment\"\nprofile = \"q2open\"\n";

    #[test]
    fn a_pass_through_route_that_takes_a_rules_path_is_warned_about() {
        let pass = |method: &str, path: &str| {
            format!(
                "[[routes]]\nname = \"p\"\nupstream = \"b\"\nmethod = \"{method}\"\npath = \"{path}\"\n"
            )
        };
        // A catch-all after the rules route: the rules route owns its path.
        assert!(warnings(&format!("{RULES}{}", pass("*", "/*"))).is_empty());
        // Before it, the catch-all owns the path.
        assert_eq!(warnings(&format!("{}{RULES}", pass("*", "/v1/*"))).len(), 1);
        // The same path under other methods goes through raw.
        assert_eq!(
            warnings(&format!("{RULES}{}", pass("*", "/v1/payment"))).len(),
            1
        );
        assert_eq!(
            warnings(&format!("{}{RULES}", pass("PUT", "/v1/payment"))).len(),
            1
        );
        // Disjoint paths are fine.
        assert!(warnings(&format!("{}{RULES}", pass("*", "/static/*"))).is_empty());
    }

    #[test]
    fn the_examples_and_the_demo_have_no_hazard() {
        for text in [
            include_str!("../../examples/config/vaultgate.toml"),
            include_str!("../../examples/config/minimal.toml"),
            include_str!("../../examples/config/q2open.toml"),
            include_str!("../../examples/config/hostway.toml"),
            include_str!("../../examples/config/oracle_brm.toml"),
            include_str!("../../examples/config/payment_method.toml"),
            include_str!("../../examples/config/plano.toml"),
        ] {
            let config = Config::from_toml_str(text).unwrap();
            assert!(route_warnings(&config.routes).is_empty());
        }
        let demo = Config::demo(
            "127.0.0.1:0",
            "127.0.0.1:0",
            "http://127.0.0.1:9",
            std::path::Path::new("/tmp"),
        )
        .unwrap();
        assert!(route_warnings(&demo.routes).is_empty());
    }
}
