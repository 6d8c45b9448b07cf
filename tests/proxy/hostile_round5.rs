//! Red-team round 5: the channels other than the forwarded body. `vaultgate explain`
//! printed a body or query it let through with only the plainly written cards
//! masked: one in an escape, in full-width digits or behind a no-break space was
//! printed as sent.

use http::{HeaderMap, HeaderValue, Method};
use vaultgate::config::Config;
use vaultgate::explain::{self, explain};

use crate::common::*;

const CARD: &str = "4242424242424242";

/// Routes whose guard lets a card through (`detect`, `off`, `leak_guard = "allow"`)
/// and a blocking one.
const EXPLAIN_ROUTES: &str = r#"
[[routes]]
name = "allow"
upstream = "backend"
method = "POST"
path = "/allow"
fields = [{ path = "card", class = "pan" }]
leak_guard = "allow"

[[routes]]
name = "detect"
upstream = "backend"
path = "/detect/*"
stream_guard = "detect"

[[routes]]
name = "off"
upstream = "backend"
path = "/off/*"
stream_guard = "off"

[[routes]]
name = "pass"
upstream = "backend"
path = "/pass/*"
"#;

/// The card in spellings a human reading explain's output decodes at a glance.
fn spellings() -> Vec<String> {
    let full_width: String = CARD
        .chars()
        .map(|c| char::from_u32(0xFF10 + c.to_digit(10).unwrap()).unwrap())
        .collect();
    vec![
        "4242 4242 4242 4242".to_owned(),
        full_width,
        "4242\u{a0}4242\u{a0}4242\u{a0}4242".to_owned(),
        "&#52;242424242424242".to_owned(),
        "\\u0034242424242424242".to_owned(),
        "4242%204242%204242%204242".to_owned(),
        "%342%342424242424242".to_owned(),
    ]
}

/// Whether `out` shows the card in any reading (full-width digits read as ASCII).
fn shows(out: &str) -> bool {
    let folded: String = out
        .chars()
        .map(|c| match c as u32 {
            d @ 0xFF10..=0xFF19 => char::from_u32(d - 0xFF10 + u32::from(b'0')).unwrap(),
            _ => c,
        })
        .collect();
    holds_raw(out.as_bytes(), CARD) || holds_raw(folded.as_bytes(), CARD)
}

#[test]
fn explain_prints_no_card_in_any_spelling() {
    let config = Config::from_toml_str(&config_toml("http://127.0.0.1:9", EXPLAIN_ROUTES)).unwrap();
    config.validate().unwrap();
    let mut json = HeaderMap::new();
    json.insert("content-type", HeaderValue::from_static("application/json"));
    let mut text = HeaderMap::new();
    text.insert("content-type", HeaderValue::from_static("text/plain"));
    for s in spellings() {
        let escaped = s.replace('\\', "\\\\");
        let cases = [
            ("/allow", &json, format!(r#"{{"note":"{escaped}"}}"#)),
            ("/detect/a", &text, s.clone()),
            ("/off/a", &text, s.clone()),
            ("/pass/a", &text, s.clone()),
        ];
        for (path, headers, body) in cases {
            for (path, body) in [
                (path.to_owned(), body.into_bytes()),
                (format!("{path}?n={}", s.replace(' ', "%20")), Vec::new()),
            ] {
                let Ok(e) = explain(
                    &config,
                    &explain::Request {
                        method: Method::POST,
                        path: path.clone(),
                        headers: headers.clone(),
                        body,
                    },
                ) else {
                    continue;
                };
                let shown = explain::text(&e);
                let as_json = serde_json::to_string(&e).unwrap();
                for out in [&shown, &as_json] {
                    assert!(
                        !shows(out),
                        "{path} with {s:?}: explain shows the card\n{out}"
                    );
                }
            }
        }
    }
}
