//! Form keys as other parsers read them, and pairs split on `;` as well as `&`: a
//! sensitive field a backend would find is found, and only it is rewritten.
//! Compiled only for tests: `#[cfg(test)] mod tests_readings;` in `codec/mod.rs`.

use ::base64::Engine as _;
use ::base64::engine::general_purpose::STANDARD;

use super::tests_hostile::{code, json, rewritten};
use super::*;
use crate::rules::profiles;

const MAX: usize = 1 << 20;
const CARD: &str = "4242424242424242";
const CVV: &str = "1234";

/// The Plano profile reading a plain form body, or its own base64-wrapped one.
fn plano(body: BodyKind) -> RouteRules {
    let mut rules = profiles::get("plano").unwrap();
    rules.body = body;
    rules
}

fn form_req(body: &[u8]) -> RequestParts<'_> {
    RequestParts {
        content_type: Some("application/x-www-form-urlencoded"),
        content_encoding: None,
        query: None,
        body,
        max_body: MAX,
    }
}

/// (class, value) of every rule finding.
fn rule_values(x: &Extraction) -> Vec<(DataClass, String)> {
    x.findings()
        .iter()
        .filter(|f| matches!(f.kind, FindingKind::Rule { .. }))
        .map(|f| (f.class, f.value.expose().to_owned()))
        .collect()
}

/// The red team's key spellings of `payment_method[<field>]`, as form text
/// (percent-encoded where a raw byte would not do), and one `;`-joined body.
fn hostile_forms() -> Vec<String> {
    let keys = [
        "%5Bpayment_method%5D%5B{f}%5D",
        "payment_method%5B{f}",
        "payment_method%5D%5D%5B{f}%5D",
        "payment%20method%5B{f}%5D",
        "payment+method%5B{f}%5D",
        "payment.method%5B{f}%5D",
    ];
    let mut out: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "{}={CARD}&{}={CVV}&token=x",
                k.replace("{f}", "card_number"),
                k.replace("{f}", "cvc")
            )
        })
        .collect();
    out.push(format!(
        "payment_method%5Bcard_number%5D={CARD}&x=1;payment_method%5Bcvc%5D={CVV}&token=x"
    ));
    out
}

#[test]
fn hostile_keys_are_found_in_plain_and_base64_forms() {
    for form in hostile_forms() {
        let want = [(DataClass::Pan, CARD.into()), (DataClass::Cvv, CVV.into())];
        let x = extract(&plano(BodyKind::Form), form_req(form.as_bytes())).unwrap();
        assert_eq!(rule_values(&x), want, "{form}");
        assert_eq!(x.findings()[1].scope, Some(0), "{form}");
        let expect = form.replace(CARD, "tok0").replace(CVV, "tok1");
        assert_eq!(rewritten(x), expect, "{form}");

        let wrapped = STANDARD.encode(&form);
        let x = extract(&plano(BodyKind::Base64), form_req(wrapped.as_bytes())).unwrap();
        assert_eq!(rule_values(&x), want, "base64 {form}");
        let out = STANDARD.decode(rewritten(x)).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expect, "base64 {form}");
    }
}

#[test]
fn other_fields_are_not_taken_for_the_rule() {
    for key in [
        "payment_methods%5Bcvc%5D",
        "xpayment_method%5Bcvc%5D",
        "payment_method%5Bcvcx%5D",
        "%5Bpayment_methods%5D%5Bcvc%5D",
        "payment.methods%5Bcvc%5D",
    ] {
        let form = format!("{key}={CVV}");
        let x = extract(&plano(BodyKind::Form), form_req(form.as_bytes())).unwrap();
        assert!(rule_values(&x).is_empty(), "{form}");
    }
}

#[test]
fn a_field_in_two_readings_is_a_duplicate() {
    for form in [
        format!("payment_method%5Bcvc%5D={CVV}&%5Bpayment_method%5D%5Bcvc%5D=218"),
        format!("payment_method%5Bcvc%5D={CVV}&payment.method%5Bcvc%5D=218"),
        format!("payment_method%5Bcvc%5D={CVV}&x=1;payment_method%5Bcvc%5D=218"),
    ] {
        let r = extract(&plano(BodyKind::Form), form_req(form.as_bytes()));
        assert_eq!(code(r), "duplicate_sensitive_field", "{form}");
    }
}

#[test]
fn semicolon_pairs_are_rewritten_in_place() {
    let rules = plano(BodyKind::Form);
    // Everything but the value is kept byte for byte, `;`, escapes and `+` too.
    let form = format!("a=%41+b;c;payment_method[cvc]={CVV};d=%3B&e=1");
    let x = extract(&rules, form_req(form.as_bytes())).unwrap();
    assert_eq!(rule_values(&x), [(DataClass::Cvv, CVV.into())]);
    assert_eq!(x.findings()[0].location, "body:payment_method[cvc]");
    assert_eq!(rewritten(x), "a=%41+b;c;payment_method[cvc]=tok0;d=%3B&e=1");
    // A `;` in the key: the piece after it is the pair.
    let form = format!("a;payment_method[cvc]={CVV}");
    let x = extract(&rules, form_req(form.as_bytes())).unwrap();
    assert_eq!(rewritten(x), "a;payment_method[cvc]=tok0");
    // The value is then one value under two keys: one edit, and the rewrite reads
    // the same way again (found by the form fuzz target).
    for form in [
        format!(";payment_method[cvc]={CVV}"),
        format!("x;payment_method[card_number]={CARD}"),
    ] {
        let x = extract(&rules, form_req(form.as_bytes())).unwrap();
        assert_eq!(x.findings().len(), 1, "{form}");
        let again = rewritten(x);
        assert!(again.ends_with("]=tok0"), "{again}");
        let x = extract(&rules, form_req(again.as_bytes())).unwrap();
        assert_eq!(x.findings().len(), 1, "{again}");
    }
    // A sensitive value holding `;` is tokenized whole, as an `&`-only parser
    // reads it: never just its first piece.
    let x = extract(&rules, form_req(b"payment_method[cvc]=12;34")).unwrap();
    assert_eq!(rule_values(&x), [(DataClass::Cvv, "12;34".into())]);
    assert_eq!(rewritten(x), "payment_method[cvc]=tok0");
    // An encoded `;` separates nothing.
    let form = format!("x=1%3Bpayment_method[cvc]={CVV}");
    let x = extract(&rules, form_req(form.as_bytes())).unwrap();
    assert!(rule_values(&x).is_empty());
}

#[test]
fn overlapping_readings_are_refused() {
    let rules = plano(BodyKind::Form);
    for form in [
        // The card number's value, read whole, holds the CVV's pair.
        format!("payment_method[card_number]={CARD};payment_method[cvc]={CVV}"),
        // A leak-guard hit in the value that holds the CVV's pair.
        format!("note=4111111111111111;payment_method[cvc]={CVV}"),
        // The card number after a `;`: the guard's hit in the whole value and the
        // rule's value are two edits of the same bytes.
        format!("x=1;payment_method[card_number]={CARD}"),
    ] {
        let r = extract(&rules, form_req(form.as_bytes()));
        assert_eq!(code(r), "ambiguous_sensitive_field", "{form}");
    }
}

#[test]
fn query_strings_read_both_ways() {
    let mut rules = plano(BodyKind::Json);
    for f in &mut rules.fields {
        f.location = Location::Query;
    }
    let q = format!("x=1;payment.method[cvc]={CVV}&%5Bpayment_method%5D%5Bcard_number%5D={CARD}");
    let req = RequestParts {
        query: Some(&q),
        ..form_req(b"")
    };
    let x = extract(&rules, req).unwrap();
    assert_eq!(
        rule_values(&x),
        [(DataClass::Cvv, CVV.into()), (DataClass::Pan, CARD.into())]
    );
    let toks = [Some("t0".to_owned()), Some("t1".to_owned())];
    let out = x.apply(&toks).unwrap();
    assert_eq!(
        out.query.unwrap(),
        "x=1;payment.method[cvc]=t0&%5Bpayment_method%5D%5Bcard_number%5D=t1"
    );
}

#[test]
fn multipart_names_are_read_like_form_keys() {
    let rules = plano(BodyKind::Auto);
    let body = format!(
        "--b\r\nContent-Disposition: form-data; name=\"[payment_method][cvc]\"\r\n\r\n{CVV}\r\n--b--\r\n"
    );
    let req = RequestParts {
        content_type: Some("multipart/form-data; boundary=b"),
        ..form_req(body.as_bytes())
    };
    let x = extract(&rules, req).unwrap();
    assert_eq!(rule_values(&x), [(DataClass::Cvv, CVV.into())]);
}

#[test]
fn json_keys_as_other_binders_read_them() {
    let oracle = profiles::get("q2open").unwrap();
    let brm = profiles::get("oracle_brm").unwrap();
    let cases: [(&RouteRules, String, &str); 6] = [
        // Naming conventions: snake, kebab, spaced, a trailing space.
        (
            &oracle,
            format!(r#"{{"paymentType":"card","card_number":"{CARD}","card_code":"{CVV}"}}"#),
            CVV,
        ),
        (
            &oracle,
            format!(r#"{{"payment-type":"card","Card-Code ":"{CVV}"}}"#),
            CVV,
        ),
        // JavaScript's `__proto__`, as a merge with `Object.assign` reads it.
        (
            &oracle,
            format!(r#"{{"paymentType":"card","__proto__":{{"cardCode":"{CVV}"}}}}"#),
            CVV,
        ),
        // A dotted key, as flatteners and dotted-path binders nest it.
        (
            &brm,
            r#"{"details.accountNumber":"DE89370400440532013000"}"#.to_owned(),
            "DE89370400440532013000",
        ),
        (
            &brm,
            r#"{"details":{"":{},"x.y":1},"details.accountNumber":"12345678"}"#.to_owned(),
            "12345678",
        ),
        (
            &brm,
            r#"{"__proto__":{"details.accountNumber":"12345678"}}"#.to_owned(),
            "12345678",
        ),
    ];
    for (rules, body, value) in cases {
        let x = extract(rules, json(&body)).unwrap();
        let values: Vec<String> = rule_values(&x).into_iter().map(|(_, v)| v).collect();
        assert!(values.iter().any(|v| v == value), "{body}: {values:?}");
        let out = rewritten(x);
        assert!(!out.contains(value), "{out}");
    }
    // The same field twice under two spellings is refused, as a duplicate.
    let body = format!(r#"{{"paymentType":"card","cardCode":"{CVV}","card_code":"218"}}"#);
    let r = extract(&oracle, json(&body));
    assert_eq!(code(r), "duplicate_sensitive_field");
    // `keys = "insensitive"` keeps to letter case.
    let mut ins = oracle.clone();
    ins.keys = crate::rules::path::KeyMatch::Insensitive;
    let body = format!(r#"{{"paymentType":"card","CARDCODE":"{CVV}","card_code":"218"}}"#);
    let x = extract(&ins, json(&body)).unwrap();
    let values: Vec<String> = rule_values(&x).into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, [CVV]);
}

#[test]
fn a_form_root_of_one_member_is_read_without_it() {
    let rules = plano(BodyKind::Form);
    // Wrapped: every key under `data`, so the fields read without it.
    for body in [
        "data[payment_method][card_number]=4242424242424242&data[payment_method][cvc]=218",
        "data.payment_method.cvc=218",
    ] {
        let x = extract(&rules, form_req(body.as_bytes())).unwrap();
        assert!(
            rule_values(&x).contains(&(DataClass::Cvv, "218".to_owned())),
            "{body}"
        );
    }
    // Two first keys, or a key with no nesting: no wrapper, no rule field.
    for body in [
        "data[payment_method][cvc]=218&other[x]=1",
        "data[payment_method][cvc]=218&x=1",
    ] {
        let x = extract(&rules, form_req(body.as_bytes())).unwrap();
        assert!(
            !rule_values(&x).iter().any(|(c, _)| *c == DataClass::Cvv),
            "{body}"
        );
    }
}
