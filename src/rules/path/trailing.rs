//! A leaf's trailing keys: a cheap gate before a rule's full match.
//!
//! [`FieldPath::matches_shape`] compares a rule's last key with the last element of
//! the leaf's path, with up to [`MAX_WRAP`] trailing elements stripped, read with and
//! without its array indices. Every element it can compare is one of the last
//! `MAX_WRAP + 1` keys of the path without its indices. A rule whose last segment is a
//! key can therefore match only if one of them is loosely that key, whatever the
//! route's [`KeyMatch`]: an exact or case-insensitive match is also a loose one.
//! Gathering those few keys once per leaf lets most leaves skip the rules' full
//! matches, most often on a length or first-byte difference.

use smallvec::SmallVec;

use super::{FieldPath, KeyMatch, MAX_WRAP, PathElem, ascii_twins, is_word_separator};

/// A leaf's last `MAX_WRAP + 1` keys, the last first.
#[derive(Debug, Default)]
pub struct TrailingKeys<'a> {
    keys: SmallVec<[&'a str; MAX_WRAP + 1]>,
}

impl<'a> TrailingKeys<'a> {
    /// The trailing keys of a path given from its last element to its first.
    pub fn from_last(rev: impl Iterator<Item = PathElem<'a>>) -> TrailingKeys<'a> {
        let keys = rev
            .filter_map(|e| match e {
                PathElem::Key(k) => Some(k),
                PathElem::Index(_) => None,
            })
            .take(MAX_WRAP + 1)
            .collect();
        TrailingKeys { keys }
    }

    /// The trailing keys of a path.
    pub fn of(path: &[PathElem<'a>]) -> TrailingKeys<'a> {
        TrailingKeys::from_last(path.iter().rev().copied())
    }

    /// Whether one of the keys is, loosely, the key whose loose fold is `folded`.
    fn contains(&self, folded: &str) -> bool {
        self.keys
            .iter()
            .any(|k| KeyMatch::Loose.same_as_rule(folded, folded, k))
    }
}

impl FieldPath {
    /// Whether this path can match a leaf with these trailing keys: false only when
    /// [`matches_shape`](Self::matches_shape) is false for it under any [`KeyMatch`].
    pub fn may_end_in(&self, trail: &TrailingKeys<'_>) -> bool {
        self.folded_last_key()
            .is_none_or(|folded| trail.contains(folded))
    }
}

/// The first bytes of the last keys a set of paths ends with (folded: lower case,
/// word separators skipped), and whether one of them ends in anything else (a
/// wildcard, an index, a key that folds to nothing): a leaf none of whose trailing
/// keys starts with one of these bytes is named by none of the paths, and is passed
/// over without comparing keys.
#[derive(Clone, Debug, Default)]
pub struct LastKeyStarts {
    bytes: [u64; 4],
    any: bool,
}

impl LastKeyStarts {
    /// The starts of these paths' last keys.
    pub fn of<'p>(paths: impl Iterator<Item = &'p FieldPath>) -> LastKeyStarts {
        let mut out = LastKeyStarts::default();
        for path in paths {
            match path.folded_last_key().and_then(|f| f.as_bytes().first()) {
                Some(&b) => out.set(b),
                None => out.any = true,
            }
        }
        out
    }

    fn set(&mut self, b: u8) {
        if let Some(word) = self.bytes.get_mut(usize::from(b >> 6)) {
            *word |= 1 << (b & 63);
        }
    }

    fn has(&self, b: u8) -> bool {
        self.bytes
            .get(usize::from(b >> 6))
            .is_some_and(|word| word & (1 << (b & 63)) != 0)
    }

    /// Whether one of the paths may name a leaf with these trailing keys.
    pub fn may_name(&self, trail: &TrailingKeys<'_>) -> bool {
        self.any
            || trail.keys.iter().any(|key| {
                ascii_twins(key)
                    .bytes()
                    .find(|b| !is_word_separator(*b))
                    .is_some_and(|b| self.has(b.to_ascii_lowercase()))
            })
    }
}
