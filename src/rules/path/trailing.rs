//! A leaf's trailing keys, folded once: a cheap gate before a rule's full match.
//!
//! [`FieldPath::matches_shape`] compares a rule's last key with the last element of
//! the leaf's path, with up to [`MAX_WRAP`] trailing elements stripped, read with and
//! without its array indices. Every element it can compare is one of the last
//! `MAX_WRAP + 1` keys of the path without its indices. A rule whose last segment is a
//! key can therefore match only if that key's loose fold is the fold of one of them,
//! whatever the route's [`KeyMatch`]: an exact or case-insensitive match is also a
//! loose one. Folding those few keys once per leaf turns most rules' test into a
//! length check.

use smallvec::SmallVec;

use super::{FieldPath, KeyMatch, MAX_WRAP, PathElem, Segment};

/// The loose folds of a leaf's last `MAX_WRAP + 1` keys.
#[derive(Debug, Default)]
pub struct TrailingKeys {
    /// The folds, one after another.
    bytes: SmallVec<[u8; 64]>,
    /// Where each fold ends in `bytes`.
    ends: SmallVec<[usize; MAX_WRAP + 1]>,
}

impl TrailingKeys {
    /// The trailing keys of a path given from its last element to its first.
    pub fn from_last<'a>(rev: impl Iterator<Item = PathElem<'a>>) -> TrailingKeys {
        let mut out = TrailingKeys::default();
        let keys = rev.filter_map(|e| match e {
            PathElem::Key(k) => Some(k),
            PathElem::Index(_) => None,
        });
        for key in keys.take(MAX_WRAP + 1) {
            out.bytes.extend(KeyMatch::loose_fold_bytes(key));
            out.ends.push(out.bytes.len());
        }
        out
    }

    /// The trailing keys of a path.
    pub fn of(path: &[PathElem<'_>]) -> TrailingKeys {
        TrailingKeys::from_last(path.iter().rev().copied())
    }

    /// Whether `folded` (a loose fold) is one of the keys.
    fn contains(&self, folded: &str) -> bool {
        let mut start = 0;
        self.ends.iter().any(|&end| {
            let key = self.bytes.get(start..end);
            start = end;
            key == Some(folded.as_bytes())
        })
    }
}

impl FieldPath {
    /// Whether this path can match a leaf with these trailing keys: false only when
    /// [`matches_shape`](Self::matches_shape) is false for it under any [`KeyMatch`].
    pub fn may_end_in(&self, trail: &TrailingKeys) -> bool {
        match (self.segments.last(), self.folded.last()) {
            (Some(Segment::Key(_)), Some(folded)) => trail.contains(folded),
            _ => true,
        }
    }
}
