//! The test's decoders for what older and rarer backends decode, none of them
//! vaultgate's: a body deflated (zlib or raw DEFLATE, `flate2`) or gzipped, a whole
//! body in UTF-32 (either byte order, with or without a byte order mark: `encoding_rs`
//! has no UTF-32, so by code units here), and the escapes of old JavaScript
//! `unescape` and IIS (`%uXXXX`, surrogate pairs as two) and of C, Python and PHP
//! strings (`\xHH`, octal `\NNN`, as Python's `unicode_escape` reads them).

use std::io::Read as _;

/// `bytes` decompressed each way that reads them whole: gzip (members one after
/// another), zlib, raw DEFLATE.
pub fn decompressed(bytes: &[u8]) -> Vec<Vec<u8>> {
    let limit = 16 << 20;
    let mut out = Vec::new();
    let mut gz = Vec::new();
    if flate2::read::MultiGzDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut gz)
        .is_ok()
    {
        out.push(gz);
    }
    let mut zlib = Vec::new();
    if flate2::read::ZlibDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut zlib)
        .is_ok()
    {
        out.push(zlib);
    }
    let mut raw = Vec::new();
    if flate2::read::DeflateDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut raw)
        .is_ok()
    {
        out.push(raw);
    }
    out.retain(|d| !d.is_empty());
    out
}

/// `bytes` read as UTF-32 little- and big-endian, a leading byte order mark dropped,
/// a unit that is no character as U+FFFD.
pub fn utf32(bytes: &[u8]) -> [String; 2] {
    let read = |le: bool| -> String {
        bytes
            .chunks_exact(4)
            .map(|u| {
                let u = [u[0], u[1], u[2], u[3]];
                let v = if le {
                    u32::from_le_bytes(u)
                } else {
                    u32::from_be_bytes(u)
                };
                char::from_u32(v).unwrap_or('\u{fffd}')
            })
            .collect::<String>()
            .trim_start_matches('\u{feff}')
            .to_owned()
    };
    [read(true), read(false)]
}

/// `t` with `%uXXXX` (a surrogate pair of two as one character), `\xHH` and octal
/// `\NNN` (one to three digits) decoded, the rest kept; `None` if it has none.
pub fn unescape(t: &str) -> Option<String> {
    if !t.contains(['%', '\\']) {
        return None;
    }
    let b = t.as_bytes();
    let hex = |from: usize, n: usize| -> Option<u32> {
        let s = t.get(from..from + n)?;
        s.bytes()
            .all(|c| c.is_ascii_hexdigit())
            .then(|| u32::from_str_radix(s, 16).ok())
            .flatten()
    };
    let mut out = String::with_capacity(t.len());
    let mut changed = false;
    let mut i = 0;
    while i < b.len() {
        let lead = b[i];
        let next = b.get(i + 1).copied();
        if lead == b'%'
            && matches!(next, Some(b'u' | b'U'))
            && let Some(unit) = hex(i + 2, 4)
        {
            let low = (t
                .get(i + 6..i + 8)
                .is_some_and(|p| p.eq_ignore_ascii_case("%u")))
            .then(|| hex(i + 8, 4))
            .flatten();
            let pair = low.and_then(|low| {
                char::decode_utf16([unit as u16, low as u16])
                    .next()
                    .and_then(Result::ok)
                    .filter(|c| u32::from(*c) > 0xFFFF)
            });
            if let Some(c) = pair {
                out.push(c);
                i += 12;
            } else {
                out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                i += 6;
            }
            changed = true;
            continue;
        }
        if lead == b'\\'
            && next == Some(b'x')
            && let Some(v) = hex(i + 2, 2)
        {
            out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
            i += 4;
            changed = true;
            continue;
        }
        if lead == b'\\' && matches!(next, Some(b'0'..=b'7')) {
            let n = b[i + 1..]
                .iter()
                .take(3)
                .take_while(|c| (b'0'..=b'7').contains(c))
                .count();
            let v = t
                .get(i + 1..i + 1 + n)
                .and_then(|o| u32::from_str_radix(o, 8).ok())
                .unwrap_or(0xFFFD);
            out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
            i += 1 + n;
            changed = true;
            continue;
        }
        // Copy one character.
        let len = t[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&t[i..i + len]);
        i += len;
    }
    changed.then_some(out)
}
