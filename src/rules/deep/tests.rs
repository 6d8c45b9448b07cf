use super::*;

const CARD: &str = "4242424242424242";

/// (in-place hits as text, hidden hits as digits)
fn leaf(text: &str, kind: Leaf) -> (Vec<String>, Vec<String>) {
    let mut in_place = Vec::new();
    let mut hidden = Vec::new();
    scan_leaf(text, kind, &mut in_place, &mut hidden);
    (
        in_place.into_iter().map(|r| text[r].to_owned()).collect(),
        hidden.iter().map(|p| p.expose().to_owned()).collect(),
    )
}

fn hidden(text: &str) -> Vec<String> {
    let (in_place, hidden) = leaf(text, Leaf::Text);
    assert!(in_place.is_empty(), "{text}: {in_place:?}");
    hidden
}

#[test]
fn numbers_are_read_as_integers() {
    for lit in [
        "4.242424242424242e15",
        "42424242424242420e-1",
        "4242424242424242.0",
        "4242424242424242E0",
        "0.4242424242424242e16",
        "-4.242424242424242E+15",
    ] {
        assert_eq!(
            leaf(lit, Leaf::Number),
            (vec![], vec![CARD.to_owned()]),
            "{lit}"
        );
    }
    // A plain integer is replaced in place, as before.
    assert_eq!(leaf(CARD, Leaf::Number), (vec![CARD.to_owned()], vec![]));
    for lit in ["4.2424242424242435e15", "1e400", "1e-400", "12.5"] {
        assert_eq!(leaf(lit, Leaf::Number), (vec![], vec![]), "{lit}");
    }
    // No card as a value, but written with one: refused too.
    for (lit, card) in [
        ("4242424242424242e5", CARD),
        ("4242424242424242.5", CARD),
        ("3e30000078374067", "30000078374067"),
        ("1.5e-4242424242424242", CARD),
        // 4242424242424242.5: truncated (Jackson binding a `long`) or rounded down.
        ("4.2424242424242425e15", CARD),
        // 4242424242424241.5, rounded up.
        ("42424242424242415e-1", CARD),
    ] {
        assert_eq!(
            leaf(lit, Leaf::Number),
            (vec![], vec![card.to_owned()]),
            "{lit}"
        );
    }
    assert_eq!(integer_digits("1.5e1").as_deref(), Some(&b"15"[..]));
    assert_eq!(integer_digits("0e0").as_deref(), Some(&b""[..]));
    assert_eq!(integer_digits("1e9999999999"), None);
    assert_eq!(integer_digits("1.55e1"), None);
    assert_eq!(integer_part("1.55e1"), Some((b"15".to_vec(), true)));
    assert_eq!(integer_part("-0.5"), Some((b"".to_vec(), true)));
    assert_eq!(incremented(b"4242"), b"4243");
    assert_eq!(incremented(b"999"), b"1000");
    assert_eq!(incremented(b""), b"1");
}

#[test]
fn nested_json_and_escapes_are_decoded() {
    let esc: String = CARD
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cases = [
        format!("{{\"card\":\"{esc}\"}}"),
        format!("[\"{esc}\"]"),
        "{\"n\":42424242424242420e-1}".to_owned(),
        b64(&format!("{{\"card\":\"{CARD}\"}}")),
        format!(
            "data:application/json;base64,{}",
            b64(&format!("{{\"c\":{CARD}}}"))
        ),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{{\"card\":\"{CARD}\"}}")),
        b64(&b64(&format!("{{\"card\":\"{CARD}\"}}"))),
        "&#52;&#50;&#52;&#50;&#52;&#50;&#52;&#50;&#52;&#50;&#52;&#50;&#52;&#50;&#52;&#50;"
            .to_owned(),
        "&#x34;242424242424242".to_owned(),
        "%34%32%34%32%34%32%34%32%34%32%34%32%34%32%34%32".to_owned(),
        "\\x34\\x32\\x34\\x32\\x34\\x32\\x34\\x32\\x34\\x32\\x34\\x32\\x34\\x32\\x34\\x32"
            .to_owned(),
        // JSON in a JSON string in a JSON string.
        serde_json::to_string(&format!("{{\"c\":\"{esc}\"}}")).unwrap(),
    ];
    for text in &cases {
        assert_eq!(hidden(text), [CARD], "{text}");
    }
}

#[test]
fn numeric_references_are_read_as_html_reads_them() {
    // Found by the leak differential (`tests/proxy/leak_differential`): a numeric
    // reference ends where its digits do, `;` or not (`&#x34 ` is `4 `), 128 to 159
    // stand for windows-1252's characters (`&#149;` a bullet, `&#150;` an en dash),
    // as browsers and Python's `html.unescape` read them, and Python drops one to a
    // control or a noncharacter (`&#1;`).
    for text in [
        "4242424242&#x34 24242",
        "&#52&#50&#52&#50 4242 4242 4242",
        "42424242424242&#149;42",
        "4242&#150;4242&#0150;4242&#x96;4242",
        // References Python's `html.unescape` drops (controls, noncharacters): nothing
        // between two digits, whatever the count.
        "4242424242424&#1;242",
        "4242&#x1F;4242&#127;&#11;&#8;&#1;4242&#xFDD0;4242&#65534;",
    ] {
        assert_eq!(hidden(text), [CARD], "{text}");
    }
}

#[test]
fn named_references_are_read_from_the_whatwg_table() {
    // Found by the leak differential (`tests/proxy/leak_differential`): quick-xml's
    // table read `&DownBreve;` (U+0311, a combining mark: a separator) as `1`, so
    // `55555555555&DownBreve;54444` was 17 digits to the guard and a card to a
    // browser or Python's `html.unescape`.
    for (text, c) in [
        ("&DownBreve;", '\u{311}'),
        ("&UnderBar;", '_'),
        ("&Alpha;", '\u{391}'),
        ("&Amacr;", '\u{100}'),
        ("&ndash;", '\u{2013}'),
        ("&nbsp", '\u{a0}'),
        ("&ThinSpace;", '\u{2009}'),
    ] {
        assert_eq!(
            named_ref_at(text.as_bytes()).map(|r| r.0),
            Some(c),
            "{text}"
        );
    }
    assert_eq!(hidden("55555555555&DownBreve;54444"), ["5555555555554444"]);
    assert_eq!(hidden("4242&UnderBar;4242&lowbar;4242_4242"), [CARD]);
}

/// `text` in UTF-16LE, as a `str` (valid UTF-8 when `text` is ASCII).
fn utf16le(text: &str) -> String {
    let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn text_with_nuls_is_also_read_as_utf16_and_without_them() {
    // Found by the leak differential (`tests/proxy/leak_differential`): UTF-16LE text
    // is valid UTF-8 when its bytes are below 0x80, and a rules route read it so, its
    // NULs as nothing: the escape `&\0#\00\00\00\04\09\0;\0` (`&#00049;`, a `1`) was
    // not decoded, nor was `` `\x20`` read as U+2060, a word joiner.
    for text in [
        "note: 411111111111111&#00049; thanks",
        "note: 411111111\u{2060}111111&#49; thanks",
        "note: 4242424242424&#1;242 thanks",
    ] {
        let wide = utf16le(text);
        let found = hidden(&wide);
        assert!(
            found.iter().any(|d| d == "4111111111111111" || d == CARD),
            "{text}: {found:?}"
        );
    }
}

#[test]
fn depth_is_bounded() {
    let mut text = format!("{{\"card\":\"{CARD}\"}}");
    for _ in 0..4 {
        text = base64::engine::general_purpose::STANDARD.encode(&text);
    }
    // Four layers of base64 are one too many by default...
    assert!(hidden(&text).is_empty());
    // ...and within a limit of four.
    assert_eq!(with_decode_depth(4, || hidden(&text)), [CARD]);
    let one = base64::engine::general_purpose::STANDARD.encode(format!("{{\"n\":{CARD}}}"));
    assert_eq!(hidden(&one), [CARD]);
    assert!(with_decode_depth(0, || hidden(&one)).is_empty());
    // A number in exponent form inside a JSON string: the digits and the dot are
    // in the text itself, and are replaced there.
    let text = "{\"n\":4.242424242424242e15}";
    assert_eq!(
        leaf(text, Leaf::Text),
        (vec!["4.242424242424242".to_owned()], vec![])
    );
}

#[test]
fn in_place_hits_are_not_also_hidden() {
    let text = format!("card {CARD} %20 and \\n");
    assert_eq!(leaf(&text, Leaf::Text), (vec![CARD.to_owned()], vec![]));
    let text = format!("{{\"card\":\"{CARD}\"}}");
    assert_eq!(leaf(&text, Leaf::Text), (vec![CARD.to_owned()], vec![]));
}

#[test]
fn plain_text_stays_quiet() {
    for text in [
        "The quick brown fox jumps over the lazy dog",
        "internationalization and localization",
        "550e8400-e29b-41d4-a716-446655440000",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc",
        "{\"id\":1780000000000000002,\"n\":1.5e3}",
        "100% of 50% & \\ more",
    ] {
        assert_eq!(leaf(text, Leaf::Text), (vec![], vec![]), "{text}");
    }
}

/// `%uXXXX` (surrogate pairs too) and octal `\NNN` escapes are decoded, and bytes
/// escaped one by one spell UTF-8 characters.
#[test]
fn percent_u_and_octal_escapes_are_decoded() {
    let each = |f: &dyn Fn(char) -> String| CARD.chars().map(f).collect::<String>();
    let cases = [
        each(&|c| format!("%u{:04x}", c as u32)),
        each(&|c| format!("%U{:04X}", c as u32)),
        each(&|c| format!("\\{:03o}", c as u32)),
        // Full-width digits as escaped UTF-8 bytes.
        each(&|c| {
            let mut buf = [0; 4];
            let w = char::from_u32(0xFF10 + c.to_digit(10).unwrap()).unwrap();
            w.encode_utf8(&mut buf)
                .bytes()
                .map(|b| format!("\\{b:o}"))
                .collect()
        }),
        // Mathematical bold digits (beyond the BMP) as surrogate pairs.
        each(&|c| {
            let m = char::from_u32(0x1D7CE + c.to_digit(10).unwrap()).unwrap();
            let mut units = [0; 2];
            m.encode_utf16(&mut units)
                .iter()
                .map(|u| format!("%u{u:04X}"))
                .collect()
        }),
        format!("card=%u0034{}", &CARD[1..]),
        format!("\\064\\62 {}", &CARD[2..]),
    ];
    for text in &cases {
        assert_eq!(hidden(text), [CARD], "{text}");
    }
    // Not escapes: left as they are.
    assert_eq!(unescape("%u00zz \\8 \\400"), None);
    assert_eq!(unescape("\\101%u0042").as_deref(), Some("AB"));
}

/// A number literal with a fraction or an exponent in text is read as the integer
/// it denotes, as for a JSON number: a backend may parse the string.
#[test]
fn number_literals_in_text_are_read_as_integers() {
    for text in [
        "0.04242424242424242e17",
        "42424242424242420e-1",
        "04242424242424242E0",
        "id=3782822463100050E-1;",
        "{\"note\":\"42424242424242420e-1\"}",
    ] {
        let card = if text.contains("3782") {
            "378282246310005"
        } else {
            CARD
        };
        assert_eq!(hidden(text), [card], "{text}");
    }
    // Decoded text is read so too.
    let b64 = base64::engine::general_purpose::STANDARD.encode("n=42424242424242420e-1");
    assert_eq!(hidden(&b64), [CARD]);
    // 4242424242424242.3 (the double 4242424242424242.5) is the card truncated, as
    // Jackson binds it to a `long`.
    assert_eq!(hidden("42424242424242423e-1"), [CARD]);
    // Literals that denote no card (not even truncated, rounded or as a double:
    // 4242424242424243.3), and text with no literal.
    for text in [
        "42424242424242433e-1",
        "4242424242424242e1 is not one",
        "version 1.2.3 of 2024-01-15",
        "1.5e3 and 2.5E-7",
    ] {
        assert_eq!(leaf(text, Leaf::Text).1, Vec::<String>::new(), "{text}");
    }
    // An in-place hit is taken out before literals are read.
    assert_eq!(
        leaf("4242424242424242E0", Leaf::Text),
        (vec![CARD.to_owned()], vec![])
    );
}

#[test]
fn numbers_are_read_as_the_doubles_parsers_make_of_them() {
    // Rounded to a card by JavaScript's and Python's float parsing (red team).
    for (lit, card) in [
        ("4242424242424241.9", CARD),
        ("4.2424242424242419e15", CARD),
        ("42424242424242419e-1", CARD),
        ("0.42424242424242419e16", CARD),
        ("-4242424242424241.9", CARD),
        ("378282246310004.99999", "378282246310005"),
        ("5555555555554443.9", "5555555555554444"),
    ] {
        let (in_place, hidden) = leaf(lit, Leaf::Number);
        assert!(in_place.is_empty(), "{lit}");
        assert!(hidden.contains(&card.to_owned()), "{lit}: {hidden:?}");
        // The same literal in a string, for a backend that parses it.
        assert!(
            leaf(&format!("amount {lit}"), Leaf::Text)
                .1
                .contains(&card.to_owned()),
            "{lit} in text"
        );
    }
    // Past 2^53 a plain integer is another double: its exact value and the spelling
    // JavaScript prints are both read.
    assert_eq!(
        double_readings("424242424242424199").map(|d| d.map(|s| s.to_string())),
        [
            Some("424242424242424192".to_owned()),
            Some("424242424242424200".to_owned())
        ]
    );
    assert_eq!(
        double_readings("4242424242424242").map(|d| d.map(|s| s.to_string())),
        [Some(CARD.to_owned()), None]
    );
    for lit in ["12.5", "1e400", "4242.1", "1e19", "999999999999"] {
        assert_eq!(double_readings(lit), [None, None], "{lit}");
    }
    // A plain integer that is a card is replaced in place; one that only rounds to
    // a card is refused.
    assert_eq!(leaf(CARD, Leaf::Number), (vec![CARD.to_owned()], vec![]));
    // Integers just past a double that is a card (Discover's 19-digit range, where
    // doubles are 1,024 apart): each is that double to a float parser.
    let rounds: Vec<String> = (0..200u64)
        .map(|k| 6_011_000_000_000_000_000u64 + k * 1024)
        .filter(|v| guard::is_card_shaped(v.to_string().as_bytes()))
        .map(|v| (v + 1).to_string())
        .filter(|lit| !guard::is_card_shaped(lit.as_bytes()))
        .collect();
    assert!(!rounds.is_empty());
    for lit in &rounds {
        assert!(!leaf(lit, Leaf::Number).1.is_empty(), "{lit}");
    }
}

/// A run of digits alone is no base64 worth decoding (a card's own field), but one
/// letter in a long enough run makes it one, wherever the letter is.
#[test]
fn only_runs_with_a_letter_are_worth_decoding() {
    assert!(!may_hide(b"4242424242424242"));
    assert!(!may_hide(b"42424242424242424242 4111111111111111"));
    assert!(may_hide(b"424242424242424A"));
    assert!(may_hide(b"A424242424242424"));
    assert!(may_hide(b"4242424242424242 NDI0MjQyNDI0MjQyNDI0Mg"));
    assert!(!may_hide(b"4242424242 ABCDEFGHIJ"));
    // And what such a run hides is still found.
    assert_eq!(hidden("NDI0MjQyNDI0MjQyNDI0Mg"), [CARD]);
}
