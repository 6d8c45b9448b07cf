//! NULs read as nothing: UTF-16 and UTF-32 text (ASCII with NULs between), as a
//! backend that detects the encoding reads it, and what a NUL does to a hit's
//! replacement. Compiled only for tests: `#[cfg(test)] mod nul_tests;` in `guard.rs`.

use super::*;

/// `text` in UTF-16 or UTF-32, either byte order.
fn encode(text: &str, unit: usize, le: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for c in text.chars() {
        match unit {
            2 => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.extend(if le { u.to_le_bytes() } else { u.to_be_bytes() });
                }
            }
            _ => out.extend(if le {
                u32::from(c).to_le_bytes()
            } else {
                u32::from(c).to_be_bytes()
            }),
        }
    }
    out
}

/// Every hit as (range, replaceable in place, digits).
fn found(text: &[u8]) -> Vec<(Range<usize>, bool, String)> {
    let mut out = Vec::new();
    scan_hits(text, |h| {
        out.push((
            h.range.clone(),
            h.ascii,
            String::from_utf8(h.digits().to_vec()).unwrap(),
        ))
    });
    let mut slowly = Vec::new();
    scan_hits_slowly(text, |h| {
        slowly.push((
            h.range.clone(),
            h.ascii,
            String::from_utf8(h.digits().to_vec()).unwrap(),
        ))
    });
    assert_eq!(out, slowly, "{text:?}");
    out
}

/// The red team's bodies: one visible separator is one separator, whatever the
/// encoding puts beside it; the hit is never replaced in place.
#[test]
fn cards_in_utf16_and_utf32_are_found_and_refused() {
    let cards = [
        ("4242 4242 4242 4242", "4242424242424242"),
        ("4242 - 4242 - 4242 - 4242", "4242424242424242"),
        ("4111-1111-1111-1111", "4111111111111111"),
        ("3782 822463 10005", "378282246310005"),
        ("4242424242424242", "4242424242424242"),
        ("4 2 4 2 4 2 4 2 4 2 4 2 4 2 4 2", "4242424242424242"),
    ];
    for (card, digits) in cards {
        let json = format!("{{\"note\":\"{card}\"}}");
        for unit in [2, 4] {
            for le in [true, false] {
                for bom in [false, true] {
                    let text = if bom {
                        format!("\u{feff}{json}")
                    } else {
                        json.clone()
                    };
                    let bytes = encode(&text, unit, le);
                    let hits = found(&bytes);
                    assert_eq!(hits.len(), 1, "{card:?} unit {unit} le {le} bom {bom}");
                    let (range, ascii, got) = &hits[0];
                    assert_eq!(got, digits);
                    assert!(!ascii, "{card:?} unit {unit}: never replaced in place");
                    // The span covers the first digit's byte to the last one's.
                    let first = bytes.iter().position(u8::is_ascii_digit).unwrap();
                    let last = bytes.iter().rposition(u8::is_ascii_digit).unwrap();
                    assert_eq!(*range, first..last + 1, "{card:?} unit {unit} le {le}");
                }
            }
        }
    }
}

/// NULs are transparent within a group too, so UTF-16 digits make one number: a
/// long identifier in UTF-16 is an identifier, as it is in UTF-8, and a card next to
/// a CVV is found as in UTF-8.
#[test]
fn utf16_numbers_read_as_their_utf8_selves() {
    for text in [
        "id 4242424242424242424242424",
        "1234567890123456789012345",
        "4242424242424241",
        "ts 1735689600000 n 178000000000000000",
    ] {
        assert!(found(text.as_bytes()).is_empty(), "{text}");
        for unit in [2, 4] {
            for le in [true, false] {
                assert!(found(&encode(text, unit, le)).is_empty(), "{text} {unit}");
            }
        }
    }
    for unit in [2, 4] {
        let bytes = encode(
            "4242 4242 4242 4242 123 and 99 4111111111111111",
            unit,
            true,
        );
        let digits: Vec<String> = found(&bytes).into_iter().map(|h| h.2).collect();
        assert_eq!(digits, ["4242424242424242", "4111111111111111"], "{unit}");
    }
}

/// More NULs in a row than any text encoding puts there end a number; three do not.
#[test]
fn a_long_nul_run_ends_a_number() {
    let card = "4242424242424242";
    for nuls in 1..=MAX_NUL_RUN {
        let pad = "\0".repeat(nuls);
        let spaced: String = card.chars().map(|c| format!("{c}{pad}")).collect();
        assert_eq!(found(spaced.as_bytes()).len(), 1, "{nuls}");
        let split = format!("4242{pad} {pad}-{pad} {pad}424242424242");
        assert_eq!(found(split.as_bytes()).len(), 1, "{nuls}");
    }
    let pad = "\0".repeat(MAX_NUL_RUN + 1);
    let spaced: String = card.chars().map(|c| format!("{c}{pad}")).collect();
    assert!(found(spaced.as_bytes()).is_empty());
    assert!(found(format!("4242{pad}424242424242").as_bytes()).is_empty());
    assert!(found(format!("4242 {pad}424242424242").as_bytes()).is_empty());
    // Separators beyond the limit are still too many, NULs or not.
    assert!(found(b"4242\0 \0-\0 \0-\x00424242424242").is_empty());
    // Long NUL runs cost a pass, not a pass per digit.
    let s = format!("4{}", "\0\0\0 ".repeat(100_000));
    assert!(found(s.as_bytes()).is_empty());
    let s = "4\0\0\0".repeat(200_000);
    let mut n = 0;
    scan_hits(s.as_bytes(), |_| n += 1);
    assert_eq!(n, 0, "a run of 4s is an identifier");
}

/// A NUL anywhere in a hit's span makes it refused: between its digits, or in a
/// separator run between two ASCII groups. Around the span it does not matter.
#[test]
fn a_nul_in_the_span_is_never_replaced_in_place() {
    for text in [
        &b"4242\0 4242 4242 4242"[..],
        b"4242 4242 4242 42\x0042",
        b"4\x00242424242424242",
        b"4242 \0\0\x004242 4242 4242",
    ] {
        let hits = found(text);
        assert_eq!(hits.len(), 1, "{text:?}");
        assert!(!hits[0].1, "{text:?}");
    }
    let hits = found(b"\0\0x\0 4242 4242 4242 4242 \0");
    assert_eq!(hits.len(), 1);
    assert!(hits[0].1, "the NULs lie outside the span");
    // A hit that starts after a separator run with a NUL does not hold it.
    let hits = found(b"1\0 4242424242424242");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0, 3..19);
    assert!(hits[0].1);
}

/// A reader that stops at a NUL reads `<card>\x00999` as the card: a hit over the
/// whole group, refused.
#[test]
fn a_card_before_a_nul_is_found() {
    let hits = found(b"x 4242424242424242\x00999 y");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0, 2..22);
    assert!(!hits[0].1);
    assert_eq!(hits[0].2, "4242424242424242");
    let hits = found(b"1\x004111111111111111");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].2, "4111111111111111");
}

/// A reader that stops at a NUL also ends a grouped card there: `<card in
/// groups>\x00999` is the card to it, though read as nothing the NUL joins `999`
/// to the last group. Found, refused; and a card found either way is one hit.
#[test]
fn a_grouped_card_before_a_nul_is_found() {
    for text in [
        &b"x 4242 4242 4242 4242\x00999 y"[..],
        b"4111-1111-1111-1111\x00\x001",
        b"\x003782 822463 10005\x00123",
    ] {
        let hits = found(text);
        assert_eq!(hits.len(), 1, "{text:?}: {hits:?}");
        assert!(!hits[0].1, "{text:?}");
        assert!(is_card_shaped(hits[0].2.as_bytes()), "{text:?}");
    }
    // A plain card elsewhere in text with a NUL: found once, still replaceable.
    let hits = found(b"4242 4242 4242 4242 and\x00x");
    assert_eq!(hits.len(), 1);
    assert!(hits[0].1);
}

/// A reader that takes only ASCII digits for digits ends a number at `٤`: the groups
/// after it make a card to it, which a reader of every script reads as a 20-digit
/// identifier. Found, refused, also when the same card is written plainly elsewhere
/// (that one is replaced in place; this one would stay).
#[test]
fn groups_after_another_script_s_digit_are_read_by_ascii_readers() {
    let text = "a=[4111111101111111111]&b=\u{664}4111111101111 111111]".to_owned();
    let hits = found(text.as_bytes());
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits[0].1, "the plain one is replaceable");
    assert!(!hits[1].1, "the mixed one is refused");
    assert_eq!(hits[1].2, "4111111101111111111");
    let mut in_place = Vec::new();
    let mut hidden = Vec::new();
    scan_leaf(&text, Leaf::Text, &mut in_place, &mut hidden);
    assert_eq!(in_place.len(), 1);
    assert_eq!(hidden.len(), 1);
}

/// The readings compose: a reader that stops at a NUL and takes only ASCII digits
/// reads `5\0411111 1110111٤` as the 13-digit `4111111110111`, which neither
/// reading alone finds (the fuzzer's pipeline finding). Found, refused.
#[test]
fn a_c_string_reader_of_ascii_digits_is_a_reading_too() {
    let text = "5\u{0}411111 1110111\u{664}";
    let hits = found(text.as_bytes());
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(!hits[0].1);
    assert_eq!(hits[0].2, "4111111110111");
    assert_eq!(hits[0].0, 2..16);
}
