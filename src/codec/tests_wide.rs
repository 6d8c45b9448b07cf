//! Bodies in UTF-16 or UTF-32 that declare no charset, on a rules route: every
//! character read as a backend that detects the encoding reads it, found by the leak
//! differential (`tests/proxy/leak_differential`). Compiled only for tests.

use super::tests_hostile::{guard_route, req, stopped};
use super::*;

const CARD: &str = "4242424242424242";

/// `text` in UTF-32, little-endian or not, with a byte order mark or not.
fn utf32(text: &str, le: bool, bom: bool) -> Vec<u8> {
    let bom = if bom { "\u{feff}" } else { "" };
    bom.chars()
        .chain(text.chars())
        .map(u32::from)
        .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
        .collect()
}

#[test]
fn utf32_bodies_are_read_as_utf32() {
    // A tag character between two digits (`20 00 0e 00`): not a NUL-padded ASCII
    // character, so only a UTF-32 reading joins the groups.
    for (le, bom) in [(true, true), (false, true), (true, false), (false, false)] {
        let body = utf32("note: 42424242424\u{e0020}24242 thanks", le, bom);
        let r = extract(&guard_route(), req(Some("text/plain"), &body));
        assert!(stopped(r, CARD), "UTF-32 le={le} bom={bom}");
    }
}
