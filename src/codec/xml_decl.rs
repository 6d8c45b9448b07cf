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

/// Whether `text` holds an XML declaration (`<?xml`, in any case) whose `encoding`
/// names a charset the leak guard cannot read ([`super::media::ascii_transparent`]).
/// A declaration cut off by the end of `text` is read as far as it goes (an encoding
/// whose closing quote is not there yet is not read: see [`seam`]).
pub(crate) fn declares_xml_encoding(text: &[u8]) -> bool {
    memchr::memchr_iter(b'<', text).any(|i| {
        let Some(rest) = text.get(i..) else {
            return false;
        };
        if !rest
            .get(..OPEN.len())
            .is_some_and(|o| o.eq_ignore_ascii_case(OPEN))
        {
            return false;
        }
        let decl = rest.get(..rest.len().min(MAX_DECL)).unwrap_or(rest);
        let decl = match memchr::memmem::find(decl, b"?>") {
            Some(end) => decl.get(..end).unwrap_or(decl),
            None => decl,
        };
        encoding(decl)
            .is_some_and(|e| !std::str::from_utf8(e).is_ok_and(super::media::ascii_transparent))
    })
}

/// The value of the `encoding` pseudo-attribute of a declaration, if it has one
/// (`encoding = 'x'`, in any case, either quote).
fn encoding(decl: &[u8]) -> Option<&[u8]> {
    const NAME: &[u8] = b"encoding";
    let at = decl
        .windows(NAME.len())
        .position(|w| w.eq_ignore_ascii_case(NAME))?;
    let rest = decl.get(at + NAME.len()..)?;
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
        let opens = OPEN
            .get(..head.len())
            .is_some_and(|o| o.eq_ignore_ascii_case(head));
        if !opens {
            continue;
        }
        if memchr::memmem::find(rest, b"?>").is_none() {
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
            (br#"<?XML VERSION="1.0" ENCODING="ISO-2022-JP"?>"#, true),
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
