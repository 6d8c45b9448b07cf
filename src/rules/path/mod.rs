//! Field paths: which leaves of a document a rule names.
//!
//! Syntax (parsed once, at config load, by [`FieldPath::parse`]):
//!
//! - dot-separated keys: `details.accountNumber`; an optional leading `$` or `$.`;
//! - `*`: any one key or array index; `**`: any depth, zero or more levels (crosses
//!   arrays too);
//! - `[n]` a given array index, `[*]` any array index;
//! - keys containing dots or brackets: `` `a.b` `` or `["a.b"]`;
//! - bracketed keys as forms write them: `payment_method[card_number]` is
//!   `payment_method.card_number`, `items[0][pan]` is `items[0].pan`.
//!
//! A form key is also read as common backend parsers read it (lenient brackets, PHP
//! names; see [`FormKeyReadings`]): a rule matches a form key when any reading does.
//!
//! Documents present the concrete path of a leaf as [`PathElem`]s; matching is an
//! iterative glob match (no recursion), linear in practice.
//!
//! Keys match whatever their ASCII letter case and word separators (`card_code` is
//! `cardCode`) unless a route asks for [`KeyMatch::Insensitive`] or
//! [`KeyMatch::Exact`]: many backends bind keys case-insensitively or map naming
//! conventions. [`FieldPath::matches_shape`] also
//! sees through the shapes a value can be wrapped in: array indices the rule does not
//! name, and up to [`MAX_WRAP`] levels of arrays or objects around the value.

mod parser;
pub(crate) mod readings;
mod trailing;

use parser::Parser;
pub use readings::{FormKeyReadings, Reading, may_read_differently, reading_elems};
pub use trailing::{LastKeyStarts, TrailingKeys};

use crate::error::{Error, Result};

/// One segment of a rule's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// An object key (or form key component) exactly.
    Key(String),
    /// One array index exactly.
    Index(usize),
    /// `*`: any one key or index.
    AnyOne,
    /// `[*]`: any one array index.
    AnyIndex,
    /// `**`: any number of levels, zero included.
    AnyDepth,
}

/// One step of a concrete path inside a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathElem<'a> {
    /// An object key (decoded).
    Key(&'a str),
    /// An array index.
    Index(usize),
}

/// How a route compares keys (and `when` values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyMatch {
    /// `keys = "loose"`, the default: ASCII letter case and the word separators `_`,
    /// `-` and space are ignored, so `cardCode`, `card_code`, `Card-Code` and
    /// `cardCode ` are one key, as binders that map naming conventions (snake-case
    /// strategies, camel/snake key transforms) read them.
    #[default]
    Loose,
    /// `keys = "insensitive"`: ASCII letter case is ignored.
    Insensitive,
    /// `keys = "exact"`.
    Exact,
}

impl KeyMatch {
    /// Whether two keys or values are the same under this comparison.
    #[inline]
    pub fn same(self, a: &str, b: &str) -> bool {
        match self {
            KeyMatch::Loose => loose_eq(&ascii_twins(a), &ascii_twins(b)),
            KeyMatch::Insensitive => ascii_twins(a).eq_ignore_ascii_case(&ascii_twins(b)),
            KeyMatch::Exact => a == b,
        }
    }

    /// Whether a document's key `doc` is a rule's key `rule`, whose
    /// [`fold`](Self::fold) under [`KeyMatch::Loose`] is `folded`: as
    /// [`same`](Self::same), cheaper for the loose comparison. Folding only shortens
    /// a key, so a document key shorter than the fold never matches, and one as long
    /// matches only without separators, by a plain comparison.
    #[inline]
    pub fn same_as_rule(self, rule: &str, folded: &str, doc: &str) -> bool {
        match self {
            KeyMatch::Loose => {
                let doc = ascii_twins(doc);
                same_as_folded(&doc, folded)
            }
            _ => self.same(rule, doc),
        }
    }

    /// A key folded so that two keys are [`same`](Self::same) exactly when their
    /// folds are equal.
    pub fn fold(self, key: &str) -> String {
        match self {
            KeyMatch::Loose => {
                let mut out = ascii_twins(key).to_ascii_lowercase();
                // Only ASCII bytes go, so the rest stays UTF-8.
                out.retain(|c| !u8::try_from(c).is_ok_and(is_word_separator));
                out
            }
            KeyMatch::Insensitive => ascii_twins(key).to_ascii_lowercase(),
            KeyMatch::Exact => key.to_owned(),
        }
    }
}

/// [`KeyMatch::same_as_rule`]'s loose comparison of a document key, its non-ASCII
/// letters already read as their [`ascii_twins`], with a rule key's fold.
#[inline]
fn same_as_folded(doc: &str, folded: &str) -> bool {
    match doc.len().cmp(&folded.len()) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => doc.eq_ignore_ascii_case(folded),
        // Most keys differ in their first byte: decided without the loop.
        std::cmp::Ordering::Greater => match (doc.as_bytes().first(), folded.as_bytes().first()) {
            (Some(d), Some(f)) if !is_word_separator(*d) && !d.eq_ignore_ascii_case(f) => false,
            _ => loose_eq(doc, folded),
        },
    }
}

/// The ASCII letter that a non-ASCII letter is to per-character case-insensitive
/// comparisons: its simple upper- or lower-case mapping is that ASCII letter. Go's
/// `encoding/json` (which binds keys by `unicode.ToUpper(unicode.ToLower(r))`),
/// Go's `strings.EqualFold`, Java's `equalsIgnoreCase` and .NET's
/// `OrdinalIgnoreCase` (System.Text.Json's case-insensitive binding) read
/// `detail\u{17f}` as `details` and `\u{131}ban` as `iban`. Mappings to more than one
/// letter (`\u{df}` to `SS`, ligatures) are full case mappings, which none of them
/// applies per character.
#[inline]
fn ascii_twin(c: char) -> Option<char> {
    match c {
        // LATIN SMALL LETTER LONG S: upper case `S`.
        '\u{17f}' => Some('s'),
        // LATIN SMALL LETTER DOTLESS I: upper case `I`; LATIN CAPITAL LETTER I WITH
        // DOT ABOVE: simple lower case `i`.
        '\u{131}' | '\u{130}' => Some('i'),
        // KELVIN SIGN: lower case `k`.
        '\u{212a}' => Some('k'),
        _ => None,
    }
}

/// A key with each non-ASCII letter that case-insensitive binders read as an ASCII
/// one written as that letter ([`ascii_twin`]); borrowed when there is none, as in
/// every ASCII key.
#[inline]
pub(crate) fn ascii_twins(key: &str) -> std::borrow::Cow<'_, str> {
    if key.is_ascii() || !key.chars().any(|c| ascii_twin(c).is_some()) {
        return std::borrow::Cow::Borrowed(key);
    }
    std::borrow::Cow::Owned(key.chars().map(|c| ascii_twin(c).unwrap_or(c)).collect())
}

/// The bytes [`KeyMatch::Loose`] ignores.
#[inline]
fn is_word_separator(b: u8) -> bool {
    matches!(b, b'_' | b'-' | b' ')
}

/// Equal ignoring ASCII case and word separators. Most comparisons differ in their
/// first bytes, so this stops as early as a plain comparison does.
#[inline]
fn loose_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() == b.len() && a.eq_ignore_ascii_case(b) {
        return true;
    }
    let (mut i, mut j) = (0, 0);
    loop {
        while a.get(i).copied().is_some_and(is_word_separator) {
            i += 1;
        }
        while b.get(j).copied().is_some_and(is_word_separator) {
            j += 1;
        }
        match (a.get(i), b.get(j)) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {
                i += 1;
                j += 1;
            }
            _ => return false,
        }
    }
}

/// The most levels of wrapping (array elements, object members) between the field a
/// rule names and a scalar it holds: `"cardCode": ["739"]` is one level,
/// `"cardCode": {"value": ["739"]}` two.
pub const MAX_WRAP: usize = 4;

/// A parsed field path. Config files hold it as a string, parsed once when the file is
/// read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct FieldPath {
    source: String,
    segments: Vec<Segment>,
    /// Each segment's key folded for [`KeyMatch::Loose`] (empty for a non-key), so a
    /// comparison folds only the document's key.
    folded: Vec<Box<str>>,
}

impl TryFrom<String> for FieldPath {
    type Error = Error;

    fn try_from(path: String) -> Result<FieldPath> {
        FieldPath::parse(&path)
    }
}

fn invalid(path: &str, why: &str) -> Error {
    Error::Config(format!("invalid field path `{path}`: {why}"))
}

impl FieldPath {
    /// Parse a rule path. The error names the path and what is wrong with it.
    pub fn parse(path: &str) -> Result<FieldPath> {
        let segments = Parser {
            src: path,
            chars: path.char_indices().peekable(),
            out: Vec::new(),
        }
        .run()?;
        if segments.is_empty() {
            return Err(invalid(path, "the path is empty"));
        }
        Ok(FieldPath::from_segments(path.to_owned(), segments))
    }

    fn from_segments(source: String, segments: Vec<Segment>) -> FieldPath {
        let folded = segments
            .iter()
            .map(|s| match s {
                Segment::Key(k) => KeyMatch::Loose.fold(k).into_boxed_str(),
                _ => Box::default(),
            })
            .collect();
        FieldPath {
            source,
            segments,
            folded,
        }
    }

    /// A path of plain keys, `a.b.c`, for the built-in profiles: no wildcards, no
    /// quoting, so it cannot fail.
    pub fn keys(dotted: &str) -> FieldPath {
        FieldPath::from_segments(
            dotted.to_owned(),
            dotted
                .split('.')
                .map(|k| Segment::Key(k.to_owned()))
                .collect(),
        )
    }

    /// Parse a form or query key (`items[0][pan]`, `a.b`, `a[]`) into path elements
    /// borrowed from the key. Empty brackets (`a[]`) count as index 0. Never fails:
    /// unbalanced brackets are kept as part of the key. This is the strict reading;
    /// [`FormKeyReadings`] gives the others a backend may use.
    pub fn split_form_key(key: &str, out: &mut Vec<FormElem>) {
        out.clear();
        let bytes = key.as_bytes();
        // Head: up to the first `[` or `.`.
        let mut i = 0;
        let mut start = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'.' => {
                    out.push(FormElem::Key(start..i));
                    i += 1;
                    start = i;
                }
                b'[' => {
                    // A closing bracket must follow; otherwise the `[` is literal.
                    let close = bytes
                        .get(i + 1..)
                        .and_then(|rest| rest.iter().position(|c| *c == b']'))
                        .map(|p| i + 1 + p);
                    let Some(close) = close else {
                        i += 1;
                        continue;
                    };
                    // The head key (possibly empty, as in `[0]=x`); after a `]` there
                    // is nothing between brackets.
                    if i > start || out.is_empty() {
                        out.push(FormElem::Key(start..i));
                    }
                    let inner = i + 1..close;
                    let text = key.get(inner.clone()).unwrap_or_default();
                    if text.is_empty() {
                        out.push(FormElem::Index(0));
                    } else if let Some(n) = parse_index(text) {
                        out.push(FormElem::Index(n));
                    } else {
                        out.push(FormElem::Key(inner));
                    }
                    i = close + 1;
                    start = i;
                }
                _ => i += 1,
            }
        }
        if start < bytes.len() || out.is_empty() {
            out.push(FormElem::Key(start..bytes.len()));
        }
    }

    /// The path as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The parsed segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The key this path must end with, if its last segment is a plain key: a cheap
    /// pre-filter before a full match.
    pub fn last_key(&self) -> Option<&str> {
        match self.segments.last() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// The loose fold of the key this path must end with, if its last segment is a
    /// plain key.
    pub fn folded_last_key(&self) -> Option<&str> {
        self.last_key().and(self.folded.last().map(|f| &**f))
    }

    /// Whether the path matches a concrete path.
    pub fn matches(&self, path: &[PathElem<'_>]) -> bool {
        self.matches_by(path.len(), |i| path.get(i).copied())
    }

    /// Whether the path matches a concrete path of `len` elements read through `get`
    /// (so callers need not build a slice), keys compared exactly.
    pub fn matches_by<'s>(&self, len: usize, get: impl Fn(usize) -> Option<PathElem<'s>>) -> bool {
        self.matches_with(KeyMatch::Exact, len, get)
    }

    /// Whether the path names a leaf at `path` or a container holding it: the path
    /// itself, or `path` without the array indices the rule does not name, each with
    /// up to [`MAX_WRAP`] trailing elements (the wrappers) dropped. `keys_only` is
    /// `path` without its indices (the caller builds it once per leaf).
    pub fn matches_shape(
        &self,
        keys: KeyMatch,
        path: &[PathElem<'_>],
        keys_only: &[PathElem<'_>],
    ) -> bool {
        let last = self.last_key().zip(self.folded.last());
        let views: [&[PathElem<'_>]; 2] = [path, keys_only];
        for (v, view) in views.into_iter().enumerate() {
            if v == 1 && keys_only.len() == path.len() {
                break;
            }
            let max_strip = MAX_WRAP.min(view.len().saturating_sub(1));
            for strip in 0..=max_strip {
                let Some(p) = view.get(..view.len() - strip) else {
                    continue;
                };
                if let Some((k, f)) = last {
                    match p.last() {
                        Some(PathElem::Key(e)) if keys.same_as_rule(k, f, e) => {}
                        _ => continue,
                    }
                }
                if self.matches_with(keys, p.len(), |i| p.get(i).copied()) {
                    return true;
                }
            }
        }
        false
    }

    /// [`matches_by`](Self::matches_by) with keys compared as `keys` says. Classic
    /// glob matching with backtracking to the last `**`: O(len × segments) worst
    /// case, no recursion.
    pub fn matches_with<'s>(
        &self,
        keys: KeyMatch,
        len: usize,
        get: impl Fn(usize) -> Option<PathElem<'s>>,
    ) -> bool {
        let segs = &self.segments;
        let folded = &self.folded;
        let (mut s, mut p) = (0usize, 0usize);
        // (segment index after the `**`, path index the `**` currently stops at)
        let mut star: Option<(usize, usize)> = None;
        loop {
            if p == len {
                // Only `**`s may remain.
                return segs
                    .get(s..)
                    .is_some_and(|rest| rest.iter().all(|x| *x == Segment::AnyDepth));
            }
            match segs.get(s) {
                Some(Segment::AnyDepth) => {
                    star = Some((s + 1, p));
                    s += 1;
                    continue;
                }
                Some(seg)
                    if get(p).is_some_and(|e| {
                        seg_matches(keys, seg, folded.get(s).map_or("", |f| f), e)
                    }) =>
                {
                    s += 1;
                    p += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((after, at)) => {
                    // Let the `**` swallow one more element and retry.
                    star = Some((after, at + 1));
                    s = after;
                    p = at + 1;
                }
                None => return false,
            }
        }
    }
}

/// A form key element as a byte range of the decoded key, or an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormElem {
    Key(std::ops::Range<usize>),
    Index(usize),
}

impl FormElem {
    /// The element as a path element, its key read from `text` (the key it was split
    /// from); `None` if the range is not in `text`.
    pub fn as_path_elem<'a>(&self, text: &'a str) -> Option<PathElem<'a>> {
        match self {
            FormElem::Key(r) => text.get(r.clone()).map(PathElem::Key),
            FormElem::Index(n) => Some(PathElem::Index(*n)),
        }
    }
}

/// Whether a segment (`folded`: its key folded) matches a document's path element.
fn seg_matches(keys: KeyMatch, seg: &Segment, folded: &str, elem: PathElem<'_>) -> bool {
    match (seg, elem) {
        (Segment::Key(k), PathElem::Key(e)) => keys.same_as_rule(k, folded, e),
        (Segment::Index(n), PathElem::Index(i)) => *n == i,
        (Segment::AnyOne, _) | (Segment::AnyIndex, PathElem::Index(_)) => true,
        _ => false,
    }
}

/// A decimal array index: ASCII digits, no sign, no leading zero (except `0`).
fn parse_index(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests;
