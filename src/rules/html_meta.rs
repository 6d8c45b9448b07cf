//! HTML's `<meta charset="Shift_JIS">` and `<meta http-equiv="Content-Type"
//! content="text/html; charset=Shift_JIS">`: the HTML analogue of an XML declaration
//! ([`super::xml_decl`]). jsoup, BeautifulSoup and lxml decode a byte body by it when
//! the Content-Type names no charset, so a body that holds one is read as it names.
//!
//! Read as BeautifulSoup's pattern reads it (`<\s*meta[^>]+charset\s*=\s*["']?value`),
//! only more widely: names in any case, a `charset` anywhere after a `<meta` opening
//! (a `>` inside a quoted attribute does not end a tag to a browser's prescan, so no
//! `>` ends the reach here), and every `charset` there, not only the first or last.

/// How far after a `<meta` opening a `charset=` is read.
pub const REACH: usize = 512;
/// How far after a `<meta` opening a declared value may end; a longer one is read as
/// far as this.
const VALUE_REACH: usize = 2 * REACH;

const META: &[u8] = b"meta";
const NAME: &[u8] = b"charset";

/// Whether `text` holds a `<meta … charset=…` whose value `pick` picks (called with
/// each declared value, in order). A value cut off by the end of `text` is not read
/// yet (see [`seam`]).
///
/// One pass: each `<` and `=` is looked at once, and the white space before an `=`
/// only by that `=`.
pub fn any_charset(text: &[u8], mut pick: impl FnMut(&[u8]) -> bool) -> bool {
    // Most bodies hold no `<meta` at all: told by one pass for a `<`.
    let Some(first) = memchr::memchr_iter(b'<', text).find(|&i| opening(text, i)) else {
        return false;
    };
    let mut open = first;
    let from = first + 1;
    for i in memchr::memchr2_iter(b'<', b'=', text.get(from..).unwrap_or_default()) {
        let at = from + i;
        if text.get(at) == Some(&b'<') {
            if opening(text, at) {
                open = at;
            }
            continue;
        }
        if at - open > REACH || !named(text.get(open..at).unwrap_or_default()) {
            continue;
        }
        let limit = text.len().min(open + VALUE_REACH);
        let Some(value) = text
            .get(at + 1..limit)
            .and_then(|rest| value(rest, limit == text.len() && limit < open + VALUE_REACH))
        else {
            continue;
        };
        if pick(value) {
            return true;
        }
    }
    false
}

/// Whether a `<meta` opens at `at` (`<`, optional white space, `meta` in any case).
fn opening(text: &[u8], at: usize) -> bool {
    let rest = text.get(at + 1..).unwrap_or_default().trim_ascii_start();
    rest.get(..META.len())
        .is_some_and(|m| m.eq_ignore_ascii_case(META))
}

/// Whether `before` (the text up to an `=`) ends in `charset` and optional white space.
fn named(before: &[u8]) -> bool {
    let before = before.trim_ascii_end();
    before
        .len()
        .checked_sub(NAME.len())
        .and_then(|i| before.get(i..))
        .is_some_and(|n| n.eq_ignore_ascii_case(NAME))
}

/// A declared value, from just after its `=`: optional white space and quote, then up
/// to white space, `/`, `;`, a quote or `>`. `open_end`: `rest` stops at the end of the
/// text read so far, so an unterminated value is not read yet.
fn value(rest: &[u8], open_end: bool) -> Option<&[u8]> {
    let rest = rest.trim_ascii_start();
    let rest = match rest.first() {
        Some(b'"' | b'\'') => rest.get(1..)?,
        _ => rest,
    };
    let end = rest
        .iter()
        .position(|&b| b.is_ascii_whitespace() || matches!(b, b'/' | b';' | b'\'' | b'"' | b'>'));
    match end {
        Some(end) => rest.get(..end),
        None if open_end => None,
        None => Some(rest),
    }
}

/// What of `text`'s end to keep and read again with the next chunk: from the last
/// `<meta` opening within reach of the end (a `charset=` may still follow it), or the
/// first bytes of one (`<me`); empty when there is none.
pub fn seam(text: &[u8]) -> &[u8] {
    let window = text
        .get(text.len().saturating_sub(VALUE_REACH)..)
        .unwrap_or(text);
    for i in memchr::memrchr_iter(b'<', window) {
        let Some(rest) = window.get(i..) else {
            continue;
        };
        if opening(window, i) || starts_opening(rest.get(1..).unwrap_or_default()) {
            return rest;
        }
    }
    &[]
}

/// Whether `rest` (after a `<`, to the end of the text) may be the start of `meta`.
fn starts_opening(rest: &[u8]) -> bool {
    let rest = rest.trim_ascii_start();
    rest.len() < META.len()
        && META
            .get(..rest.len())
            .is_some_and(|m| m.eq_ignore_ascii_case(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &[u8], label: &[u8]) -> bool {
        any_charset(text, |v| v.eq_ignore_ascii_case(label))
    }

    #[test]
    fn meta_charsets_are_read_in_every_spelling() {
        for text in [
            &br#"<meta charset="shift_jis">"#[..],
            br#"<META CHARSET=SHIFT_JIS>"#,
            br#"< meta charset = 'shift_jis' />"#,
            br#"<meta http-equiv="Content-Type" content="text/html; charset=shift_jis">"#,
            br#"<meta content="text/html;charset=Shift_JIS" http-equiv="content-type">"#,
            br#"<meta charset="utf-8" charset="shift_jis">"#,
            br#"<meta name="a>b" charset="shift_jis">"#,
            b"<meta\ncharset\n=\nshift_jis\n>",
            br#"<html><head><meta charset="utf-8"><meta charset="shift_jis"></head>"#,
        ] {
            assert!(
                names(text, b"shift_jis"),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        for text in [
            &br#"<p>charset="shift_jis"</p>"#[..],
            br#"<meta charset="utf-8"><p>x</p>"#,
            br#"<meta charset="shift_jis"#,
            br#"<meta name="x" content="y">"#,
            b"",
        ] {
            assert!(
                !names(text, b"shift_jis"),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        let far = [&b"<meta "[..], &[b' '; REACH], br#"charset="shift_jis">"#].concat();
        assert!(!names(&far, b"shift_jis"));
    }

    #[test]
    fn an_unfinished_meta_is_kept_for_the_next_chunk() {
        let text = br#"<html><head>< META http-equiv="content-type" content="text/html; charset=Shift_JIS"></head>"#;
        let named = |t: &[u8]| names(t, b"shift_jis");
        for cut in 0..=text.len() {
            let (a, b) = text.split_at(cut);
            let joined = [seam(a), b].concat();
            assert!(named(a) || named(&joined), "cut at {cut}");
        }
        assert!(seam(b"<p>x</p>").is_empty());
        assert_eq!(seam(b"abc< me"), b"< me");
    }

    #[test]
    fn repeated_openings_are_read_in_one_pass() {
        let openings = b"<meta charset=".repeat(1 << 16);
        assert!(!names(&openings, b"big5"));
        let mut last = b"<meta <p ".repeat(1 << 16);
        last.extend_from_slice(b"<meta charset=big5>");
        assert!(names(&last, b"big5"));
    }
}
