use super::*;
use PathElem::{Index as I, Key as K};

fn p(s: &str) -> FieldPath {
    FieldPath::parse(s).unwrap()
}

#[test]
fn parses_the_forms() {
    assert_eq!(
        p("details.accountNumber").segments(),
        [
            Segment::Key("details".into()),
            Segment::Key("accountNumber".into())
        ]
    );
    assert_eq!(
        p("payment_method[card_number]").segments(),
        p("payment_method.card_number").segments()
    );
    assert_eq!(
        p("items[0][pan]").segments(),
        [
            Segment::Key("items".into()),
            Segment::Index(0),
            Segment::Key("pan".into())
        ]
    );
    assert_eq!(
        p("$.a[*].**.*").segments(),
        [
            Segment::Key("a".into()),
            Segment::AnyIndex,
            Segment::AnyDepth,
            Segment::AnyOne
        ]
    );
    assert_eq!(
        p("`a.b`.c").segments(),
        [Segment::Key("a.b".into()), Segment::Key("c".into())]
    );
    assert_eq!(
        p(r#"x["a.b"]"#).segments(),
        [Segment::Key("x".into()), Segment::Key("a.b".into())]
    );
    assert_eq!(p("[0]").segments(), [Segment::Index(0)]);
}

#[test]
fn errors_name_the_path() {
    for bad in [
        "", "a..b", "a.", "a[", "a[]", "a*b", "`a", "$x", "a]b", ".a",
    ] {
        let e = FieldPath::parse(bad).unwrap_err().to_string();
        assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
    }
}

#[test]
fn matching() {
    assert!(p("cardNumber").matches(&[K("cardNumber")]));
    assert!(!p("cardNumber").matches(&[K("x"), K("cardNumber")]));
    assert!(p("**.cvc").matches(&[K("cvc")]));
    assert!(p("**.cvc").matches(&[K("a"), I(3), K("b"), K("cvc")]));
    assert!(!p("**.cvc").matches(&[K("cvc"), K("x")]));
    assert!(p("a.**").matches(&[K("a")]));
    assert!(p("a.**.b.**.c").matches(&[K("a"), K("b"), K("x"), K("b"), K("c")]));
    assert!(p("items[*].pan").matches(&[K("items"), I(7), K("pan")]));
    assert!(!p("items[*].pan").matches(&[K("items"), K("x"), K("pan")]));
    assert!(p("items.*.pan").matches(&[K("items"), K("x"), K("pan")]));
    assert!(p("items[1].pan").matches(&[K("items"), I(1), K("pan")]));
    assert!(!p("items[1].pan").matches(&[K("items"), I(2), K("pan")]));
    assert!(p("**").matches(&[]));
}

#[test]
fn shapes_and_case() {
    let shape = |rule: &str, keys: KeyMatch, path: &[PathElem<'_>]| {
        let keys_only: Vec<PathElem<'_>> = path
            .iter()
            .filter(|e| matches!(e, PathElem::Key(_)))
            .copied()
            .collect();
        p(rule).matches_shape(keys, path, &keys_only)
    };
    let ins = KeyMatch::Insensitive;
    assert!(shape("cardCode", ins, &[K("CARDCODE")]));
    assert!(!shape("cardCode", KeyMatch::Exact, &[K("CARDCODE")]));
    assert!(shape(
        "details.accountNumber",
        ins,
        &[K("Details"), K("AccountNumber")]
    ));
    // Wrappers: arrays, objects, a few levels deep.
    assert!(shape("cardCode", ins, &[K("cardCode"), I(0)]));
    assert!(shape("cardCode", ins, &[K("cardCode"), K("value")]));
    assert!(shape(
        "cardCode",
        ins,
        &[K("cardCode"), K("v"), I(2), K("x")]
    ));
    assert!(!shape(
        "cardCode",
        ins,
        &[K("cardCode"), K("a"), K("b"), K("c"), K("d"), K("e")]
    ));
    // Indices the rule does not name.
    assert!(shape(
        "details.accountNumber",
        ins,
        &[K("details"), I(0), K("accountNumber")]
    ));
    assert!(shape("cardCode", ins, &[I(3), K("cardCode")]));
    // Not a different field.
    assert!(!shape("cardCode", ins, &[K("x"), K("cardCode")]));
    assert!(!shape("cardCode", ins, &[K("cardCodes")]));
    assert!(!shape("a.b", ins, &[K("a")]));
    assert!(KeyMatch::Insensitive.same("Direct_Debit", "direct_debit"));
    assert!(!KeyMatch::Insensitive.same("direct-debit", "direct_debit"));
    // The default also ignores word separators, as naming-convention binders do.
    let loose = KeyMatch::default();
    for key in [
        "cardCode",
        "card_code",
        "Card-Code",
        "CARD CODE",
        "cardCode ",
        "_cardcode",
    ] {
        assert!(loose.same("cardCode", key), "{key}");
        assert_eq!(loose.fold(key), "cardcode");
    }
    for key in ["cardCod", "cardCodes", "card.code", "card_cvc", ""] {
        assert!(!loose.same("cardCode", key), "{key}");
        assert_ne!(loose.fold(key), "cardcode");
    }
    assert!(loose.same("", "_-"));
    // The comparison against a rule's folded key agrees with the plain one.
    let words = [
        "cardCode",
        "card_code",
        "CARD-CODE ",
        "cardcod",
        "cardCodes",
        "c",
        "_",
        "",
        "é_x",
        "ÉX",
        "card\u{17f}",
        "\u{131}ban",
        "\u{130}BAN",
        "iban",
        "\u{212a}to",
        "kto",
        "\u{df}",
    ];
    for keys in [KeyMatch::Loose, KeyMatch::Insensitive, KeyMatch::Exact] {
        for rule in words {
            let folded = KeyMatch::Loose.fold(rule);
            for doc in words {
                assert_eq!(
                    keys.same_as_rule(rule, &folded, doc),
                    keys.same(rule, doc),
                    "{keys:?} {rule:?} {doc:?}"
                );
            }
        }
    }
}

#[test]
fn form_keys_split() {
    let mut out = Vec::new();
    let key = "items[0][pan]";
    FieldPath::split_form_key(key, &mut out);
    assert_eq!(
        out,
        [
            FormElem::Key(0..5),
            FormElem::Index(0),
            FormElem::Key(9..12)
        ]
    );
    FieldPath::split_form_key("a.b", &mut out);
    assert_eq!(out, [FormElem::Key(0..1), FormElem::Key(2..3)]);
    FieldPath::split_form_key("a[", &mut out);
    assert_eq!(out, [FormElem::Key(0..2)]);
    FieldPath::split_form_key("", &mut out);
    assert_eq!(out, [FormElem::Key(0..0)]);
    FieldPath::split_form_key("a[]", &mut out);
    assert_eq!(out, [FormElem::Key(0..1), FormElem::Index(0)]);
}

/// Whether the Plano CVV rule (`payment_method.cvc`) names a decoded form key.
fn plano_cvc(key: &str) -> bool {
    FieldPath::keys("payment_method.cvc").matches_form_key(KeyMatch::Insensitive, key)
}

#[test]
fn form_keys_match_under_every_common_reading() {
    // The strict reading, as before.
    for key in [
        "payment_method[cvc]",
        "payment_method.cvc",
        "Payment_Method[CVC]",
        "payment_method[cvc][]",
    ] {
        assert!(plano_cvc(key), "{key}");
    }
    // Node `qs` and Rack strip a leading `[`; Rack reads an unclosed `[` and stray
    // `]`s as nesting.
    for key in [
        "[payment_method][cvc]",
        "payment_method[cvc",
        "payment_method]][cvc]",
        "payment_method]cvc",
        "[payment_method[cvc]",
        "payment_method][cvc]",
    ] {
        assert!(plano_cvc(key), "{key}");
    }
    // PHP: a space, `.` or `+` in the top-level name is `_`, leading spaces go.
    for key in [
        "payment method[cvc]",
        "payment.method[cvc]",
        "payment+method[cvc]",
        " payment_method[cvc]",
        "Payment.Method[CVC]",
    ] {
        assert!(plano_cvc(key), "{key}");
    }
    // PHP names a top-level name with an unclosed `[` with `_` for it.
    let flat = FieldPath::keys("payment_method_cvc");
    assert!(flat.matches_form_key(KeyMatch::Insensitive, "payment.method[cvc"));
    assert!(flat.matches_form_key(KeyMatch::Insensitive, "payment method[cvc"));
    assert!(flat.matches_form_key(KeyMatch::Insensitive, "payment_method[cvc"));
}

#[test]
fn form_keys_of_other_fields_match_under_no_reading() {
    for key in [
        "payment_methods[cvc]",
        "xpayment_method[cvc]",
        "payment_method[cvcx]",
        "[payment_methods][cvc]",
        "payment_method[x][cvc]",
        "payment.methods[cvc]",
        "payment method[cvc2]",
        "payment_method_cvc",
        "payment_method",
        "cvc",
        "[cvc]",
        "payment_method[]",
        "",
    ] {
        assert!(!plano_cvc(key), "{key}");
    }
    // PHP mangles only the top-level name: a dot inside brackets stays a dot.
    assert!(!FieldPath::keys("a.b_c").matches_form_key(KeyMatch::Exact, "a[b.c]"));
    assert!(
        !FieldPath::keys("payment_method.cvc")
            .matches_form_key(KeyMatch::Exact, "PAYMENT.METHOD[cvc]")
    );
}

#[test]
fn readings_are_computed_only_for_keys_that_can_differ() {
    let mut strict = Vec::new();
    let mut r = FormKeyReadings::default();
    for key in ["cardNumber", "payment_method%5Bcvc", "a-b_c"] {
        FieldPath::split_form_key(key, &mut strict);
        r.read(key, &strict);
        assert_eq!(r.others(key).count(), 0, "{key}");
        assert!(!may_read_differently(key));
    }
    // Readings that equal the strict one are not repeated.
    for key in ["payment_method[cvc]", "items[0][pan]", "a[b][c]"] {
        FieldPath::split_form_key(key, &mut strict);
        r.read(key, &strict);
        assert_eq!(r.others(key).count(), 0, "{key}");
    }
    // PHP names `a.b` as `a_b`.
    let key = "a.b";
    FieldPath::split_form_key(key, &mut strict);
    r.read(key, &strict);
    let others: Vec<Vec<PathElem<'_>>> =
        r.others(key).map(|o| reading_elems(o).collect()).collect();
    assert_eq!(others, [vec![K("a_b")]]);
    let key = "[payment_method][cvc]";
    FieldPath::split_form_key(key, &mut strict);
    r.read(key, &strict);
    let others: Vec<Vec<PathElem<'_>>> =
        r.others(key).map(|o| reading_elems(o).collect()).collect();
    assert_eq!(others, [vec![K("payment_method"), K("cvc")]]);
    let key = "payment method[cvc]";
    FieldPath::split_form_key(key, &mut strict);
    r.read(key, &strict);
    let others: Vec<Vec<PathElem<'_>>> =
        r.others(key).map(|o| reading_elems(o).collect()).collect();
    assert_eq!(others, [vec![K("payment_method"), K("cvc")]]);
}

#[test]
fn lenient_split_and_php_names() {
    let mut out = Vec::new();
    readings::split_lenient("[items]][0].pan[", &mut out);
    assert_eq!(
        out,
        [
            FormElem::Key(1..6),
            FormElem::Index(0),
            FormElem::Key(12..15)
        ]
    );
    // Spring's map-key syntax: a quoted key between brackets is the key inside.
    readings::split_lenient("a['cvc'][\"b\"]['x]", &mut out);
    assert_eq!(
        out,
        [
            FormElem::Key(0..1),
            FormElem::Key(3..6),
            FormElem::Key(10..11),
            FormElem::Key(14..16)
        ]
    );
    readings::split_lenient("[].]", &mut out);
    assert_eq!(out, [FormElem::Key(0..0)]);
    // Past qs's array limit a number is a key: replacing a card written there keeps
    // the key's shape.
    readings::split_lenient("a[20]b[21].4242424242424242", &mut out);
    assert_eq!(
        out,
        [
            FormElem::Key(0..1),
            FormElem::Index(20),
            FormElem::Key(5..6),
            FormElem::Key(7..9),
            FormElem::Key(11..27)
        ]
    );
    let mut name = String::new();
    for (key, php, differs) in [
        ("payment.method[cvc]", "payment_method[cvc]", true),
        ("  a b+c[d.e f]", "a_b_c[d.e f]", true),
        ("a.b[c", "a_b_c", true),
        ("a[b[c]", "a[b[c]", false),
        ("a[b]", "a[b]", false),
        ("é.x", "é_x", true),
        // A C string: the name ends at its first NUL.
        ("cvv\0x", "cvv", true),
        ("a.b\0[c]", "a_b", true),
        ("\0cvv", "", true),
    ] {
        assert_eq!(readings::php_name(key, &mut name), differs, "{key}");
        assert_eq!(name, php, "{key}");
    }
}

/// The trailing-key gate turns away exactly the leaves whose last keys cannot meet
/// the rule's last key, and never one that `matches_shape` accepts.
#[test]
fn the_trailing_key_gate_never_turns_a_match_away() {
    let rules = [
        "cardNumber",
        "card_number",
        "payment_method.card_number",
        "items[*].pan",
        "**.cvc",
        "a.*",
        "a[0]",
        "$.a.b.c.d.e.f",
    ];
    let docs: Vec<Vec<PathElem<'_>>> = vec![
        vec![K("cardNumber")],
        vec![K("Card-Number ")],
        vec![K("CARD_NUMBER"), I(0)],
        vec![K("cardNumber"), K("value"), I(0), K("x"), K("y")],
        vec![K("cardNumber"), I(3), K("v"), K("w"), K("x"), K("y")],
        vec![K("cardNumber"), K("v"), K("w"), K("x"), K("y"), K("z")],
        vec![K("payment_method"), K("cardNumber")],
        vec![K("items"), I(2), K("PAN")],
        vec![K("deep"), I(0), K("cvc"), I(1)],
        vec![K("a"), K("b"), K("c"), K("d"), K("e"), K("f")],
        vec![K("a"), I(0)],
        vec![K("clientId")],
        vec![K("cardnumberx")],
        vec![K("")],
        vec![I(0)],
    ];
    let mut turned_away = 0;
    for rule in rules {
        let rule = p(rule);
        for doc in &docs {
            let keys_only: Vec<_> = doc
                .iter()
                .filter(|e| matches!(e, PathElem::Key(_)))
                .copied()
                .collect();
            let trail = TrailingKeys::of(doc);
            let passes = rule.may_end_in(&trail);
            let starts = LastKeyStarts::of(std::iter::once(&rule)).may_name(&trail);
            for keys in [KeyMatch::Loose, KeyMatch::Insensitive, KeyMatch::Exact] {
                if rule.matches_shape(keys, doc, &keys_only) {
                    assert!(passes, "{} at {doc:?} under {keys:?}", rule.as_str());
                    assert!(starts, "{} at {doc:?} under {keys:?}", rule.as_str());
                }
            }
            // The first-byte test is the coarser one.
            assert!(!passes || starts, "{} at {doc:?}", rule.as_str());
            turned_away += usize::from(!passes);
        }
    }
    // It does turn leaves away: `clientId` for `cardNumber`, a key six wrappers up.
    assert!(!p("cardNumber").may_end_in(&TrailingKeys::of(&[K("clientId")])));
    assert!(!p("cardNumber").may_end_in(&TrailingKeys::of(&[
        K("cardNumber"),
        K("v"),
        K("w"),
        K("x"),
        K("y"),
        K("z")
    ])));
    assert!(p("card_number").may_end_in(&TrailingKeys::of(&[K("Card-Number "), I(0)])));
    // Long keys, and keys past an index and other keys, are among the trailing ones.
    let long = "Long_Key-".repeat(12);
    let rule = p(&long.to_lowercase());
    let path = [K(&long), K("v"), I(0), K(&long), K("card_number")];
    assert!(rule.may_end_in(&TrailingKeys::of(&path)));
    assert!(p("cardNumber").may_end_in(&TrailingKeys::of(&path)));
    assert!(p("v").may_end_in(&TrailingKeys::of(&path)));
    assert!(!p("w").may_end_in(&TrailingKeys::of(&path)));
    assert!(!p(&"x".repeat(100)).may_end_in(&TrailingKeys::of(&path)));
    assert!(turned_away > 20, "{turned_away}");
    // Paths ending in a wildcard or an index name any leaf; keys by their first byte.
    let starts = LastKeyStarts::of([p("a.*"), p("cardNumber")].iter());
    assert!(starts.may_name(&TrailingKeys::of(&[K("zzz")])));
    let starts = LastKeyStarts::of([p("cardNumber"), p("accountNumber")].iter());
    assert!(starts.may_name(&TrailingKeys::of(&[K("_Card")])));
    assert!(starts.may_name(&TrailingKeys::of(&[K("x"), K("a")])));
    assert!(!starts.may_name(&TrailingKeys::of(&[K("expMonth")])));
    assert!(!starts.may_name(&TrailingKeys::of(&[K("__")])));
}

#[test]
fn letters_that_case_map_to_ascii_are_those_letters() {
    // Go's encoding/json, Java's equalsIgnoreCase and .NET's OrdinalIgnoreCase bind
    // these to the ASCII key.
    for (doc, rule) in [
        ("detail\u{17f}", "details"),
        ("deta\u{131}ls", "details"),
        ("\u{130}BAN", "iban"),
        ("bank_\u{212a}to", "bankKto"),
    ] {
        for keys in [KeyMatch::Loose, KeyMatch::Insensitive] {
            if keys == KeyMatch::Insensitive && rule == "bankKto" {
                continue;
            }
            assert!(keys.same(rule, doc), "{keys:?} {doc:?}");
            assert_eq!(keys.fold(rule), keys.fold(doc), "{keys:?} {doc:?}");
        }
        assert!(!KeyMatch::Exact.same(rule, doc), "{doc:?}");
    }
    // Full case mappings (`ß` is `SS`) and look-alikes of other scripts are not.
    for doc in ["\u{df}", "\u{456}ban"] {
        assert!(!KeyMatch::Loose.same("ss", doc) && !KeyMatch::Loose.same("iban", doc));
    }
}

#[test]
fn a_spring_field_default_reads_as_its_field() {
    let mut strict = Vec::new();
    let mut r = FormKeyReadings::default();
    for (key, reading) in [
        ("!cvv", vec![K("cvv")]),
        ("!payment_method[cvc]", vec![K("payment_method"), K("cvc")]),
        ("!payment_method.cvc", vec![K("payment_method"), K("cvc")]),
    ] {
        assert!(may_read_differently(key), "{key}");
        FieldPath::split_form_key(key, &mut strict);
        r.read(key, &strict);
        let others: Vec<Vec<PathElem<'_>>> =
            r.others(key).map(|o| reading_elems(o).collect()).collect();
        assert!(others.contains(&reading), "{key}: {others:?}");
    }
    // Only a leading `!` is Spring's.
    for key in ["x!cvv", "cvv!"] {
        assert!(!may_read_differently(key), "{key}");
    }
    assert!(FieldPath::keys("cvv").matches_form_key(KeyMatch::Exact, "!cvv"));
    assert!(FieldPath::keys("cvv").matches_form_key(KeyMatch::Exact, "cvv\0junk"));
    assert!(!FieldPath::keys("cvv").matches_form_key(KeyMatch::Exact, "x!cvv"));
}
