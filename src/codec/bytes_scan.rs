//! Byte-level leak scanning, for bodies and parts no codec reads and for text that
//! still holds an encoding after its codec decoded it.
//!
//! The bytes are read as a few *views*, each a digit stream with a position map back
//! to the bytes, and every view is handed to the leak guard ([`guard::scan`]):
//!
//! - the **direct** view: UTF-8 as it is (so the guard's own Unicode handling
//!   applies), with `\uXXXX` escapes (surrogate pairs included), XML/HTML numeric
//!   character references (`&#52;`, `&#x34;`, `&#X0034`, with or without `;`),
//!   `&nbsp;`, JSON's short escapes of separators (`\/`, `\t`, …) and `%XX` escapes
//!   decoded (of ASCII, of a UTF-8 sequence, or of a byte of a single-byte
//!   charset: `%A0`); a byte that is not UTF-8 reads as a space, so it cannot split
//!   a card the upstream may still read around it, or as the digit it is in a
//!   single-byte charset (`\xb2`, a superscript two in Latin-1). NULs
//!   pass to the guard, which reads them as nothing: ASCII in UTF-16 or UTF-32 reads
//!   here as it is;
//! - two **UTF-16LE** views (at even and at odd offsets), when the bytes hold enough
//!   NULs to be UTF-16 text: every character in UTF-16 (full-width digits, Unicode
//!   spaces), little- or big-endian, reads as itself in one of them.
//!
//! A hit is *plain* when its bytes are exactly what the guard read (no decoding
//! between them) and the guard can replace it in place (ASCII digits, no leading
//! zero): only those are replaced. The caller refuses the rest.

use std::ops::Range;

use crate::rules::guard;

/// One card-shaped hit in the scanned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hit {
    /// The bytes it covers.
    pub range: Range<usize>,
    /// Whether those bytes are the digits as the guard read them (replaceable).
    pub plain: bool,
}

/// The fewest NUL bytes for which the UTF-16 views are read: every ASCII digit of a
/// card in UTF-16 comes with one.
pub(super) const MIN_NULS: usize = guard::MIN_DIGITS;

/// Whether text a codec has decoded may still hide a card in an encoding the guard
/// does not read: a `\u` or one-letter escape, a character reference, a `%` escape,
/// XML markup, a NUL, or a byte that is not UTF-8 (a digit of a single-byte charset).
/// A cheap check for hot paths; every such encoding of a card also has at least
/// [`guard::MIN_DIGITS`] ASCII digits or bytes that are not ASCII, so callers check
/// [`guard::may_contain`] first.
pub(crate) fn worth_scanning(text: &[u8]) -> bool {
    text.windows(2).any(|w| {
        matches!(
            w,
            [b'\\', b'u' | b'U' | b'/' | b't' | b'n' | b'r' | b'f' | b'v']
                | [b'&', b'#' | b'a'..=b'z' | b'A'..=b'Z']
                | [b'%', b'0'..=b'9']
                | [b'<', b'!' | b'?']
                | [b']', b']']
        )
    }) || text.contains(&0)
        || std::str::from_utf8(text).is_err()
}

/// Every hit in `data`, in every view, in order of position, without duplicates.
pub(crate) fn scan(data: &[u8]) -> Vec<Hit> {
    let mut hits = Vec::new();
    each_hit(data, |hit, _| hits.push(hit));
    hits.sort_by_key(|h| (h.range.start, h.range.end));
    hits.dedup();
    hits
}

/// Whether `coded` (a body as sent, in a content coding) holds a hit whose digits
/// `decoded` (the same body decoded) does not: digits that decoding drops, such as a
/// gzip member's own header fields (FNAME, FCOMMENT, FEXTRA), which the upstream
/// still gets and may store or log. A hit in both is the decoded body's, which the
/// guard reads there. Compressed data is as good as random bytes, so `coded` rarely
/// holds a hit at all, and `decoded` is read only when it does.
pub(crate) fn only_in_coded(coded: &[u8], decoded: &[u8]) -> bool {
    let raw = distinct_hits(coded);
    if raw.is_empty() {
        return false;
    }
    // Sorted, so that each side is read once (one search of the coded hits per
    // decoded hit would cost their product: quadratic in a body of many cards).
    let plain = distinct_hits(decoded);
    raw.iter()
        .any(|d| plain.binary_search_by(|p| p.as_slice().cmp(d)).is_err())
}

/// The digits of every hit in `data` ([`each_hit`]), sorted, each once.
fn distinct_hits(data: &[u8]) -> Vec<zeroize::Zeroizing<Vec<u8>>> {
    let mut hits: Vec<zeroize::Zeroizing<Vec<u8>>> = Vec::new();
    each_hit(data, |_, digits| {
        hits.push(zeroize::Zeroizing::new(digits.to_vec()))
    });
    hits.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
    hits.dedup();
    hits
}

/// Call `f` with every hit in `data` and its digits as the guard read them (after
/// any leading zeros), view by view: the same hit may come more than once.
pub(crate) fn each_hit(data: &[u8], mut f: impl FnMut(Hit, &[u8])) {
    if !guard::may_contain(data) {
        return;
    }
    let mut view = View::with_capacity(data.len());
    direct(data, &mut view);
    view.hits(data, &mut f);
    if data.iter().filter(|b| **b == 0).count() >= MIN_NULS {
        for align in [0, 1] {
            view.clear();
            utf16le(data, align, &mut view);
            view.hits(data, &mut f);
        }
    }
}

/// A decoded view: bytes for the guard and, per byte, the source bytes it came from.
pub(super) struct View {
    pub(super) text: Vec<u8>,
    pub(super) from: Vec<(u32, u32)>,
    /// Scratch: the hits' ranges in `text`, whether each is replaceable, and its
    /// digits.
    ranges: Vec<(Range<usize>, bool, zeroize::Zeroizing<Vec<u8>>)>,
}

impl View {
    pub(super) fn with_capacity(n: usize) -> View {
        View {
            text: Vec::with_capacity(n),
            from: Vec::with_capacity(n),
            ranges: Vec::new(),
        }
    }

    pub(super) fn clear(&mut self) {
        self.text.clear();
        self.from.clear();
    }

    /// Append `bytes`, all read from `src`.
    fn push(&mut self, bytes: &[u8], src: Range<usize>) {
        let s = u32::try_from(src.start).unwrap_or(u32::MAX);
        let e = u32::try_from(src.end).unwrap_or(u32::MAX);
        for b in bytes {
            self.text.push(*b);
            self.from.push((s, e));
        }
    }

    fn push_char(&mut self, c: char, src: Range<usize>) {
        let mut buf = [0u8; 4];
        self.push(c.encode_utf8(&mut buf).as_bytes(), src);
    }

    /// The bytes of the source (`len` long) that `r` of the view was read from.
    pub(super) fn source(&self, r: &Range<usize>, len: usize) -> Option<Range<usize>> {
        let first = self.from.get(r.start)?;
        let last = self.from.get(r.end.checked_sub(1)?)?;
        let (start, end) = (
            usize::try_from(first.0).ok()?,
            usize::try_from(last.1).ok()?,
        );
        (start < end && end <= len).then_some(start..end)
    }

    /// Run the guard over the view and map its hits back to `data`.
    fn hits(&mut self, data: &[u8], f: &mut impl FnMut(Hit, &[u8])) {
        self.ranges.clear();
        // Only a hit the guard can replace in place (ASCII digits, no leading zero)
        // may be plain.
        let ranges = &mut self.ranges;
        guard::scan_hits(&self.text, |hit| {
            let digits = zeroize::Zeroizing::new(hit.digits().to_vec());
            ranges.push((hit.range.clone(), hit.ascii, digits));
        });
        for (r, ascii, digits) in &self.ranges {
            let r = r.clone();
            let Some(Range { start, end }) = self.source(&r, data.len()) else {
                continue;
            };
            let plain = *ascii && data.get(start..end) == self.text.get(r);
            f(
                Hit {
                    range: start..end,
                    plain,
                },
                digits,
            );
        }
    }
}

/// The direct view: UTF-8 as is, escapes and references decoded.
pub(super) fn direct(data: &[u8], view: &mut View) {
    let mut i = 0;
    while let Some(&b) = data.get(i) {
        if b.is_ascii() {
            let rest = data.get(i..).unwrap_or_default();
            if let Some(len) = crate::rules::deep::markup_len(rest) {
                // XML markup a parser drops from the text around it: nothing.
                i += len;
                continue;
            }
            if let Some((None, len)) = crate::rules::deep::numeric_ref_at(rest) {
                // A reference to a control a decoder drops (`&#1;`): nothing.
                i += len;
                continue;
            }
            if let Some((c, len)) = escape_at(data, i) {
                view.push_char(c, i..i + len);
                i += len;
            } else {
                view.push(&[b], i..i + 1);
                i += 1;
            }
            continue;
        }
        let len = utf8_len(b);
        match data.get(i..i + len).map(std::str::from_utf8) {
            Some(Ok(s)) => {
                view.push(s.as_bytes(), i..i + len);
                i += len;
            }
            _ => {
                // A digit of a single-byte charset (`\xb2`, superscript two in
                // Latin-1) reads as that digit, any other byte as a space.
                let c = crate::rules::digits::single_byte_char(b);
                if crate::rules::digits::value(c).is_some() {
                    view.push_char(c, i..i + 1);
                } else {
                    view.push(b" ", i..i + 1);
                }
                i += 1;
            }
        }
    }
}

/// The length a UTF-8 sequence starting with `b` claims.
fn utf8_len(b: u8) -> usize {
    match b {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// The character an escape or reference at `i` stands for, and its length.
fn escape_at(data: &[u8], i: usize) -> Option<(char, usize)> {
    match data.get(i)? {
        b'\\' if matches!(data.get(i + 1), Some(b'u' | b'U')) => {
            let hi = hex_at(data, i + 2, 4)?;
            if (0xD800..0xDC00).contains(&hi) {
                let lo = (matches!(data.get(i + 6..i + 8), Some([b'\\', b'u' | b'U'])))
                    .then(|| hex_at(data, i + 8, 4))
                    .flatten()
                    .filter(|lo| (0xDC00..0xE000).contains(lo))?;
                let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Some((char::from_u32(cp)?, 12));
            }
            Some((char::from_u32(hi)?, 6))
        }
        // JSON's short escapes of separators (`4242\/4242\/…`).
        b'\\' => {
            let c = match data.get(i + 1)? {
                b'/' => '/',
                b't' => '\t',
                b'n' => '\n',
                b'r' => '\r',
                b'f' => '\u{c}',
                b'v' => '\u{b}',
                _ => return None,
            };
            Some((c, 2))
        }
        b'&' => char_ref(data, i),
        b'%' => percent_char(data, i),
        _ => None,
    }
}

/// The character `%XX` escapes at `i` spell: one escape of an ASCII byte; the escapes
/// of a UTF-8 sequence (`%C2%A0`, a no-break space); or one byte that is not UTF-8 as
/// a single-byte charset reads it (`%A0` in a Latin-1 form), as the leak guard's
/// decoder reads escaped bytes ([`crate::rules::digits::text_of`]).
fn percent_char(data: &[u8], i: usize) -> Option<(char, usize)> {
    let first = u8::try_from(hex_at(data, i + 1, 2)?).ok()?;
    let mut bytes = [first, 0, 0, 0];
    let n = utf8_len(first);
    for k in 1..n {
        let at = i + 3 * k;
        let b = (data.get(at) == Some(&b'%'))
            .then(|| hex_at(data, at + 1, 2))
            .flatten()
            .and_then(|v| u8::try_from(v).ok());
        match (b, bytes.get_mut(k)) {
            (Some(b), Some(slot)) => *slot = b,
            _ => break,
        }
    }
    if let Some(c) = bytes
        .get(..n)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.chars().next())
    {
        return Some((c, 3 * n));
    }
    Some((crate::rules::digits::single_byte_char(first), 3))
}

/// `&#52;`, `&#x34;`, `&#X0034` (as HTML reads them:
/// [`crate::rules::deep::numeric_ref_at`]) or a named reference (`&nbsp;`, `&ndash;`:
/// [`crate::rules::deep::named_ref_at`]).
fn char_ref(data: &[u8], i: usize) -> Option<(char, usize)> {
    let rest = data.get(i..)?;
    match crate::rules::deep::numeric_ref_at(rest) {
        Some((c, len)) => Some((c?, len)),
        None => crate::rules::deep::named_ref_at(rest),
    }
}

fn hex_at(data: &[u8], at: usize, n: usize) -> Option<u32> {
    data.get(at..at + n)?.iter().try_fold(0u32, |acc, c| {
        let d = char::from(*c).to_digit(16)?;
        Some(acc * 16 + d)
    })
}

/// A UTF-16LE view starting at byte `align` (0 or 1). Big-endian text reads as
/// little-endian at the other alignment as far as ASCII goes.
pub(super) fn utf16le(data: &[u8], align: usize, view: &mut View) {
    let unit = |at: usize| -> Option<u32> {
        let b = data.get(at..at + 2)?;
        Some(u32::from(*b.first()?) | (u32::from(*b.get(1)?) << 8))
    };
    let mut i = align;
    while let Some(u) = unit(i) {
        if (0xD800..0xDC00).contains(&u)
            && let Some(lo) = unit(i + 2).filter(|lo| (0xDC00..0xE000).contains(lo))
            && let Some(c) = char::from_u32(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00))
        {
            view.push_char(c, i..i + 4);
            i += 4;
            continue;
        }
        match char::from_u32(u) {
            Some(c) => view.push_char(c, i..i + 2),
            None => view.push(b"x", i..i + 2),
        }
        i += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = "4242424242424242";

    fn utf16(s: &str, le: bool) -> Vec<u8> {
        s.encode_utf16()
            .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
            .collect()
    }

    /// The one hit in `data`; where the guard also reads some encoding on its own
    /// (ASCII in UTF-16, its NULs read as nothing, say), the decoded (not plain) hit,
    /// the widest where two views read it (a UTF-16 view's hit ends after the last
    /// digit's NUL, the direct view's before it).
    fn one(data: &[u8]) -> Hit {
        let hits = scan(data);
        assert!(
            !hits.is_empty(),
            "no hit in {:?}",
            String::from_utf8_lossy(data)
        );
        let decoded: Vec<&Hit> = hits.iter().filter(|h| !h.plain).collect();
        match decoded.as_slice() {
            [] if hits.len() == 1 => hits[0].clone(),
            [first, rest @ ..] => {
                for h in rest {
                    assert!(
                        h.range.start < first.range.end && first.range.start < h.range.end,
                        "{hits:?} in {:?}",
                        String::from_utf8_lossy(data)
                    );
                }
                decoded
                    .iter()
                    .max_by_key(|h| h.range.len())
                    .map(|h| (*h).clone())
                    .unwrap()
            }
            _ => panic!("{hits:?} in {:?}", String::from_utf8_lossy(data)),
        }
    }

    #[test]
    fn plain_digits_are_plain_hits() {
        let data = format!("note: {CARD}.");
        let h = one(data.as_bytes());
        assert_eq!(&data[h.range.clone()], CARD);
        assert!(h.plain);
    }

    #[test]
    fn zero_padded_digits_are_not_plain() {
        let h = one(b"note: 0004242424242424242.");
        assert_eq!(h.range, 6..25);
        assert!(!h.plain);
    }

    #[test]
    fn digits_around_bytes_that_are_not_utf8() {
        let mut data = b"\xff\xfe".to_vec();
        data.extend_from_slice(CARD.as_bytes());
        data.extend_from_slice(b"\x80 x");
        let h = one(&data);
        assert_eq!(h.range, 2..18);
        assert!(h.plain);
    }

    #[test]
    fn json_escapes_are_decoded_and_not_plain() {
        let esc: String = CARD
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let data = format!(r#"{{"note":"{esc}"}}"#);
        let h = one(data.as_bytes());
        assert!(!h.plain);
        assert_eq!(h.range, 9..9 + esc.len());
        // Partly escaped.
        let h = one(br#"{"n":"4242\u003424242424242"}"#);
        assert!(!h.plain);
        // Upper-case U.
        assert!(!one(br"\U0034242424242424242").plain);
    }

    #[test]
    fn character_references_are_decoded() {
        let dec: String = CARD.chars().map(|c| format!("&#{};", c as u32)).collect();
        let hex: String = CARD
            .chars()
            .map(|c| format!("&#x{:x};", c as u32))
            .collect();
        let no_semi: String = CARD
            .chars()
            .map(|c| format!("&#X{:04X}", c as u32))
            .collect();
        for data in [dec, hex, no_semi] {
            let h = one(format!("<p>{data}</p>").as_bytes());
            assert!(!h.plain, "{data}");
            assert_eq!(h.range.start, 3);
        }
        // Mixed with plain digits.
        assert!(!one(b"4242&#52;24242424242").plain);
        // Found by the leak differential (`tests/proxy/leak_differential`): 128 to 159
        // are windows-1252's characters to HTML (`&#149;` a bullet).
        assert!(!one(b"42424242424242&#149;42").plain);
        // And a reference Python's `html.unescape` drops is nothing.
        assert!(!one(b"4242424242424&#1;242").plain);
        assert!(!one(b"4242&#1;&#127;&#x8;&#11;&#xFFFE;4242 4242 4242").plain);
    }

    #[test]
    fn percent_escapes_of_bytes_that_are_not_ascii_are_decoded() {
        // Found by the leak differential: `%A0` (a no-break space in a Latin-1 form)
        // and `%C2%A0` (one in UTF-8) between digits, next to a raw Latin-1 one.
        for data in [
            b"4242424242424%A0\xa0242".as_slice(),
            b"4242424242424%C2%A0242",
            b"4242 4242%E2%80%934242 4242",
        ] {
            assert!(!one(data).plain, "{data:?}");
        }
    }

    #[test]
    fn percent_escapes_are_decoded() {
        assert!(!one(b"card=4242%204242%204242%204242").plain);
    }

    #[test]
    fn utf16_either_endianness_any_alignment() {
        for le in [true, false] {
            for prefix in [&b""[..], b"x", b"\xff\xfe", b"\xfe\xff\x00"] {
                let mut data = prefix.to_vec();
                data.extend(utf16(&format!("{{\"n\":\"{CARD}\"}}"), le));
                let h = one(&data);
                assert!(!h.plain, "le={le} prefix={prefix:?}");
            }
        }
        // With separators, and the hit's bytes cover the card.
        let data = utf16("x 4242 4242 4242 4242 y", true);
        let h = one(&data);
        assert_eq!(h.range, 4..42);
    }

    /// UTF-32 and spaced UTF-16 read through the direct view (the guard reads NULs
    /// as nothing); a NUL inside a hit's span makes it not plain, so it is refused.
    #[test]
    fn nul_interleaved_cards_are_not_plain() {
        let utf32: Vec<u8> = "{\"note\":\"4242 4242 4242 4242\"}"
            .chars()
            .flat_map(|c| u32::from(c).to_le_bytes())
            .collect();
        let h = one(&utf32);
        assert!(!h.plain);
        assert_eq!(h.range.start, 36);
        for le in [true, false] {
            let data = utf16("4242 - 4242 - 4242 - 4242", le);
            assert!(scan(&data).iter().all(|h| !h.plain), "le={le}");
            assert!(!scan(&data).is_empty(), "le={le}");
        }
        let h = one(b"4242\0 4242 4242 4242");
        assert!(!h.plain);
        assert_eq!(h.range, 0..20);
        // A UTF-16 text without digits is nothing.
        assert!(scan(&utf16("{\"note\":\"hello - world\"}", true)).is_empty());
    }

    #[test]
    fn nothing_to_find() {
        assert!(scan(b"").is_empty());
        assert!(scan(b"4242424242424241").is_empty());
        assert!(scan(&utf16("4242424242424241", true)).is_empty());
        assert!(scan(b"\\u0034\\u0032 &#52; %34").is_empty());
        assert!(scan(&[0u8; 64]).is_empty());
        // Broken escapes are read as text.
        assert!(scan(b"\\u00zz &# &#x; %zz \\ud800 4242").is_empty());
    }

    #[test]
    fn worth_scanning_spots_encodings() {
        assert!(worth_scanning(br"\u0034"));
        assert!(worth_scanning(b"&#52;"));
        assert!(worth_scanning(b"a\0b"));
        assert!(worth_scanning(b"%34"));
        assert!(!worth_scanning(b"plain 4242 text & more"));
    }

    #[test]
    fn long_inputs_stay_linear() {
        let data = "&#52;".repeat(200_000);
        let _ = scan(data.as_bytes());
        let data = "4\0".repeat(200_000);
        let _ = scan(data.as_bytes());
    }
}
