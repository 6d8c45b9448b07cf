//! Text with NULs as a backend that detects its encoding from the bytes reads it
//! (Python's `json.loads` on bytes, decoders that sniff a byte order mark): UTF-16
//! and UTF-32, either way round, and the text without its NULs (UTF-16 or UTF-32 of
//! ASCII, whose escapes the NULs hide: `&\0#\05\02\0;\0`). Of ASCII such text is
//! valid UTF-8, so every reader of field text and of bytes asks for these readings
//! when it holds a NUL.

use zeroize::Zeroizing;

/// The readings of `bytes` (which hold a NUL): without NULs (lossy UTF-8), UTF-16LE,
/// UTF-16BE, UTF-32LE, UTF-32BE, a unit that is no character as U+FFFD.
pub fn readings(bytes: &[u8]) -> [Zeroizing<String>; 5] {
    let narrow: Zeroizing<Vec<u8>> =
        Zeroizing::new(bytes.iter().copied().filter(|b| *b != 0).collect());
    [
        Zeroizing::new(crate::rules::digits::text_of(&narrow).into_owned()),
        Zeroizing::new(
            encoding_rs::UTF_16LE
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        ),
        Zeroizing::new(
            encoding_rs::UTF_16BE
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        ),
        Zeroizing::new(utf32(bytes, true)),
        Zeroizing::new(utf32(bytes, false)),
    ]
}

/// `bytes` read as UTF-32 (`le`: little-endian), a unit that is no character (and a
/// trailing part of one) as U+FFFD (`encoding_rs` has no UTF-32).
pub fn utf32(bytes: &[u8], le: bool) -> String {
    let mut out = String::with_capacity(bytes.len() / 4 + 4);
    for u in bytes.chunks(4) {
        let c = match <[u8; 4]>::try_from(u) {
            Ok(u) if le => char::from_u32(u32::from_le_bytes(u)),
            Ok(u) => char::from_u32(u32::from_be_bytes(u)),
            Err(_) => None,
        };
        out.push(c.unwrap_or('\u{fffd}'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf32_bytes(text: &str, le: bool) -> Vec<u8> {
        text.chars()
            .map(u32::from)
            .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
            .collect()
    }

    #[test]
    fn utf32_reads_units_either_way_round() {
        for le in [true, false] {
            let text = "4\u{ff12}\u{1d7ce}\u{e0020}2";
            assert_eq!(utf32(&utf32_bytes(text, le), le), text);
        }
        assert_eq!(utf32(&[0x34, 0, 0], true), "\u{fffd}");
        assert_eq!(utf32(&[0, 0, 0x11, 0], true), "\u{fffd}");
    }

    #[test]
    fn every_reading_of_a_tag_character_between_digits() {
        // Found by the leak differential: a tag character in UTF-32 (`20 00 0e 00`)
        // is no NUL-padded ASCII, so only the UTF-32 reading joins the groups.
        let body = utf32_bytes("42424242424\u{e0020}24242", true);
        let r = readings(&body);
        assert!(r.iter().any(|t| t.as_str() == "42424242424\u{e0020}24242"));
    }
}
