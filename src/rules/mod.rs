//! Which fields are sensitive: rules, field paths, conditions, profiles and the leak
//! guard.

pub mod deep;
pub mod digits;
pub mod guard;
pub mod iin;
pub mod path;
pub mod profiles;
// `rules::rules`: the field rules as the config writes them (a name older than the
// lint's first report here, once the leak guard grew sibling modules).
#[allow(clippy::module_inception)]
pub mod rules;

pub use path::{FieldPath, PathElem, Segment};
pub use rules::{BodyKind, Condition, FieldRule, LeakPolicy, Location, RouteRules};
