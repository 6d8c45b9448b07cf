//! Field rules as they appear in the config: which field holds which data class.
#![allow(clippy::module_inception)] // `rules::rules`: the rules module's config types.

use serde::Deserialize;

use super::path::{FieldPath, KeyMatch};
use crate::error::Error;
use crate::sensitive::{DataClass, TokenFormat};

/// One sensitive field on a route.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// A field path: `cardNumber`, `details.accountNumber`, `payment_method.card_number`,
    /// `items[*].pan`, `**.cvc`. Form and query keys use the same syntax
    /// (`payment_method[card_number]` is `payment_method.card_number`).
    pub path: FieldPath,
    /// What the field holds.
    pub class: DataClass,
    /// The token format; each class has a default.
    #[serde(default)]
    pub format: Option<TokenFormat>,
    /// Whether the same value always gets the same token. Defaults to true for PANs
    /// and bank accounts; a CVV is never deterministic.
    #[serde(default)]
    pub deterministic: Option<bool>,
    /// Apply this rule only when another field has a given value.
    #[serde(default)]
    pub when: Option<Condition>,
    /// For a same-length CVV token: the path of the field whose token scopes it
    /// (the card number it travels with).
    #[serde(default)]
    pub scope: Option<FieldPath>,
    /// Where the field is: the body (default) or the query string.
    #[serde(default)]
    pub location: Location,
}

/// `when = { field = "paymentInfoType", equals = "credit_card" }`: the rule applies only
/// when the field at that path (from the document root) has one of the values.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(try_from = "ConditionSpec")]
pub struct Condition {
    /// A field path from the document root.
    pub field: FieldPath,
    /// The value (compared as a string) that turns the rule on.
    #[serde(default)]
    pub equals: Option<String>,
    /// Any of these values turns the rule on.
    #[serde(default, rename = "in")]
    pub any_of: Vec<String>,
}

/// `when` as written; a [`Condition`] needs `equals` or `in`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionSpec {
    field: FieldPath,
    #[serde(default)]
    equals: Option<String>,
    #[serde(default, rename = "in")]
    any_of: Vec<String>,
}

impl TryFrom<ConditionSpec> for Condition {
    type Error = Error;

    fn try_from(spec: ConditionSpec) -> Result<Condition, Error> {
        if spec.equals.is_none() && spec.any_of.is_empty() {
            return Err(Error::Config("`when` needs `equals` or `in`".to_owned()));
        }
        Ok(Condition {
            field: spec.field,
            equals: spec.equals,
            any_of: spec.any_of,
        })
    }
}

impl Condition {
    /// Whether a field value satisfies the condition, compared exactly.
    pub fn matches(&self, value: &str) -> bool {
        self.matches_with(KeyMatch::Exact, value)
    }

    /// Whether a field value satisfies the condition, compared as the route's `keys`
    /// setting says (`"CARD"` is `"card"` unless `keys = "exact"`).
    pub fn matches_with(&self, keys: KeyMatch, value: &str) -> bool {
        self.equals.as_deref().is_some_and(|e| keys.same(e, value))
            || self.any_of.iter().any(|v| keys.same(v, value))
    }
}

/// Where a field lives in the request.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    #[default]
    Body,
    Query,
}

/// How a route's body is read.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BodyKind {
    /// By Content-Type: JSON (`application/json`, `*+json`) or a form
    /// (`application/x-www-form-urlencoded`).
    #[default]
    Auto,
    Json,
    Form,
    /// A base64 "sensitive params" body wrapping JSON or a form (Plano).
    Base64,
}

/// What the leak guard does with a card number outside the configured fields.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LeakPolicy {
    /// Tokenize it as a PAN (default).
    #[default]
    Tokenize,
    /// Refuse the request with 400.
    Reject,
    /// Let it through (for routes that are known to carry none).
    Allow,
}

/// Everything the body pipeline needs to know about one route.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteRules {
    pub body: BodyKind,
    pub fields: Vec<FieldRule>,
    pub leak_guard: LeakPolicy,
    /// How keys and `when` values are compared (`keys` in the route's config).
    pub keys: KeyMatch,
    /// The leak guard reads each value alone, never a list's values joined
    /// ([`pieces`](super::pieces); `join_lists = false` in the route's config).
    pub lists_alone: bool,
}

impl RouteRules {
    /// A route with no field rules and the leak guard off streams its body unread.
    pub fn is_pass_through(&self) -> bool {
        self.fields.is_empty() && self.leak_guard == LeakPolicy::Allow
    }

    /// Whether the leak guard scans this route.
    pub fn guard_on(&self) -> bool {
        self.leak_guard != LeakPolicy::Allow
    }

    /// Whether any rule reads the given location.
    pub fn has_rules_at(&self, location: Location) -> bool {
        self.fields.iter().any(|f| f.location == location)
    }

    /// (rule index, path) of the rules at a location.
    pub fn paths_at(&self, location: Location) -> impl Iterator<Item = (usize, &FieldPath)> {
        self.fields
            .iter()
            .enumerate()
            .filter(move |(_, f)| f.location == location)
            .map(|(i, f)| (i, &f.path))
    }

    /// (rule index, condition, condition path) of the conditional rules at a location.
    pub fn conditions_at(
        &self,
        location: Location,
    ) -> impl Iterator<Item = (usize, &Condition, &FieldPath)> {
        self.fields
            .iter()
            .enumerate()
            .filter(move |(_, f)| f.location == location)
            .filter_map(|(i, f)| {
                let c = f.when.as_ref()?;
                Some((i, c, &c.field))
            })
    }

    /// Whether the rule at this index has a `when` condition.
    pub fn is_conditional(&self, rule: usize) -> bool {
        self.fields.get(rule).is_some_and(|f| f.when.is_some())
    }

    /// The `scope` path of a rule.
    pub fn scope(&self, rule: usize) -> Option<&FieldPath> {
        self.fields.get(rule)?.scope.as_ref()
    }
}
