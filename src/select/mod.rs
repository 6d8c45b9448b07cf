//! Which fields are sensitive: rules, field paths, conditions, Luhn/IBAN checks and
//! the leak guard.

pub mod rules;

pub use rules::{BodyKind, Condition, FieldRule, LeakPolicy, Location, RouteRules};
