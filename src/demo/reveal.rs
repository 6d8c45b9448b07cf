//! The demo's reveal commands: find the tokens in what the backend received, work out
//! which are CVV tokens and which card token scopes each, and print a `curl` that
//! reveals them all through the vault API.

use base64::Engine;
use serde_json::{Value, json};

use crate::vault::Vault;

/// A token as `POST /v1/detokenize` takes it: bare, or a CVV token with its scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRef {
    pub token: String,
    pub scope: Option<String>,
}

impl TokenRef {
    fn to_json(&self) -> Value {
        match &self.scope {
            None => Value::String(self.token.clone()),
            Some(scope) => json!({ "token": self.token, "scope": scope }),
        }
    }
}

/// The values that differ between the body sent and the body the backend received:
/// the tokens, in document order. Both are JSON, or base64 of JSON.
pub fn tokens_in(sent: &str, received: &[u8]) -> Vec<String> {
    let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).ok();
    let pair = match (parse(sent.as_bytes()), parse(received)) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => {
            let b64 = base64::engine::general_purpose::STANDARD;
            let decode = |bytes: &[u8]| {
                let text = std::str::from_utf8(bytes).ok()?;
                parse(&b64.decode(text.trim()).ok()?)
            };
            decode(sent.as_bytes()).zip(decode(received))
        }
    };
    let mut out = Vec::new();
    if let Some((a, b)) = pair {
        diff(&a, &b, &mut out);
    }
    out
}

fn diff(sent: &Value, got: &Value, out: &mut Vec<String>) {
    match (sent, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                if let Some(s) = a.get(k) {
                    diff(s, v, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (s, v) in a.iter().zip(b) {
                diff(s, v, out);
            }
        }
        (a, b) if a != b => match b {
            Value::String(t) => out.push(t.clone()),
            Value::Number(n) => out.push(n.to_string()),
            _ => {}
        },
        _ => {}
    }
}

/// Which of `tokens` need a scope: a token the vault does not know alone is a CVV
/// token, scoped by one of the others (the card it travelled with). Reads metadata
/// only, so nothing is consumed.
pub async fn with_scopes(vault: &Vault, tokens: &[String]) -> Vec<TokenRef> {
    let mut out = Vec::with_capacity(tokens.len());
    for token in tokens {
        let mut scope = None;
        if vault.metadata(token, None).await.is_err() {
            for candidate in tokens.iter().filter(|c| *c != token) {
                if vault.metadata(token, Some(candidate)).await.is_ok() {
                    scope = Some(candidate.clone());
                    break;
                }
            }
        }
        out.push(TokenRef {
            token: token.clone(),
            scope,
        });
    }
    out
}

/// The `curl` that reveals these tokens through the API.
pub fn reveal_command(api: &str, key: &str, refs: &[TokenRef]) -> String {
    let tokens: Vec<Value> = refs.iter().map(TokenRef::to_json).collect();
    let body = json!({ "tokens": tokens }).to_string();
    format!(
        "curl -s http://{api}/v1/detokenize -H 'Authorization: Bearer {key}' \
         -H 'Content-Type: application/json' -d '{}'",
        shell_quoted(&body)
    )
}

/// Text for inside single quotes.
pub fn shell_quoted(s: &str) -> String {
    s.replace('\'', "'\\''")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tokens_are_the_values_that_changed() {
        let sent = r#"{"a":{"card":"4242424242424242","cvv":"123","name":"x"},"n":[1,"5555"]}"#;
        let got = br#"{"a":{"card":"4242420000004242","cvv":"918","name":"x"},"n":[1,"tok_1"]}"#;
        assert_eq!(tokens_in(sent, got), ["4242420000004242", "918", "tok_1"]);
        let b64 = base64::engine::general_purpose::STANDARD;
        let sent64 = b64.encode(r#"{"card":"4242424242424242"}"#);
        let got64 = b64.encode(r#"{"card":"4242421111114242"}"#);
        assert_eq!(tokens_in(&sent64, got64.as_bytes()), ["4242421111114242"]);
        assert!(tokens_in("not json", b"nor this").is_empty());
    }

    #[test]
    fn the_command_carries_the_scope_and_survives_the_shell() {
        let refs = [
            TokenRef {
                token: "4242420000004242".into(),
                scope: None,
            },
            TokenRef {
                token: "918".into(),
                scope: Some("4242420000004242".into()),
            },
        ];
        let cmd = reveal_command("127.0.0.1:1", "vg_live_k", &refs);
        let body = cmd
            .split_once("-d '")
            .unwrap()
            .1
            .strip_suffix('\'')
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(body).unwrap(),
            json!({ "tokens": ["4242420000004242", { "token": "918", "scope": "4242420000004242" }] })
        );
        assert_eq!(shell_quoted("it's"), "it'\\''s");
    }
}
