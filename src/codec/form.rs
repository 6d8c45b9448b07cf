//! `application/x-www-form-urlencoded` bodies and URL query strings.
//!
//! Pairs are split on `&`, keys from values on the first `=`; `+` is a space and
//! `%XX` a byte; the decoded bytes must be UTF-8. Bracketed keys (`a[b][0]`) and dotted
//! keys (`a.b`) become paths. On output only replaced components are re-encoded;
//! every other byte is kept.

use std::ops::Range;

use zeroize::Zeroizing;

use super::collect::{Collector, PathView, Slot, SlotKind, Text};
use crate::error::{Error, Result};
use crate::rules::PathElem;
use crate::rules::path::{FieldPath, FormElem};

fn err(what: &str, at: usize) -> Error {
    Error::InvalidBody(format!("invalid form encoding at byte {at}: {what}"))
}

/// A form key as a path: its elements, as [`FieldPath::split_form_key`] splits it.
pub(crate) struct FormPath<'a> {
    pub key: &'a str,
    pub elems: &'a [FormElem],
}

impl PathView for FormPath<'_> {
    fn len(&self) -> usize {
        self.elems.len()
    }

    fn get(&self, i: usize) -> Option<PathElem<'_>> {
        Some(match self.elems.get(i)? {
            FormElem::Key(r) => PathElem::Key(self.key.get(r.clone())?),
            FormElem::Index(n) => PathElem::Index(*n),
        })
    }
}

/// Scan a form body or query string, reporting each key and value to `sink`.
pub(crate) fn scan(text: &[u8], sink: &mut Collector<'_>) -> Result<()> {
    let mut elems = Vec::new();
    let mut start = 0;
    for part in text.split(|b| *b == b'&') {
        let range = start..start + part.len();
        start = range.end + 1;
        if part.is_empty() {
            continue;
        }
        let eq = part.iter().position(|b| *b == b'=');
        let (key_r, val_r) = match eq {
            Some(e) => (
                range.start..range.start + e,
                Some(range.start + e + 1..range.end),
            ),
            None => (range.clone(), None),
        };
        let key = decode(text, key_r.clone())?;
        FieldPath::split_form_key(key.as_str(), &mut elems);
        let path = FormPath {
            key: key.as_str(),
            elems: &elems,
        };
        sink.key(
            &path,
            Slot {
                span: key_r,
                kind: SlotKind::FormPart,
            },
            key.as_str(),
        );
        if let Some(val_r) = val_r {
            let value = decode(text, val_r.clone())?;
            sink.value(
                &path,
                Slot {
                    span: val_r,
                    kind: SlotKind::FormPart,
                },
                value.as_str(),
            );
        }
    }
    Ok(())
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

/// Percent-decode one component (`+` is a space). Borrowed when nothing to decode.
fn decode(text: &[u8], range: Range<usize>) -> Result<Text<'_>> {
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
                    .and_then(|h| Some(hex(*h.first()?)? * 16 + hex(*h.get(1)?)?))
                    .ok_or_else(|| err("invalid percent escape", range.start + i))?;
                out.push(byte);
                i += 3;
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

fn hex(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The decoded text of a form slot.
pub(crate) fn decode_slot(text: &[u8], slot: &Slot) -> Result<Zeroizing<String>> {
    Ok(match decode(text, slot.span.clone())? {
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
