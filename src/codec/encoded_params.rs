//! A part header's values in the encoded forms a MIME parser decodes: RFC 2231
//! parameters (`filename*=utf-8''%34%32…`, continuations `filename*0="4242"`,
//! `filename*1="4242…"`) and RFC 2047 encoded words (`=?utf-8?B?NDI0Mg==?=`,
//! `=?utf-8?Q?=34=32?=`). Python's `email` joins and decodes them, so a card split
//! over sections or hidden in an encoding reaches the backend whole; the guard and
//! the rules read the header as written. Refused, fail-closed, without rebuilding
//! what a backend would:
//!
//! - a continued parameter (`name*0`, `name*1*`…) any section of which holds a digit,
//!   and an encoded word that holds one once decoded (adjacent words are joined by
//!   the decoder, so no single word is scanned for a whole card): 400;
//! - an extended or encoded value in a charset that is not ASCII-transparent
//!   (`=?utf-7?…`, [`media::ascii_transparent`]), or an encoded word whose base64
//!   does not decode: 415 and 400;
//! - a single extended parameter (`filename*=UTF-8''…`, as clients send non-ASCII
//!   file names) is decoded and scanned by the guard like any other header text: a
//!   card in it is refused (400 `card_number_detected`); other digits pass.
//!
//! Ordinary headers (`filename="photo.jpg"`, `filename*=UTF-8''na%C3%AFve.txt`) hold
//! none of these and pass. Parameters are found by splitting on every `;`, quotes or
//! not: a superset of the ones a parser that honours quotes reads.

use ::base64::Engine as _;
use ::base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use percent_encoding::percent_decode;
use zeroize::Zeroizing;

use super::media;
use crate::error::{Error, Result};
use crate::rules::guard;

/// Check one header value (folded lines joined) of a part's header block, which
/// starts at byte `at` of the block.
pub(crate) fn check(value: &[u8], at: usize) -> Result<()> {
    encoded_words(value, at)?;
    for param in value.split(|b| *b == b';') {
        let Some(eq) = memchr::memchr(b'=', param) else {
            continue;
        };
        let name = param.get(..eq).unwrap_or_default().trim_ascii();
        let Some(star) = memchr::memchr(b'*', name) else {
            continue;
        };
        let raw = param.get(eq.saturating_add(1)..).unwrap_or_default();
        extended_param(name, star, raw, at)?;
    }
    Ok(())
}

fn digits_refused(what: &str, at: usize) -> Error {
    Error::InvalidBody(format!(
        "invalid multipart body: a part's header has {what} holding digits, which a backend joins or decodes (send the value plainly; the header at byte {at} of its block)"
    ))
}

fn charset_refused(at: usize) -> Error {
    Error::UnsupportedMedia(format!(
        "a multipart part's header has an encoded value in a charset the leak guard cannot read (use UTF-8, ASCII, ISO 8859 or a Windows code page; the header at byte {at} of its block)"
    ))
}

/// An RFC 2231 parameter (its name holds a `*`): `name*` is one extended value,
/// `name*0`, `name*1*`… sections of a continued one.
fn extended_param(name: &[u8], star: usize, raw: &[u8], at: usize) -> Result<()> {
    let after_star = name.get(star.saturating_add(1)..).unwrap_or_default();
    let continued = !after_star.is_empty();
    let value = raw.trim_ascii();
    let value = value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(value);
    // `charset'language'text` (the first or only section of an extended value).
    let mut pieces = value.splitn(3, |b| *b == b'\'');
    let text = match (pieces.next(), pieces.next(), pieces.next()) {
        (Some(charset), Some(language), Some(text)) => {
            let charset = std::str::from_utf8(charset).unwrap_or("?");
            if !(charset.is_empty() || media::ascii_transparent(charset)) {
                return Err(charset_refused(at));
            }
            if holds_digit(language) {
                return Err(digits_refused("an RFC 2231 parameter", at));
            }
            text
        }
        _ => value,
    };
    // Undone whatever the section's form: a plain section with a `%` only shows
    // more digits, never fewer.
    let decoded: Zeroizing<Vec<u8>> = Zeroizing::new(percent_decode(text).collect());
    if continued {
        if holds_digit(&decoded) {
            return Err(digits_refused("a continued RFC 2231 parameter", at));
        }
        return Ok(());
    }
    let mut card = false;
    guard::scan_hits(&decoded, |_| card = true);
    if card {
        return Err(Error::LeakRejected(
            "a multipart part's header (an RFC 2231 parameter)".into(),
        ));
    }
    Ok(())
}

/// Every RFC 2047 encoded word in `value` (`=?charset?B|Q?text?=`, as Python's
/// `email` finds them: anywhere, in any case, quoted or not), decoded.
fn encoded_words(value: &[u8], at: usize) -> Result<()> {
    let mut from = 0;
    while let Some(start) = value
        .get(from..)
        .and_then(|rest| memchr::memmem::find(rest, b"=?"))
    {
        let word = from.saturating_add(start).saturating_add(2);
        from = word;
        let Some(rest) = value.get(word..) else {
            break;
        };
        let mut fields = rest.splitn(3, |b| *b == b'?');
        let (Some(charset), Some(encoding), Some(tail)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some(end) = memchr::memmem::find(tail, b"?=") else {
            continue;
        };
        let text = tail.get(..end).unwrap_or_default();
        if text.contains(&b'?') {
            continue;
        }
        let decoded = match encoding {
            b"B" | b"b" => b_decode(text).ok_or_else(|| {
                Error::InvalidBody(format!(
                    "invalid multipart body: a part's header has an RFC 2047 encoded word that is not valid base64 (the header at byte {at} of its block)"
                ))
            })?,
            b"Q" | b"q" => q_decode(text),
            _ => continue,
        };
        // `charset*language`.
        let charset = charset.split(|b| *b == b'*').next().unwrap_or_default();
        let charset = std::str::from_utf8(charset).unwrap_or("?");
        if !media::ascii_transparent(charset) {
            return Err(charset_refused(at));
        }
        if holds_digit(&decoded) {
            return Err(digits_refused("an RFC 2047 encoded word", at));
        }
    }
    Ok(())
}

/// Base64 as a lenient decoder reads it: bytes outside the alphabet dropped, the
/// padding optional. `None` when what is left is not base64.
fn b_decode(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut compact: Zeroizing<Vec<u8>> = Zeroizing::new(
        text.iter()
            .copied()
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
            .collect(),
    );
    while !compact.len().is_multiple_of(4) {
        compact.push(b'=');
    }
    STANDARD_PAD_INDIFFERENT
        .decode(compact.as_slice())
        .ok()
        .map(Zeroizing::new)
}

/// RFC 2047 "Q": `_` is a space, then quoted-printable (`=XX` a byte; anything else,
/// a broken escape too, as it is).
fn q_decode(text: &[u8]) -> Zeroizing<Vec<u8>> {
    let spaced: Zeroizing<Vec<u8>> = Zeroizing::new(
        text.iter()
            .map(|b| if *b == b'_' { b' ' } else { *b })
            .collect(),
    );
    Zeroizing::new(
        quoted_printable::decode(spaced.as_slice(), quoted_printable::ParseMode::Robust)
            .unwrap_or_else(|_| spaced.to_vec()),
    )
}

/// Whether decoded text holds a digit: ASCII, or any other script's read as UTF-8
/// (a backend's `int()` reads `４`).
fn holds_digit(text: &[u8]) -> bool {
    text.iter().any(u8::is_ascii_digit)
        || (!text.is_ascii() && String::from_utf8_lossy(text).chars().any(char::is_numeric))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ordinary_headers_pass() {
        for value in [
            " form-data; name=\"photo\"; filename=\"photo.jpg\"",
            " form-data; name=\"doc\"; filename*=UTF-8''na%C3%AFve.txt",
            " form-data; name=\"doc\"; filename*=utf-8'en'r%C3%A9sum%C3%A9-2024.pdf",
            " form-data; name=\"doc\"; filename*0=\"long-\"; filename*1=\"name.txt\"",
            " form-data; name=\"a\"; filename=\"=?utf-8?B?w6k=?=\"",
            " text/plain; charset=iso-8859-1",
            " image/png",
        ] {
            assert!(check(value.as_bytes(), 0).is_ok(), "{value}");
        }
    }

    #[test]
    fn encoded_forms_holding_digits_are_refused() {
        let invalid = |v: &str| matches!(check(v.as_bytes(), 0), Err(Error::InvalidBody(_)));
        let unsupported =
            |v: &str| matches!(check(v.as_bytes(), 0), Err(Error::UnsupportedMedia(_)));
        let card = |v: &str| matches!(check(v.as_bytes(), 0), Err(Error::LeakRejected(_)));
        for v in [
            "form-data; filename*0=\"4242424242\"; filename*1=\"424242.txt\"",
            "form-data; name*0=\"a\"; name*1=\"1\"",
            "form-data; filename*0*=utf-8''%34%32; filename*1=x",
            "form-data; filename*1*=%34",
            "form-data; filename*=utf-8'4242'x",
            "form-data; filename=\"=?utf-8?B?NDI0MjQyNDI0MjQyNDI0Mi50eHQ=?=\"",
            "form-data; filename=\"=?UTF-8?q?=34=32=34=32=34=32=34=32=34=32=34=32=34=32=34=32?=\"",
            "form-data; filename==?utf-8?b?NDI0MjQyNDI?= =?utf-8?b?NDI0MjQyNDI?=",
            "form-data; filename=\"=?utf-8*en?Q?x_1?=\"",
            "form-data; filename=\"=?utf-8?B?77yU?=\"",
            "form-data; filename=\"=?utf-8?B?N?=\"",
        ] {
            assert!(invalid(v), "{v}");
        }
        for v in [
            "form-data; filename=\"=?utf-7?Q?+ADQ-?=\"",
            "form-data; filename*=utf-7''+ADQ-",
            "form-data; filename*=x-weird''abc",
        ] {
            assert!(unsupported(v), "{v}");
        }
        for v in [
            "form-data; filename*=UTF-8''%34%32%34%32%34%32%34%32%34%32%34%32%34%32%34%32.txt",
            "form-data; name*=''4242 4242 4242 4242",
        ] {
            assert!(card(v), "{v}");
        }
    }

    #[test]
    fn q_and_b_decode_as_python_does() {
        assert_eq!(q_decode(b"a_b=34=3").as_slice(), b"a b4=3");
        assert_eq!(b_decode(b"NDI").unwrap().as_slice(), b"42");
        assert_eq!(b_decode(b"N D I 0 M g = =").unwrap().as_slice(), b"4242");
    }
}
