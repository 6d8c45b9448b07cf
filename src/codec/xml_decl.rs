//! Refusing a body whose XML declaration names an encoding the leak guard cannot read
//! (`<?xml version="1.0" encoding="Shift_JIS"?>`): the guard reads bytes as UTF-8 or a
//! single-byte code page, so on guarded routes such a body is refused, as a
//! Content-Type charset is ([`super::media::check_charset`]). The declarations are
//! read by [`crate::rules::xml_decl`]. HTML's `<meta charset="Shift_JIS">` (and
//! `http-equiv` `content="…; charset=…"`) is read the same way: jsoup, BeautifulSoup and
//! lxml decode a byte body by it ([`crate::rules::html_meta`]).

use crate::error::Error;

/// Whether `text` holds an XML declaration whose `encoding`, or an HTML `<meta>`
/// whose `charset`, names a charset the leak guard cannot read
/// ([`super::media::ascii_transparent`]).
pub(crate) fn declares_xml_encoding(text: &[u8]) -> bool {
    let unreadable = |e: &[u8]| !std::str::from_utf8(e).is_ok_and(super::media::ascii_transparent);
    crate::rules::xml_decl::any_encoding(text, unreadable)
        || crate::rules::html_meta::any_charset(text, unreadable)
}

/// What of `text`'s end to keep and read again with the next chunk: an unfinished XML
/// declaration or `<meta` tag (both are suffixes of `text`: the longer holds the other).
pub(crate) fn seam(text: &[u8]) -> &[u8] {
    let xml = crate::rules::xml_decl::seam(text);
    let meta = crate::rules::html_meta::seam(text);
    if xml.len() >= meta.len() { xml } else { meta }
}

/// The refusal of a body that declares an encoding the guard cannot read.
pub(crate) fn refusal() -> Error {
    Error::UnsupportedMedia(
        "an XML declaration or an HTML meta charset names an encoding the leak guard cannot read (use UTF-8, ASCII, ISO 8859 or a Windows code page)".into(),
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
            (br#"<html><meta charset="shift_jis"><p>x</p>"#, true),
            (
                br#"<meta http-equiv="Content-Type" content="text/html; charset=EUC-JP">"#,
                true,
            ),
            (br#"<META CHARSET=UTF-8><p>x</p>"#, false),
            (br#"<meta charset="windows-1252">"#, false),
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
}
