//! The test's own decoders, none of them vaultgate's: what a backend could read in
//! the bytes it received. gzip, zlib, raw DEFLATE (`flate2`); UTF-8, windows-1252 and,
//! for a whole body, UTF-16 (`encoding_rs`) and UTF-32 (`legacy`);
//! then, in layers, JSON strings (`serde_json`), form pairs (`form_urlencoded`),
//! `%XX` (`percent-encoding`), HTML5 character references (`htmlize`; and as Python's
//! `html.unescape`, which drops references to controls), XML text with
//! its markup dropped (`quick-xml`), HTML comments dropped, multipart parts'
//! contents, base64 runs (`base64`), quoted-printable (`quoted_printable`), `%uXXXX`,
//! `\xHH` and octal escapes (`legacy`). A card is then a run of digits of any `Nd` script or their
//! NFKC compatibility forms, with separators between them.

use std::collections::HashSet;

use base64::Engine as _;

use super::legacy;

use unicode_normalization::UnicodeNormalization as _;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

/// Layers of decoding applied on top of one another.
const DEPTH: usize = 4;

/// Every reading of `bytes`: as they are and gunzipped, each as UTF-8 and as
/// windows-1252, then decoded up to [`DEPTH`] times over.
pub fn readings(bytes: &[u8]) -> HashSet<String> {
    let mut layers = vec![bytes.to_vec()];
    layers.extend(legacy::decompressed(bytes));
    let mut seen = HashSet::new();
    let mut frontier: Vec<String> = layers.iter().flat_map(|b| texts(b)).collect();
    // A whole body may be UTF-16, either byte order, with or without a BOM.
    for layer in &layers {
        for utf16 in [encoding_rs::UTF_16LE, encoding_rs::UTF_16BE] {
            let text = utf16.decode_without_bom_handling(layer).0;
            frontier.push(text.trim_start_matches('\u{feff}').to_owned());
        }
        frontier.extend(legacy::utf32(layer));
    }
    for _ in 0..DEPTH {
        let mut next = Vec::new();
        for t in frontier {
            if seen.contains(&t) {
                continue;
            }
            next.extend(decode_once(&t).into_iter().filter(|d| *d != t));
            seen.insert(t);
        }
        frontier = next;
    }
    seen.extend(frontier);
    seen
}

/// Bytes read as UTF-8 (invalid bytes as U+FFFD) and as windows-1252.
fn texts(bytes: &[u8]) -> [String; 2] {
    let (cp1252, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
    [
        String::from_utf8_lossy(bytes).into_owned(),
        cp1252.into_owned(),
    ]
}

/// Each decoder once over `t`.
fn decode_once(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(t) {
        let mut strings = Vec::new();
        json_strings(&v, &mut strings);
        out.push(strings.join("|"));
    }
    if t.contains('=') {
        let pairs: Vec<String> = form_urlencoded::parse(t.as_bytes())
            .map(|(k, v)| format!("{k}={v}|"))
            .collect();
        out.push(pairs.concat());
    }
    if t.contains('%') {
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(t).collect();
        out.extend(texts(&bytes));
        out.push(percent_decode_cp1252(t));
    }
    if t.contains('&') {
        out.push(htmlize::unescape(t).into_owned());
        out.push(htmlize::unescape(python_numeric_refs(t)).into_owned());
    }
    if t.contains(['&', '%']) {
        out.push(references_and_escapes(t));
    }
    out.extend(legacy::unescape(t));
    if t.contains('<') {
        if let Some(x) = xml_text(t) {
            out.push(x);
        }
        out.push(without_html_comments(t));
    }
    if t.starts_with("--") {
        out.push(multipart_contents(t));
    }
    for run in base64_runs(t) {
        if let Ok(bytes) = BASE64.decode(run) {
            out.extend(texts(&bytes));
        }
    }
    if t.contains('=')
        && let Ok(bytes) =
            quoted_printable::decode(t.as_bytes(), quoted_printable::ParseMode::Robust)
    {
        out.extend(texts(&bytes));
    }
    out
}

/// `%XX` escapes decoded each as the windows-1252 character of its byte, the rest
/// kept (Python's `unquote(s, encoding="latin-1")` on text already decoded).
fn percent_decode_cp1252(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let byte = rest
            .get(at + 1..at + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match byte {
            Some(b) => {
                out.push_str(
                    &encoding_rs::WINDOWS_1252
                        .decode_without_bom_handling(&[b])
                        .0,
                );
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Base64, padded or not.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The runs of base64 characters in `t` long enough to hold a card.
fn base64_runs(t: &str) -> impl Iterator<Item = &str> {
    t.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=".contains(c)))
        .filter(|r| r.len() >= 16)
}

fn json_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(o) => {
            for (k, v) in o {
                out.push(k.clone());
                json_strings(v, out);
            }
        }
        _ => {}
    }
}

/// The character data of an XML document as a parser reports it: text with its
/// references resolved (HTML5 names too, as a lenient parser might), CDATA sections'
/// content; comments, processing instructions, tags dropped. What is read before an
/// error, if any.
fn xml_text(t: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(t);
    let mut out = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Text(e)) => out.push_str(&e.xml10_content()),
            Ok(Event::CData(e)) => out.push_str(&e.xml10_content()),
            Ok(Event::GeneralRef(r)) => match r.resolve_char_ref() {
                Ok(Some(c)) => out.push(c),
                _ => out.push_str(&htmlize::unescape(format!("&{};", &*r.into_inner()))),
            },
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The contents of a multipart body's parts (RFC 2046: the boundary is the first
/// line's), without their header blocks, each followed by `|`.
fn multipart_contents(t: &str) -> String {
    let boundary = t.lines().next().unwrap_or_default().trim_end();
    let mut out = String::new();
    for part in t.split(boundary).skip(1) {
        if let Some((_, content)) = part.split_once("\r\n\r\n") {
            out.push_str(content.strip_suffix("\r\n").unwrap_or(content));
            out.push('|');
        }
    }
    out
}

/// Character references and `%XX` escapes decoded in turn until none is left (at
/// most four rounds; escaped bytes as UTF-8 where they are, as windows-1252 where not):
/// a value escaped twice over in both ways (`&amp;#50;` and `%2520` in one field) in
/// one step of [`DEPTH`].
fn references_and_escapes(t: &str) -> String {
    let mut text = t.to_owned();
    for _ in 0..4 {
        let unescaped = htmlize::unescape(python_numeric_refs(&text)).into_owned();
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(&unescaped).collect();
        // UTF-8 where the bytes are, windows-1252 for each byte that is not.
        let mut next = String::with_capacity(bytes.len());
        for chunk in bytes.utf8_chunks() {
            next.push_str(chunk.valid());
            let invalid = chunk.invalid();
            next.push_str(
                &encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(invalid)
                    .0,
            );
        }
        if next == text {
            break;
        }
        text = next;
    }
    text
}

/// `t` with its numeric references decoded as Python's `html.unescape` decodes them,
/// in one pass: those of C0 controls but tab, line feed, form feed and carriage
/// return, of DEL and of noncharacters are dropped; 128 to 159 are windows-1252's
/// characters where it has one; `;` is optional. (Named ones are left for
/// `htmlize`.)
fn python_numeric_refs(t: &str) -> String {
    let dropped = |cp: u32| {
        matches!(cp, 0x1..=0x8 | 0xB | 0xE..=0x1F | 0x7F | 0xFDD0..=0xFDEF)
            || (cp & 0xFFFE == 0xFFFE && cp <= 0x10FFFF)
    };
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(at) = rest.find("&#") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let (radix, digits) = match tail.strip_prefix(['x', 'X']) {
            Some(h) => (16, h),
            None => (10, tail),
        };
        let n = digits.chars().take_while(|c| c.is_digit(radix)).count();
        let Some(cp) = u32::from_str_radix(&digits[..n], radix)
            .ok()
            .filter(|_| n > 0)
        else {
            out.push_str("&#");
            rest = tail;
            continue;
        };
        if !dropped(cp) {
            let c1 = u8::try_from(cp).ok().filter(|b| (0x80..0xA0).contains(b));
            match c1 {
                Some(b) => out.push_str(
                    &encoding_rs::WINDOWS_1252
                        .decode_without_bom_handling(&[b])
                        .0,
                ),
                None => out.push(char::from_u32(cp).filter(|_| cp != 0).unwrap_or('\u{fffd}')),
            }
        }
        let after = &digits[n..];
        rest = after.strip_prefix(';').unwrap_or(after);
    }
    out.push_str(rest);
    out
}

/// `t` without `<!-- … -->`, as an HTML parser reads text.
fn without_html_comments(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(at) = rest.find("<!--") {
        out.push_str(&rest[..at]);
        match rest[at + 4..].find("-->") {
            Some(end) => rest = &rest[at + 4 + end + 3..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

// === digits ===

/// The value of a digit of any `Nd` script: `Nd` code points come in runs of ten
/// that start at a zero.
fn digit_value(c: char) -> Option<u32> {
    if c.is_ascii_digit() {
        return c.to_digit(10);
    }
    if c.general_category() != GeneralCategory::DecimalNumber {
        // Digits (Unicode `Numeric_Type=Digit`, as Python's `unicodedata.digit`
        // reads them) with no NFKC decomposition: the dingbat circled ones.
        let cp = u32::from(c);
        return [0x2776, 0x2780, 0x278A, 0x24F5]
            .iter()
            .find(|one| (**one..**one + 9).contains(&cp))
            .map(|one| cp - one + 1);
    }
    let mut zero = u32::from(c);
    while let Some(before) = zero.checked_sub(1).and_then(char::from_u32) {
        if before.general_category() != GeneralCategory::DecimalNumber {
            break;
        }
        zero -= 1;
    }
    Some((u32::from(c) - zero) % 10)
}

/// What a backend that strips a card's formatting drops between its digits: white
/// space, dashes, format characters, marks, and the usual punctuation.
fn is_separator(c: char) -> bool {
    use GeneralCategory::*;
    c.is_whitespace()
        || matches!(
            c.general_category(),
            SpaceSeparator
                | LineSeparator
                | ParagraphSeparator
                | Format
                | DashPunctuation
                | NonspacingMark
                | EnclosingMark
        )
        || ".,/_+\u{2212}\u{b7}\u{2022}\u{2027}\u{30fb}\u{3164}\u{1160}\u{115f}\u{ffa0}".contains(c)
}

/// Whether `text` holds `card` as a whole number: a run of digits (any script, or
/// what NFKC reads as one) joined by separators, leading zeros read past.
pub fn holds_card(text: &str, card: &str) -> bool {
    let mut run = String::new();
    let whole = |run: &str| run.trim_start_matches('0') == card;
    for c in text.chars() {
        let mapped: Vec<char> = if c.is_ascii() {
            vec![c]
        } else {
            std::iter::once(c).nfkc().collect()
        };
        for n in mapped {
            if let Some(d) = digit_value(n) {
                run.push(char::from_digit(d, 10).unwrap_or('x'));
            } else if !is_separator(n) {
                if whole(&run) {
                    return true;
                }
                run.clear();
            }
        }
    }
    whole(&run)
}

/// Whether any reading of `bytes` holds `card`; the reading, if one does.
pub fn card_in(bytes: &[u8], card: &str) -> Option<String> {
    readings(bytes).into_iter().find(|t| holds_card(t, card))
}
