//! Built-in profiles for the five documented APIs.

use super::RouteRules;

/// The names of the built-in profiles.
pub const NAMES: [&str; 5] = ["q2open", "oracle_brm", "hostway", "payment_method", "plano"];

/// The rules of a built-in profile, or `None` for an unknown name.
pub fn get(_name: &str) -> Option<RouteRules> {
    None
}
