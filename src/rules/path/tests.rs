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
