//! XML declarations that name an encoding: `<?xml version="1.0" encoding="Shift_JIS"?>`.
//!
//! An XML parser decodes the document after the declaration in the encoding it
//! names, whatever the Content-Type says (Java's reads the bytes of `Shift_JIS`,
//! `GB18030`, `Big5`, `EUC-JP` or `ISO-2022-JP` full-width digits as `４２４２…`, which
//! its number parsing and any NFKC normalization read as digits). Declarations are
//! read anywhere in the bytes (a multipart part's content starts mid-body). What a
//! request's own bytes declare is refused where the guard cannot read it
//! (`codec::xml_decl`); bytes a decoder produced (base64 in a field, a base64
//! multipart part) are also read as their declaration says ([`decoded`]).

/// The longest declaration read: longer ones are not written by any client, and one
/// cut between streamed chunks is kept at most this long.
pub const MAX_DECL: usize = 512;

const OPEN: &[u8] = b"<?xml";
const CLOSE: &[u8] = b"?>";
const NAME: &[u8] = b"encoding";

/// Whether `text` holds an XML declaration (`<?xml … ?>`) whose `encoding` value
/// `pick` picks (called with each declared value, in order). Names
/// are matched as XML spells them (its names are case-sensitive: parsers refuse
/// `<?XML`). A declaration cut off by the end of `text` is read as far as it goes
/// (an encoding whose closing quote is not there yet is not read: see [`seam`]).
///
/// Linear in `text`: each needle's occurrences are walked once, whatever the text
/// repeats (a streamed body of `<?xml<?xml…` costs no more than its length).
pub fn any_encoding(text: &[u8], mut pick: impl FnMut(&[u8]) -> bool) -> bool {
    // Most bodies hold no `<?xml` at all: one pass for a `<` tells, before the
    // searchers for three needles are built.
    let Some(first) =
        memchr::memchr_iter(b'<', text).find(|&i| text.get(i..i + OPEN.len()) == Some(OPEN))
    else {
        return false;
    };
    let text = text.get(first..).unwrap_or_default();
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
        let declared = text.get(name + NAME.len()..end).and_then(value);
        if declared.is_some_and(&mut pick) {
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
pub fn seam(text: &[u8]) -> &[u8] {
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

/// `bytes` decoded as the first XML declaration in them (or else the first HTML
/// `<meta charset>`, [`super::html_meta`]) says, when it names an
/// encoding other than UTF-8 that `encoding_rs` knows (labels as the WHATWG spec
/// lists them: `Shift_JIS`, `sjis`, `GB18030`, `Big5`, `EUC-JP`, `EUC-KR`,
/// `ISO-2022-JP`, the single-byte code pages…); `None` otherwise.
pub fn decoded(bytes: &[u8]) -> Option<zeroize::Zeroizing<String>> {
    let mut encoding = None;
    // The first label of another encoding: a UTF-8 declaration before a `<meta
    // charset="Shift_JIS">` does not hide it (jsoup reads the meta first, an XML
    // parser the declaration).
    let mut known = |label: &[u8]| {
        encoding = encoding_rs::Encoding::for_label(label).filter(|e| *e != encoding_rs::UTF_8);
        encoding.is_some()
    };
    if !any_encoding(bytes, &mut known) {
        super::html_meta::any_charset(bytes, &mut known);
    }
    let encoding = encoding?;
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    Some(zeroize::Zeroizing::new(text.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_declaration_is_kept_for_the_next_chunk() {
        let text = br#"<?xml version="1.0" encoding="Shift_JIS"?><a>x</a>"#;
        let named = |t: &[u8]| any_encoding(t, |e| e == b"Shift_JIS");
        for cut in 0..=text.len() {
            let (a, b) = text.split_at(cut);
            let joined = [seam(a), b].concat();
            assert!(named(a) || named(&joined), "cut at {cut}");
        }
        assert!(seam(b"<a>x</a>").is_empty());
        assert!(seam(br#"<?xml version="1.0"?><a>"#).is_empty());
        assert_eq!(seam(b"abc<?x"), b"<?x");
    }

    #[test]
    fn a_declared_document_is_decoded_as_declared() {
        let mut doc = br#"<?xml version="1.0" encoding="Shift_JIS"?><a>"#.to_vec();
        doc.extend_from_slice(b"\x82\x53\x82\x51</a>");
        assert!(decoded(&doc).unwrap().contains("\u{FF14}\u{FF12}"));
        assert!(decoded(br#"<?xml version="1.0" encoding="UTF-8"?><a/>"#).is_none());
        assert!(decoded(br#"<?xml version="1.0" encoding="x-no-such"?><a/>"#).is_none());
        assert!(decoded(b"<a>no declaration</a>").is_none());
        let mut page = br#"<html><meta charset="sjis"><p>"#.to_vec();
        page.extend_from_slice(b"\x82\x53\x82\x51</p>");
        assert!(decoded(&page).unwrap().contains("\u{FF14}\u{FF12}"));
        let mut both =
            br#"<?xml version="1.0" encoding="UTF-8"?><html><meta charset="sjis"><p>"#.to_vec();
        both.extend_from_slice(b"\x82\x53\x82\x51</p>");
        assert!(decoded(&both).unwrap().contains("\u{FF14}\u{FF12}"));
    }
}
