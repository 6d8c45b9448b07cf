//! What the document scanners report, and how reports become findings.
//!
//! A scanner (JSON, form) walks its document once and calls a [`Collector`] for every
//! leaf: with the leaf's concrete path (a [`PathView`] over the scanner's own state,
//! so nothing is allocated per leaf), its byte span (a [`Slot`]) and its decoded text.
//! The collector evaluates `when` conditions, notes which rules' paths match, and runs
//! the leak guard. Only once the whole document is read are conditions known, so
//! [`Collector::finish`] picks the first enabled rule per leaf and drops leak hits on
//! leaves a rule claims.

use std::ops::Range;

use smallvec::SmallVec;
use zeroize::Zeroizing;

use super::bytes_scan;
use super::{Finding, FindingKind};
use crate::error::{Error, Result};
use crate::rules::path::{KeyMatch, LastKeyStarts, TrailingKeys};
use crate::rules::{Location, PathElem, RouteRules, guard};
use crate::sensitive::{DataClass, Plaintext};

/// How the bytes of a slot are decoded and re-encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotKind {
    /// A JSON string, quotes included in the span.
    JsonString,
    /// A JSON number.
    JsonNumber,
    /// A percent-encoded form or query component (`+` is a space).
    FormPart,
    /// Raw text, replaced verbatim.
    Raw,
}

/// A value's place in a decoded document.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub span: Range<usize>,
    pub kind: SlotKind,
}

/// Decoded text: borrowed from the document when no decoding was needed.
pub(crate) enum Text<'a> {
    Borrowed(&'a str),
    Owned(Zeroizing<String>),
}

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }
}

/// A concrete path as a scanner sees it.
pub(crate) trait PathView {
    fn len(&self) -> usize;
    fn get(&self, i: usize) -> Option<PathElem<'_>>;

    /// Give `f` each other reading of this path that rules must also match (a form
    /// key as other parsers read it), as its elements. None by default.
    fn for_each_reading(&self, _f: &mut dyn FnMut(&[PathElem<'_>])) {}
}

/// How locations are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathStyle {
    /// `$.a.b[0]`
    Json,
    /// `a[b][0]`
    Form,
}

/// An owned copy of a concrete path element (kept for rule findings, for scopes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum OwnedElem {
    Key(String),
    Index(usize),
}

impl OwnedElem {
    /// An owned copy of a path element.
    pub fn from_elem(e: PathElem<'_>) -> Self {
        match e {
            PathElem::Key(k) => OwnedElem::Key(k.to_owned()),
            PathElem::Index(n) => OwnedElem::Index(n),
        }
    }

    pub fn as_elem(&self) -> PathElem<'_> {
        match self {
            OwnedElem::Key(k) => PathElem::Key(k),
            OwnedElem::Index(i) => PathElem::Index(*i),
        }
    }
}

/// Where a finding sits: which slot of which document, and for a leak hit, which
/// byte range of the slot's decoded text.
#[derive(Clone, Debug)]
pub(crate) struct Place {
    pub slot: usize,
    pub sub: Option<Range<usize>>,
}

/// A finding before scopes are resolved, with its concrete path for rule findings.
pub(crate) struct Found {
    pub finding: Finding,
    pub place: Place,
    pub path: Vec<OwnedElem>,
}

enum Event {
    Candidate {
        slot: usize,
        rules: Range<usize>,
        path: Vec<OwnedElem>,
        location: String,
    },
    /// A leak-guard hit: `sub` is its range in the slot's text when it can be
    /// replaced in place; otherwise `value` holds its digits.
    Leak {
        slot: usize,
        sub: Option<Range<usize>>,
        value: Option<Plaintext>,
        location: String,
    },
}

/// Gathers the rule candidates, condition results and leak hits of one document.
pub(crate) struct Collector<'r> {
    rules: &'r RouteRules,
    location: Location,
    prefix: &'static str,
    style: PathStyle,
    guard: bool,
    /// Per rule: its `when` holds somewhere in the document (or it has none).
    enabled: Vec<bool>,
    slots: Vec<Slot>,
    cand_rules: Vec<usize>,
    events: Vec<Event>,
    hits: Vec<Range<usize>>,
    /// Whether any rule applies to this document at all (a fast skip otherwise).
    any_rules: bool,
    /// How the last keys of the rules and `when`s here start: most leaves are named
    /// by none, which this tells at once.
    starts: LastKeyStarts,
    keys: KeyMatch,
    /// Added to every slot span: where the text being scanned starts in the document
    /// (a multipart body's document is its parts' contents, one after another).
    base: usize,
    /// The location of the first card-shaped hit that cannot be replaced in place.
    refused: Option<String>,
    /// The location of the first string that holds a JSON document with a field a
    /// rule names ([`rule_in_value`](Self::rule_in_value)).
    rule_in_value: Option<String>,
    /// Whether a rule candidate came from a second reading of the text (a form pair
    /// after a `;`), whose slot may lie inside another: [`finish`](Self::finish)
    /// then checks that no two edited slots overlap.
    nested: bool,
    /// Short digit values, by list: a card split across a list's values
    /// ([`pieces`](super::pieces)).
    pieces: super::pieces::PathPieces,
}

impl<'r> Collector<'r> {
    pub fn new(
        rules: &'r RouteRules,
        location: Location,
        prefix: &'static str,
        style: PathStyle,
    ) -> Self {
        let enabled = rules.fields.iter().map(|f| f.when.is_none()).collect();
        Collector {
            rules,
            location,
            prefix,
            style,
            guard: rules.guard_on(),
            enabled,
            slots: Vec::new(),
            cand_rules: Vec::new(),
            events: Vec::new(),
            hits: Vec::new(),
            any_rules: rules.has_rules_at(location),
            starts: LastKeyStarts::of(
                rules
                    .paths_at(location)
                    .map(|(_, p)| p)
                    .chain(rules.conditions_at(location).map(|(_, _, c)| c)),
            ),
            keys: rules.keys,
            base: 0,
            refused: None,
            rule_in_value: None,
            nested: false,
            pieces: super::pieces::PathPieces::default(),
        }
    }

    /// Where the text scanned next starts in the document.
    pub fn set_base(&mut self, base: usize) {
        self.base = base;
    }

    /// How the locations of what is scanned next are written.
    pub fn set_style(&mut self, style: PathStyle) {
        self.style = style;
    }

    /// A leaf that can only matter to conditions (`true`, `false`, `null`).
    pub fn literal(&mut self, path: &dyn PathView, text: &str) {
        if !self.any_rules {
            return;
        }
        let named = self.named(&trailing(path));
        if named.any() {
            let (elems, keys_only) = views(path);
            self.conditions(&elems, &keys_only, named, text);
        }
    }

    /// A string or number leaf. One that holds a JSON document is also read for the
    /// fields rules name inside it ([`rule_in_value`](Self::rule_in_value)).
    pub fn value(&mut self, path: &dyn PathView, slot: Slot, text: &str) {
        let mut slot_idx = None;
        if self.any_rules {
            self.rule_candidates(path, &slot, &mut slot_idx, text);
            if super::json::opens_document(text.as_bytes()) {
                super::json::nested::check(self, path, text);
            }
        }
        if self.guard && !self.rules.lists_alone && self.refused.is_none() {
            let number = slot.kind == SlotKind::JsonNumber;
            let (prefix, style) = (self.prefix, self.style);
            self.refused = self
                .pieces
                .leaf(path, text, number, || render(prefix, style, path));
        }
        self.leaks(path, &slot, &mut slot_idx, text);
    }

    /// A value as a second reading of text already reported sees it (a form pair
    /// after a `;`, inside a value read whole): matched against the rules only, as
    /// the leak guard has read every byte of it. Its slot may lie inside another.
    pub fn nested_value(&mut self, path: &dyn PathView, slot: Slot, text: &str) {
        let mut slot_idx = None;
        if self.any_rules {
            self.rule_candidates(path, &slot, &mut slot_idx, text);
        }
        self.nested |= slot_idx.is_some();
    }

    /// Match a leaf against the conditions and rule paths under every reading of its
    /// path; a candidate for each rule that matches under any, recorded with the
    /// first reading that matched (duplicates and scopes compare that one).
    fn rule_candidates(
        &mut self,
        path: &dyn PathView,
        slot: &Slot,
        slot_idx: &mut Option<usize>,
        text: &str,
    ) {
        let start = self.cand_rules.len();
        let mut matched = None;
        let named = self.named(&trailing(path));
        if named.any() {
            let (elems, keys_only) = views(path);
            self.match_reading(&elems, &keys_only, named, text, start, &mut matched);
        }
        path.for_each_reading(&mut |elems| {
            let named = self.named(&TrailingKeys::of(elems));
            if named.any() {
                let keys_only = keys_of(elems);
                self.match_reading(elems, &keys_only, named, text, start, &mut matched);
            }
        });
        if let Some(matched) = matched {
            let idx = self.push_slot(slot_idx, slot);
            self.events.push(Event::Candidate {
                slot: idx,
                rules: start..self.cand_rules.len(),
                path: matched,
                location: self.render(path),
            });
        }
    }

    /// One reading of a leaf's path: its conditions, then (for a non-empty value) the
    /// rules it names that are not candidates yet (from `start`). `matched` gets
    /// this reading's path if it is the first to name a rule.
    fn match_reading(
        &mut self,
        elems: &[PathElem<'_>],
        keys_only: &[PathElem<'_>],
        named: Named,
        text: &str,
        start: usize,
        matched: &mut Option<Vec<OwnedElem>>,
    ) {
        self.conditions(elems, keys_only, named, text);
        if text.is_empty() {
            return;
        }
        let before = self.cand_rules.len();
        for (r, p) in self.rules.paths_at(self.location) {
            let known = self.cand_rules.get(start..).is_some_and(|c| c.contains(&r));
            if named.path(r) && !known && p.matches_shape(self.keys, elems, keys_only) {
                self.cand_rules.push(r);
            }
        }
        if self.cand_rules.len() > before && matched.is_none() {
            *matched = Some(elems.iter().map(|e| OwnedElem::from_elem(*e)).collect());
        }
    }

    /// Whether the route has field rules where this document is read.
    pub fn has_rules(&self) -> bool {
        self.any_rules
    }

    /// Whether a rule's path names `path` under any of its readings, `when`
    /// conditions aside: what is there is that field, however it is declared (a
    /// multipart part's content type).
    pub fn names_rule(&self, path: &dyn PathView) -> bool {
        if !self.any_rules {
            return false;
        }
        let named = |elems: &[PathElem<'_>], keys_only: &[PathElem<'_>]| {
            let trail = TrailingKeys::of(elems);
            self.rules
                .paths_at(self.location)
                .any(|(_, p)| p.may_end_in(&trail) && p.matches_shape(self.keys, elems, keys_only))
        };
        let (elems, keys_only) = views(path);
        let mut found = named(&elems, &keys_only);
        path.for_each_reading(&mut |elems| {
            found = found || named(elems, &keys_of(elems));
        });
        found
    }

    /// A value holds a JSON document with a field a rule names at `path` (the
    /// value's path followed by the document's): a backend that decodes the value
    /// again binds it, and it cannot be tokenized in place. The request is refused
    /// ([`finish`](Self::finish)).
    pub fn rule_in_value(&mut self, path: &dyn PathView) {
        if self.rule_in_value.is_none() {
            self.rule_in_value = Some(self.render(path));
        }
    }

    /// An object key or form key: scanned by the leak guard only.
    pub fn key(&mut self, path: &dyn PathView, slot: Slot, text: &str) {
        let mut slot_idx = None;
        self.leaks(path, &slot, &mut slot_idx, text);
    }

    /// Bytes no codec reads (not UTF-8, or of a type we do not decode), at `span`
    /// of the text being scanned: scanned at the byte level. A plain hit gets a slot
    /// of its own and is replaced in place; any other is hidden (the request is
    /// refused unless its digits are a token of ours), and a run of
    /// [`guard::MAX_HIDDEN`] hidden hits refuses it whatever they are.
    pub fn bytes(&mut self, path: &dyn PathView, span: Range<usize>, data: &[u8]) {
        if !self.guard {
            return;
        }
        let mut plain = Vec::new();
        let mut hidden = Vec::new();
        let mut hidden_at = Vec::new();
        let mut overflow = false;
        let mut read: Vec<Plaintext> = Vec::new();
        bytes_scan::each_hit(data, |hit, digits| {
            if keep_hidden(&mut read, digits).is_none() {
                overflow = true;
            }
            if hit.plain {
                plain.push(hit.range);
                return;
            }
            match keep_hidden(&mut hidden, digits) {
                Some(true) => hidden_at.push(hit.range),
                Some(false) => {}
                None => overflow = true,
            }
        });
        // A document declaring its encoding (`<?xml … encoding="Shift_JIS"?>`, a
        // multipart part decoded from base64), as an XML parser reads it: its hits
        // are the whole part's.
        if let Some(text) = crate::rules::xml_decl::decoded(data) {
            guard::scan_hits(text.as_bytes(), |hit| {
                match keep_hidden(&mut hidden, hit.digits()) {
                    Some(true) => hidden_at.push(0..data.len()),
                    Some(false) => {}
                    None => overflow = true,
                }
            });
        }
        overflow |= self.only_in_text(data, &read, &hidden);
        if plain.is_empty() && hidden.is_empty() && !overflow {
            return;
        }
        let location = self.render(path);
        if overflow {
            self.refused.get_or_insert_with(|| location.clone());
        }
        plain.sort_by_key(|r| (r.start, r.end));
        plain.dedup();
        // In document order: a plain hit (no value: its slot is its text) or a
        // hidden one (its digits).
        let mut found: Vec<(Range<usize>, Option<Plaintext>)> = plain
            .into_iter()
            .map(|r| (r, None))
            .chain(hidden_at.into_iter().zip(hidden).map(|(r, v)| (r, Some(v))))
            .collect();
        found.sort_by_key(|(r, _)| (r.start, r.end));
        for (range, value) in found {
            let sub = value.is_none().then_some(0..range.len());
            let slot = Slot {
                span: span.start + range.start..span.start + range.end,
                kind: SlotKind::Raw,
            };
            let idx = self.push_slot(&mut None, &slot);
            self.events.push(Event::Leak {
                slot: idx,
                sub,
                value,
                location: location.clone(),
            });
        }
    }

    /// Whether `data` (bytes that are not UTF-8), read as text, holds a hit the byte
    /// level did not read (`read`: the digits it found). Each byte that is not UTF-8
    /// reads as a single-byte charset reads it
    /// ([`text_of`](crate::rules::digits::text_of)); bytes with NULs also read as
    /// UTF-16 and UTF-32 (either byte order) and without their NULs (UTF-16 or UTF-32
    /// of ASCII).
    /// Each text gets every decoding a UTF-8 value gets ([`guard::scan_leaf`]):
    /// escapes within escapes (`%2520` is `%20`, then a space, to a backend decoding a
    /// form and then its field), and escapes in UTF-16 (`&\0#\01\0;\0`), which the
    /// byte-level views read one level deep or not at all. Such a hit has no place in
    /// the bytes to be replaced at: it refuses the request. A text's plain hits are
    /// the bytes' own (`read`: all the byte level found); its hidden ones are excused
    /// only by the bytes' hidden hits (`hidden`), which are judged on their own: a
    /// card also written plainly is replaced there, not in its escaped or base64 copy
    /// (found by the multipart fuzz target).
    fn only_in_text(&self, data: &[u8], read: &[Plaintext], hidden_read: &[Plaintext]) -> bool {
        let mut texts = vec![Zeroizing::new(
            crate::rules::digits::text_of(data).into_owned(),
        )];
        if memchr::memchr(0, data).is_some() {
            texts.extend(crate::rules::wide_text::readings(data));
        }
        let among = |list: &[Plaintext], digits: &[u8]| {
            list.iter().any(|v| v.expose().as_bytes() == digits)
        };
        let found = |digits: &[u8]| among(read, digits);
        texts.iter().any(|text| {
            let mut in_place = Vec::new();
            let mut hidden = Vec::new();
            guard::scan_leaf(text, guard::Leaf::Text, &mut in_place, &mut hidden);
            let in_text = in_place
                .iter()
                .filter_map(|r| text.get(r.clone()))
                .map(|hit| hit.bytes().filter(u8::is_ascii_digit).collect::<Vec<u8>>());
            hidden
                .iter()
                .any(|v| !among(hidden_read, v.expose().as_bytes()))
                || in_text.into_iter().any(|d| !found(&d))
        })
    }

    /// Text that is forwarded but cannot be rewritten (a multipart part's headers):
    /// any card-shaped hit in it refuses the request.
    pub fn unreplaceable(&mut self, path: &dyn PathView, data: &[u8]) {
        if self.guard && !bytes_scan::scan(data).is_empty() {
            let location = self.render(path);
            self.refused.get_or_insert(location);
        }
    }

    fn leaks(
        &mut self,
        path: &dyn PathView,
        slot: &Slot,
        slot_idx: &mut Option<usize>,
        text: &str,
    ) {
        if !self.guard {
            return;
        }
        // Hits in ASCII digits in the text itself are replaced in place; the guard
        // also reads numbers as integers and decodes nested encodings, and what it
        // finds there can only be refused (`FindingKind::Hidden`).
        let leaf = match slot.kind {
            SlotKind::JsonNumber => guard::Leaf::Number,
            _ => guard::Leaf::Text,
        };
        self.hits.clear();
        let mut hidden = Vec::new();
        guard::scan_leaf(text, leaf, &mut self.hits, &mut hidden);
        // Digits the guard does not read as they are (UTF-16 and the like): a hit not
        // among the guard's own replaceable ones cannot be replaced in place. It is
        // hidden, as those the guard decodes itself: the request is refused unless
        // the digits are a token of ours (a client may send one back next to a
        // character reference that reads as a digit).
        // (Text that cannot hold a hit at all is passed over first, as `scan` would.)
        let bytes = text.as_bytes();
        let mut overflow = hidden.len() >= guard::MAX_HIDDEN;
        if guard::may_contain(bytes) && bytes_scan::worth_scanning(bytes) {
            // Asked once per hit of the byte scan: indexed, not searched (a value of
            // many cards would cost every hit against every other).
            let in_place = guard::Spans::new(&self.hits);
            bytes_scan::each_hit(bytes, |h, digits| {
                let covered = in_place.cover(&h.range);
                if !covered && keep_hidden(&mut hidden, digits).is_none() {
                    overflow = true;
                }
            });
        }
        if overflow {
            let location = self.render(path);
            self.refused.get_or_insert(location);
        }
        if self.hits.is_empty() && hidden.is_empty() {
            return;
        }
        let location = self.render(path);
        let idx = self.push_slot(slot_idx, slot);
        let hits = std::mem::take(&mut self.hits);
        for sub in &hits {
            self.events.push(Event::Leak {
                slot: idx,
                sub: Some(sub.clone()),
                value: None,
                location: location.clone(),
            });
        }
        self.hits = hits;
        for value in hidden {
            self.events.push(Event::Leak {
                slot: idx,
                sub: None,
                value: Some(value),
                location: location.clone(),
            });
        }
    }

    fn push_slot(&mut self, slot_idx: &mut Option<usize>, slot: &Slot) -> usize {
        match slot_idx {
            Some(i) => *i,
            None => {
                let i = self.slots.len();
                self.slots.push(Slot {
                    span: slot.span.start + self.base..slot.span.end + self.base,
                    kind: slot.kind,
                });
                *slot_idx = Some(i);
                i
            }
        }
    }

    /// Which rules, and which `when`s that do not hold yet, may name a leaf with these
    /// trailing keys: most leaves are named by none, and are not matched further.
    fn named(&self, trail: &TrailingKeys<'_>) -> Named {
        let mut named = Named::default();
        if !self.starts.may_name(trail) {
            return named;
        }
        for (r, f) in self.rules.fields.iter().enumerate() {
            if f.location != self.location {
                continue;
            }
            if f.path.may_end_in(trail) {
                named.paths |= Named::bit(r);
            }
            if let Some(when) = &f.when
                && self.enabled.get(r) == Some(&false)
                && when.field.may_end_in(trail)
            {
                named.whens |= Named::bit(r);
            }
        }
        named
    }

    fn conditions(
        &mut self,
        elems: &[PathElem<'_>],
        keys_only: &[PathElem<'_>],
        named: Named,
        text: &str,
    ) {
        let keys = self.keys;
        for (r, cond, c) in self.rules.conditions_at(self.location) {
            if let Some(flag) = self.enabled.get_mut(r)
                && !*flag
                && named.when(r)
                && c.matches_shape(keys, elems, keys_only)
                && cond.matches_with(keys, text)
            {
                *flag = true;
            }
        }
    }

    /// A location string: the path, never a value. Keys that look like they could
    /// hold a number worth hiding are redacted, and so is every key or index that
    /// would make the location show [`MAX_SHOWN_DIGITS`] digits in all: a card
    /// spelled five digits a key (`$.42424.24242.42424.2`) is not written either.
    fn render(&self, path: &dyn PathView) -> String {
        render(self.prefix, self.style, path)
    }

    /// Resolve candidates against conditions and produce the findings, in document
    /// order. `decode` turns a slot back into its decoded text.
    pub fn finish(
        self,
        text: &[u8],
        decode: impl Fn(&[u8], &Slot) -> Result<Zeroizing<String>>,
    ) -> Result<(Vec<Found>, Vec<Slot>)> {
        if let Some(location) = self.refused.or_else(|| self.pieces.finish()) {
            return Err(Error::LeakRejected(location));
        }
        if let Some(location) = self.rule_in_value {
            return Err(Error::InvalidBody(format!(
                "{location} is a field this route tokenizes, inside a JSON document sent as \
                 a string or a form value; send the document itself"
            )));
        }
        let mut out = Vec::new();
        let mut claimed: Option<usize> = None;
        let fields = &self.rules.fields;
        let mut seen: std::collections::HashSet<Vec<OwnedElem>> = std::collections::HashSet::new();
        // The decoded text of the slot the last leak hit lay in: a long value's hits
        // come one after another, and decoding it again for each would cost the
        // value's length per hit (quadratic in a body of many cards).
        let mut decoded: Option<(usize, Zeroizing<String>)> = None;
        for event in self.events {
            match event {
                Event::Candidate {
                    slot,
                    rules,
                    path,
                    location,
                } => {
                    let cands = self.cand_rules.get(rules).unwrap_or_default();
                    let rule = cands
                        .iter()
                        .copied()
                        .find(|r| self.enabled.get(*r).copied().unwrap_or(false));
                    let Some(rule) = rule else {
                        // Only conditional rules name this field, and none holds:
                        // neither forwarded as it is nor guessed at.
                        if cands.iter().any(|r| self.rules.is_conditional(*r)) {
                            return Err(Error::AmbiguousSensitiveField(location));
                        }
                        continue;
                    };
                    let Some(s) = self.slots.get(slot) else {
                        continue;
                    };
                    if !seen.insert(fold_path(self.keys, &path)) {
                        return Err(Error::DuplicateSensitiveField(location));
                    }
                    let class = fields
                        .get(rule)
                        .map(|f| f.class)
                        .ok_or(Error::Internal("rule index out of range"))?;
                    let mut value = decode(text, s)?;
                    claimed = Some(slot);
                    out.push(Found {
                        finding: Finding {
                            kind: FindingKind::Rule { rule },
                            class,
                            value: Plaintext::new(std::mem::take(&mut *value)),
                            location,
                            scope: None,
                        },
                        place: Place { slot, sub: None },
                        path,
                    });
                }
                Event::Leak {
                    slot,
                    sub,
                    value,
                    location,
                } => {
                    if claimed == Some(slot) {
                        continue;
                    }
                    let Some(s) = self.slots.get(slot) else {
                        continue;
                    };
                    let (kind, value) = match (&sub, value) {
                        (_, Some(hidden)) => (FindingKind::Hidden, hidden),
                        (Some(sub), None) => {
                            let value = match &decoded {
                                Some((at, value)) if *at == slot => value,
                                _ => &decoded.insert((slot, decode(text, s)?)).1,
                            };
                            let part = value
                                .get(sub.clone())
                                .ok_or(Error::Internal("leak hit outside its value"))?;
                            (FindingKind::Leak, Plaintext::from_str_copy(part))
                        }
                        (None, None) => return Err(Error::Internal("a leak hit without a place")),
                    };
                    out.push(Found {
                        finding: Finding {
                            kind,
                            class: DataClass::Pan,
                            value,
                            location,
                            scope: None,
                        },
                        place: Place { slot, sub },
                        path: Vec::new(),
                    });
                }
            }
        }
        if self.nested {
            no_overlapping_edits(&out, &self.slots)?;
        }
        Ok((out, self.slots))
    }
}

/// A location string: the path, never a value ([`Collector::render`]).
fn render(prefix: &str, style: PathStyle, path: &dyn PathView) -> String {
    // Sized first: a string grown push by push reallocates a few times per call.
    let len = (0..path.len())
        .map(|i| match path.get(i) {
            // A key or `<redacted>`, and its punctuation.
            Some(PathElem::Key(k)) => k.len().max(REDACTED.len()) + 2,
            Some(PathElem::Index(_)) => 2 + 20,
            None => 0,
        })
        .sum::<usize>();
    let mut out = String::with_capacity(prefix.len() + 1 + len);
    out.push_str(prefix);
    if style == PathStyle::Json {
        out.push('$');
    }
    let mut shown = 0;
    for i in 0..path.len() {
        match path.get(i) {
            Some(PathElem::Key(k)) => {
                let k = within_budget(&mut shown, safe_key(k));
                if style == PathStyle::Json || i > 0 {
                    if style == PathStyle::Json {
                        out.push('.');
                        out.push_str(k);
                    } else {
                        out.push('[');
                        out.push_str(k);
                        out.push(']');
                    }
                } else {
                    out.push_str(k);
                }
            }
            // An index is a number the request wrote (a card number as `cvv[…]`'s
            // index in a form or query key): as many digits as a key may show, no more.
            Some(PathElem::Index(n)) => {
                let digits = n.checked_ilog10().map_or(1, |l| l as usize + 1);
                if n > MAX_SHOWN_INDEX || shown + digits >= MAX_SHOWN_DIGITS {
                    out.push('[');
                    out.push_str(REDACTED);
                    out.push(']');
                } else {
                    use std::fmt::Write as _;
                    shown += digits;
                    let _ = write!(out, "[{n}]");
                }
            }
            None => {}
        }
    }
    out
}

/// With a second reading of a text (see [`Collector::nested_value`]), two findings
/// may edit overlapping bytes: a value one parser reads whole that holds a pair
/// another parser splits off. No rewrite serves both readings, so the request is
/// refused (`ambiguous_sensitive_field`, at the later finding).
fn no_overlapping_edits(found: &[Found], slots: &[Slot]) -> Result<()> {
    let mut edited: Vec<(Range<usize>, usize, &str)> = found
        .iter()
        .filter_map(|f| {
            let span = slots.get(f.place.slot)?.span.clone();
            Some((span, f.place.slot, f.finding.location.as_str()))
        })
        .collect();
    edited.sort_by_key(|(span, slot, _)| (span.start, *slot));
    edited.dedup_by_key(|(_, slot, _)| *slot);
    for pair in edited.windows(2) {
        if let [(a, _, _), (b, _, location)] = pair
            && b.start < a.end
        {
            return Err(Error::AmbiguousSensitiveField((*location).to_owned()));
        }
    }
    Ok(())
}

/// A leaf's path as elements, and the same without its array indices.
/// A path's elements, and its keys alone: on the stack for paths up to eight deep
/// (two heap allocations per leaf value otherwise, on every request).
type Elems<'p> = SmallVec<[PathElem<'p>; 8]>;

fn views<'p>(path: &'p dyn PathView) -> (Elems<'p>, Elems<'p>) {
    let elems: Elems<'p> = (0..path.len()).filter_map(|i| path.get(i)).collect();
    let keys_only = keys_of(&elems);
    (elems, keys_only)
}

/// Which rules' paths (bit `r` for rule `r`) and `when` paths may name a leaf: a
/// rule past the 63rd shares the last bit, so a bit may be set in vain, never
/// missing.
#[derive(Clone, Copy, Debug, Default)]
struct Named {
    paths: u64,
    whens: u64,
}

impl Named {
    fn bit(rule: usize) -> u64 {
        1 << rule.min(63)
    }

    fn any(self) -> bool {
        self.paths | self.whens != 0
    }

    fn path(self, rule: usize) -> bool {
        self.paths & Named::bit(rule) != 0
    }

    fn when(self, rule: usize) -> bool {
        self.whens & Named::bit(rule) != 0
    }
}

/// The trailing keys of a path as a scanner sees it.
fn trailing(path: &dyn PathView) -> TrailingKeys<'_> {
    TrailingKeys::from_last((0..path.len()).rev().filter_map(|i| path.get(i)))
}

/// A path's keys alone (without its array indices).
fn keys_of<'p>(elems: &[PathElem<'p>]) -> Elems<'p> {
    elems
        .iter()
        .filter(|e| matches!(e, PathElem::Key(_)))
        .copied()
        .collect()
}

/// A path as the route compares keys: the same key in another letter case is the
/// same field when keys are case-insensitive.
fn fold_path(keys: KeyMatch, path: &[OwnedElem]) -> Vec<OwnedElem> {
    path.iter()
        .map(|e| match e {
            OwnedElem::Key(k) => OwnedElem::Key(keys.fold(k)),
            OwnedElem::Index(_) => e.clone(),
        })
        .collect()
}

/// What a key that may hold a number worth hiding is written as.
const REDACTED: &str = "<redacted>";

/// The largest index a location shows: five digits, as [`safe_key`] shows a key with
/// fewer than six.
const MAX_SHOWN_INDEX: usize = 99_999;

/// The fewest digits a location never shows, over all its keys and indices: no card
/// (13 digits or more) can be spelled across them, whatever separates them.
const MAX_SHOWN_DIGITS: usize = 6;

/// Digits of every script (`٤٢٤٢…` is a card to the guard, and to a backend
/// normalizing its keys).
fn digit_count(k: &str) -> usize {
    k.chars()
        .filter(|c| crate::rules::digits::value(*c).is_some())
        .count()
}

/// A key as it may appear in a location: redacted if it is long, holds many digits
/// or anything unprintable.
fn safe_key(k: &str) -> &str {
    if k.len() > 64 || digit_count(k) >= MAX_SHOWN_DIGITS || k.chars().any(char::is_control) {
        REDACTED
    } else {
        k
    }
}

/// `k`, when the digits it adds to the `shown` ones so far stay under
/// [`MAX_SHOWN_DIGITS`] (counted in), else [`REDACTED`].
fn within_budget<'k>(shown: &mut usize, k: &'k str) -> &'k str {
    let digits = digit_count(k);
    if *shown + digits >= MAX_SHOWN_DIGITS {
        REDACTED
    } else {
        *shown += digits;
        k
    }
}

/// Keep a hidden hit's digits once: whether they were new, or `None` when they are
/// not text or the field holds [`guard::MAX_HIDDEN`] already (the caller refuses
/// it).
fn keep_hidden(hidden: &mut Vec<Plaintext>, digits: &[u8]) -> Option<bool> {
    let digits = std::str::from_utf8(digits).ok()?;
    if hidden.iter().any(|v| v.expose() == digits) {
        return Some(false);
    }
    if hidden.len() >= guard::MAX_HIDDEN {
        return None;
    }
    hidden.push(Plaintext::from_str_copy(digits));
    Some(true)
}

/// Splice replacements into a decoded value: `edits` are (range, token) sorted by
/// range start, non-overlapping.
pub(crate) fn splice(value: &str, edits: &[(Range<usize>, &str)]) -> Result<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(value.len()));
    let mut at = 0;
    for (range, token) in edits {
        let before = value
            .get(at..range.start)
            .ok_or(Error::Internal("overlapping replacements"))?;
        out.push_str(before);
        out.push_str(token);
        at = range.end;
    }
    out.push_str(
        value
            .get(at..)
            .ok_or(Error::Internal("replacement past the value"))?,
    );
    Ok(out)
}
