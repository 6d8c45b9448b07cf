//! Tests of the body pipeline over the documented APIs' example requests and the
//! tricky corners of each codec.

use std::io::{Read, Write};

use ::base64::Engine as _;
use ::base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::*;
use crate::rules::path::KeyMatch;
use crate::rules::{Condition, FieldPath, FieldRule, LeakPolicy, RouteRules, profiles};

const MAX: usize = 1 << 20;

fn compiled(profile: &str) -> RouteRules {
    profiles::get(profile).unwrap()
}

fn rule(path: &str, class: DataClass) -> FieldRule {
    FieldRule {
        path: FieldPath::parse(path).unwrap(),
        class,
        format: None,
        deterministic: None,
        when: None,
        scope: None,
        location: Location::Body,
    }
}

fn route(body: BodyKind, fields: Vec<FieldRule>, leak_guard: LeakPolicy) -> RouteRules {
    RouteRules {
        body,
        fields,
        leak_guard,
        ..RouteRules::default()
    }
}

fn json_req(body: &[u8]) -> RequestParts<'_> {
    RequestParts {
        content_type: Some("application/json"),
        content_encoding: None,
        query: None,
        body,
        max_body: MAX,
    }
}

/// (class, value, location) of every finding.
fn summary(x: &Extraction) -> Vec<(DataClass, String, String)> {
    x.findings()
        .iter()
        .map(|f| (f.class, f.value.expose().to_owned(), f.location.clone()))
        .collect()
}

/// Apply `tok<i>` to every finding.
fn tokens(n: usize) -> Vec<Option<String>> {
    (0..n).map(|i| Some(format!("tok{i}"))).collect()
}

fn body_str(r: &Rewritten) -> String {
    String::from_utf8(r.body.as_ref().unwrap().to_vec()).unwrap()
}

fn invalid(e: Error) -> String {
    match e {
        Error::InvalidBody(m) => m,
        other => panic!("expected InvalidBody, got {other:?}"),
    }
}

// === the documented examples ===

const Q2_CARD: &str = r#"{
    "clientId": "56e1ddbd1a05319bc198d36f",
    "paymentType": "card",
    "identifier": "optional_custom_identifier",
    "cardNumber": "378282246310005",
    "cardCode": "218",
    "expMonth": "10",
    "expYear": "2017",
    "zipcode": "12345",
    "name": "Demo User",
    "setAsDefault": true,
    "customLabel": "Entertainment Rewards Card"
  }"#;

const Q2_BANK: &str = r#"{
    "clientId": "56e1ddbd1a05319bc198d36f",
    "paymentType": "bank",
    "identifier": "optional_custom_identifier",
    "routingNumber": "021000021",
    "accountNumber": "9900000002",
    "accountType": "checking",
    "name": "Demo User",
    "customLabel": "For Utilities"
  }"#;

#[test]
fn q2open_card() {
    let x = extract(&compiled("q2open"), json_req(Q2_CARD.as_bytes())).unwrap();
    assert_eq!(
        summary(&x),
        [
            (
                DataClass::Pan,
                "378282246310005".into(),
                "body:$.cardNumber".into()
            ),
            (DataClass::Cvv, "218".into(), "body:$.cardCode".into()),
        ]
    );
    assert_eq!(x.findings()[0].kind, FindingKind::Rule { rule: 0 });
    assert_eq!(x.findings()[1].scope, Some(0));
    let out = x
        .apply(&[Some("378282XXXXX0005".into()), Some("cvv_abc".into())])
        .unwrap();
    let want = Q2_CARD
        .replace("\"378282246310005\"", "\"378282XXXXX0005\"")
        .replace("\"218\"", "\"cvv_abc\"");
    assert_eq!(body_str(&out), want);
    assert!(out.query.is_none());
}

#[test]
fn q2open_bank_keeps_routing_number() {
    let x = extract(&compiled("q2open"), json_req(Q2_BANK.as_bytes())).unwrap();
    assert_eq!(
        summary(&x),
        [(
            DataClass::BankAccount,
            "9900000002".into(),
            "body:$.accountNumber".into()
        )]
    );
    let out = x.apply(&[Some("9900001234".into())]).unwrap();
    assert_eq!(body_str(&out), Q2_BANK.replace("9900000002", "9900001234"));
}

const BRM: &str = r#"{
"name": "John Frank's Direct Debit Account",
"description": null,
"validFor": null,
"account": [
{
"id": "0.0.0.1+-account+104221",
"href": null,
"description": "John's Primary Account",
"name": "John Frank",
"@baseType": null,
"@schemaLocation": null,
"@type": null,
"@referredType": null
}
],
"preferred": true,
"relatedParty": null,
"type": "bankAccountDebit",
"authorizationCode": null,
"status": null,
"details": {
"accountNumber": "12345678901236491",
"accountNumberType": "Savings",
"BIC": "111122334",
"owner": "John Frank",
"bank": "My Bank"
}
}"#;

#[test]
fn oracle_brm() {
    let x = extract(&compiled("oracle_brm"), json_req(BRM.as_bytes())).unwrap();
    assert_eq!(
        summary(&x),
        [(
            DataClass::BankAccount,
            "12345678901236491".into(),
            "body:$.details.accountNumber".into()
        )]
    );
    let out = x.apply(&tokens(1)).unwrap();
    assert_eq!(
        body_str(&out),
        BRM.replace("\"12345678901236491\"", "\"tok0\"")
    );
}

const HOSTWAY_CARD: &str = r#"{
 "paymentInfoType": "credit_card",
 "accountNumber": "111111111111111111",
 "cardHolderName": "John Smith",
 "verificationNumber": "555",
 "creditCardType": "amex",
 "expirationDate": "2015-06",
 "billingAddress": {
    "street1": "Address Line 1",
    "street2": "Address Line 2",
    "countryCode": "US",
    "city": "Chicago",
    "postalCode": "60606",
    "stateOrProvince": "IL"
 }
}"#;

const HOSTWAY_DD: &str = r#"{
 "paymentInfoType": "direct_debit",
 "routingNumber": "123456789",
 "accountNumber": "1234",
 "accountName": "My Account Name",
 "accountOwner": "John Smith",
 "bankName": "My Bank",
 "bankCity": "Chicago",
 "bankCountry": "US"
}"#;

#[test]
fn hostway_card_and_direct_debit() {
    let rules = compiled("hostway");
    let x = extract(&rules, json_req(HOSTWAY_CARD.as_bytes())).unwrap();
    assert_eq!(
        summary(&x),
        [
            (
                DataClass::Pan,
                "111111111111111111".into(),
                "body:$.accountNumber".into()
            ),
            (
                DataClass::Cvv,
                "555".into(),
                "body:$.verificationNumber".into()
            ),
        ]
    );
    assert_eq!(x.findings()[1].scope, Some(0));
    let out = x.apply(&tokens(2)).unwrap();
    assert_eq!(
        body_str(&out),
        HOSTWAY_CARD
            .replace("\"111111111111111111\"", "\"tok0\"")
            .replace("\"555\"", "\"tok1\"")
    );

    let x = extract(&rules, json_req(HOSTWAY_DD.as_bytes())).unwrap();
    assert_eq!(
        summary(&x),
        [(
            DataClass::BankAccount,
            "1234".into(),
            "body:$.accountNumber".into()
        )]
    );
    assert_eq!(x.findings()[0].kind, FindingKind::Rule { rule: 1 });
}

const STRIPE: &str = r#"
{
  "customerId": "cus_1234567890",
  "isActive": true,
  "stripeId": "pm_1234567890",
  "type": "card",
  "last4": "1234",
  "fingerprint": "1234567890",
  "country": "US",
  "brand": "Visa",
  "exp_month": 1,
  "exp_year": 2025,
  "funding": "credit",
  "wallet": {}
}
"#;

#[test]
fn stripe_backed_passes_through() {
    let x = extract(&compiled("payment_method"), json_req(STRIPE.as_bytes())).unwrap();
    assert!(x.findings().is_empty());
    let out = x.apply(&[]).unwrap();
    assert!(out.body.is_none() && out.query.is_none());
}

#[test]
fn stripe_backed_catches_a_stray_card() {
    let body = STRIPE.replace("\"1234567890\"", "\"4242 4242 4242 4242\"");
    let x = extract(&compiled("payment_method"), json_req(body.as_bytes())).unwrap();
    assert_eq!(
        summary(&x),
        [(
            DataClass::Pan,
            "4242 4242 4242 4242".into(),
            "body:$.fingerprint".into()
        )]
    );
    assert_eq!(x.findings()[0].kind, FindingKind::Leak);
    let out = x.apply(&tokens(1)).unwrap();
    assert_eq!(body_str(&out), STRIPE.replace("\"1234567890\"", "\"tok0\""));
}

const PLANO: &str = r#"{"payment_method":{"name_on_card":"Demo User","card_number":"4242424242424242","cvc":"123","exp_month":12,"exp_year":2030,"active":true},"token":"abc123?>>"}"#;

fn plano_req(body: &[u8]) -> RequestParts<'_> {
    RequestParts {
        content_type: Some("text/plain"),
        content_encoding: None,
        query: None,
        body,
        max_body: MAX,
    }
}

fn plano_round_trip(encoded: &str, decode: impl Fn(&str) -> Vec<u8>) -> String {
    let x = extract(&compiled("plano"), plano_req(encoded.as_bytes())).unwrap();
    assert_eq!(
        summary(&x),
        [
            (
                DataClass::Pan,
                "4242424242424242".into(),
                "body:$.payment_method.card_number".into()
            ),
            (
                DataClass::Cvv,
                "123".into(),
                "body:$.payment_method.cvc".into()
            ),
        ]
    );
    assert_eq!(x.findings()[1].scope, Some(0));
    let out = x.apply(&tokens(2)).unwrap();
    let text = body_str(&out);
    let decoded = String::from_utf8(decode(&text)).unwrap();
    assert_eq!(
        decoded,
        PLANO
            .replace("\"4242424242424242\"", "\"tok0\"")
            .replace("\"123\"", "\"tok1\"")
    );
    text
}

#[test]
fn plano_both_alphabets() {
    let std = STANDARD.encode(PLANO);
    let url = URL_SAFE_NO_PAD.encode(PLANO);
    // The body holds `?>>`, so the alphabets really differ.
    assert!(std.contains('/') || std.contains('+'));
    assert!(url.contains('_') || url.contains('-'));
    let out = plano_round_trip(&std, |s| STANDARD.decode(s).unwrap());
    assert!(!out.contains('-') && !out.contains('_'));
    let out = plano_round_trip(&url, |s| URL_SAFE_NO_PAD.decode(s).unwrap());
    assert!(!out.contains('=') && !out.contains('+') && !out.contains('/'));
}

#[test]
fn plano_wrapped_lines_are_rewrapped() {
    let std = STANDARD.encode(PLANO);
    let wrapped: Vec<&str> = std
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let body = wrapped.join("\r\n") + "\r\n";
    let out = plano_round_trip(&body, |s| STANDARD.decode(s.replace("\r\n", "")).unwrap());
    assert!(out.ends_with("\r\n"));
    assert!(out.split("\r\n").all(|l| l.len() <= 76));
}

#[test]
fn plano_form_inside_base64() {
    let form = "payment_method%5Bcard_number%5D=4242424242424242&payment_method[cvc]=123&token=x";
    let x = extract(
        &compiled("plano"),
        plano_req(STANDARD.encode(form).as_bytes()),
    )
    .unwrap();
    assert_eq!(
        summary(&x),
        [
            (
                DataClass::Pan,
                "4242424242424242".into(),
                "body:payment_method[card_number]".into()
            ),
            (
                DataClass::Cvv,
                "123".into(),
                "body:payment_method[cvc]".into()
            ),
        ]
    );
    let out = x.apply(&tokens(2)).unwrap();
    let decoded = STANDARD.decode(out.body.unwrap()).unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "payment_method%5Bcard_number%5D=tok0&payment_method[cvc]=tok1&token=x"
    );
}

#[test]
fn base64_errors() {
    let rules = compiled("plano");
    let bad = |body: &str| invalid(extract(&rules, plano_req(body.as_bytes())).err().unwrap());
    let mixed = format!("{}-_", STANDARD.encode(PLANO).trim_end_matches('='));
    assert!(bad(&mixed).contains("mixes"), "{}", bad(&mixed));
    let std = STANDARD.encode(PLANO);
    let truncated = &std[..std.len() - 3];
    assert!(bad(truncated).contains("invalid-encoded-params"));
    assert!(bad("eyJ!fQ==").contains("invalid-encoded-params"));
    assert!(bad("{\"a\":1}").contains("invalid-encoded-params"));
    assert!(bad("\r\n").contains("no-params-decoded"));
    assert!(bad("====").contains("invalid-encoded-params"));
    // Never the content in a message.
    assert!(!bad(&mixed).contains("eyJ"));
}

// === JSON ===

fn pan_rule(path: &str) -> RouteRules {
    route(
        BodyKind::Json,
        vec![rule(path, DataClass::Pan)],
        LeakPolicy::Tokenize,
    )
}

#[test]
fn escaped_strings_are_decoded_and_replaced() {
    let body = br#"{"pan":"\u0034242424242424242","x":"\ud83d\ude00 \"q\""}"#;
    let x = extract(&pan_rule("pan"), json_req(body)).unwrap();
    assert_eq!(
        summary(&x),
        [(
            DataClass::Pan,
            "4242424242424242".into(),
            "body:$.pan".into()
        )]
    );
    let out = x.apply(&[Some("to\"k\n".into())]).unwrap();
    assert_eq!(
        body_str(&out),
        r#"{"pan":"to\"k\n","x":"\ud83d\ude00 \"q\""}"#
    );
    // A leak in an escaped string is found in its decoded form.
    let body = br#"{"note":"card \u0034242-4242-4242-4242!"}"#;
    let x = extract(&pan_rule("pan"), json_req(body)).unwrap();
    assert_eq!(
        summary(&x),
        [(
            DataClass::Pan,
            "4242-4242-4242-4242".into(),
            "body:$.note".into()
        )]
    );
    let out = x.apply(&tokens(1)).unwrap();
    assert_eq!(body_str(&out), r#"{"note":"card tok0!"}"#);
}

#[test]
fn numbers_where_strings_were_expected() {
    let body = br#"{"pan": 4242424242424242 , "n": 5555555555554444}"#;
    let x = extract(&pan_rule("pan"), json_req(body)).unwrap();
    assert_eq!(
        summary(&x),
        [
            (
                DataClass::Pan,
                "4242424242424242".into(),
                "body:$.pan".into()
            ),
            (DataClass::Pan, "5555555555554444".into(), "body:$.n".into()),
        ]
    );
    assert_eq!(x.findings()[1].kind, FindingKind::Leak);
    let out = x
        .apply(&[Some("4242420000004242".into()), Some("tok_x".into())])
        .unwrap();
    assert_eq!(
        body_str(&out),
        r#"{"pan": 4242420000004242 , "n": "tok_x"}"#
    );
    let x = extract(&pan_rule("pan"), json_req(body)).unwrap();
    let out = x.apply(&[Some("0123".into()), None]).unwrap();
    assert_eq!(body_str(&out), r#"{"pan": "0123" , "n": 5555555555554444}"#);
}

#[test]
fn duplicate_sensitive_keys_are_refused() {
    // Which of two values a backend binds is its own business: refused, in any
    // letter case, in JSON and in forms.
    for body in [
        &br#"{"pan":"4242424242424242","pan":"4111111111111111"}"#[..],
        br#"{"pan":"4242424242424242","PAN":"4111111111111111"}"#,
    ] {
        let e = extract(&pan_rule("pan"), json_req(body)).err().unwrap();
        assert!(
            matches!(&e, Error::DuplicateSensitiveField(l) if l.eq_ignore_ascii_case("body:$.pan")),
            "{e:?}"
        );
        assert_eq!(e.code(), "duplicate_sensitive_field");
    }
    let form = route(
        BodyKind::Form,
        vec![rule("pan", DataClass::Pan)],
        LeakPolicy::Allow,
    );
    let e = extract(
        &form,
        json_req(b"pan=4242424242424242&pan=4111111111111111"),
    );
    assert!(matches!(e, Err(Error::DuplicateSensitiveField(_))));
    // Elements of an array are not duplicates; other keys are not either.
    let body = br#"{"pan":["4242424242424242","4111111111111111"],"x":"1","x":"2"}"#;
    let x = extract(&pan_rule("pan"), json_req(body)).unwrap();
    assert_eq!(x.findings().len(), 2);
    let out = x.apply(&tokens(2)).unwrap();
    assert_eq!(body_str(&out), r#"{"pan":["tok0","tok1"],"x":"1","x":"2"}"#);
    // With exact keys, `PAN` is another field.
    let mut exact = pan_rule("pan");
    exact.keys = KeyMatch::Exact;
    let body = br#"{"pan":"4242424242424242","PAN":"x"}"#;
    assert_eq!(extract(&exact, json_req(body)).unwrap().findings().len(), 1);
}

#[test]
fn conditions_with_duplicates_fail_safe() {
    // A decoy `paymentType` cannot switch the card rule off.
    let body = br#"{"paymentType":"bank","paymentType":"card","cardNumber":"4242424242424242"}"#;
    let x = extract(&compiled("q2open"), json_req(body)).unwrap();
    assert_eq!(x.findings()[0].kind, FindingKind::Rule { rule: 0 });
    // With the condition false (or its field missing, or an unknown value) the field
    // is ambiguous: refused, never forwarded as it is.
    for body in [
        &br#"{"paymentType":"bank","cardNumber":"4242424242424242"}"#[..],
        br#"{"cardCode":"123"}"#,
        br#"{"paymentType":"paypal","cardCode":"123"}"#,
    ] {
        let e = extract(&compiled("q2open"), json_req(body)).err().unwrap();
        assert!(matches!(e, Error::AmbiguousSensitiveField(_)), "{e:?}");
        assert_eq!(e.code(), "ambiguous_sensitive_field");
    }
}

#[test]
fn deep_paths_and_arrays() {
    let body = br#"{"a":[{"b":[{"pan":"4242424242424242"}]},{"pan":"378282246310005"}],"pan":"4111111111111111"}"#;
    let x = extract(&pan_rule("**.pan"), json_req(body)).unwrap();
    let locs: Vec<_> = summary(&x).into_iter().map(|s| s.2).collect();
    assert_eq!(
        locs,
        ["body:$.a[0].b[0].pan", "body:$.a[1].pan", "body:$.pan"]
    );
    assert!(x.findings().iter().all(|f| f.kind != FindingKind::Leak));

    let x = extract(&pan_rule("a[*].pan"), json_req(body)).unwrap();
    let kinds: Vec<_> = x
        .findings()
        .iter()
        .map(|f| (f.kind, f.location.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (FindingKind::Leak, "body:$.a[0].b[0].pan".into()),
            (FindingKind::Rule { rule: 0 }, "body:$.a[1].pan".into()),
            (FindingKind::Leak, "body:$.pan".into()),
        ]
    );
    let out = x.apply(&tokens(3)).unwrap();
    assert_eq!(
        body_str(&out),
        r#"{"a":[{"b":[{"pan":"tok0"}]},{"pan":"tok1"}],"pan":"tok2"}"#
    );
}

#[test]
fn scope_prefers_the_nearest_card() {
    let mut cvv = rule("items[*].cvc", DataClass::Cvv);
    cvv.scope = Some(FieldPath::parse("items[*].pan").unwrap());
    let rules = route(
        BodyKind::Json,
        vec![rule("items[*].pan", DataClass::Pan), cvv],
        LeakPolicy::Allow,
    );
    let body = br#"{"items":[{"pan":"4242424242424242","cvc":"111"},{"cvc":"222","pan":"5555555555554444"}]}"#;
    let x = extract(&rules, json_req(body)).unwrap();
    let scopes: Vec<_> = x.findings().iter().map(|f| f.scope).collect();
    assert_eq!(scopes, [None, Some(0), Some(3), None]);
}

#[test]
fn leak_guard_in_keys_and_policy_allow() {
    let body = br#"{"4242424242424242":{"cvc":"1"}}"#;
    let x = extract(&pan_rule("pan"), json_req(body)).unwrap();
    assert_eq!(x.findings().len(), 1);
    assert_eq!(x.findings()[0].location, "body:$.<redacted>");
    let out = x.apply(&tokens(1)).unwrap();
    assert_eq!(body_str(&out), r#"{"tok0":{"cvc":"1"}}"#);

    let allow = route(BodyKind::Json, vec![], LeakPolicy::Allow);
    let x = extract(&allow, json_req(body)).unwrap();
    assert!(x.findings().is_empty());
}

#[test]
fn invalid_json_is_refused_without_content() {
    let rules = pan_rule("pan");
    let cases: &[(&[u8], &str)] = &[
        (br#"{"pan":"4242424242424242"} x"#, "trailing"),
        (b"{\"pan\":\"4242424242424242\xff\"}", "UTF-8"),
        (br#"{"pan":"4242424242424242"#, "unterminated"),
        (b"{\"pan\":\"4242\n4242424242424242\"}", "control"),
        (br#"{"pan":04242424242424242}"#, "leading zero"),
        (br#"{"pan":"\ud800"}"#, "surrogate"),
        (br#"{"pan":"\x41"}"#, "escape"),
        (br#"{"pan" 1}"#, "`:`"),
        (br#"{"pan":1,}"#, "key"),
        (br#"[1,]"#, "unexpected"),
        (br#"[1 2]"#, "expected"),
        (br#"{"a":tru}"#, "literal"),
        (br#"{"a":-}"#, "number"),
        (br#"{"a":1.}"#, "decimal"),
        (br#"{"a":1e}"#, "exponent"),
        (b"", "end"),
    ];
    for (body, what) in cases {
        let req = RequestParts {
            body,
            ..json_req(b"")
        };
        let Err(e) = extract(&rules, req) else {
            if body.is_empty() {
                continue;
            }
            panic!("accepted {:?}", String::from_utf8_lossy(body));
        };
        let m = invalid(e);
        assert!(m.contains(what) && m.contains("byte"), "{m}");
        assert!(!m.contains("4242"), "{m}");
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let rules = pan_rule("pan");
    let body = "[".repeat(100_000);
    let m = invalid(extract(&rules, json_req(body.as_bytes())).err().unwrap());
    assert!(m.contains("too deep"), "{m}");
    let body = "{\"a\":".repeat(100_000);
    assert!(extract(&rules, json_req(body.as_bytes())).is_err());
    // Up to the limit is fine.
    let ok = format!(
        "{}{}",
        "[".repeat(json::MAX_DEPTH),
        "]".repeat(json::MAX_DEPTH)
    );
    assert!(extract(&rules, json_req(ok.as_bytes())).is_ok());
}

// === content types and encodings ===

#[test]
fn content_types() {
    let rules = route(
        BodyKind::Auto,
        vec![rule("pan", DataClass::Pan)],
        LeakPolicy::Tokenize,
    );
    let json = br#"{"pan":"4242424242424242"}"#;
    for ct in [
        "application/json",
        "Application/JSON; charset=UTF-8",
        " application/vnd.api+json ;charset=\"utf-8\"",
    ] {
        let req = RequestParts {
            content_type: Some(ct),
            ..json_req(json)
        };
        assert_eq!(extract(&rules, req).unwrap().findings().len(), 1, "{ct}");
    }
    for ct in [
        Some("text/plain"),
        None,
        Some("application/json; charset=latin1"),
        // RFC 2231 (Python's `email` decodes it), a lone quote.
        Some("application/json; charset*=''utf-16le"),
        Some("application/json; charset=\"utf-8"),
    ] {
        let req = RequestParts {
            content_type: ct,
            ..json_req(json)
        };
        assert!(
            matches!(extract(&rules, req), Err(Error::UnsupportedMedia(_))),
            "{ct:?}"
        );
    }
    let form = b"a=1&pan=4242424242424242";
    let req = RequestParts {
        content_type: Some("application/x-www-form-urlencoded"),
        ..json_req(form)
    };
    let x = extract(&rules, req).unwrap();
    assert_eq!(
        summary(&x),
        [(DataClass::Pan, "4242424242424242".into(), "body:pan".into())]
    );
    // An empty body is nothing to do, whatever its type.
    let req = RequestParts {
        content_type: None,
        ..json_req(b"")
    };
    assert!(extract(&rules, req).unwrap().findings().is_empty());
}

#[test]
fn charsets_are_read_in_every_spelling() {
    let guard = compiled("payment_method");
    let text = b"hello";
    let refused = |ct: &str| {
        let req = RequestParts {
            content_type: Some(ct),
            ..json_req(text)
        };
        matches!(extract(&guard, req), Err(Error::UnsupportedMedia(_)))
    };
    for ct in [
        "text/plain; charset=utf-16be",
        "text/plain; CHARSET=\"UTF-7\"",
        "charset=utf-16be",
        "text/plain; charset*=utf-8''utf-16be",
        "text/plain; Charset*0=utf-16be",
    ] {
        assert!(refused(ct), "{ct}");
    }
    for ct in [
        "text/plain",
        "text/plain; charset=utf-8",
        "text/plain; charset=\"windows-1252\"",
        "text/plain; format=flowed; charset=iso-8859-1",
    ] {
        assert!(!refused(ct), "{ct}");
    }
    // A streamed body: a bare `charset=` has no `;` but is read all the same.
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("charset=utf-7"),
    );
    assert!(check_streamed_charset(&headers.get_all(http::header::CONTENT_TYPE)).is_err());
}

#[test]
fn unknown_type_on_a_guard_only_route_is_scanned_as_text() {
    let rules = compiled("payment_method");
    let req = RequestParts {
        content_type: Some("text/plain"),
        ..json_req(b"my card is 4242 4242 4242 4242 ok")
    };
    let x = extract(&rules, req).unwrap();
    assert_eq!(x.findings().len(), 1);
    assert_eq!(
        body_str(&x.apply(&tokens(1)).unwrap()),
        "my card is tok0 ok"
    );
    // Bytes that are not UTF-8 are scanned at the byte level; plain digits are
    // replaced where they are.
    let req = RequestParts {
        content_type: Some("image/png"),
        ..json_req(b"\x89PNG\xff4242424242424242")
    };
    let x = extract(&rules, req).unwrap();
    assert_eq!(x.findings().len(), 1);
    let out = x.apply(&tokens(1)).unwrap();
    assert_eq!(out.body.as_deref(), Some(&b"\x89PNG\xfftok0"[..]));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_and_deflate_round_trip() {
    let rules = compiled("q2open");
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    zlib.write_all(Q2_CARD.as_bytes()).unwrap();
    let zlib = zlib.finish().unwrap();
    let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    raw.write_all(Q2_CARD.as_bytes()).unwrap();
    let raw = raw.finish().unwrap();
    let want = Q2_CARD
        .replace("\"378282246310005\"", "\"tok0\"")
        .replace("\"218\"", "\"tok1\"");
    for (coding, body) in [
        ("gzip", gzip(Q2_CARD.as_bytes())),
        ("deflate", zlib),
        ("Deflate", raw),
    ] {
        let req = RequestParts {
            content_encoding: Some(coding),
            ..json_req(&body)
        };
        let x = extract(&rules, req).unwrap();
        assert_eq!(x.findings().len(), 2, "{coding}");
        let out = x.apply(&tokens(2)).unwrap().body.unwrap();
        let mut text = String::new();
        match coding {
            "gzip" => flate2::read::GzDecoder::new(&out[..]).read_to_string(&mut text),
            "deflate" => flate2::read::ZlibDecoder::new(&out[..]).read_to_string(&mut text),
            _ => flate2::read::DeflateDecoder::new(&out[..]).read_to_string(&mut text),
        }
        .unwrap();
        assert_eq!(text, want, "{coding}");
    }
    for coding in ["br", "zstd", "gzip, gzip"] {
        let req = RequestParts {
            content_encoding: Some(coding),
            ..json_req(Q2_CARD.as_bytes())
        };
        assert!(matches!(
            extract(&rules, req),
            Err(Error::UnsupportedMedia(_))
        ));
    }
    let req = RequestParts {
        content_encoding: Some("gzip"),
        ..json_req(b"not gzip")
    };
    assert!(matches!(extract(&rules, req), Err(Error::InvalidBody(_))));
}

#[test]
fn gzip_bomb_stops_at_the_limit() {
    let bomb = gzip(&vec![b' '; 64 << 20]);
    let req = RequestParts {
        content_encoding: Some("gzip"),
        max_body: 1 << 20,
        ..json_req(&bomb)
    };
    assert!(matches!(
        extract(&compiled("q2open"), req),
        Err(Error::BodyTooLarge { limit }) if limit == 1 << 20
    ));
    let req = RequestParts {
        max_body: 10,
        ..json_req(Q2_CARD.as_bytes())
    };
    assert!(matches!(
        extract(&compiled("q2open"), req),
        Err(Error::BodyTooLarge { .. })
    ));
}

// === query and form ===

#[test]
fn a_field_is_refused_where_the_route_does_not_read_it() {
    let mut q_cvv = rule("cvv", DataClass::Cvv);
    q_cvv.location = Location::Query;
    let b_card = rule("card", DataClass::Pan);
    let rules = route(
        BodyKind::Auto,
        vec![b_card.clone(), q_cvv.clone()],
        LeakPolicy::Tokenize,
    );
    let refused = |query: Option<&'static str>, body: &'static [u8]| {
        let req = RequestParts {
            query,
            ..json_req(body)
        };
        matches!(extract(&rules, req), Err(Error::AmbiguousSensitiveField(_)))
    };
    assert!(refused(None, br#"{"card":"4242424242424242","cvv":"218"}"#));
    assert!(refused(Some("card=4242424242424242&cvv=218"), b""));
    assert!(!refused(Some("cvv=218"), br#"{"card":"4242424242424242"}"#));
    assert!(!refused(
        Some("cvv=218"),
        br#"{"card":"4242424242424242","cvv":""}"#
    ));
    // A field read in both places is read in either.
    let mut b_cvv = q_cvv.clone();
    b_cvv.location = Location::Body;
    let both = route(
        BodyKind::Auto,
        vec![b_card, q_cvv, b_cvv],
        LeakPolicy::Tokenize,
    );
    let req = RequestParts {
        query: Some("cvv=218"),
        ..json_req(br#"{"card":"4242424242424242","cvv":"219"}"#)
    };
    let x = extract(&both, req).unwrap();
    assert_eq!(x.findings().len(), 3, "{:?}", summary(&x));
}

#[test]
fn query_rules_and_leaks() {
    let mut card = rule("card", DataClass::Pan);
    card.location = Location::Query;
    let rules = route(BodyKind::Json, vec![card], LeakPolicy::Tokenize);
    let q = "card=4242424242424242&other=4111+1111+1111+1111&5555-5555-5555-4444=x&keep=1%202";
    let req = RequestParts {
        query: Some(q),
        ..json_req(b"")
    };
    let x = extract(&rules, req).unwrap();
    assert_eq!(
        summary(&x),
        [
            (
                DataClass::Pan,
                "4242424242424242".into(),
                "query:card".into()
            ),
            (
                DataClass::Pan,
                "4111 1111 1111 1111".into(),
                "query:other".into()
            ),
            (
                DataClass::Pan,
                "5555-5555-5555-4444".into(),
                "query:<redacted>".into()
            ),
        ]
    );
    let out = x
        .apply(&[Some("t 0".into()), Some("t1".into()), Some("t2".into())])
        .unwrap();
    assert!(out.body.is_none());
    assert_eq!(out.query.unwrap(), "card=t%200&other=t1&t2=x&keep=1%202");
    // A `%` that begins no `%XX` is kept (`50%off`, `%u0034`), and the leak guard
    // reads a value's `%uXXXX` escapes; a `%uXXXX` escape in a key is refused.
    let req = RequestParts {
        query: Some("a=%zz&off=50%&b=%u0034&100%=1&c%u00=1"),
        ..json_req(b"")
    };
    assert!(extract(&rules, req).unwrap().findings().is_empty());
    let req = RequestParts {
        query: Some("note=%u0034242%u0034242%u0034242%u0034242"),
        ..json_req(b"")
    };
    let x = extract(&rules, req).unwrap();
    assert_eq!(x.findings().len(), 1);
    assert!(x.findings().iter().all(|f| f.kind == FindingKind::Hidden));
    let req = RequestParts {
        query: Some("a%u0034=1"),
        ..json_req(b"")
    };
    assert!(matches!(extract(&rules, req), Err(Error::BadRequest(_))));
}

#[test]
fn form_bodies() {
    let rules = route(
        BodyKind::Form,
        vec![
            rule("payment_method.card_number", DataClass::Pan),
            rule("items[*][pan]", DataClass::Pan),
        ],
        LeakPolicy::Tokenize,
    );
    let body = b"payment_method%5Bcard_number%5D=4242424242424242&items[0][pan]=378282246310005&name=A+B%21";
    let x = extract(&rules, json_req(body)).unwrap();
    assert_eq!(x.findings().len(), 2);
    assert_eq!(x.findings()[1].kind, FindingKind::Rule { rule: 1 });
    let out = x.apply(&[None, Some("tok/1".into())]).unwrap();
    assert_eq!(
        body_str(&out),
        "payment_method%5Bcard_number%5D=4242424242424242&items[0][pan]=tok%2F1&name=A+B%21"
    );
    // A `%uXXXX` escape is refused in a key (kept in a value).
    for bad in [&b"a%u0034=1"[..], b"a=%C3%28", b"a=\xff"] {
        assert!(matches!(
            extract(&rules, json_req(bad)),
            Err(Error::InvalidBody(_))
        ));
    }
}

#[test]
fn no_replacements_means_unchanged() {
    let x = extract(&compiled("q2open"), json_req(Q2_CARD.as_bytes())).unwrap();
    let out = x.apply(&[None, None]).unwrap();
    assert!(out.body.is_none() && out.query.is_none());
    let x = extract(&compiled("q2open"), json_req(Q2_CARD.as_bytes())).unwrap();
    assert!(matches!(x.apply(&[None]), Err(Error::Internal(_))));
}

#[test]
fn conditions_use_any_of_and_literals() {
    let mut r = rule("n", DataClass::Pan);
    r.when = Some(Condition {
        field: FieldPath::parse("flag").unwrap(),
        equals: None,
        any_of: vec!["true".into(), "yes".into()],
    });
    let rules = route(BodyKind::Json, vec![r], LeakPolicy::Allow);
    let on = extract(&rules, json_req(br#"{"n":"1","flag":true}"#)).unwrap();
    assert_eq!(on.findings().len(), 1);
    // The field is there but no condition holds: ambiguous.
    let off = extract(&rules, json_req(br#"{"n":"1","flag":false}"#));
    assert!(matches!(off, Err(Error::AmbiguousSensitiveField(_))));
    // No field, nothing to decide.
    let none = extract(&rules, json_req(br#"{"flag":false}"#)).unwrap();
    assert!(none.findings().is_empty());
}

// === round-trip properties ===

mod props {
    use proptest::prelude::*;

    use super::*;

    /// A JSON document as a tree, so the expected output can be rendered too.
    #[derive(Clone, Debug)]
    enum J {
        /// A string leaf, already JSON-escaped.
        Str(String),
        Num(String),
        Lit(&'static str),
        /// A `"card": "<value>"` member's value (only ever under the key `card`).
        Card(String),
        Arr(Vec<J>, String),
        Obj(Vec<(String, J)>, String),
    }

    fn leaf() -> impl Strategy<Value = J> {
        prop_oneof![
            "[a-z0-9 ]{0,8}".prop_map(J::Str),
            prop::sample::select(vec![r"\n", r"\u00e9x", r#"\"q\""#, r"\ud83d\ude00", "é"])
                .prop_map(|s| J::Str(s.into())),
            prop::sample::select(vec!["0", "-1.5e3", "42", "4242424242424242", "1E+2"])
                .prop_map(|s| J::Num(s.into())),
            prop::sample::select(vec!["true", "false", "null"]).prop_map(J::Lit),
            Just(J::Str("4111 1111 1111 1111".into())),
        ]
    }

    fn ws() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["", " ", "\n  ", "\t"]).prop_map(str::to_owned)
    }

    fn tree() -> impl Strategy<Value = J> {
        leaf().prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..5), ws()).prop_map(|(v, w)| J::Arr(v, w)),
                (
                    prop::collection::vec(
                        prop_oneof![
                            (
                                prop::sample::select(vec!["a", "b", r"k\u0041", "x y", "a"]),
                                inner
                            )
                                .prop_map(|(k, v)| (k.to_owned(), v)),
                            "[0-9a-z]{1,20}".prop_map(|v| ("card".to_owned(), J::Card(v))),
                        ],
                        0..5
                    ),
                    ws()
                )
                    .prop_map(|(m, w)| {
                        // One `card` per object: duplicates of a rule field are
                        // refused (see `duplicate_sensitive_keys_are_refused`).
                        let mut seen = false;
                        let m = m
                            .into_iter()
                            .filter(|(k, _)| k != "card" || !std::mem::replace(&mut seen, true))
                            .collect();
                        J::Obj(m, w)
                    }),
            ]
        })
    }

    fn render(j: &J, out: &mut String, card: &mut dyn FnMut(&str) -> String) {
        match j {
            J::Str(s) => {
                out.push('"');
                out.push_str(s);
                out.push('"');
            }
            J::Num(n) => out.push_str(n),
            J::Lit(l) => out.push_str(l),
            J::Card(v) => out.push_str(&card(v)),
            J::Arr(v, w) => {
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(w);
                    render(x, out, card);
                }
                out.push(']');
            }
            J::Obj(m, w) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(w);
                    out.push('"');
                    out.push_str(k);
                    out.push_str("\":");
                    out.push_str(w);
                    render(x, out, card);
                }
                out.push_str(w);
                out.push('}');
            }
        }
    }

    fn doc() -> impl Strategy<Value = J> {
        tree().prop_map(|t| match t {
            J::Obj(..) | J::Arr(..) => t,
            other => J::Arr(vec![other], String::new()),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn json_round_trip(t in doc(), guard in any::<bool>()) {
            let policy = if guard { LeakPolicy::Tokenize } else { LeakPolicy::Allow };
            let rules = route(BodyKind::Json, vec![rule("**.card", DataClass::Pan)], policy);
            let mut original = String::new();
            let mut cards = Vec::new();
            render(&t, &mut original, &mut |v| { cards.push(v.to_owned()); format!("\"{v}\"") });
            prop_assert!(serde_json::from_str::<serde_json::Value>(&original).is_ok());

            // Keys that decode alike (`k\u0041` and `kA`) can put two cards at one
            // path: that is refused, never forwarded.
            let x = match extract(&rules, json_req(original.as_bytes())) {
                Err(Error::DuplicateSensitiveField(_)) => return Ok(()),
                other => other.unwrap(),
            };
            let rule_values: Vec<String> = x.findings().iter()
                .filter(|f| f.kind != FindingKind::Leak)
                .map(|f| f.value.expose().to_owned()).collect();
            prop_assert_eq!(&rule_values, &cards);
            if !guard {
                prop_assert!(x.findings().iter().all(|f| f.kind != FindingKind::Leak));
            }
            // No replacements: unchanged.
            let n = x.findings().len();
            prop_assert!(x.apply(&vec![None; n]).unwrap().body.is_none());

            // Every finding replaced: the rule values exactly where they were, and
            // every other byte as it was (leak hits sit only in the fixed leaves).
            let x = extract(&rules, json_req(original.as_bytes())).unwrap();
            let locations: Vec<String> = x.findings().iter()
                .filter(|f| f.kind != FindingKind::Leak).map(|f| f.location.clone()).collect();
            let reps: Vec<Option<String>> = x.findings().iter().enumerate()
                .map(|(i, f)| Some(if f.kind == FindingKind::Leak { format!("leak{i}") } else { format!("tok{i}") }))
                .collect();
            let out = x.apply(&reps).unwrap();
            let out = out.body.map(|b| String::from_utf8(b.to_vec()).unwrap()).unwrap_or(original.clone());
            prop_assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
            let again = extract(&rules, json_req(out.as_bytes())).unwrap();
            prop_assert!(again.findings().iter().all(|f| f.kind != FindingKind::Leak));
            let again_locs: Vec<String> = again.findings().iter().map(|f| f.location.clone()).collect();
            prop_assert_eq!(again_locs, locations);
            // Render the expectation: cards become their tokens, leak hits theirs.
            let mut rule_tokens = reps.iter().zip(x_kinds(&original, &rules))
                .filter(|(_, leak)| !leak).map(|(r, _)| r.clone().unwrap());
            let mut expected = String::new();
            render(&t, &mut expected, &mut |_| format!("\"{}\"", rule_tokens.next().unwrap()));
            let mut leak_tokens = reps.iter().zip(x_kinds(&original, &rules))
                .filter(|(_, leak)| *leak).map(|(r, _)| r.clone().unwrap());
            let expected = if guard { replace_leaks(&expected, &mut leak_tokens) } else { expected };
            prop_assert_eq!(out, expected);
        }

        #[test]
        fn form_round_trip(pairs in prop::collection::vec(
            (prop::sample::select(vec!["card", "a", "b%5B0%5D", "x+y", "c[card]"]),
             "([a-z0-9+]|%2[0-9A-F]){0,10}"), 0..8)) {
            let rules = route(BodyKind::Form, vec![rule("card", DataClass::Pan)], LeakPolicy::Allow);
            let body = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
            // Keys all `c[card]` are a root of one member: read as `card` too.
            let wrapped = !pairs.is_empty() && pairs.iter().all(|(k, _)| *k == "c[card]");
            let cards = pairs.iter()
                .filter(|(k, v)| (*k == "card" || (wrapped && *k == "c[card]")) && !v.is_empty())
                .count();
            if cards > 1 {
                // A repeated rule field is refused.
                let e = extract(&rules, json_req(body.as_bytes()));
                prop_assert!(matches!(e, Err(Error::DuplicateSensitiveField(_))));
                return Ok(());
            }
            let x = extract(&rules, json_req(body.as_bytes())).unwrap();
            let n = x.findings().len();
            prop_assert_eq!(n, cards);
            prop_assert!(x.apply(&vec![None; n]).unwrap().body.is_none());
            let x = extract(&rules, json_req(body.as_bytes())).unwrap();
            let out = x.apply(&tokens(n)).unwrap();
            let out = out.body.map(|b| String::from_utf8(b.to_vec()).unwrap()).unwrap_or(body.clone());
            let mut i = 0;
            let expected = pairs.iter().map(|(k, v)| {
                if (*k == "card" || (wrapped && *k == "c[card]")) && !v.is_empty() { i += 1; format!("{k}=tok{}", i - 1) } else { format!("{k}={v}") }
            }).collect::<Vec<_>>().join("&");
            prop_assert_eq!(out, expected);
        }
    }

    /// For each finding of `doc`, whether it is a leak hit.
    fn x_kinds(doc: &str, rules: &RouteRules) -> Vec<bool> {
        extract(rules, json_req(doc.as_bytes()))
            .unwrap()
            .findings()
            .iter()
            .map(|f| f.kind == FindingKind::Leak)
            .collect()
    }

    /// The generator's only leak-shaped texts are these fixed leaves, in order.
    fn replace_leaks(s: &str, tokens: &mut dyn Iterator<Item = String>) -> String {
        let mut out = String::new();
        let mut rest = s;
        loop {
            let a = rest.find("4242424242424242");
            let b = rest.find("4111 1111 1111 1111");
            let (at, len) = match (a, b) {
                (Some(a), Some(b)) if a < b => (a, 16),
                (Some(_), Some(b)) => (b, 19),
                (Some(a), None) => (a, 16),
                (None, Some(b)) => (b, 19),
                (None, None) => break,
            };
            out.push_str(&rest[..at]);
            let tok = tokens.next().unwrap();
            if len == 16 {
                // A number leaf: the token is not a number, so it becomes a string.
                out.push_str(&format!("\"{tok}\""));
            } else {
                out.push_str(&tok);
            }
            rest = &rest[at + len..];
        }
        out.push_str(rest);
        out
    }
}
