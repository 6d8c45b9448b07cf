//! Which fields are sensitive: rules, field paths, conditions, profiles and the leak
//! guard.

pub mod deep;
pub mod digits;
pub mod field;
pub mod guard;
pub mod html_meta;
pub mod iin;
pub mod path;
pub mod pieces;
pub mod profiles;
pub mod wide_text;
pub mod xml_decl;

pub use field::{BodyKind, Condition, FieldRule, LeakPolicy, Location, RouteRules};
pub use path::{FieldPath, PathElem, Segment};
