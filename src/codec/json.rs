//! A strict, single-pass JSON scanner over bytes that records the span of every leaf.
//!
//! Nothing is re-serialised: the output of a rewrite is the input with only the
//! replaced values' spans changed, so key order, whitespace, duplicate keys and number
//! spellings survive byte for byte. Nesting uses an explicit stack with a depth limit,
//! so deep input cannot overflow the call stack. Errors name the problem and a byte
//! offset, never the content.

use std::ops::Range;

use zeroize::Zeroizing;

use super::collect::{Collector, PathView, Slot, SlotKind, Text};
use crate::error::{Error, Result};
use crate::rules::PathElem;

/// The deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 128;

fn err(at: usize, what: &str) -> Error {
    Error::InvalidBody(format!("invalid JSON at byte {at}: {what}"))
}

/// The key of the member being read, as a span of the document or decoded.
enum Key {
    Raw(Range<usize>),
    Owned(String),
}

enum Frame {
    /// An object member: its key, and whether the key reads differently elsewhere
    /// ([`reads_differently`]).
    Object(Key, bool),
    Array(usize),
}

/// Whether some backends read a key as something else than one key: a dotted key
/// (`"details.accountNumber"`, nested by flatteners and dotted-path binders) or
/// JavaScript's `__proto__` (which `Object.assign` and naive merges make the
/// object's prototype, so its members read as the parent's).
fn reads_differently(key: &str) -> bool {
    key == "__proto__" || memchr::memchr(b'.', key.as_bytes()).is_some()
}

struct JsonPath<'a> {
    text: &'a str,
    stack: &'a [Frame],
    /// The document's root object has one member, an object ([`root_is_wrapper`]):
    /// a path also reads without its first key.
    unwrap_root: bool,
}

impl PathView for JsonPath<'_> {
    fn len(&self) -> usize {
        self.stack.len()
    }

    fn get(&self, i: usize) -> Option<PathElem<'_>> {
        Some(match self.stack.get(i)? {
            Frame::Object(Key::Raw(r), _) => PathElem::Key(self.text.get(r.clone())?),
            Frame::Object(Key::Owned(s), _) => PathElem::Key(s),
            Frame::Array(n) => PathElem::Index(*n),
        })
    }

    /// Below a root wrapper, the path without the wrapper's key, as a backend that
    /// unwraps the root reads it. With a dotted or `__proto__` key on the path, the
    /// path as those backends read it: dotted keys split at their dots (empty pieces
    /// dropped), `__proto__` gone; and with a dotted key, the path with that key whole,
    /// its dots read as `_` (dot-case naming strategies).
    fn for_each_reading(&self, f: &mut dyn FnMut(&[PathElem<'_>])) {
        if self.unwrap_root && self.stack.len() > 1 {
            let elems: smallvec::SmallVec<[PathElem<'_>; 8]> =
                (1..self.stack.len()).filter_map(|i| self.get(i)).collect();
            f(&elems);
        }
        if !self
            .stack
            .iter()
            .any(|fr| matches!(fr, Frame::Object(_, true)))
        {
            return;
        }
        let mut elems: smallvec::SmallVec<[PathElem<'_>; 8]> = smallvec::SmallVec::new();
        for i in 0..self.stack.len() {
            match self.get(i) {
                Some(PathElem::Key("__proto__")) | None => {}
                Some(PathElem::Key(k)) => {
                    elems.extend(k.split('.').filter(|p| !p.is_empty()).map(PathElem::Key));
                }
                Some(e @ PathElem::Index(_)) => elems.push(e),
            }
        }
        f(&elems);
        // Jackson's `LOWER_DOT_CASE` and Gson's `LOWER_CASE_WITH_DOTS` name the
        // property `cardCode` `card.code`: a dotted key is also one key, its dots
        // read as the word separator `_` (as PHP names it in a form).
        let joined: smallvec::SmallVec<[Option<String>; 8]> = (0..self.stack.len())
            .map(|i| match self.get(i) {
                Some(PathElem::Key(k)) if k.contains('.') => Some(k.replace('.', "_")),
                _ => None,
            })
            .collect();
        if joined.iter().any(Option::is_some) {
            let elems: smallvec::SmallVec<[PathElem<'_>; 8]> = (0..self.stack.len())
                .filter_map(|i| match joined.get(i) {
                    Some(Some(k)) => Some(PathElem::Key(k)),
                    _ => self.get(i),
                })
                .collect();
            f(&elems);
        }
    }
}

/// Whether a document is an object with one member whose value is an object
/// (`{"paymentInfo": {…}}`), which backends that unwrap a root value read as that
/// object: Jackson's `UNWRAP_ROOT_VALUE`, and Rails' `params.require(:payment_info)`,
/// which finds the same fields wrapped or not. A skim of the bytes, linear, that
/// answers `false` for anything it does not follow (the scan refuses malformed JSON).
fn root_is_wrapper(b: &[u8], pos: usize) -> bool {
    let mut pos = skip_ws(b, pos);
    if b.get(pos) != Some(&b'{') {
        return false;
    }
    pos = skip_ws(b, pos + 1);
    if b.get(pos) != Some(&b'"') {
        return false;
    }
    let Ok((end, _)) = scan_string(b, pos) else {
        return false;
    };
    pos = skip_ws(b, end);
    if b.get(pos) != Some(&b':') {
        return false;
    }
    pos = skip_ws(b, pos + 1);
    if b.get(pos) != Some(&b'{') {
        return false;
    }
    // To the end of the member's object, strings read past.
    let mut depth = 0usize;
    while let Some(&c) = b.get(pos) {
        match c {
            b'"' => match scan_string(b, pos) {
                Ok((end, _)) => {
                    pos = end;
                    continue;
                }
                Err(_) => return false,
            },
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return b.get(skip_ws(b, pos + 1)) == Some(&b'}');
                }
            }
            _ => {}
        }
        pos += 1;
    }
    false
}

#[inline]
fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while matches!(b.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        pos += 1;
    }
    pos
}

/// Whether a body opens with a JSON object or array: past JSON white space (and a
/// UTF-8 byte order mark, which Python's `json.loads` of bytes reads past), a whole
/// JSON object or array, whatever follows it. A backend that decodes JSON whatever
/// the Content-Type (Go's `json.NewDecoder(r.Body)`, Flask's
/// `get_json(force=True)`) binds such a body as a document, and Go's decoder reads
/// its first value even with more bytes after it. (A form key may start with `[`,
/// as qs and Rack read `[a][b]=…`: that is no JSON value.)
pub(crate) fn opens_document(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let body = body.get(skip_ws(body, 0)..).unwrap_or_default();
    matches!(body.first(), Some(b'{' | b'['))
        && serde_json::Deserializer::from_slice(body)
            .into_iter::<serde::de::IgnoredAny>()
            .next()
            .is_some_and(|first| first.is_ok())
}

/// JSON documents inside values (a JSON string, a form or query value, a multipart
/// part read as text), as a backend that decodes the value again
/// (`json.loads(body["details"])`, a JSON column read back) binds them.
pub(crate) mod nested {
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};

    use super::opens_document;
    use crate::codec::collect::{Collector, OwnedElem, PathView};
    use crate::rules::PathElem;

    /// How many strings deep documents are read (a document in a string in a
    /// document in a string…).
    const STRINGS_DEEP: usize = 3;

    /// A leaf's path: the string's own, then the document's.
    struct Joined<'a> {
        outer: &'a dyn PathView,
        inner: &'a [OwnedElem],
    }

    impl PathView for Joined<'_> {
        fn len(&self) -> usize {
            self.outer.len() + self.inner.len()
        }

        fn get(&self, i: usize) -> Option<PathElem<'_>> {
            match i.checked_sub(self.outer.len()) {
                None => self.outer.get(i),
                Some(j) => self.inner.get(j).map(OwnedElem::as_elem),
            }
        }
    }

    /// Report to `sink` the first leaf of the document in `text` (the string at
    /// `outer`) whose path a rule names. The document's values are looked at, never
    /// kept: keys are copied, values are only asked whether they open a document.
    pub(crate) fn check(sink: &mut Collector<'_>, outer: &dyn PathView, text: &str) {
        let mut walk = Walk {
            sink,
            outer,
            inner: Vec::new(),
            found: false,
            deep: STRINGS_DEEP,
        };
        walk.document(text);
    }

    struct Walk<'w, 'c> {
        sink: &'w mut Collector<'c>,
        outer: &'w dyn PathView,
        inner: Vec<OwnedElem>,
        found: bool,
        /// Strings still to go down through.
        deep: usize,
    }

    impl Walk<'_, '_> {
        fn document(&mut self, text: &str) {
            if self.deep == 0 || self.found {
                return;
            }
            self.deep -= 1;
            let mut de = serde_json::Deserializer::from_str(text);
            // A document that does not parse whole is no document to a backend.
            let _ = de.deserialize_any(Node(self));
            self.deep += 1;
        }

        fn leaf(&mut self) {
            if self.found {
                return;
            }
            let path = Joined {
                outer: self.outer,
                inner: &self.inner,
            };
            if self.sink.names_rule(&path) {
                self.sink.rule_in_value(&path);
                self.found = true;
            }
        }
    }

    /// One value of the document, walked.
    struct Node<'n, 'w, 'c>(&'n mut Walk<'w, 'c>);

    impl<'de> DeserializeSeed<'de> for Node<'_, '_, '_> {
        type Value = ();

        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Node<'_, '_, '_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            self.0.leaf();
            Ok(())
        }

        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            self.0.leaf();
            Ok(())
        }

        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            self.0.leaf();
            Ok(())
        }

        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            self.0.leaf();
            Ok(())
        }

        fn visit_unit<E>(self) -> Result<(), E> {
            self.0.leaf();
            Ok(())
        }

        fn visit_str<E>(self, v: &str) -> Result<(), E> {
            self.0.leaf();
            if opens_document(v.as_bytes()) {
                // Below this leaf: its path is the outer path of the next document.
                let joined: Vec<OwnedElem> = (0..self.0.outer.len())
                    .filter_map(|i| self.0.outer.get(i).map(OwnedElem::from_elem))
                    .chain(self.0.inner.iter().cloned())
                    .collect();
                let mut below = Walk {
                    sink: &mut *self.0.sink,
                    outer: &Owned(&joined),
                    inner: Vec::new(),
                    found: self.0.found,
                    deep: self.0.deep,
                };
                below.document(v);
                self.0.found |= below.found;
            }
            Ok(())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            loop {
                self.0.inner.push(OwnedElem::Index(i));
                let more = seq.next_element_seed(Node(&mut *self.0))?;
                self.0.inner.pop();
                if more.is_none() {
                    return Ok(());
                }
                i += 1;
            }
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                self.0.inner.push(OwnedElem::Key(key));
                let walked = map.next_value_seed(Node(&mut *self.0));
                self.0.inner.pop();
                walked?;
            }
            Ok(())
        }
    }

    /// An owned path, as a view.
    struct Owned<'a>(&'a [OwnedElem]);

    impl PathView for Owned<'_> {
        fn len(&self) -> usize {
            self.0.len()
        }

        fn get(&self, i: usize) -> Option<PathElem<'_>> {
            self.0.get(i).map(OwnedElem::as_elem)
        }
    }
}

/// Scan a whole document, reporting every leaf to `sink`.
pub(crate) fn scan(text: &[u8], sink: &mut Collector<'_>) -> Result<()> {
    let s = std::str::from_utf8(text).map_err(|e| err(e.valid_up_to(), "invalid UTF-8"))?;
    let b = text;
    let mut stack: Vec<Frame> = Vec::new();
    // A UTF-8 byte order mark may open the document (RFC 8259 §8.1 lets a parser
    // ignore it); it stays in the output like every other byte.
    let mut pos = if b.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let unwrap_root = root_is_wrapper(b, pos);
    'value: loop {
        pos = skip_ws(b, pos);
        match b.get(pos) {
            None => return Err(err(pos, "unexpected end of input")),
            Some(b'{') => {
                if stack.len() >= MAX_DEPTH {
                    return Err(err(pos, "nesting is too deep"));
                }
                pos = skip_ws(b, pos + 1);
                if b.get(pos) == Some(&b'}') {
                    pos += 1;
                } else {
                    stack.push(Frame::Object(Key::Raw(0..0), false));
                    pos = member_key(s, pos, &mut stack, sink)?;
                    continue 'value;
                }
            }
            Some(b'[') => {
                if stack.len() >= MAX_DEPTH {
                    return Err(err(pos, "nesting is too deep"));
                }
                pos = skip_ws(b, pos + 1);
                if b.get(pos) == Some(&b']') {
                    pos += 1;
                } else {
                    stack.push(Frame::Array(0));
                    continue 'value;
                }
            }
            Some(b'"') => {
                let (end, escaped) = scan_string(b, pos)?;
                let text = string_text(s, pos..end, escaped)?;
                let path = JsonPath {
                    text: s,
                    stack: &stack,
                    unwrap_root,
                };
                let slot = Slot {
                    span: pos..end,
                    kind: SlotKind::JsonString,
                };
                sink.value(&path, slot, text.as_str());
                pos = end;
            }
            Some(b'-' | b'0'..=b'9') => {
                let end = scan_number(b, pos)?;
                let text = s.get(pos..end).ok_or(Error::Internal("number span"))?;
                let path = JsonPath {
                    text: s,
                    stack: &stack,
                    unwrap_root,
                };
                let slot = Slot {
                    span: pos..end,
                    kind: SlotKind::JsonNumber,
                };
                sink.value(&path, slot, text);
                pos = end;
            }
            Some(c @ (b't' | b'f' | b'n')) => {
                let word: &str = match c {
                    b't' => "true",
                    b'f' => "false",
                    _ => "null",
                };
                if b.get(pos..pos + word.len()) != Some(word.as_bytes()) {
                    return Err(err(pos, "invalid literal"));
                }
                sink.literal(
                    &JsonPath {
                        text: s,
                        stack: &stack,
                        unwrap_root,
                    },
                    word,
                );
                pos += word.len();
            }
            Some(_) => return Err(err(pos, "unexpected character")),
        }
        // After a value: close containers or move to the next member.
        loop {
            pos = skip_ws(b, pos);
            let next = b.get(pos).copied();
            match (stack.last_mut(), next) {
                (None, None) => return Ok(()),
                (None, Some(_)) => return Err(err(pos, "trailing characters after the document")),
                (Some(_), None) => return Err(err(pos, "unexpected end of input")),
                (Some(Frame::Object(..)), Some(b',')) => {
                    pos = skip_ws(b, pos + 1);
                    pos = member_key(s, pos, &mut stack, sink)?;
                    continue 'value;
                }
                (Some(Frame::Array(i)), Some(b',')) => {
                    *i += 1;
                    pos += 1;
                    continue 'value;
                }
                (Some(Frame::Object(..)), Some(b'}')) | (Some(Frame::Array(_)), Some(b']')) => {
                    stack.pop();
                    pos += 1;
                }
                (Some(Frame::Object(..)), Some(_)) => {
                    return Err(err(pos, "expected `,` or `}`"));
                }
                (Some(Frame::Array(_)), Some(_)) => {
                    return Err(err(pos, "expected `,` or `]`"));
                }
            }
        }
    }
}

/// Read `"key" :` at `pos`, set it as the top frame's key, report it to the leak
/// guard, and return the position after the colon.
fn member_key(s: &str, pos: usize, stack: &mut [Frame], sink: &mut Collector<'_>) -> Result<usize> {
    let b = s.as_bytes();
    if b.get(pos) != Some(&b'"') {
        return Err(err(pos, "expected a string key"));
    }
    let (end, escaped) = scan_string(b, pos)?;
    let key = if escaped {
        Key::Owned(std::mem::take(&mut *unescape(
            s.get(pos + 1..end - 1).ok_or(Error::Internal("key span"))?,
        )?))
    } else {
        Key::Raw(pos + 1..end - 1)
    };
    let odd = match &key {
        Key::Raw(r) => s.get(r.clone()).is_some_and(reads_differently),
        Key::Owned(k) => reads_differently(k),
    };
    if let Some(top) = stack.last_mut() {
        *top = Frame::Object(key, odd);
    }
    // A key goes to the leak guard, which reads no other path.
    let path = JsonPath {
        text: s,
        stack,
        unwrap_root: false,
    };
    if let Some(PathElem::Key(k)) = path.get(stack.len().saturating_sub(1)) {
        let slot = Slot {
            span: pos..end,
            kind: SlotKind::JsonString,
        };
        sink.key(&path, slot, k);
    }
    let colon = skip_ws(b, end);
    if b.get(colon) != Some(&b':') {
        return Err(err(colon, "expected `:` after a key"));
    }
    Ok(colon + 1)
}

/// The decoded text of a string whose span (quotes included) is `span`.
fn string_text(s: &str, span: Range<usize>, escaped: bool) -> Result<Text<'_>> {
    let inner = s
        .get(span.start + 1..span.end.saturating_sub(1))
        .ok_or(Error::Internal("string span"))?;
    Ok(if escaped {
        Text::Owned(unescape(inner)?)
    } else {
        Text::Borrowed(inner)
    })
}

/// Validate the string starting at the quote at `start`. Returns the offset after the
/// closing quote and whether it holds escapes.
fn scan_string(b: &[u8], start: usize) -> Result<(usize, bool)> {
    let mut i = start + 1;
    let mut escaped = false;
    loop {
        // Plain bytes up to the next quote or backslash, found at once; none of them
        // may be a control character (checked without a branch per byte).
        let rest = b.get(i..).unwrap_or_default();
        let plain = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
        let run = rest.get(..plain).unwrap_or_default();
        if run.iter().fold(false, |any, c| any | (*c < 0x20)) {
            let at = run.iter().position(|c| *c < 0x20).unwrap_or(0);
            return Err(err(i + at, "control character in a string"));
        }
        i += plain;
        match b.get(i) {
            None => return Err(err(start, "unterminated string")),
            Some(b'"') => return Ok((i + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                match b.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        let cp = hex4(b, i + 2).ok_or_else(|| err(i, "invalid \\u escape"))?;
                        if (0xD800..0xDC00).contains(&cp) {
                            let low = (b.get(i + 6..i + 8) == Some(b"\\u"))
                                .then(|| hex4(b, i + 8))
                                .flatten()
                                .filter(|lo| (0xDC00..0xE000).contains(lo));
                            if low.is_none() {
                                return Err(err(i, "unpaired surrogate in a \\u escape"));
                            }
                            i += 12;
                        } else if (0xDC00..0xE000).contains(&cp) {
                            return Err(err(i, "unpaired surrogate in a \\u escape"));
                        } else {
                            i += 6;
                        }
                    }
                    None => return Err(err(start, "unterminated string")),
                    Some(_) => return Err(err(i, "invalid escape")),
                }
            }
            Some(c) if *c < 0x20 => return Err(err(i, "control character in a string")),
            Some(_) => i += 1,
        }
    }
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = b.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |acc, c| {
        let d = char::from(*c).to_digit(16)?;
        Some(acc * 16 + d)
    })
}

/// Decode the inside of a validated JSON string.
pub(crate) fn unescape(inner: &str) -> Result<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(inner.len()));
    let mut chars = inner.chars();
    let bad = || Error::InvalidBody("invalid JSON string escape".into());
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or_else(bad)?;
        out.push(match e {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hi = hex_chars(&mut chars).ok_or_else(bad)?;
                let cp = if (0xD800..0xDC00).contains(&hi) {
                    if chars.next() != Some('\\') || chars.next() != Some('u') {
                        return Err(bad());
                    }
                    let lo = hex_chars(&mut chars).ok_or_else(bad)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(bad());
                    }
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                char::from_u32(cp).ok_or_else(bad)?
            }
            _ => return Err(bad()),
        });
    }
    Ok(out)
}

fn hex_chars(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    (0..4).try_fold(0u32, |acc, _| Some(acc * 16 + chars.next()?.to_digit(16)?))
}

/// Validate the number at `start`; returns the offset after it.
fn scan_number(b: &[u8], start: usize) -> Result<usize> {
    let mut i = start;
    let digits = |i: &mut usize| {
        let from = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > from
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => {
            i += 1;
            if b.get(i).is_some_and(u8::is_ascii_digit) {
                return Err(err(i, "leading zero in a number"));
            }
        }
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return Err(err(i, "invalid number")),
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return Err(err(i, "expected a digit after the decimal point"));
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return Err(err(i, "expected a digit in the exponent"));
        }
    }
    Ok(i)
}

/// Whether `s` is exactly one JSON number.
pub(crate) fn is_number(s: &str) -> bool {
    scan_number(s.as_bytes(), 0).is_ok_and(|end| end == s.len())
}

/// Append `s` as a JSON string, quotes included.
pub(crate) fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// The decoded text of a JSON slot.
pub(crate) fn decode_slot(text: &[u8], slot: &Slot) -> Result<Zeroizing<String>> {
    let raw = text
        .get(slot.span.clone())
        .and_then(|r| std::str::from_utf8(r).ok())
        .ok_or(Error::Internal("slot outside the document"))?;
    match slot.kind {
        SlotKind::JsonString => {
            let inner = raw
                .get(1..raw.len().saturating_sub(1))
                .ok_or(Error::Internal("string slot"))?;
            unescape(inner)
        }
        _ => Ok(Zeroizing::new(raw.to_owned())),
    }
}

/// Append the new value of a JSON slot. A number slot stays a number if the new text
/// is one; otherwise it becomes a string.
pub(crate) fn encode_slot(out: &mut Vec<u8>, kind: SlotKind, value: &str) {
    if kind == SlotKind::JsonNumber && is_number(value) {
        out.extend_from_slice(value.as_bytes());
    } else {
        write_string(out, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(text: &[u8]) -> std::result::Result<(usize, bool), String> {
        scan_string(text, 0).map_err(|e| e.to_string())
    }

    /// Strings end at their first unescaped quote; a control character before it, an
    /// unknown escape or a missing quote is refused, at the byte it is found.
    #[test]
    fn strings_end_at_the_first_unescaped_quote() {
        assert_eq!(scanned(br#""plain" rest"#), Ok((7, false)));
        assert_eq!(scanned(br#""a\"b\\" x"#), Ok((8, true)));
        assert_eq!(scanned(br#""\u0041\ud83d\ude00""#), Ok((20, true)));
        assert_eq!(scanned(b"\"ok\"\x01"), Ok((4, false)));
        let long = [b"\"".as_slice(), &[b'a'; 300], b"\""].concat();
        assert_eq!(scanned(&long), Ok((302, false)));
        for (text, at, what) in [
            (b"\"ab\x01c\"".as_slice(), 3, "control character"),
            (b"\"a\\n\x1f\"", 4, "control character"),
            (b"\"abc", 0, "unterminated"),
            (b"\"abc\\", 0, "unterminated"),
            (b"\"ab\x00", 3, "control character"),
            (b"\"a\\q\"", 2, "invalid escape"),
            (b"\"\\ud83d\"", 1, "unpaired surrogate"),
        ] {
            let e = scanned(text).expect_err("refused");
            assert!(e.contains(&format!("at byte {at}: {what}")), "{e}");
        }
    }

    #[test]
    fn a_root_wrapper_is_one_member_holding_an_object() {
        for (doc, wrapper) in [
            (r#"{"a":{"b":1}}"#, true),
            (r#" { "a" : { "b" : "}" , "c" : [ {} ] } } "#, true),
            (r#"{"a\"}":{"b":"\"}"}}"#, true),
            (r#"{"a":{"b":1},"c":2}"#, false),
            (r#"{"a":[{"b":1}]}"#, false),
            (r#"{"a":"x"}"#, false),
            (r#"[{"a":{}}]"#, false),
            (r#"{"a":{"b":1}"#, false),
            (r#"{"a":{"b":"1}}"#, false),
            ("", false),
        ] {
            assert_eq!(root_is_wrapper(doc.as_bytes(), 0), wrapper, "{doc}");
        }
    }
}
