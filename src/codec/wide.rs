//! Pass-through bodies in UTF-16 or UTF-32 that declare no charset, as a backend that
//! detects the encoding from the bytes reads them: Python's `json.loads` on bytes (a
//! byte order mark, or where the NULs of the first four bytes are, as RFC 4627 has
//! it) and decoders that sniff a byte order mark.
//!
//! The streaming guard reads such text as ASCII with NULs between
//! ([`guard`](crate::rules::guard)): `4\0 2\0…` is a card to it; and, once the body is
//! known to be wide, also with its NULs dropped, so that its escapes (`&\0#\01\0;\0`)
//! are decoded as in any other body. A character that is not ASCII there (a
//! full-width or Arabic-Indic digit, a no-break space, an en dash) it does not read,
//! so a body holding one is refused (415), as one whose declared charset is UTF-16
//! is. (A rules route reads every character of such a body: its byte-level scan has
//! UTF-16 views.)

use smallvec::SmallVec;

use crate::error::Error;

/// The encodings [`detect`] tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    Utf16Le,
    Utf16Be,
    Utf32Le,
    Utf32Be,
}

impl Width {
    fn unit(self) -> usize {
        match self {
            Width::Utf16Le | Width::Utf16Be => 2,
            Width::Utf32Le | Width::Utf32Be => 4,
        }
    }

    /// The code unit in `bytes` (of [`unit`](Self::unit) length).
    fn value(self, bytes: &[u8]) -> u32 {
        let le = matches!(self, Width::Utf16Le | Width::Utf32Le);
        let fold = |acc: u32, b: &u8| (acc << 8) | u32::from(*b);
        if le {
            bytes.iter().rev().fold(0, fold)
        } else {
            bytes.iter().fold(0, fold)
        }
    }
}

/// What the first four bytes of a body (`head`) say it is in, as Python's
/// `json.detect_encoding` reads them: a UTF-32 or UTF-16 byte order mark, or the
/// NULs of ASCII in UTF-32 or UTF-16 (`{\0"\0` is UTF-16LE). `None`: UTF-8.
pub(crate) fn detect(head: &[u8]) -> Option<Width> {
    match head {
        [0, 0, 0xFE, 0xFF, ..] => Some(Width::Utf32Be),
        [0xFF, 0xFE, 0, 0, ..] => Some(Width::Utf32Le),
        [0xFE, 0xFF, ..] => Some(Width::Utf16Be),
        [0xFF, 0xFE, ..] => Some(Width::Utf16Le),
        [0, 0, _, _, ..] => Some(Width::Utf32Be),
        [0, _, _, _, ..] => Some(Width::Utf16Be),
        [_, 0, 0, 0, ..] => Some(Width::Utf32Le),
        [_, 0, _, _, ..] => Some(Width::Utf16Le),
        _ => None,
    }
}

/// The refusal of a wide body with a character the guard does not read.
pub(crate) fn refusal() -> Error {
    Error::UnsupportedMedia(
        "a body in UTF-16 or UTF-32 with characters other than ASCII: the leak guard reads such a body as ASCII only".into(),
    )
}

/// Whether a body of this Content-Type is text a backend may decode by what its
/// bytes look like: JSON, XML, text, a form, or no type at all. (Binary formats
/// often start with a NUL: a protobuf message, an MP4 or an icon file.)
fn textual(content_type: Option<&http::HeaderValue>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    // Compared in place, in any letter case: this runs for every guarded request.
    let ct = ct.as_bytes();
    let essence = ct
        .iter()
        .position(|b| *b == b';')
        .map_or(ct, |semi| ct.get(..semi).unwrap_or(ct))
        .trim_ascii();
    let starts = |p: &[u8]| {
        essence
            .get(..p.len())
            .is_some_and(|e| e.eq_ignore_ascii_case(p))
    };
    let ends = |s: &[u8]| {
        essence
            .len()
            .checked_sub(s.len())
            .and_then(|at| essence.get(at..))
            .is_some_and(|e| e.eq_ignore_ascii_case(s))
    };
    // A header that is not visible ASCII names no type a backend knows.
    ct.is_ascii()
        && (essence.is_empty()
            || starts(b"text/")
            || ends(b"/json")
            || ends(b"+json")
            || ends(b"/xml")
            || ends(b"+xml")
            || essence.eq_ignore_ascii_case(b"application/x-www-form-urlencoded"))
}

/// The watch over a streamed body's encoding: its first four bytes tell whether it is
/// UTF-16 or UTF-32 ([`detect`]); if so, each character is checked as it streams.
pub(crate) struct Watch {
    state: State,
}

enum State {
    /// Fewer than four bytes seen.
    Head(SmallVec<[u8; 4]>),
    /// UTF-8 (or a binary type): nothing to watch.
    Off,
    Wide {
        width: Width,
        unit: [u8; 4],
        filled: usize,
        /// No character read yet (a byte order mark is one).
        first: bool,
    },
}

impl Watch {
    /// The watch for a body with this (first) Content-Type header.
    pub(crate) fn for_header(content_type: Option<&http::HeaderValue>) -> Watch {
        Watch {
            state: if textual(content_type) {
                State::Head(SmallVec::new())
            } else {
                State::Off
            },
        }
    }

    /// Whether the body is UTF-16 or UTF-32 (as far as its first four bytes tell).
    pub(crate) fn is_wide(&self) -> bool {
        matches!(self.state, State::Wide { .. })
    }

    /// Whether `chunk`, the next bytes of the body, completes a character other than
    /// ASCII in a wide body (its byte order mark aside).
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> bool {
        let mut rest = chunk;
        if let State::Head(head) = &mut self.state {
            let take = rest.len().min(4 - head.len());
            head.extend_from_slice(rest.get(..take).unwrap_or_default());
            rest = rest.get(take..).unwrap_or_default();
            if head.len() < 4 {
                return false;
            }
            let head = std::mem::take(head);
            self.state = match detect(&head) {
                Some(width) => State::Wide {
                    width,
                    unit: [0; 4],
                    filled: 0,
                    first: true,
                },
                None => State::Off,
            };
            if self.units(&head) {
                return true;
            }
        }
        self.units(rest)
    }

    fn units(&mut self, bytes: &[u8]) -> bool {
        let State::Wide {
            width,
            unit,
            filled,
            first,
        } = &mut self.state
        else {
            return false;
        };
        let n = width.unit();
        for &b in bytes {
            if let Some(slot) = unit.get_mut(*filled) {
                *slot = b;
            }
            *filled += 1;
            if *filled < n {
                continue;
            }
            *filled = 0;
            let v = width.value(unit.get(..n).unwrap_or_default());
            let bom = *first && v == 0xFEFF;
            *first = false;
            if v >= 0x80 && !bom {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str, le: bool) -> Vec<u8> {
        text.encode_utf16()
            .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
            .collect()
    }

    fn watch(body: &[u8], pieces: usize) -> bool {
        let mut w = Watch::for_header(None);
        let size = body.len().div_ceil(pieces).max(1);
        body.chunks(size).any(|c| w.feed(c))
    }

    #[test]
    fn detects_as_python_json_does() {
        assert_eq!(detect(b"\xff\xfe\0\0"), Some(Width::Utf32Le));
        assert_eq!(detect(b"\0\0\xfe\xff"), Some(Width::Utf32Be));
        assert_eq!(detect(b"\xff\xfe{\0"), Some(Width::Utf16Le));
        assert_eq!(detect(b"\xfe\xff\0{"), Some(Width::Utf16Be));
        assert_eq!(detect(b"{\0\"\0"), Some(Width::Utf16Le));
        assert_eq!(detect(b"\0{\0\""), Some(Width::Utf16Be));
        assert_eq!(detect(b"{\0\0\0"), Some(Width::Utf32Le));
        assert_eq!(detect(b"\0\0\0{"), Some(Width::Utf32Be));
        assert_eq!(detect(b"{\"a\""), None);
        assert_eq!(detect("\u{feff}{}".as_bytes()), None);
    }

    #[test]
    fn a_character_other_than_ascii_in_a_wide_body_is_found() {
        // Found by the leak differential (`tests/proxy/leak_differential`): a UTF-16
        // body with a full-width digit, `424242424242424２`, went upstream from a
        // pass-through route, a card to Python's `json.loads`.
        for le in [true, false] {
            for bom in ["\u{feff}", ""] {
                let card = utf16(&format!("{bom}note: 424242424242424\u{ff12}"), le);
                let clean = utf16(&format!("{bom}note: 4242 4242 4242 4242"), le);
                for pieces in [1, 3, 7, card.len()] {
                    assert!(watch(&card, pieces), "{le} {bom:?} {pieces}");
                    assert!(!watch(&clean, pieces), "{le} {bom:?} {pieces}");
                }
            }
        }
        // UTF-8, with non-ASCII text, is not watched; nor is a binary type.
        assert!(!watch("note: 424242424242424\u{ff12}".as_bytes(), 1));
        let binary = http::HeaderValue::from_static("application/octet-stream");
        let mut w = Watch::for_header(Some(&binary));
        assert!(!w.feed(b"\x08\0\xff\xff\xff\xff"));
        // A short body is not enough to say.
        assert!(!watch(b"\xff\xfe", 1));
    }

    #[test]
    fn text_types_are_watched_in_any_letter_case() {
        for (ct, watched) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("  text/plain  ;x=1", true),
            ("TEXT/HTML", true),
            ("application/vnd.api+JSON", true),
            ("application/soap+xml", true),
            ("Text/XML", true),
            ("application/X-WWW-Form-Urlencoded", true),
            ("", true),
            ("; charset=utf-16", true),
            ("application/octet-stream", false),
            ("application/json-seq", false),
            ("image/x-icon", false),
            ("multipart/form-data; boundary=x", false),
        ] {
            let v = http::HeaderValue::from_static(ct);
            assert_eq!(textual(Some(&v)), watched, "{ct:?}");
        }
        assert!(textual(None));
        let latin = http::HeaderValue::from_bytes(b"text/plain; name=\xe9").unwrap();
        assert!(!textual(Some(&latin)));
    }
}
