//! Issue 11, classes 5, 8 and 9 at the edge: cards written so that a plain digit
//! scan misses them, requests that carry too many sensitive values, and a full CVV
//! store, against the real server in front of the recording echo upstream.
//!
//! Every case asserts its status and that the upstream received no raw card (in any
//! spelling: separators removed, other scripts' digits read, escapes and base64
//! decoded).

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use vaultgate::app::{self, ServerHandle};
use vaultgate::config::Config;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream, Received};
use vaultgate::sensitive::DataClass;
use vaultgate::vault::{Vault, VaultSettings};

use crate::common::*;

/// The pause between dripped pieces: each reaches the proxy as its own read.
const MS30: std::time::Duration = std::time::Duration::from_millis(30);

const CARDS: [&str; 4] = [
    "4242424242424242",
    "378282246310005",
    "4111111111111111",
    "5555555555554444",
];

fn vault(tweak: impl FnOnce(&mut VaultSettings)) -> Arc<Vault> {
    let dir = crate::common::scratch_dir();
    let mut settings = VaultSettings {
        data: dir.join("data"),
        cache_capacity_mb: 8,
        ..VaultSettings::default()
    };
    tweak(&mut settings);
    Arc::new(Vault::open(&settings, crate::common::test_keys(&dir)).unwrap())
}

/// The demo config (every profile on its documented path) in front of an echo
/// upstream, with a given vault.
async fn start_with(
    vault: Arc<Vault>,
    tweak: impl FnOnce(&mut Config),
) -> (ServerHandle, EchoHandle) {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let dir = std::env::temp_dir();
    let mut c = Config::demo("127.0.0.1:0", "127.0.0.1:0", &format!("http://{up}"), &dir).unwrap();
    tweak(&mut c);
    c.validate().unwrap();
    (app::start(&c, vault).await.unwrap(), echo)
}

// === an independent check for raw cards ===

/// Digits of the scripts the cases use, read as ASCII.
fn ascii_digit(c: char) -> Option<char> {
    let cp = c as u32;
    for zero in [0x30, 0x660, 0x6F0, 0xFF10] {
        if (zero..zero + 10).contains(&cp) {
            return char::from_digit(cp - zero, 10);
        }
    }
    None
}

fn squeeze(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
            ascii_digit(c).or(if c.is_alphanumeric() || "{}[]\":,+=".contains(c) {
                Some(c)
            } else {
                None
            })
        })
        .collect::<String>()
        .replace(['.'], "")
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'u') {
            chars.next();
            let hex: String = chars.by_ref().take(4).collect();
            match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                Some(ch) => out.push(ch),
                None => out.push_str(&hex),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Every reading of a body worth checking: as is, unescaped, and its base64 runs
/// decoded, three layers deep.
fn readings(text: &str, depth: usize, out: &mut Vec<String>) {
    out.push(text.to_owned());
    let un = unescape(text);
    if un != text {
        out.push(un.clone());
    }
    if depth == 0 {
        return;
    }
    for run in un
        .split(|c: char| !(c.is_ascii_alphanumeric() || "+/-_=".contains(c)))
        .filter(|r| r.len() >= 16)
    {
        for e in [
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            if let Ok(d) = e.decode(run.trim_end_matches('=')) {
                readings(&String::from_utf8_lossy(&d), depth - 1, out);
            }
        }
    }
}

fn assert_no_card(name: &str, received: &[Received]) {
    for r in received {
        let mut texts = Vec::new();
        readings(&String::from_utf8_lossy(&r.body), 3, &mut texts);
        readings(r.query.as_deref().unwrap_or(""), 3, &mut texts);
        for t in texts {
            let s = squeeze(&t);
            for card in CARDS {
                assert!(!s.contains(card), "{name}: the upstream received {card}");
            }
        }
    }
}

/// Card digits in another script.
fn script(card: &str, zero: u32) -> String {
    card.chars()
        .map(|c| char::from_u32(zero + c.to_digit(10).unwrap()).unwrap())
        .collect()
}

fn grouped(card: &str, sep: &str) -> String {
    card.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(sep)
}

fn luhn_complete(payload: &str) -> String {
    let sum: u32 = payload
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).unwrap();
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    format!("{payload}{}", (10 - sum % 10) % 10)
}

// === class 5: cards the guard must see ===

#[tokio::test]
async fn cards_in_any_spelling_never_reach_the_upstream() {
    let (server, echo) = start_with(vault(|_| {}), |_| {}).await;
    let addr = server.proxy_addr();
    let card = "4242424242424242";
    let json_string = |v: &str| serde_json::json!({ "note": v }).to_string();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let esc: String = card
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();

    // Replaceable in place: ASCII digits with separators → tokenized, 200.
    let mut in_place: Vec<(String, String)> = [
        ".", "/", "  ", "\u{a0}", "\u{2009}", "\u{2013}", "\u{2212}", "_", "\t", "\n",
    ]
    .iter()
    .map(|sep| {
        (
            format!("separator {:?}", sep),
            json_string(&grouped(card, sep)),
        )
    })
    .collect();
    in_place.push(("amex, dots".into(), json_string("3782.822463.10005")));
    in_place.push(("a plain JSON number".into(), format!("{{\"n\":{card}}}")));
    for (name, body) in &in_place {
        let before = echo.received().len();
        let reply = post(addr, "/payment-method", "application/json", body.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
        let got = echo.received();
        assert_eq!(got.len(), before + 1, "{name}");
        assert_no_card(name, &got[before..]);
    }
    // A form body on the same route.
    let reply = post(
        addr,
        "/payment-method",
        "application/x-www-form-urlencoded",
        "note=4111.1111.1111.1111&x=1",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);

    // Not replaceable in place → 400 card_number_detected, nothing forwarded.
    let hidden: Vec<(&str, String)> = vec![
        // The guard reads NULs as nothing (UTF-16 and UTF-32 text): one number with
        // NULs inside, which a token cannot replace in place.
        ("NULs between the groups", json_string(&grouped(card, "\0"))),
        ("full-width digits", json_string(&script(card, 0xFF10))),
        (
            "Arabic-Indic digits",
            json_string(&script("4111111111111111", 0x660)),
        ),
        (
            "extended Arabic-Indic digits",
            json_string(&script(card, 0x6F0)),
        ),
        ("exponent number", "{\"n\":4.242424242424242e15}".into()),
        (
            "negative exponent number",
            "{\"n\":42424242424242420e-1}".into(),
        ),
        (
            "exponent number, amex",
            "{\"n\":3.78282246310005E14}".into(),
        ),
        (
            "a card written as the exponent",
            "{\"n\":3e30000078374067}".into(),
        ),
        (
            "a card written before a fraction",
            format!("{{\"n\":{card}.5}}"),
        ),
        (
            "JSON in a string, \\u-escaped digits",
            json_string(&format!("{{\"card\":\"{esc}\"}}")),
        ),
        (
            "base64 of JSON in a string",
            json_string(&b64(&format!("{{\"card\":\"{card}\"}}"))),
        ),
        (
            "base64 of JSON with a number",
            json_string(&b64("{\"card\":5555555555554444}")),
        ),
        (
            "base64 of base64 of JSON",
            json_string(&b64(&b64(&format!("{{\"card\":\"{card}\"}}")))),
        ),
    ];
    for (name, body) in &hidden {
        let before = echo.received().len();
        let reply = post(addr, "/payment-method", "application/json", body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(code(&reply), "card_number_detected", "{name}");
        assert_eq!(echo.received().len(), before, "{name}: forwarded");
    }
    assert_no_card("all cases", &echo.received());
    server.shutdown();
}

/// `card` written with the digits of a compatibility table (superscripts, circled
/// digits, …): `digit(d)` for each.
fn spelled(card: &str, digit: impl Fn(u32) -> u32) -> String {
    card.chars()
        .map(|c| char::from_u32(digit(c.to_digit(10).unwrap())).unwrap())
        .collect()
}

/// Spellings the red team found that a backend reads as a card but the guard can
/// only refuse: zero padding, compatibility digits, number literals, `%u` and octal
/// escapes. (name, text, whether the streaming guard reads it too: it reads the
/// bytes as sent, not number literals or escapes.)
fn refused_spellings() -> Vec<(&'static str, String, bool)> {
    let card = CARDS[0];
    let superscript = |d| match d {
        0 => 0x2070,
        1 => 0xB9,
        2 => 0xB2,
        3 => 0xB3,
        d => 0x2070 + d,
    };
    let circled = |d| if d == 0 { 0x24EA } else { 0x2460 + d - 1 };
    let dingbat = |d| if d == 0 { 0x24FF } else { 0x2776 + d - 1 };
    vec![
        ("one leading zero", format!("0{card}"), true),
        ("three leading zeros", format!("000{card}"), true),
        ("leading zeros, amex", format!("00{}", CARDS[1]), true),
        (
            "ten leading zeros",
            format!("{}{card}", "0".repeat(10)),
            true,
        ),
        (
            "a group of zeros first",
            "0000 4242 4242 4242 4242".into(),
            true,
        ),
        ("superscript digits", spelled(card, superscript), true),
        ("subscript digits", spelled(CARDS[2], |d| 0x2080 + d), true),
        ("circled digits", spelled(card, circled), true),
        ("dingbat digits", spelled(CARDS[3], dingbat), true),
        (
            "a fraction and exponent",
            "0.04242424242424242e17".into(),
            true,
        ),
        ("a negative exponent", "42424242424242420e-1".into(), false),
        (
            "a padded exponent number",
            "04242424242424242E0".into(),
            true,
        ),
        (
            "%u escapes",
            card.chars()
                .map(|c| format!("%u{:04X}", c as u32))
                .collect(),
            false,
        ),
        (
            "octal escapes",
            card.chars()
                .map(|c| format!("\\{:03o}", c as u32))
                .collect(),
            false,
        ),
    ]
}

/// Separators the red team found: invisible format characters, `+` and middle
/// dots. ASCII digits between them are replaced in place on a rules route.
fn separated_spellings() -> Vec<(String, String)> {
    [
        '+', '\u{b7}', '\u{2022}', '\u{2219}', '\u{22c5}', '\u{200e}', '\u{200f}', '\u{61c}',
        '\u{2062}', '\u{2066}', '\u{206f}', '\u{180e}', '\u{34f}', '\u{fe0f}', '\u{3164}',
        '\u{115f}', '\u{ffa0}',
    ]
    .into_iter()
    .map(|sep| {
        (
            format!("separator U+{:04X}", u32::from(sep)),
            grouped(CARDS[0], &sep.to_string()),
        )
    })
    .collect()
}

/// Every string of a JSON body, read as digits alone (any script the cases use):
/// a card left between separators that the squeeze of [`assert_no_card`] keeps
/// (`+`, letters such as U+3164) would show here.
fn assert_no_card_in_strings(name: &str, received: &[Received]) {
    fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
            serde_json::Value::Object(map) => map.values().for_each(|i| strings(i, out)),
            _ => {}
        }
    }
    for r in received {
        let mut all = Vec::new();
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.body) {
            strings(&v, &mut all);
        }
        for s in all {
            let digits: String = s.chars().filter_map(ascii_digit).collect();
            for card in CARDS {
                assert!(
                    !digits.contains(card),
                    "{name}: the upstream received {card}"
                );
            }
        }
    }
}

#[tokio::test]
async fn red_team_spellings_in_a_free_field_are_refused_or_tokenized() {
    let (server, echo) = start_with(vault(|_| {}), |_| {}).await;
    let addr = server.proxy_addr();
    let body = |memo: &str| {
        serde_json::json!({ "paymentType": "card", "cardNumber": CARDS[0], "memo": memo })
            .to_string()
    };
    for (name, memo, _) in refused_spellings() {
        let before = echo.received().len();
        let reply = post(addr, "/v1/payment", "application/json", body(&memo)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(code(&reply), "card_number_detected", "{name}");
        assert_eq!(echo.received().len(), before, "{name}: forwarded");
    }
    for (name, memo) in separated_spellings() {
        let before = echo.received().len();
        let reply = post(addr, "/v1/payment", "application/json", body(&memo)).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
        let got = echo.received();
        assert_eq!(got.len(), before + 1, "{name}");
        assert_no_card(&name, &got[before..]);
        assert_no_card_in_strings(&name, &got[before..]);
    }
    server.shutdown();
}

#[tokio::test]
async fn red_team_spellings_in_a_pass_through_body_are_blocked() {
    let (server, echo) = start_with(vault(|_| {}), |_| {}).await;
    let addr = server.proxy_addr();
    let streamed = refused_spellings()
        .into_iter()
        .filter(|(_, _, streamed)| *streamed)
        .map(|(name, text, _)| (name.to_owned(), text));
    for (name, text) in streamed.chain(separated_spellings()) {
        for (ct, body) in [
            ("text/plain", format!("note: {text}.")),
            (
                "application/json",
                serde_json::json!({ "note": text }).to_string(),
            ),
        ] {
            let before = echo.received().len();
            let reply = post(addr, "/anything", ct, body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name} ({ct})");
            assert_eq!(code(&reply), "card_number_detected", "{name} ({ct})");
            assert_eq!(echo.received().len(), before, "{name} ({ct}): forwarded");
        }
    }
    server.shutdown();
}

#[tokio::test]
async fn ids_that_are_not_cards_pass_unchanged() {
    let (server, echo) = start_with(vault(|_| {}), |_| {}).await;
    let addr = server.proxy_addr();
    // Luhn-valid, 19 digits, but no card network starts with 1 (a snowflake id),
    // nor issues 14-digit cards starting with 4.
    let id = luhn_complete("178000000000000000");
    let short = luhn_complete("4242424242424");
    let body = format!(
        "{{\"id\":\"{id}\",\"n\":{id},\"ts\":1735689600000,\"phone\":\"+14155550123\",\"x\":\"{short}\",\"f\":1.5e3}}"
    );
    let reply = post(addr, "/payment-method", "application/json", body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let got = echo.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, Bytes::from(body));
    server.shutdown();
}

#[tokio::test]
async fn our_own_tokens_inside_encodings_pass() {
    let v = vault(|_| {});
    let (server, echo) = start_with(Arc::clone(&v), |_| {}).await;
    let addr = server.proxy_addr();
    let reply = post(
        addr,
        "/payment-method",
        "application/json",
        "{\"note\":\"4242424242424242\"}",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let sent: serde_json::Value = serde_json::from_slice(&echo.received()[0].body).unwrap();
    let token = sent["note"].as_str().unwrap().to_owned();
    assert!(v.is_issued(&token).await.unwrap());
    // The token (a Luhn-valid six-four number) inside base64 of JSON: not a card.
    let inner = base64::engine::general_purpose::STANDARD.encode(format!("{{\"t\":\"{token}\"}}"));
    let body = format!("{{\"saved\":\"{inner}\"}}");
    let reply = post(addr, "/payment-method", "application/json", body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(echo.received()[1].body, Bytes::from(body));
    server.shutdown();
}

// === class 8: limits ===

#[tokio::test]
async fn too_many_sensitive_values_are_refused_before_anything_is_stored() {
    let v = vault(|_| {});
    let (server, echo) = start_with(Arc::clone(&v), |_| {}).await;
    let addr = server.proxy_addr();

    // 65 distinct Visa numbers in a free field.
    let cards: Vec<String> = (0..65)
        .map(|i| luhn_complete(&format!("400000000{i:06}")))
        .collect();
    let body = serde_json::json!({ "note": cards.join(" and ") }).to_string();
    let reply = post(addr, "/payment-method", "application/json", body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&reply), "too_many_sensitive_values");

    // 64 are fine.
    let body = serde_json::json!({ "note": cards[..64].join(" and ") }).to_string();
    let reply = post(addr, "/payment-method", "application/json", body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(v.issued(DataClass::Pan), 64);

    // 1,000 duplicate cardCode keys.
    let mut body = String::from(r#"{"paymentType":"card","cardNumber":"4111111111111111""#);
    for _ in 0..1000 {
        body.push_str(r#","cardCode":"123""#);
    }
    body.push('}');
    let reply = post(addr, "/v1/payment", "application/json", body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(v.issued(DataClass::Cvv), 0);
    assert_eq!(v.cvv_store_len(), 0);
    assert_eq!(v.issued(DataClass::Pan), 64, "nothing new was stored");

    assert_eq!(echo.received().len(), 1);
    assert_no_card("limits", &echo.received()[..0]);
    server.shutdown();
}

#[tokio::test]
async fn a_lower_limit_from_the_config_holds() {
    let (server, echo) = start_with(vault(|_| {}), |c| {
        c.limits.max_sensitive_values = vaultgate::config::Positive(1);
    })
    .await;
    let body = serde_json::json!({ "note": "4242424242424242 4111111111111111" }).to_string();
    let reply = post(
        server.proxy_addr(),
        "/payment-method",
        "application/json",
        body,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&reply), "too_many_sensitive_values");
    assert!(echo.received().is_empty());
    server.shutdown();
}

#[tokio::test]
async fn a_full_cvv_store_answers_503() {
    let v = vault(|s| s.cvv_max_entries = 2);
    let (server, echo) = start_with(Arc::clone(&v), |_| {}).await;
    let addr = server.proxy_addr();
    let body = |card: &str| {
        format!(r#"{{"paymentType":"card","cardNumber":"{card}","cardCode":"123","amount":1}}"#)
    };
    for card in &CARDS[..2] {
        let reply = post(addr, "/v1/payment", "application/json", body(card)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let reply = post(addr, "/v1/payment", "application/json", body(CARDS[2])).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&reply), "cvv_store_full");
    assert_eq!(echo.received().len(), 2);
    assert_eq!(v.cvv_store_len(), 2);
    assert_eq!(v.cvv_store_capacity(), 2);
    assert_no_card("cvv store", &echo.received());

    let req = Request::get(url(server.api_addr(), "/metrics"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let metrics = send(&http1(), req).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("vaultgate_cvv_store_entries 2"), "{text}");
    assert!(text.contains("vaultgate_cvv_store_capacity 2"), "{text}");
    assert!(text.contains("outcome=\"cvv_store_full\""), "{text}");
    server.shutdown();
}

// === UTF-16 and UTF-32 bodies with no declared charset ===

/// `text` as UTF-16 (`unit` 2) or UTF-32 (4) bytes, either byte order, with a
/// byte-order mark or not.
fn wide(text: &str, unit: usize, le: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for c in bom.then_some('\u{feff}').into_iter().chain(text.chars()) {
        let v = u32::from(c);
        let b = if le { v.to_le_bytes() } else { v.to_be_bytes() };
        out.extend_from_slice(match (unit, le) {
            (2, true) => &b[..2],
            (2, false) => &b[2..],
            _ => &b[..],
        });
    }
    out
}

const WIDE: [(&str, usize, bool, bool); 7] = [
    ("UTF-16LE", 2, true, false),
    ("UTF-16LE with BOM", 2, true, true),
    ("UTF-16BE", 2, false, false),
    ("UTF-16BE with BOM", 2, false, true),
    ("UTF-32LE", 4, true, false),
    ("UTF-32LE with BOM", 4, true, true),
    ("UTF-32BE", 4, false, false),
];

/// A backend that detects the encoding (Python's `json.loads` on bytes) reads a JSON
/// body in UTF-16 or UTF-32 sent as plain `application/json`: a card in it is blocked
/// on a pass-through route, however many NULs the encoding puts beside its
/// separators, in one piece or dripped in pieces that cut it; a UTF-16 body without
/// one passes unchanged.
#[tokio::test]
async fn utf16_and_utf32_bodies_with_cards_are_blocked() {
    let (server, echo) = start_with(vault(|_| {}), |_| {}).await;
    let addr = server.proxy_addr();
    let cards = [
        "4242 4242 4242 4242",
        "4242 - 4242 - 4242 - 4242",
        "4111-1111-1111-1111",
        "3782 822463 10005",
        "378282246310005",
    ];
    for card in cards {
        let json = format!("{{\"note\":\"{card}\"}}");
        for (name, unit, le, bom) in WIDE {
            let body = wide(&json, unit, le, bom);
            let before = echo.received().len();
            let reply = post(addr, "/anything", "application/json", body.clone()).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{card:?} in {name}");
            assert_eq!(code(&reply), "card_number_detected", "{card:?} in {name}");
            assert_eq!(
                echo.received().len(),
                before,
                "{card:?} in {name}: forwarded"
            );
            // Cut inside the card, sent as separate chunks.
            let cut = body.len() / 2;
            let answer = drip(
                addr,
                "/anything",
                "application/json",
                &[&body[..cut], &body[cut..]],
                MS30,
            )
            .await;
            assert!(
                answer.starts_with("HTTP/1.1 400"),
                "{card:?} in {name}, dripped: {answer}"
            );
            assert!(answer.contains("card_number_detected"), "{answer}");
            assert_eq!(
                echo.received().len(),
                before,
                "{card:?} in {name}: forwarded"
            );
        }
    }
    assert_no_card("UTF-16 and UTF-32 bodies", &echo.received());
    for (name, unit, le, bom) in WIDE {
        let clean = wide(r#"{"note":"hello - world","n":12}"#, unit, le, bom);
        let reply = post(addr, "/anything", "application/json", clean.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
        assert_eq!(echo.received().last().unwrap().body, clean, "{name}");
    }
    server.shutdown();
}

async fn post_encoded(addr: SocketAddr, path: &str, codings: &[&str], body: Vec<u8>) -> Reply {
    let mut req = Request::post(url(addr, path)).header("content-type", "application/json");
    for c in codings {
        req = req.header("content-encoding", *c);
    }
    send(&http1(), req.body(Full::new(Bytes::from(body))).unwrap()).await
}

/// A backend that honours Content-Encoding (Express's body-parser inflates gzip and
/// deflate) reads a compressed pass-through body decompressed, which the bytes as
/// sent hide: the guard reads it decompressed. A card in it is refused and nothing
/// is forwarded; a clean one is forwarded byte for byte, its coding kept. A coding
/// the proxy cannot undo, two codings, a body that is not what its coding says and
/// one that inflates past the body limit are refused, never forwarded unread.
#[tokio::test]
async fn compressed_pass_through_bodies_are_read_decompressed() {
    let (server, echo) = start_with(vault(|_| {}), |_| {}).await;
    let addr = server.proxy_addr();
    type Encode = fn(&[u8]) -> Vec<u8>;
    let encoders: [(&str, Encode); 5] = [
        ("gzip", gzip),
        ("x-gzip", gzip),
        ("GZip", gzip),
        ("deflate", zlib),
        ("deflate", raw_deflate),
    ];
    // Read as the streaming guard reads a body: escapes decoded, number literals read.
    let escaped: String = "4242424242424242"
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let spellings = [
        r#""4242424242424242""#.to_owned(),
        r#""4111 1111 1111 1111""#.to_owned(),
        r#""3782-822463-10005""#.to_owned(),
        format!(r#""{escaped}""#),
        "4242424242424241.9".to_owned(),
    ];
    for card in &spellings {
        let json = format!(r#"{{"note":{card},"amount":12}}"#);
        for (coding, encode) in encoders {
            let before = echo.received().len();
            let reply = post_encoded(addr, "/anything", &[coding], encode(json.as_bytes())).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{card} in {coding}");
            assert_eq!(code(&reply), "card_number_detected", "{card} in {coding}");
            assert_eq!(
                echo.received().len(),
                before,
                "{card} in {coding}: forwarded"
            );
        }
    }
    for (coding, encode) in encoders {
        let body = encode(br#"{"note":"order 1234","amount":12}"#);
        let reply = post_encoded(addr, "/anything", &[coding], body.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "{coding}");
        let got = echo.received().last().cloned().unwrap();
        assert_eq!(got.body, body, "{coding}");
        assert_eq!(got.header("content-encoding"), Some(coding));
    }
    let json = br#"{"note":"4242424242424242"}"#;
    type Case<'a> = (&'a str, &'a [&'a str], Vec<u8>, StatusCode, &'a str);
    let refused: [Case; 5] = [
        (
            "br",
            &["br"],
            json.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media",
        ),
        (
            "two codings",
            &["gzip, gzip"],
            gzip(&gzip(json)),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media",
        ),
        (
            "two headers",
            &["gzip", "identity"],
            gzip(json),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media",
        ),
        (
            "not gzip",
            &["gzip"],
            json.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "a bomb",
            &["gzip"],
            gzip(&vec![b' '; 2 << 20]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (name, codings, body, status, want) in refused {
        let before = echo.received().len();
        let reply = post_encoded(addr, "/anything", codings, body).await;
        assert_eq!(reply.status, status, "{name}");
        assert_eq!(code(&reply), want, "{name}");
        assert_eq!(echo.received().len(), before, "{name}: forwarded");
    }
    assert_no_card("compressed bodies", &echo.received());
    server.shutdown();
}

/// A number literal a JSON parser reads as a card (a double JavaScript or Python
/// rounds to one, an exponent that makes one) in a pass-through body is blocked, in
/// one piece or cut between chunks anywhere in the literal; numbers that are no
/// card pass unchanged.
#[tokio::test]
async fn number_literals_a_parser_reads_as_cards_are_blocked_on_pass_through() {
    let (server, echo) = start_with(vault(|_| {}), |_| {}).await;
    let addr = server.proxy_addr();
    let exponents = [
        "42424242424242420e-1",
        "4.242424242424242E+15",
        "0.4242424242424242e16",
    ];
    for number in ROUNDED_TO_CARDS.into_iter().chain(exponents) {
        let body = format!(r#"{{"note":"x","amount":{number},"n":1}}"#);
        let before = echo.received().len();
        let reply = post(addr, "/anything", "application/json", body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{number}");
        assert_eq!(code(&reply), "card_number_detected", "{number}");
        assert!(
            !String::from_utf8_lossy(&reply.body).contains(number),
            "the error names the value"
        );
        let at = body.find(number).unwrap();
        for cut in [at + 1, at + number.len() / 2, at + number.len() - 3] {
            let answer = drip(
                addr,
                "/anything",
                "application/json",
                &[&body.as_bytes()[..cut], &body.as_bytes()[cut..]],
                MS30,
            )
            .await;
            assert!(
                answer.starts_with("HTTP/1.1 400"),
                "{number} cut at {cut}: {answer}"
            );
        }
        assert_eq!(echo.received().len(), before, "{number}: forwarded");
    }
    let clean =
        r#"{"amount":4242.19,"ts":1.7e12,"big":4242424242424241.5e-3,"id":12345678901234.5}"#;
    let reply = post(addr, "/anything", "application/json", clean).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(echo.received().last().unwrap().body, clean.as_bytes());
    server.shutdown();
}
