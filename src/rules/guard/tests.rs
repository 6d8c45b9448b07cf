use super::*;

fn hits(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    scan(s.as_bytes(), &mut out);
    out.into_iter().map(|r| &s[r]).collect()
}

#[test]
fn finds_cards() {
    assert_eq!(hits("4242424242424242"), ["4242424242424242"]);
    assert_eq!(hits("card 4242 4242 4242 4242."), ["4242 4242 4242 4242"]);
    assert_eq!(hits("x4111-1111-1111-1111y"), ["4111-1111-1111-1111"]);
    assert_eq!(hits("amex 378282246310005"), ["378282246310005"]);
    assert_eq!(
        hits("4242424242424242 and 5555555555554444"),
        ["4242424242424242", "5555555555554444"]
    );
    // A card followed by a CVV in the same run.
    assert_eq!(hits("4242 4242 4242 4242 123"), ["4242 4242 4242 4242"]);
    assert_eq!(hits("99 4000056655665556"), ["4000056655665556"]);
}

#[test]
fn finds_cards_behind_separators() {
    for (text, hit) in [
        ("4242.4242.4242.4242", "4242.4242.4242.4242"),
        ("4242/4242/4242/4242", "4242/4242/4242/4242"),
        ("4242  4242  4242  4242", "4242  4242  4242  4242"),
        (
            "4242\u{a0}4242\u{a0}4242\u{a0}4242",
            "4242\u{a0}4242\u{a0}4242\u{a0}4242",
        ),
        (
            "4242\u{2009}4242\u{2009}4242\u{2009}4242",
            "4242\u{2009}4242\u{2009}4242\u{2009}4242",
        ),
        (
            "4242\u{2013}4242\u{2013}4242\u{2013}4242",
            "4242\u{2013}4242\u{2013}4242\u{2013}4242",
        ),
        (
            "4242\u{2212}4242\u{2212}4242\u{2212}4242",
            "4242\u{2212}4242\u{2212}4242\u{2212}4242",
        ),
        ("4242_4242_4242_4242", "4242_4242_4242_4242"),
        ("4242\t4242\t4242\t4242", "4242\t4242\t4242\t4242"),
        ("4242\n4242\n4242\n4242", "4242\n4242\n4242\n4242"),
        (
            "4242\r\n4242\r\n4242\r\n4242",
            "4242\r\n4242\r\n4242\r\n4242",
        ),
        (
            "4242\u{0}4242\u{0}4242\u{0}4242",
            "4242\u{0}4242\u{0}4242\u{0}4242",
        ),
        ("4242 - 4242 - 4242 - 4242", "4242 - 4242 - 4242 - 4242"),
        ("4242--4242-4242-4242", "4242--4242-4242-4242"),
        ("3782 822463 10005", "3782 822463 10005"),
    ] {
        assert_eq!(hits(text), [hit], "{text:?}");
    }
}

#[test]
fn finds_cards_in_other_scripts() {
    let full_width: String = "4242424242424242"
        .chars()
        .map(|c| char::from_u32(0xFF10 + c.to_digit(10).unwrap()).unwrap())
        .collect();
    let arabic: String = "4111111111111111"
        .chars()
        .map(|c| char::from_u32(0x660 + c.to_digit(10).unwrap()).unwrap())
        .collect();
    let mixed = "4242\u{ff14}242 4242 4242";
    for (text, digits) in [
        (full_width.as_str(), "4242424242424242"),
        (arabic.as_str(), "4111111111111111"),
        (mixed, "4242424242424242"),
    ] {
        let mut seen = Vec::new();
        scan_hits(text.as_bytes(), |h| {
            seen.push((h.range.clone(), h.ascii, h.digits().to_vec()));
        });
        assert_eq!(seen.len(), 1, "{text}");
        let (range, ascii, d) = &seen[0];
        assert_eq!(*range, 0..text.len());
        assert!(!ascii);
        assert_eq!(d, digits.as_bytes());
    }
}

#[test]
fn ignores_non_cards() {
    assert!(hits("4242424242424241").is_empty()); // Luhn-invalid
    assert!(hits("424242424242424242424").is_empty()); // too long, no separator
    assert!(hits("14242424242424242").is_empty()); // adjacent digit changes it
    assert!(hits("4242    4242 4242 4242").is_empty()); // four spaces split
    assert!(hits("4242:4242:4242:4242").is_empty()); // not a separator
    assert!(hits("12345").is_empty());
    assert!(hits("").is_empty());
    // Luhn-valid, but no network issues these.
    assert!(hits("1780000000000000002").is_empty());
    assert!(hits("7000000000000006").is_empty());
    assert!(hits("42424242424242").is_empty()); // a 14-digit "Visa"
}

#[test]
fn any_bytes_are_scanned() {
    let mut text = b"\xff\xfe4242424242424242\xc3".to_vec();
    text.extend_from_slice(b"\xe2\x80");
    assert_eq!(
        {
            let mut out = Vec::new();
            scan(&text, &mut out);
            out
        },
        vec![2..18]
    );
}

#[test]
fn long_separated_runs_are_linear() {
    let s = "1 ".repeat(100_000);
    let mut out = Vec::new();
    scan(s.as_bytes(), &mut out);
    assert!(out.is_empty());
    let s = "4 ".repeat(100_000);
    scan(s.as_bytes(), &mut out);
    assert!(out.len() <= 100_000 / 13 + 1);
    let s = "4".repeat(1_000_000);
    scan(s.as_bytes(), &mut out);
}

#[test]
fn card_shaped() {
    assert!(is_card_shaped(b"4242424242424242"));
    assert!(!is_card_shaped(b"4242424242424241"));
    assert!(!is_card_shaped(b"424242424242"));
}

#[test]
fn fuzz_seeds_hold_the_properties() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/guard");
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        crate::fuzzing::guard(&bytes);
    }
}

/// Scanning only the candidate runs (and a lone group of ASCII digits without the
/// window) finds exactly what scanning the whole text does, hit by hit, digits and
/// all: on texts dense in digits, separators and multi-byte digits and spaces, short
/// and across several 64-byte blocks.
#[test]
fn candidate_runs_lose_no_hit() {
    use rand::Rng as _;
    let pieces = [
        "4242",
        "4242424242424242",
        "378282246310005",
        "4111",
        "1111",
        "0",
        "9",
        " ",
        "-",
        ".",
        "  ",
        "x",
        "\"",
        "\u{a0}",
        "\u{2009}",
        "\u{ff14}\u{ff12}",
        "\u{664}\u{662}",
        ":",
        "+",
        "é",
        "\u{0}",
        "5555555555554444",
        "12",
        "e",
        "42424242424242424242",
        "\u{200e}",
        "\u{b7}",
        "00",
        // NULs read as nothing, up to three in a row (UTF-16, UTF-32).
        "\0\0\0",
        "\0\0\0\0",
        "4\x002\x004\x002\0",
        "4\0\0\x002\0\0\0",
        "\x001\x001\x001\x001",
    ];
    let all = |text: &[u8], slowly: bool| {
        let mut out = Vec::new();
        let mut push = |h: &Hit| out.push((h.range.clone(), h.ascii, h.digits().to_vec()));
        if slowly {
            scan_hits_slowly(text, &mut push);
        } else {
            scan_hits(text, &mut push);
        }
        out
    };
    let mut rng = rand::rng();
    let mut found = 0;
    for _ in 0..20_000 {
        let n = rng.random_range(1..48);
        let text: String = (0..n)
            .map(|_| pieces[rng.random_range(0..pieces.len())])
            .collect();
        let fast = all(text.as_bytes(), false);
        assert_eq!(fast, all(text.as_bytes(), true), "{text:?}");
        let mut ranges = Vec::new();
        scan(text.as_bytes(), &mut ranges);
        assert_eq!(ranges, fast.iter().map(|h| h.0.clone()).collect::<Vec<_>>());
        found += fast.len();
    }
    assert!(found > 1000, "too few hits to compare: {found}");
}

/// Every hit in `text` as (text of its span, replaceable in place, digits).
fn hit_digits(text: &str) -> Vec<(&str, bool, String)> {
    let mut out = Vec::new();
    scan_hits(text.as_bytes(), |h| {
        out.push((
            &text[h.range.clone()],
            h.ascii,
            String::from_utf8(h.digits().to_vec()).unwrap(),
        ));
    });
    out
}

/// A backend parsing an integer reads a zero-padded card: the hit is the padded
/// span, its digits are the card, and it is not replaceable in place.
#[test]
fn leading_zeros_are_read_past_and_refused() {
    let long_zeros = format!("{}4242424242424242", "0".repeat(10));
    let very_long_zeros = format!("{}4242424242424242", "0".repeat(1000));
    for (text, digits) in [
        ("04242424242424242", "4242424242424242"),
        ("0004242424242424242", "4242424242424242"),
        ("00378282246310005", "378282246310005"),
        (long_zeros.as_str(), "4242424242424242"),
        (very_long_zeros.as_str(), "4242424242424242"),
        ("0000 4242 4242 4242 4242", "4242424242424242"),
        ("00 0000 4242 4242 4242 4242", "4242424242424242"),
        (
            "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 4111111111111111",
            "4111111111111111",
        ),
        ("04242 4242 4242 4242", "4242424242424242"),
        ("\u{ff10}4242424242424242", "4242424242424242"),
    ] {
        for wrapped in [text.to_owned(), format!("n={text};")] {
            assert_eq!(
                hit_digits(&wrapped),
                [(text, false, digits.to_owned())],
                "{text}"
            );
        }
    }
}

/// Zeros inside a number are its digits; zeros only lead when nothing but zeros came
/// before them in the hit.
#[test]
fn zeros_inside_a_number_stay_digits() {
    // 4000056655665556 is a test Visa with zeros inside.
    assert_eq!(
        hit_digits("4000056655665556"),
        [("4000056655665556", true, "4000056655665556".to_owned())]
    );
    assert_eq!(
        hit_digits("4000 0566 5566 5556"),
        [("4000 0566 5566 5556", true, "4000056655665556".to_owned())]
    );
    // After a significant digit, a group of zeros is inside the number: `4 0000 …`
    // is no card from the `4`; from the zeros on (a hit starts at any group), it is.
    assert_eq!(
        hit_digits("4 0000 4242 4242 4242 4242"),
        [(
            "0000 4242 4242 4242 4242",
            false,
            "4242424242424242".to_owned()
        )]
    );
    // Zeros do not count toward the 19 digits of a group...
    assert_eq!(hit_digits("000000000000004242424242424242").len(), 1);
    // ...but 20 significant digits are an identifier.
    assert!(hit_digits("042424242424242424242").is_empty());
    assert!(hit_digits("0000000000000000000000000").is_empty());
}

#[test]
fn long_zero_runs_are_linear() {
    let mut out = Vec::new();
    let s = "0 ".repeat(200_000);
    scan(s.as_bytes(), &mut out);
    assert!(out.is_empty());
    let s = format!("{}4242424242424242", "0 ".repeat(200_000));
    scan(s.as_bytes(), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out.first(), Some(&(0..s.len())));
    let s = "0".repeat(1_000_000);
    scan(s.as_bytes(), &mut out);
}

/// Invisible format characters, `+` (a space in a form body) and middle dots and
/// bullets split digit groups as a space does: the card is still found, and ASCII
/// digits are still replaceable in place.
#[test]
fn finds_cards_behind_invisible_and_visual_separators() {
    let invisible = [
        '\u{200e}', '\u{200f}', '\u{61c}', '\u{2061}', '\u{2062}', '\u{2063}', '\u{2064}',
        '\u{2066}', '\u{2069}', '\u{206a}', '\u{206f}', '\u{180e}', '\u{34f}', '\u{fe00}',
        '\u{fe0f}', '\u{3164}', '\u{115f}', '\u{1160}', '\u{ffa0}',
    ];
    let visual = ['+', '\u{b7}', '\u{2022}', '\u{2219}', '\u{22c5}'];
    for sep in invisible.into_iter().chain(visual) {
        for (card, groups) in [
            ("4242424242424242", vec!["4242", "4242", "4242", "4242"]),
            ("378282246310005", vec!["3782", "822463", "10005"]),
        ] {
            let joined = groups.join(&sep.to_string());
            let text = format!("card: {joined}!");
            assert_eq!(
                hit_digits(&text),
                [(joined.as_str(), true, card.to_owned())],
                "{:x}",
                u32::from(sep)
            );
        }
        // Between every digit, and beside a space.
        let every: String = "4111111111111111".chars().flat_map(|c| [c, sep]).collect();
        assert_eq!(hits(&every).len(), 1, "{:x}", u32::from(sep));
        let beside = format!("4242{sep} 4242 {sep}4242{sep} 4242");
        assert_eq!(hits(&beside), [beside.as_str()], "{:x}", u32::from(sep));
    }
    // No more than three separators in a row.
    assert!(hits("4242++++4242+4242+4242").is_empty());
    assert!(hits("4242\u{200e}\u{200f}\u{200e}\u{200f}4242 4242 4242").is_empty());
}

/// `card` written with the digits of a compatibility table: `digit(d)` for each.
fn spelled(card: &str, digit: impl Fn(u32) -> u32) -> String {
    card.chars()
        .map(|c| char::from_u32(digit(c.to_digit(10).unwrap())).unwrap())
        .collect()
}

/// Superscript, subscript, circled, parenthesized and dingbat digits read as the
/// digits they stand for (NFKC turns most into ASCII digits); a hit with them is
/// not replaceable in place.
#[test]
fn finds_cards_in_compatibility_digits() {
    let superscript = |d| match d {
        0 => 0x2070,
        1 => 0xB9,
        2 => 0xB2,
        3 => 0xB3,
        d => 0x2070 + d,
    };
    // Tables of 1 to 9 with their own zero.
    let one_to_nine = |one: u32, zero: u32| move |d| if d == 0 { zero } else { one + d - 1 };
    let zero_to_nine = |zero: u32| move |d| zero + d;
    for card in ["4242424242424242", "378282246310005", "4111111111111111"] {
        let spellings = [
            spelled(card, superscript),
            spelled(card, zero_to_nine(0x2080)),
            spelled(card, zero_to_nine(0x1F101)),
            spelled(card, one_to_nine(0x2460, 0x24EA)),
            spelled(card, one_to_nine(0x2474, 0x2080)),
            spelled(card, one_to_nine(0x2488, 0x1F100)),
            spelled(card, one_to_nine(0x24F5, 0x24FF)),
            spelled(card, one_to_nine(0x2776, 0x24FF)),
            spelled(card, one_to_nine(0x2780, 0x24EA)),
            spelled(card, one_to_nine(0x278A, 0x24FF)),
        ];
        for text in &spellings {
            assert_eq!(
                hit_digits(text),
                [(text.as_str(), false, card.to_owned())],
                "{text}"
            );
        }
    }
    // Mixed with ASCII digits and separators.
    let mixed = "4\u{b2}42 4242 \u{2463}242 42\u{2074}2";
    assert_eq!(
        hit_digits(mixed),
        [(mixed, false, "4242424242424242".to_owned())]
    );
}

/// Combining marks on each digit (an underline, a keycap) hide nothing: a backend
/// keeping the digits reads the card.
#[test]
fn finds_cards_under_combining_marks() {
    let card = "4242424242424242";
    for mark in ["\u{332}", "\u{fe0f}\u{20e3}", "\u{301}", "\u{20dd}"] {
        let text: String = card
            .chars()
            .flat_map(|c| [c.to_string(), mark.to_owned()])
            .collect();
        let mut digits = Vec::new();
        scan_hits(text.as_bytes(), |h| {
            digits.push(String::from_utf8(h.digits().to_vec()).unwrap())
        });
        assert_eq!(digits, vec![card.to_owned()], "{mark:?}");
    }
}

/// ASCII digits next to a digit of another script: one long number to a reader of
/// every script, a card to one that keeps ASCII digits only. Refused, whole.
#[test]
fn finds_an_ascii_card_beside_another_scripts_digit() {
    for (text, group) in [
        (
            "a=\u{664}4111111101111111111&b",
            "\u{664}4111111101111111111",
        ),
        ("4111111101111111111\u{ff11}", "4111111101111111111\u{ff11}"),
        (
            "x \u{966}\u{967}4242424242424242 y",
            "\u{966}\u{967}4242424242424242",
        ),
    ] {
        let mut hits = Vec::new();
        scan_hits(text.as_bytes(), |h| {
            hits.push((
                h.range.clone(),
                h.ascii,
                String::from_utf8(h.digits().to_vec()).unwrap(),
            ))
        });
        let start = text.find(group).unwrap();
        assert_eq!(hits.len(), 1, "{text:?}");
        assert_eq!(hits[0].0, start..start + group.len(), "{text:?}");
        assert!(!hits[0].1, "{text:?}: never replaced in place");
        assert!(is_card_shaped(hits[0].2.as_bytes()), "{text:?}");
    }
    // A mixed group whose ASCII runs are not cards is not a hit.
    let mut n = 0;
    scan_hits("\u{664}1234567890123456789".as_bytes(), |_| n += 1);
    assert_eq!(n, 0);
}

#[test]
fn shows_card_reads_escapes_of_escapes() {
    for text in [
        "tok_4242424242424242abcdef",
        "%34242424242424242",
        "&#52;242424242424242",
        "\\u0034242424242424242",
        "%2534242424242424242",
    ] {
        assert!(shows_card(text.as_bytes()), "{text}");
    }
    for text in ["tok_abcdefghijklmnopqrstuv", "order-42", "%41%42"] {
        assert!(!shows_card(text.as_bytes()), "{text}");
    }
}
