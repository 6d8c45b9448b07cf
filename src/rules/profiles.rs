//! Built-in profiles for the five documented APIs (see `api-docs/` in the shared docs).
//!
//! Token formats and determinism are left to the vault's per-class defaults.

use super::path::KeyMatch;
use super::{BodyKind, Condition, FieldPath, FieldRule, LeakPolicy, Location, RouteRules};
use crate::sensitive::DataClass;

/// The names of the built-in profiles.
pub const NAMES: [&str; 5] = ["q2open", "oracle_brm", "hostway", "payment_method", "plano"];

/// The name of a built-in profile, checked when the config is read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ProfileName(String);

impl TryFrom<String> for ProfileName {
    type Error = String;

    fn try_from(name: String) -> Result<ProfileName, String> {
        if NAMES.contains(&name.as_str()) {
            Ok(ProfileName(name))
        } else {
            Err(format!(
                "unknown profile {name:?} (known: {})",
                NAMES.join(", ")
            ))
        }
    }
}

impl ProfileName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ProfileName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// The rules of a built-in profile, or `None` for an unknown name.
pub fn get(name: &str) -> Option<RouteRules> {
    let rules = match name {
        // The JSON profiles force the JSON codec: the documented curl examples
        // (Oracle's `-d @file.json`) send no JSON content type.
        // POST /v1/payment: card fields or bank fields, chosen by `paymentType`.
        // `routingNumber` is an ABA number and stays in the clear.
        "q2open" => RouteRules {
            body: BodyKind::Json,
            fields: vec![
                rule(
                    "cardNumber",
                    DataClass::Pan,
                    Some(when("paymentType", "card")),
                    None,
                ),
                rule(
                    "cardCode",
                    DataClass::Cvv,
                    Some(when("paymentType", "card")),
                    Some("cardNumber"),
                ),
                rule(
                    "accountNumber",
                    DataClass::BankAccount,
                    Some(when("paymentType", "bank")),
                    None,
                ),
            ],
            leak_guard: LeakPolicy::Tokenize,
            keys: KeyMatch::Loose,
            lists_alone: false,
        },
        // POST …/paymentMethod: an IBAN or account number under `details`.
        "oracle_brm" => RouteRules {
            body: BodyKind::Json,
            fields: vec![rule(
                "details.accountNumber",
                DataClass::BankAccount,
                None,
                None,
            )],
            leak_guard: LeakPolicy::Tokenize,
            keys: KeyMatch::Loose,
            lists_alone: false,
        },
        // POST /accounts/{id}/paymentInfo: `accountNumber` is a card or a bank account
        // depending on `paymentInfoType`.
        "hostway" => RouteRules {
            body: BodyKind::Json,
            fields: vec![
                rule(
                    "accountNumber",
                    DataClass::Pan,
                    Some(when("paymentInfoType", "credit_card")),
                    None,
                ),
                rule(
                    "accountNumber",
                    DataClass::BankAccount,
                    Some(when("paymentInfoType", "direct_debit")),
                    None,
                ),
                rule(
                    "verificationNumber",
                    DataClass::Cvv,
                    None,
                    Some("accountNumber"),
                ),
            ],
            leak_guard: LeakPolicy::Tokenize,
            keys: KeyMatch::Loose,
            lists_alone: false,
        },
        // POST /payment-method (Stripe-backed): only `last4` and a fingerprint; the
        // leak guard watches for a card number sent by mistake. `Auto`: with no field
        // rules, a body that is not JSON is still scanned (as a form or as text)
        // rather than refused.
        "payment_method" => RouteRules {
            body: BodyKind::Auto,
            fields: Vec::new(),
            leak_guard: LeakPolicy::Tokenize,
            keys: KeyMatch::Loose,
            lists_alone: false,
        },
        // Plano "sensitive params": a base64 body wrapping JSON (or a form).
        "plano" => RouteRules {
            body: BodyKind::Base64,
            fields: vec![
                rule("payment_method.card_number", DataClass::Pan, None, None),
                rule(
                    "payment_method.cvc",
                    DataClass::Cvv,
                    None,
                    Some("payment_method.card_number"),
                ),
            ],
            leak_guard: LeakPolicy::Tokenize,
            keys: KeyMatch::Loose,
            lists_alone: false,
        },
        _ => return None,
    };
    Some(rules)
}

fn rule(path: &str, class: DataClass, when: Option<Condition>, scope: Option<&str>) -> FieldRule {
    FieldRule {
        path: FieldPath::keys(path),
        class,
        format: None,
        deterministic: None,
        when,
        scope: scope.map(FieldPath::keys),
        location: Location::Body,
    }
}

fn when(field: &str, equals: &str) -> Condition {
    Condition {
        field: FieldPath::keys(field),
        equals: Some(equals.to_owned()),
        any_of: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_a_profile() {
        for name in NAMES {
            assert!(get(name).is_some(), "{name}");
        }
        assert!(get("nope").is_none());
        assert!(!get("payment_method").unwrap().is_pass_through());
    }
}
