//! Tests of the fail-closed corners (issue 11): key case and shape, ambiguous
//! conditions, bodies no codec reads, data after a compressed stream, Plano bodies.
//! Compiled only for tests: `#[cfg(test)] mod tests_hostile;` in `codec/mod.rs`.

use ::base64::Engine as _;
use ::base64::engine::general_purpose::STANDARD;

use super::*;
use crate::rules::path::KeyMatch;
use crate::rules::profiles;

const MAX: usize = 1 << 20;
const CARD: &str = "4242424242424242";

pub(super) fn req<'a>(content_type: Option<&'a str>, body: &'a [u8]) -> RequestParts<'a> {
    RequestParts {
        content_type,
        content_encoding: None,
        query: None,
        body,
        max_body: MAX,
    }
}

pub(super) fn json(body: &str) -> RequestParts<'_> {
    req(Some("application/json"), body.as_bytes())
}

/// Whether the guard stopped `card` where no token can take its place: the request
/// refused as read (`card_number_detected`), or the card's digits kept as a hidden
/// finding, which refuses the request unless they are a token of this vault.
pub(super) fn stopped(r: Result<Extraction>, card: &str) -> bool {
    match r {
        Err(e) => e.code() == "card_number_detected",
        Ok(x) => x
            .findings()
            .iter()
            .any(|f| f.kind == FindingKind::Hidden && f.value.expose() == card),
    }
}

fn profile(name: &str) -> RouteRules {
    profiles::get(name).unwrap()
}

/// (class, value, location) of every rule finding.
fn rule_findings(x: &Extraction) -> Vec<(DataClass, String, String)> {
    x.findings()
        .iter()
        .filter(|f| matches!(f.kind, FindingKind::Rule { .. }))
        .map(|f| (f.class, f.value.expose().to_owned(), f.location.clone()))
        .collect()
}

/// The body with `tok0`, `tok1`, … for the findings in order.
pub(super) fn rewritten(x: Extraction) -> String {
    let n = x.findings().len();
    let toks: Vec<Option<String>> = (0..n).map(|i| Some(format!("tok{i}"))).collect();
    let out = x.apply(&toks).unwrap();
    String::from_utf8(out.body.unwrap().to_vec()).unwrap()
}

pub(super) fn code(r: Result<Extraction>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

// === key case and shape ===

#[test]
fn keys_in_another_case_match() {
    let x = extract(
        &profile("q2open"),
        json(r#"{"PaymentType":"CARD","CardNumber":"4242424242424242","CardCode":"739"}"#),
    )
    .unwrap();
    assert_eq!(
        rule_findings(&x),
        [
            (DataClass::Pan, CARD.into(), "body:$.CardNumber".into()),
            (DataClass::Cvv, "739".into(), "body:$.CardCode".into()),
        ]
    );
    assert_eq!(x.findings()[1].scope, Some(0));

    let x = extract(
        &profile("hostway"),
        json(r#"{"paymentInfoType":"Direct_Debit","AccountNumber":"12345678","VerificationNumber":"1"}"#),
    )
    .unwrap();
    let classes: Vec<_> = rule_findings(&x).into_iter().map(|f| f.0).collect();
    assert_eq!(classes, [DataClass::BankAccount, DataClass::Cvv]);

    let x = extract(
        &profile("oracle_brm"),
        json(r#"{"Details":{"AccountNumber":"DE89370400440532013000"}}"#),
    )
    .unwrap();
    assert_eq!(rule_findings(&x).len(), 1);

    let plano =
        STANDARD.encode(r#"{"Payment_Method":{"Card_Number":"4242424242424242","CVC":"739"}}"#);
    let x = extract(&profile("plano"), req(Some("text/plain"), plano.as_bytes())).unwrap();
    assert_eq!(rule_findings(&x).len(), 2);
}

#[test]
fn exact_keys_opt_out() {
    let mut rules = profile("q2open");
    rules.keys = KeyMatch::Exact;
    // `CardCode` is not the field; `CARD` is not a known payment type.
    let x = extract(
        &rules,
        json(r#"{"paymentType":"card","cardNumber":"4242424242424242","CardCode":"739"}"#),
    )
    .unwrap();
    assert_eq!(rule_findings(&x).len(), 1);
    let e = extract(
        &rules,
        json(r#"{"paymentType":"CARD","cardNumber":"4242424242424242"}"#),
    );
    assert_eq!(code(e), "ambiguous_sensitive_field");
}

#[test]
fn values_in_wrappers_are_reached() {
    let rules = profile("q2open");
    for (body, want) in [
        (
            r#"{"paymentType":"card","cardNumber":"4242424242424242","cardCode":["739"]}"#,
            r#"{"paymentType":"card","cardNumber":"tok0","cardCode":["tok1"]}"#,
        ),
        (
            r#"{"paymentType":"card","cardNumber":"4242424242424242","cardCode":{"value":"739"}}"#,
            r#"{"paymentType":"card","cardNumber":"tok0","cardCode":{"value":"tok1"}}"#,
        ),
        (
            r#"{"paymentType":["card"],"cardNumber":["4242424242424242"],"cardCode":{"v":[739]}}"#,
            r#"{"paymentType":["card"],"cardNumber":["tok0"],"cardCode":{"v":["tok1"]}}"#,
        ),
    ] {
        let x = extract(&rules, json(body)).unwrap();
        assert_eq!(rule_findings(&x).len(), 2, "{body}");
        assert_eq!(x.findings()[1].scope, Some(0), "{body}");
        assert_eq!(rewritten(x), want);
    }
    // Every element of an array of values.
    let x = extract(
        &rules,
        json(r#"{"paymentType":"card","cardCode":["739","740"],"cardNumber":"4242424242424242"}"#),
    )
    .unwrap();
    assert_eq!(rule_findings(&x).len(), 3);
    // `details` as an array.
    let x = extract(
        &profile("oracle_brm"),
        json(r#"{"details":[{"accountNumber":"DE89370400440532013000"}]}"#),
    )
    .unwrap();
    assert_eq!(rule_findings(&x)[0].2, "body:$.details[0].accountNumber");
    // Form keys with `[]`.
    let mut form = profile("q2open");
    form.body = BodyKind::Form;
    let x = extract(
        &form,
        req(
            None,
            b"paymentType=card&cardNumber[]=4242424242424242&CardCode[]=739",
        ),
    )
    .unwrap();
    assert_eq!(rule_findings(&x).len(), 2);
    assert_eq!(
        rewritten(x),
        "paymentType=card&cardNumber[]=tok0&CardCode[]=tok1"
    );
}

#[test]
fn conditions_that_do_not_hold_are_ambiguous() {
    let hostway = profile("hostway");
    for body in [
        r#"{"paymentInfoType":"paypal","accountNumber":"4242424242424242"}"#,
        r#"{"accountNumber":"4242424242424242"}"#,
        r#"{"paymentInfoType":"","accountNumber":"12345678"}"#,
    ] {
        assert_eq!(
            code(extract(&hostway, json(body))),
            "ambiguous_sensitive_field",
            "{body}"
        );
    }
    // The condition in another case holds.
    let x = extract(
        &hostway,
        json(r#"{"PaymentInfoType":"CREDIT_CARD","accountNumber":"4242424242424242"}"#),
    )
    .unwrap();
    assert_eq!(rule_findings(&x)[0].0, DataClass::Pan);
}

#[test]
fn two_cards_scope_nothing_they_are_refused() {
    let e = extract(
        &profile("q2open"),
        json(
            r#"{"paymentType":"card","cardNumber":"4242424242424242","cardCode":"739","CARDNUMBER":"4111111111111111"}"#,
        ),
    );
    assert_eq!(code(e), "duplicate_sensitive_field");
}

// === bodies no codec reads ===

pub(super) fn guard_route() -> RouteRules {
    profile("payment_method")
}

#[test]
fn bytes_that_are_not_utf8_get_the_readings_text_gets() {
    // Found by the leak differential (`tests/proxy/leak_differential`), in Latin-1
    // text (not UTF-8, so read at the byte level): `%2520` is `%20` and then a space
    // to a backend decoding a form and then its field; `%A0` and `%C2%A0` are
    // no-break spaces.
    for body in [
        b"note: 4%2520242424242\xa0424242 thanks".as_slice(),
        b"note: 4242424242424%A0\xa0242",
        b"note: 4242424242424%C2%A0242 \xe9",
    ] {
        let r = extract(
            &guard_route(),
            req(Some("text/plain; charset=windows-1252"), body),
        );
        assert!(stopped(r, CARD), "{}", body.escape_ascii());
    }
    // UTF-16 with a byte order mark (not UTF-8): its escapes are read too
    // (`&#1;`, which Python's `html.unescape` drops), as a UTF-16 text.
    let wide: Vec<u8> = "\u{feff}note: 4242424242424&#1;242 thanks"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let r = extract(&guard_route(), req(Some("text/plain"), &wide));
    assert!(stopped(r, CARD), "UTF-16 with an escape");
}

#[test]
fn escaped_json_outside_a_json_type_is_refused() {
    let esc: String = CARD
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let body = format!(r#"{{"note":"{esc}"}}"#);
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let r = extract(&guard_route(), req(ct, body.as_bytes()));
        assert!(stopped(r, CARD), "{ct:?}");
    }
    // As JSON it is decoded and tokenized.
    let x = extract(&guard_route(), json(&body)).unwrap();
    assert_eq!(x.findings().len(), 1);
}

#[test]
fn character_references_and_utf16_are_refused() {
    let dec: String = CARD.chars().map(|c| format!("&#{};", c as u32)).collect();
    let hex: String = CARD
        .chars()
        .map(|c| format!("&#x{:x};", c as u32))
        .collect();
    for body in [format!("<card>{dec}</card>"), format!("<p>{hex}</p>")] {
        let r = extract(
            &guard_route(),
            req(Some("application/xml"), body.as_bytes()),
        );
        assert!(stopped(r, CARD), "{body}");
    }
    let utf16: Vec<u8> = format!(r#"{{"note":"{CARD}"}}"#)
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    for ct in ["text/json", "application/octet-stream"] {
        let mut bom = vec![0xff, 0xfe];
        bom.extend_from_slice(&utf16);
        for body in [&utf16, &bom] {
            let r = extract(&guard_route(), req(Some(ct), body));
            assert!(stopped(r, CARD), "{ct}");
        }
    }
}

#[test]
fn text_with_one_byte_that_is_not_utf8() {
    let body = format!("note {CARD} \u{0}\u{1}").into_bytes();
    let mut body = body;
    body.push(0xff);
    let x = extract(&guard_route(), req(Some("text/plain"), &body)).unwrap();
    assert_eq!(x.findings().len(), 1);
    let n = x.findings().len();
    let out = x
        .apply(&vec![Some("tok".to_owned()); n])
        .unwrap()
        .body
        .unwrap();
    assert!(out.starts_with(b"note tok "));
    assert_eq!(out.last(), Some(&0xff));
}

#[test]
fn gzip_of_a_binary_body() {
    let mut raw = vec![0x89, b'P', b'N', b'G', 0xff, 0x00];
    raw.extend_from_slice(CARD.as_bytes());
    raw.push(0xfe);
    let gz = compress(media::Coding::Gzip, &raw);
    let r = RequestParts {
        content_encoding: Some("gzip"),
        ..req(Some("image/png"), &gz)
    };
    let x = extract(&guard_route(), r).unwrap();
    assert_eq!(x.findings().len(), 1);
    let out = x.apply(&[Some("tok0".to_owned())]).unwrap().body.unwrap();
    let back = media::decompress(media::Coding::Gzip, &out, MAX).unwrap().0;
    assert!(back.windows(4).any(|w| w == b"tok0"));
    assert!(!back.windows(16).any(|w| w == CARD.as_bytes()));
}

// === compressed streams ===

fn compress(c: media::Coding, data: &[u8]) -> Vec<u8> {
    media::compress(c, data).unwrap()
}

#[test]
fn data_after_a_compressed_stream_is_refused() {
    let rules = profile("q2open");
    for (coding, header, c) in [
        (media::Coding::Gzip, "gzip", "gzip"),
        (media::Coding::Zlib, "deflate", "zlib"),
        (media::Coding::RawDeflate, "deflate", "raw"),
    ] {
        let mut body = compress(coding, b"{}");
        // The stream alone is fine.
        let ok = RequestParts {
            content_encoding: Some(header),
            ..json_bytes(&body)
        };
        assert!(extract(&rules, ok).is_ok(), "{c}");
        body.extend_from_slice(format!(r#"{{"cardNumber":"{CARD}","cardCode":"739"}}"#).as_bytes());
        let bad = RequestParts {
            content_encoding: Some(header),
            ..json_bytes(&body)
        };
        let e = extract(&rules, bad).err().unwrap();
        assert_eq!(e.code(), "invalid_body", "{c}");
        assert!(e.to_string().contains("after the end"), "{c}: {e}");
    }
    // Two gzip members are one gzip body.
    let mut two = compress(media::Coding::Gzip, b"{\"a\":");
    two.extend(compress(media::Coding::Gzip, b"1}"));
    let r = RequestParts {
        content_encoding: Some("gzip"),
        ..json_bytes(&two)
    };
    assert!(extract(&profile("q2open"), r).is_ok());
}

fn json_bytes(body: &[u8]) -> RequestParts<'_> {
    req(Some("application/json"), body)
}

// === Plano ===

#[test]
fn plano_bom_is_accepted_and_kept() {
    let inner =
        format!("\u{feff}{{\"payment_method\":{{\"card_number\":\"{CARD}\",\"cvc\":\"739\"}}}}");
    let body = STANDARD.encode(&inner);
    let x = extract(&profile("plano"), req(Some("text/plain"), body.as_bytes())).unwrap();
    assert_eq!(rule_findings(&x).len(), 2);
    let out = rewritten(x);
    let decoded = String::from_utf8(STANDARD.decode(out).unwrap()).unwrap();
    assert_eq!(
        decoded,
        "\u{feff}{\"payment_method\":{\"card_number\":\"tok0\",\"cvc\":\"tok1\"}}"
    );
}

#[test]
fn plano_bodies_that_are_neither_object_nor_form_are_refused() {
    for inner in [
        format!("\"payment_method[card_number]={CARD}&payment_method[cvc]=739\""),
        format!("[{{\"payment_method\":{{\"card_number\":\"{CARD}\"}}}}]"),
        "739".to_owned(),
        format!("card {CARD} cvc 739"),
        "\u{feff}payment_method[cvc]=739".to_owned(),
    ] {
        let body = STANDARD.encode(&inner);
        let e = extract(&profile("plano"), req(Some("text/plain"), body.as_bytes()));
        assert_eq!(code(e), "invalid_body", "{inner}");
    }
}

#[test]
fn form_detection() {
    assert!(form::looks_like_form(b"a=1&b[c]=2%20x"));
    assert!(form::looks_like_form(b"a=1\n"));
    assert!(form::looks_like_form(b"a=&&b=2"));
    assert!(!form::looks_like_form(b"\"a=1\""));
    assert!(!form::looks_like_form(b"a=1 b=2"));
    assert!(!form::looks_like_form(b"=1"));
    assert!(!form::looks_like_form(b"abc"));
    assert!(!form::looks_like_form(b""));
}

#[test]
fn json_with_a_bom() {
    let body = format!("\u{feff}{{\"pan\":\"{CARD}\"}}");
    let rules = RouteRules {
        body: BodyKind::Json,
        fields: vec![crate::rules::FieldRule {
            path: crate::rules::FieldPath::parse("pan").unwrap(),
            class: DataClass::Pan,
            format: None,
            deterministic: None,
            when: None,
            scope: None,
            location: Location::Body,
        }],
        ..RouteRules::default()
    };
    let x = extract(&rules, json(&body)).unwrap();
    assert_eq!(rewritten(x), "\u{feff}{\"pan\":\"tok0\"}");
}

/// A field holds at most `MAX_HIDDEN` distinct hits that cannot be replaced in place;
/// one that reaches it is refused as read, whatever the hits are: past the cap, one
/// more could be a card beside a thousand tokens of ours.
#[test]
fn a_field_with_too_many_hidden_cards_is_refused() {
    // Full-width digits: hidden hits, never replaced in place.
    let wide = |n: usize| -> String {
        let payload = format!("4242{n:011}");
        let check = crate::sensitive::luhn::check_digit(&payload);
        payload
            .bytes()
            .map(|b| u32::from(b - b'0'))
            .chain(std::iter::once(u32::from(check)))
            .filter_map(|d| char::from_u32(0xFF10 + d))
            .collect()
    };
    let note = |n: usize| (0..n).map(wide).collect::<Vec<_>>().join(" x ");
    let limit = crate::rules::guard::MAX_HIDDEN;
    let x = extract(
        &guard_route(),
        json(&format!(r#"{{"note":"{}"}}"#, note(limit - 1))),
    )
    .unwrap();
    let hidden = x
        .findings()
        .iter()
        .filter(|f| f.kind == FindingKind::Hidden)
        .count();
    assert_eq!(hidden, limit - 1);
    let e = extract(
        &guard_route(),
        json(&format!(r#"{{"note":"{}"}}"#, note(limit))),
    );
    assert_eq!(code(e), "card_number_detected");
}
