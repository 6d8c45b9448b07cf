//! XML declarations that name an encoding: `<?xml version="1.0" encoding="Shift_JIS"?>`.
//!
//! An XML parser decodes the document after the declaration in the encoding it
//! names, whatever the Content-Type says (Java's reads the bytes of `Shift_JIS`,
//! `GB18030`, `Big5`, `EUC-JP` or `ISO-2022-JP` full-width digits as `４２４２…`, which
//! its number parsing and any NFKC normalization read as digits). The leak guard
//! reads bytes as UTF-8 or a single-byte code page, so on guarded routes a body that
//! declares an encoding it cannot read is refused, as a Content-Type charset is
//! ([`super::media::check_charset`]); the declaration may be anywhere in the bytes (a
//! multipart part's content starts mid-body).

use crate::error::Error;

/// The longest declaration read: longer ones are not written by any client, and one
/// cut between streamed chunks is kept at most this long.
pub(crate) const MAX_DECL: usize = 512;

const OPEN: &[u8] = b"<?xml";
const CLOSE: &[u8] = b"?>";
const NAME: &[u8] = b"encoding";

/// Whether `text` holds an XML declaration (`<?xml … ?>`) whose `encoding` names a
/// charset the leak guard cannot read ([`super::media::ascii_transparent`]). Names
/// are matched as XML spells them (its names are case-sensitive: parsers refuse
/// `<?XML`). A declaration cut off by the end of `text` is read as far as it goes
/// (an encoding whose closing quote is not there yet is not read: see [`seam`]).
///
/// Linear in `text`: each needle's occurrences are walked once, whatever the text
/// repeats (a streamed body of `<?xml<?xml…` costs no more than its length).
pub(crate) fn declares_xml_encoding(text: &[u8]) -> bool {
    let mut closes = memchr::memmem::find_iter(text, CLOSE).peekable();
    let mut names = memchr::memmem::find_iter(text, NAME).peekable();
    for start in memchr::memmem::find_iter(text, OPEN) {
        let inside = start + OPEN.len();
        while closes.next_if(|&c| c < inside).is_some() {}
        while names.next_if(|&n| n < inside).is_some() {}
        let Some(&name) = names.peek() else {
            // No `encoding` after here: no later declaration names one.
            return false;
        };
        let limit = text.len().min(start + MAX_DECL);
        let end = closes.peek().map_or(limit, |&c| c.min(limit));
        if name >= end {
            continue;
        }
        let declared = text
            .get(name + NAME.len()..end)
            .and_then(value)
            .is_some_and(|e| !std::str::from_utf8(e).is_ok_and(super::media::ascii_transparent));
        if declared {
            return true;
        }
    }
    false
}

/// The value of an `encoding` pseudo-attribute, from just after its name
/// (`= 'x'`, either quote).
fn value(rest: &[u8]) -> Option<&[u8]> {
    let rest = rest
        .trim_ascii_start()
        .strip_prefix(b"=")?
        .trim_ascii_start();
    let (&quote, value) = rest.split_first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    // Unterminated (cut off): not read yet.
    let end = memchr::memchr(quote, value)?;
    value.get(..end)
}

/// What of `text`'s end to keep and read again with the next chunk: a declaration
/// the text starts but does not finish (or the first bytes of `<?xml`), at most
/// [`MAX_DECL`] bytes; empty when there is none.
pub(crate) fn seam(text: &[u8]) -> &[u8] {
    let window = text
        .get(text.len().saturating_sub(MAX_DECL)..)
        .unwrap_or(text);
    for i in memchr::memrchr_iter(b'<', window) {
        let Some(rest) = window.get(i..) else {
            continue;
        };
        let head = rest.get(..OPEN.len()).unwrap_or(rest);
        let opens = OPEN.get(..head.len()).is_some_and(|o| o == head);
        if !opens {
            continue;
        }
        if memchr::memmem::find(rest, CLOSE).is_none() {
            return rest;
        }
        // The last declaration is finished: nothing before it is unfinished.
        return &[];
    }
    &[]
}

/// The refusal of a body that declares an encoding the guard cannot read.
pub(crate) fn refusal() -> Error {
    Error::UnsupportedMedia(
        "an XML declaration names an encoding the leak guard cannot read (use UTF-8, ASCII, ISO 8859 or a Windows code page)".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_read_wherever_they_are() {
        for (text, refused) in [
            (
                &br#"<?xml version="1.0" encoding="Shift_JIS"?><a/>"#[..],
                true,
            ),
            (br#"<?xml version='1.0' encoding = 'gb18030' ?>"#, true),
            (br#"<?xml version="1.0" encoding="ISO-2022-JP"?>"#, true),
            (br#"<?XML VERSION="1.0" ENCODING="ISO-2022-JP"?>"#, false),
            (br#"<?xml version="1.0"?><?xml encoding="EUC-KR"?>"#, true),
            (br#"<?xml<?xml<?xml version="1.0" encoding="Big5"?>"#, true),
            (
                br#"--b\r\n\r\n<?xml version="1.0" encoding="UTF-7"?>"#,
                true,
            ),
            (br#"<?xml version="1.0" encoding="Shift_JIS" "#, true),
            (br#"<?xml version="1.0" encoding="UTF-"#, false),
            (br#"<?xml version="1.0" encoding="UTF-8"?><a/>"#, false),
            (br#"<?xml version="1.0" encoding="iso-8859-1"?>"#, false),
            (br#"<?xml version="1.0" encoding="windows-1252"?>"#, false),
            (br#"<?xml version="1.0"?><a encoding="Shift_JIS"/>"#, false),
            (br#"<a>encoding="Shift_JIS"</a>"#, false),
            (b"<?xml", false),
        ] {
            assert_eq!(
                declares_xml_encoding(text),
                refused,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn repeated_openings_are_read_in_one_pass() {
        // Each opening once, not a window per opening (1 MiB each).
        let openings = b"<?xml".repeat(1 << 18);
        assert!(!declares_xml_encoding(&openings));
        let unfinished = b"<?xml encoding=\"UTF-8\" ".repeat(1 << 15);
        assert!(!declares_xml_encoding(&unfinished));
        let mut last = unfinished;
        last.extend_from_slice(br#"<?xml version="1.0" encoding="Big5"?>"#);
        assert!(declares_xml_encoding(&last));
    }

    #[test]
    fn an_unfinished_declaration_is_kept_for_the_next_chunk() {
        let text = br#"<?xml version="1.0" encoding="Shift_JIS"?><a>x</a>"#;
        for cut in 0..=text.len() {
            let (a, b) = text.split_at(cut);
            let joined = [seam(a), b].concat();
            assert!(
                declares_xml_encoding(a) || declares_xml_encoding(&joined),
                "cut at {cut}"
            );
        }
        assert!(seam(b"<a>x</a>").is_empty());
        assert!(seam(br#"<?xml version="1.0"?><a>"#).is_empty());
        assert_eq!(seam(b"abc<?x"), b"<?x");
    }
}
