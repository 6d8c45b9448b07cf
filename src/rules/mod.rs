//! Which fields are sensitive: rules, field paths, conditions, profiles and the leak
//! guard.

pub mod field;
pub mod guard;
pub mod path;
pub mod profiles;

pub use field::{BodyKind, Condition, FieldRule, LeakPolicy, Location, RouteRules};
pub use path::{FieldPath, PathElem, Segment};
