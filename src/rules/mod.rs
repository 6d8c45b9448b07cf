//! Which fields are sensitive: rules, field paths, conditions, profiles and the leak
//! guard.

pub mod guard;
pub mod path;
pub mod profiles;
pub mod field;

pub use path::{FieldPath, PathElem, Segment};
pub use field::{BodyKind, Condition, FieldRule, LeakPolicy, Location, RouteRules};
