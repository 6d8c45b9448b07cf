//! The part of sanitizing that needs no vault: given what the codec found, decide
//! which values are tokenized (with which options), which go through as they are,
//! and whether the request is refused. [`sanitize`](super::sanitize::sanitize)
//! carries a plan out; `vaultgate explain` prints one.

use crate::codec::{Finding, FindingKind};
use crate::error::{Error, Result};
use crate::rules::{LeakPolicy, RouteRules};
use crate::sensitive::{DataClass, Sensitive, TokenFormat};

use super::sanitize::Limits;

/// What happens to one finding.
pub enum Step {
    /// Forwarded as it is.
    Keep(Keep),
    /// Replaced by a token.
    Tokenize(Tokenize),
}

/// Why a finding is forwarded as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The value is empty.
    Empty,
    /// A leak-guard hit on a route whose leak guard is `allow`.
    Allowed,
    /// A leak-guard hit that is a token of this vault.
    OurToken,
}

/// How one finding is tokenized. Deliberately not `Debug`: it holds the value.
pub struct Tokenize {
    /// The value to tokenize (a leak hit's digits, separators removed).
    pub value: Sensitive,
    /// The format the rule names; the class's default if `None`.
    pub format: Option<TokenFormat>,
    /// As the rule says; the vault's default if `None`.
    pub deterministic: Option<bool>,
    /// The finding (by index) whose token scopes this one.
    pub scope: Option<usize>,
}

impl Tokenize {
    /// The token format the value gets.
    pub fn format(&self) -> TokenFormat {
        self.format
            .unwrap_or(TokenFormat::default_for(self.value.class()))
    }

    /// Whether the same value gets the same token: as the vault decides it (true for
    /// PANs and bank accounts unless the rule says otherwise; never for a CVV).
    pub fn is_deterministic(&self) -> bool {
        let class = self.value.class();
        class != DataClass::Cvv
            && self
                .deterministic
                .unwrap_or(matches!(class, DataClass::Pan | DataClass::BankAccount))
    }
}

/// One step per finding, in the findings' order.
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    /// The order tokens are made in: CVVs last, since a CVV token may be scoped by
    /// the card token it travels with.
    pub fn order(findings: &[Finding]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..findings.len()).collect();
        order.sort_by_key(|&i| findings.get(i).is_some_and(|f| f.class == DataClass::Cvv));
        order
    }
}

/// Whether a finding is a leak-guard hit the vault must look at before the plan is
/// made (to tell one of its own tokens from a card).
pub fn needs_ownership_check(rules: &RouteRules, f: &Finding) -> bool {
    !matches!(f.kind, FindingKind::Rule { .. })
        && rules.leak_guard != LeakPolicy::Allow
        && !f.value.is_empty()
}

/// Decide every finding. `ours[i]` says whether finding `i` (a leak-guard hit) is a
/// token of this vault; `explain`, which has no vault, passes all `false`.
///
/// Refusals, in the order sanitize meets them: too many values; a leak-guard hit on a
/// `reject` route, or one that cannot be replaced in place, unless it is ours; then,
/// in tokenizing order, a scoped value with no card token to belong to and a value
/// that is not valid for its class.
pub fn plan(
    rules: &RouteRules,
    findings: &[Finding],
    limits: &Limits,
    ours: &[bool],
) -> Result<Plan> {
    if findings.len() > limits.max_sensitive_values {
        return Err(Error::TooManySensitiveValues {
            limit: limits.max_sensitive_values,
        });
    }
    let policy = rules.leak_guard;
    let is_ours = |i: usize| ours.get(i).copied().unwrap_or(false);
    for (i, f) in findings.iter().enumerate() {
        let refusable = match f.kind {
            FindingKind::Rule { .. } => false,
            FindingKind::Hidden => true,
            FindingKind::Leak => policy == LeakPolicy::Reject,
        };
        if refusable && needs_ownership_check(rules, f) && !is_ours(i) {
            return Err(Error::LeakRejected(f.location.clone()));
        }
    }
    let mut steps: Vec<Option<Step>> = findings.iter().map(|_| None).collect();
    for i in Plan::order(findings) {
        let f = findings
            .get(i)
            .ok_or(Error::Internal("a finding out of range"))?;
        let step = decide(rules, f, is_ours(i), &steps)?;
        if let Some(slot) = steps.get_mut(i) {
            *slot = Some(step);
        }
    }
    Ok(Plan {
        steps: steps
            .into_iter()
            .map(|s| s.unwrap_or(Step::Keep(Keep::Empty)))
            .collect(),
    })
}

/// The step for one finding; `done` holds the steps decided before it.
fn decide(rules: &RouteRules, f: &Finding, ours: bool, done: &[Option<Step>]) -> Result<Step> {
    let raw = f.value.expose();
    if raw.is_empty() {
        return Ok(Step::Keep(Keep::Empty));
    }
    // A value in a sensitive field is always tokenized, even if it equals a token
    // this vault issued: a six-four token is a valid card number, and a real card
    // that happens to equal one must never go upstream in clear.
    if !matches!(f.kind, FindingKind::Rule { .. }) && ours {
        return Ok(Step::Keep(Keep::OurToken));
    }
    let (format, deterministic, scope) = match f.kind {
        FindingKind::Rule { rule } => {
            let r = rules
                .fields
                .get(rule)
                .ok_or(Error::Internal("a finding names an unknown rule"))?;
            // A scope is always a token of this vault (the card field was tokenized
            // first); a raw value never becomes part of a stored key.
            if let Some(j) = f.scope
                && !matches!(done.get(j), Some(Some(Step::Tokenize(_))))
            {
                return Err(Error::InvalidBody(format!(
                    "{} has no card number to belong to",
                    f.location
                )));
            }
            (r.format, r.deterministic, f.scope)
        }
        FindingKind::Leak => match rules.leak_guard {
            LeakPolicy::Allow => return Ok(Step::Keep(Keep::Allowed)),
            LeakPolicy::Reject => return Err(Error::LeakRejected(f.location.clone())),
            LeakPolicy::Tokenize => (None, None, None),
        },
        // Refused before unless it is one of our tokens.
        FindingKind::Hidden => match rules.leak_guard {
            LeakPolicy::Allow => return Ok(Step::Keep(Keep::Allowed)),
            _ => return Err(Error::LeakRejected(f.location.clone())),
        },
    };
    // A hit may be written with any separators; the card is its digits.
    let compact;
    let raw = match f.kind {
        FindingKind::Leak => {
            compact = zeroize::Zeroizing::new(
                raw.chars().filter(char::is_ascii_digit).collect::<String>(),
            );
            compact.as_str()
        }
        _ => raw,
    };
    let value = Sensitive::parse(f.class, raw).map_err(|_| {
        Error::InvalidBody(format!(
            "{} is not a valid {}",
            f.location,
            f.class.as_str()
        ))
    })?;
    Ok(Step::Tokenize(Tokenize {
        value,
        format,
        deterministic,
        scope,
    }))
}
