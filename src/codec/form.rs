//! `application/x-www-form-urlencoded` bodies and URL query strings.
//!
//! Pairs are split on `&`, keys from values on the first `=`; `+` is a space and
//! `%XX` a byte; the decoded bytes must be UTF-8. A `%` that does not begin `%XX` is
//! kept as it is (`50%off`), as the WHATWG URL standard, Python, PHP and Tomcat read
//! it. A `%uXXXX` escape, which ASP.NET and JavaScript's `unescape` decode, is kept so
//! in a value (the leak guard reads it decoded too) and refused in a key, whose
//! decoding could name another field. Bracketed keys (`a[b][0]`) and dotted
//! keys (`a.b`) become paths, and rules also match a key as other parsers read it
//! ([`FormKeyReadings`]). Some parsers (Python before 3.9.2, Go before 1.17) also
//! split pairs on `;`: a pair holding `;` is read both ways for the field rules. On
//! output only replaced components are re-encoded; every other byte is kept.

use std::ops::Range;

use zeroize::Zeroizing;

use super::collect::{Collector, PathView, Slot, SlotKind, Text};
use crate::error::{Error, Result};
use crate::rules::PathElem;
use crate::rules::path::{FieldPath, FormElem, FormKeyReadings, reading_elems};

fn err(what: &str, at: usize) -> Error {
    Error::InvalidBody(format!("invalid form encoding at byte {at}: {what}"))
}

/// A form key as a path: its elements, as [`FieldPath::split_form_key`] splits it,
/// and its other readings.
pub(crate) struct FormPath<'a> {
    pub key: &'a str,
    pub elems: &'a [FormElem],
    pub readings: &'a FormKeyReadings,
    /// The key after its last `;`, with its own strict split and other readings: a
    /// `;`-splitting parser reads the pair's value under it (see [`scan`]).
    pub tail: Option<(&'a str, &'a [FormElem], &'a FormKeyReadings)>,
    /// Every key of the form is under one first key ([`RootSkim`]): the key also
    /// reads without it.
    pub unwrap_root: bool,
}

impl PathView for FormPath<'_> {
    fn len(&self) -> usize {
        self.elems.len()
    }

    fn get(&self, i: usize) -> Option<PathElem<'_>> {
        self.elems.get(i)?.as_path_elem(self.key)
    }

    fn for_each_reading(&self, f: &mut dyn FnMut(&[PathElem<'_>])) {
        let tail = self.tail.into_iter().flat_map(|(key, elems, readings)| {
            std::iter::once((key, elems)).chain(readings.others(key))
        });
        for reading in self.readings.others(self.key).chain(tail) {
            let elems: smallvec::SmallVec<[PathElem<'_>; 8]> = reading_elems(reading).collect();
            f(&elems);
        }
        if self.unwrap_root {
            let strict = std::iter::once((self.key, self.elems));
            for (text, elems) in strict.chain(self.readings.others(self.key)) {
                if let Some(below) = elems.get(1..).filter(|b| !b.is_empty()) {
                    let elems: smallvec::SmallVec<[PathElem<'_>; 8]> =
                        reading_elems((text, below)).collect();
                    f(&elems);
                }
            }
        }
    }
}

/// Whether the keys of one form (a body, a query string, a multipart body's part
/// names) are all under one and the same first key (`data[card_number]=…&data[cvv]=…`):
/// a root of one member, an object, which backends that unwrap a root read as
/// that object, as they do a JSON document's (`json::root_is_wrapper`): Rails'
/// `params.require(:data)` finds the same fields wrapped or not. Fed each decoded
/// key in turn; linear.
pub(crate) struct RootSkim {
    root: Option<Zeroizing<String>>,
    possible: bool,
    elems: Vec<FormElem>,
}

impl Default for RootSkim {
    fn default() -> Self {
        RootSkim {
            root: None,
            possible: true,
            elems: Vec::new(),
        }
    }
}

impl RootSkim {
    /// Read one more key.
    pub fn key(&mut self, key: &str) {
        if !self.possible {
            return;
        }
        FieldPath::split_form_key(key, &mut self.elems);
        let first = match self.elems.first() {
            Some(FormElem::Key(r)) if self.elems.len() > 1 => key.get(r.clone()),
            _ => None,
        };
        match (first, &self.root) {
            (None, _) => self.possible = false,
            (Some(f), Some(root)) => self.possible = f == root.as_str(),
            (Some(f), None) => self.root = Some(Zeroizing::new(f.to_owned())),
        }
    }

    /// A key that cannot be read: no wrapper is claimed.
    pub fn unreadable(&mut self) {
        self.possible = false;
    }

    /// Whether every key read was under the same first key (and there was one).
    pub fn is_wrapper(&self) -> bool {
        self.possible && self.root.is_some()
    }
}

/// The buffers a scan reuses for every key: its strict split and other readings.
#[derive(Default)]
pub(crate) struct KeyBuf {
    elems: Vec<FormElem>,
    readings: FormKeyReadings,
    tail_elems: Vec<FormElem>,
    tail_readings: FormKeyReadings,
    /// The form's keys are all under one first key ([`RootSkim`]).
    pub unwrap_root: bool,
}

impl KeyBuf {
    /// Read `key` (strictly and every other way) and give it as a path.
    pub fn path<'a>(&'a mut self, key: &'a str) -> FormPath<'a> {
        self.path_with_tail(key, None)
    }

    /// [`path`](Self::path), with `tail` (the key after its last `;`) read as well.
    fn path_with_tail<'a>(&'a mut self, key: &'a str, tail: Option<&'a str>) -> FormPath<'a> {
        FieldPath::split_form_key(key, &mut self.elems);
        self.readings.read(key, &self.elems);
        let tail = tail.map(|t| {
            FieldPath::split_form_key(t, &mut self.tail_elems);
            self.tail_readings.read(t, &self.tail_elems);
            (t, self.tail_elems.as_slice(), &self.tail_readings)
        });
        FormPath {
            key,
            elems: &self.elems,
            readings: &self.readings,
            tail,
            unwrap_root: self.unwrap_root,
        }
    }
}

/// How a pair is reported: read whole (the `&` reading: key and value go to the leak
/// guard and the rules) or nested (a `;` piece inside a pair: rules only).
#[derive(Clone, Copy, PartialEq, Eq)]
enum PairReading {
    Whole,
    Nested,
}

/// Scan a form body or query string, reporting each key and value to `sink`.
pub(crate) fn scan(text: &[u8], sink: &mut Collector<'_>) -> Result<()> {
    let mut buf = KeyBuf {
        unwrap_root: root_is_wrapper(text),
        ..KeyBuf::default()
    };
    for pair in split_ranges(text, 0..text.len(), b'&') {
        if pair.is_empty() {
            continue;
        }
        if scan_pair(text, pair.clone(), sink, &mut buf, PairReading::Whole)? {
            scan_semicolon_pieces(text, pair, sink, &mut buf)?;
        }
    }
    Ok(())
}

/// Whether every key of the form at `text` is under one first key ([`RootSkim`]);
/// `false` for a key that does not decode (the scan refuses it).
fn root_is_wrapper(text: &[u8]) -> bool {
    let mut skim = RootSkim::default();
    for pair in split_ranges(text, 0..text.len(), b'&') {
        if pair.is_empty() {
            continue;
        }
        let key_r = key_range(text, pair);
        match decode(text, key_r, Part::Key) {
            Ok(key) => skim.key(key.as_str()),
            Err(_) => skim.unreadable(),
        }
    }
    skim.is_wrapper()
}

/// The key of the pair at `range`: up to its first `=`.
fn key_range(text: &[u8], range: Range<usize>) -> Range<usize> {
    let part = text.get(range.clone()).unwrap_or_default();
    match part.iter().position(|b| *b == b'=') {
        Some(e) => range.start..range.start + e,
        None => range,
    }
}

/// The pairs a `;`-splitting parser reads in one `&` pair whose value holds a `;`,
/// after the first `;`. Their values are matched against the rules only: the whole
/// pair's key and value hold the same bytes, and the leak guard has read them.
///
/// A `;` in the key alone is read by the whole pair: its value is then the same
/// bytes under the key after the last `;` (a reading of its path), so one edit
/// serves both parsers. A reading of it as a second value at the same bytes would
/// make the pair ambiguous (found by the form fuzz target).
fn scan_semicolon_pieces(
    text: &[u8],
    pair: Range<usize>,
    sink: &mut Collector<'_>,
    buf: &mut KeyBuf,
) -> Result<()> {
    for piece in split_ranges(text, pair, b';').skip(1) {
        if !piece.is_empty() {
            scan_pair(text, piece, sink, buf, PairReading::Nested)?;
        }
    }
    Ok(())
}

/// The ranges of `text[range]` between `sep` bytes, as ranges of `text`.
fn split_ranges(text: &[u8], range: Range<usize>, sep: u8) -> impl Iterator<Item = Range<usize>> {
    let part = text.get(range.clone()).unwrap_or_default();
    let mut start = range.start;
    part.split(move |b| *b == sep).map(move |p| {
        let r = start..start + p.len();
        start = r.end + 1;
        r
    })
}

/// Report one `key=value` pair at `range` of `text`; whether its value holds a `;`.
fn scan_pair(
    text: &[u8],
    range: Range<usize>,
    sink: &mut Collector<'_>,
    buf: &mut KeyBuf,
    reading: PairReading,
) -> Result<bool> {
    let part = text.get(range.clone()).unwrap_or_default();
    let (key_r, val_r) = match part.iter().position(|b| *b == b'=') {
        Some(e) => (
            range.start..range.start + e,
            Some(range.start + e + 1..range.end),
        ),
        None => (range, None),
    };
    let value_semicolon = val_r
        .as_ref()
        .and_then(|r| text.get(r.clone()))
        .is_some_and(|v| v.contains(&b';'));
    let key = decode(text, key_r.clone(), Part::Key)?;
    let tail = match reading {
        PairReading::Whole if !value_semicolon => semicolon_tail(text, &key_r)?,
        _ => None,
    };
    let path = buf.path_with_tail(
        key.as_str(),
        tail.as_ref().map(Text::as_str).filter(|t| !t.is_empty()),
    );
    if reading == PairReading::Whole {
        let slot = Slot {
            span: key_r,
            kind: SlotKind::FormPart,
        };
        sink.key(&path, slot, key.as_str());
    }
    if let Some(val_r) = val_r {
        let value = decode(text, val_r.clone(), Part::Value)?;
        let slot = Slot {
            span: val_r,
            kind: SlotKind::FormPart,
        };
        match reading {
            PairReading::Whole => sink.value(&path, slot, value.as_str()),
            PairReading::Nested => sink.nested_value(&path, slot, value.as_str()),
        }
    }
    Ok(value_semicolon)
}

/// The part of the key at `key_r` after its last raw `;`, decoded (none without one).
fn semicolon_tail<'t>(text: &'t [u8], key_r: &Range<usize>) -> Result<Option<Text<'t>>> {
    let raw = text.get(key_r.clone()).unwrap_or_default();
    match raw.iter().rposition(|b| *b == b';') {
        Some(i) => decode(text, key_r.start + i + 1..key_r.end, Part::Key).map(Some),
        None => Ok(None),
    }
}

/// Whether decoded base64 text is a form (`a=1&b[c]=2`): printable ASCII without
/// quotes, braces or backslashes (anything else would be percent-encoded), every
/// pair with a non-empty key and an `=`; one line ending may close it.
pub(crate) fn looks_like_form(text: &[u8]) -> bool {
    let body = text
        .strip_suffix(b"\r\n")
        .or_else(|| text.strip_suffix(b"\n"))
        .unwrap_or(text);
    !body.is_empty()
        && body
            .iter()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'{' | b'}' | b'\\'))
        && body
            .split(|b| *b == b'&')
            .filter(|p| !p.is_empty())
            .all(|p| p.iter().position(|b| *b == b'=').is_some_and(|eq| eq > 0))
        && body.contains(&b'=')
}

/// Which part of a pair [`decode`] reads: a `%uXXXX` escape is refused in a key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Key,
    Value,
}

/// Percent-decode one component (`+` is a space). Borrowed when nothing to decode.
/// A `%` that begins no `%XX` is kept as it is (see the module's documentation).
fn decode(text: &[u8], range: Range<usize>, part: Part) -> Result<Text<'_>> {
    let raw = text
        .get(range.clone())
        .ok_or(Error::Internal("form span"))?;
    if !raw.iter().any(|b| *b == b'%' || *b == b'+') {
        let s = std::str::from_utf8(raw)
            .map_err(|e| err("invalid UTF-8", range.start + e.valid_up_to()))?;
        return Ok(Text::Borrowed(s));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(raw.len()));
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let byte = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| Some(hex(*h.first()?)? * 16 + hex(*h.get(1)?)?));
                match byte {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    None if part == Part::Key && percent_u(raw.get(i..).unwrap_or_default()) => {
                        return Err(err(
                            "a key holds a `%uXXXX` escape, which some backends decode and others keep",
                            range.start + i,
                        ));
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    let s = std::str::from_utf8(&out)
        .map_err(|_| err("invalid UTF-8 after percent-decoding", range.start))?;
    Ok(Text::Owned(Zeroizing::new(s.to_owned())))
}

/// Whether `s` begins with a `%uXXXX` escape.
fn percent_u(s: &[u8]) -> bool {
    match s {
        [b'%', b'u' | b'U', digits @ ..] => digits
            .get(..4)
            .is_some_and(|d| d.iter().all(u8::is_ascii_hexdigit)),
        _ => false,
    }
}

fn hex(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The decoded text of a form slot.
pub(crate) fn decode_slot(text: &[u8], slot: &Slot) -> Result<Zeroizing<String>> {
    // A key in a slot was read as a key already: read as a value, it is the same.
    Ok(match decode(text, slot.span.clone(), Part::Value)? {
        Text::Borrowed(s) => Zeroizing::new(s.to_owned()),
        Text::Owned(s) => s,
    })
}

/// Append `value` percent-encoded: unreserved characters (RFC 3986) stay, every other
/// byte becomes `%XX`.
pub(crate) fn encode_component(out: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.push(b'%');
            out.extend(HEX.get(usize::from(b >> 4)));
            out.extend(HEX.get(usize::from(b & 0x0f)));
        }
    }
}
