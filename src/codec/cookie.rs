//! Cookies read as request parameters.
//!
//! Some frameworks look a parameter up in the query string, the body and the cookies
//! alike: PHP's `$_REQUEST` with its built-in `variables_order` (`EGPCS`, as PHP runs
//! with no php.ini, the official Docker images' default), which names cookies as
//! form keys (`details[accountNumber]` nests, `.` and spaces become `_`, names ending
//! at a NUL, percent-decoded before PHP 8), and classic ASP.NET's `Request["cvv"]`
//! and `Request.Params`. A cookie named as a field a route reads is that field to
//! them, sent raw: such a request is refused, as a body field sent in the query
//! string is (`super::extract`).

use percent_encoding::percent_decode;

use crate::error::{Error, Result};
use crate::rules::RouteRules;

/// Refuse a request whose cookies name a field the route reads, at any location and
/// whatever the rule's `when` conditions. `cookies` are the values of its Cookie
/// headers. A cookie with an empty value passes; so does a request on a route
/// without field rules.
pub fn fields_in_cookies<'a>(
    rules: &RouteRules,
    cookies: impl IntoIterator<Item = &'a [u8]>,
) -> Result<()> {
    if rules.fields.is_empty() {
        return Ok(());
    }
    for header in cookies {
        // `;` separates cookies; `,` did under RFC 2965, and ASP.NET still splits
        // on it.
        for pair in header.split(|b| matches!(b, b';' | b',')) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (
                    pair.get(..eq).unwrap_or_default(),
                    pair.get(eq + 1..).unwrap_or_default(),
                ),
                None => continue,
            };
            if is_empty_value(value) {
                continue;
            }
            if let Some(path) = named_field(rules, name.trim_ascii()) {
                return Err(Error::AmbiguousSensitiveField(format!(
                    "cookie: a cookie is named as the field {path}, which this route reads in the request"
                )));
            }
        }
    }
    Ok(())
}

/// A value with nothing in it but white space and quotes.
fn is_empty_value(value: &[u8]) -> bool {
    value.iter().all(|b| b.is_ascii_whitespace() || *b == b'"')
}

/// The path (as configured) of a rule that names the cookie `name`, as sent or
/// percent-decoded, as a form key under every reading of it.
fn named_field<'r>(rules: &'r RouteRules, name: &[u8]) -> Option<&'r str> {
    let raw = String::from_utf8_lossy(name);
    let decoded: String = percent_decode(name).decode_utf8_lossy().into_owned();
    rules
        .fields
        .iter()
        .find(|rule| {
            rule.path.matches_form_key(rules.keys, &raw)
                || (decoded != raw && rule.path.matches_form_key(rules.keys, &decoded))
        })
        .map(|rule| rule.path.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::path::KeyMatch;
    use crate::rules::{BodyKind, FieldPath, FieldRule, LeakPolicy, Location};
    use crate::sensitive::DataClass;

    fn rules() -> RouteRules {
        RouteRules {
            body: BodyKind::Auto,
            fields: vec![FieldRule {
                path: FieldPath::keys("details.accountNumber"),
                class: DataClass::BankAccount,
                format: None,
                deterministic: None,
                when: None,
                scope: None,
                location: Location::Body,
            }],
            leak_guard: LeakPolicy::Tokenize,
            keys: KeyMatch::Loose,
            lists_alone: false,
        }
    }

    fn check(cookies: &[&str]) -> Result<()> {
        fields_in_cookies(&rules(), cookies.iter().map(|c| c.as_bytes()))
    }

    #[test]
    fn a_cookie_named_as_a_field_is_refused() {
        for cookies in [
            &["details[accountNumber]=DE89"][..],
            &["a=1; details.account_number=DE89"],
            &["a=1", "details%5BaccountNumber%5D=DE89"],
            &["a=1,details[accountnumber]=\"DE89\""],
        ] {
            assert!(
                matches!(check(cookies), Err(Error::AmbiguousSensitiveField(m)) if !m.contains("DE89")),
                "{cookies:?}"
            );
        }
    }

    #[test]
    fn other_cookies_pass() {
        for cookies in [
            &["session=abc; details=x"][..],
            &["details[accountNumber]="],
            &["details[accountNumber]=\"\""],
            &["details[accountNumberX]=1; accountNumber=2"],
            &["no-equals-sign"],
        ] {
            assert!(check(cookies).is_ok(), "{cookies:?}");
        }
    }
}
