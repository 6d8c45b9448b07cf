//! Which fields are sensitive: rules, field paths, conditions, Luhn checks, profiles
//! and the leak guard.

pub mod luhn;
pub mod profiles;
pub mod rules;

pub use rules::{BodyKind, Condition, FieldRule, LeakPolicy, Location, RouteRules};
