//! `POST /v1/detokenize`: tokens in, values out.
//!
//! The hot path is one cached authentication, one rate-limit check, one vault read
//! per token, one audit `record_batch` (one write, one group commit), then values.
//! Values leave only after their audit entries are durable (fail closed).
//!
//! Per-token failures (`token_not_found`) are per item. A token of a class the
//! client may not reveal answers exactly like a token that does not exist, and the
//! check runs before a CVV is consumed. A CVV that was revealed or has expired
//! answers `token_not_found` too; the audit log records `cvv_expired`.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use super::ApiState;
use crate::audit::{Action, AuditEvent};
use crate::auth::{Client, Purpose, RevealMode};
use crate::net::ConnInfo;
use crate::net::body::read_body;
use crate::net::body::{Body, json};
use crate::sensitive::{DataClass, Plaintext};
use crate::{Error, Result};

/// The most tokens in one request.
pub const MAX_BATCH: usize = 1000;
/// The largest API request body.
pub const MAX_API_BODY: usize = 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DetokenizeRequest {
    tokens: Vec<TokenRef>,
}

/// A token, or a token with the card token that scopes a same-length CVV token.
#[derive(Deserialize)]
#[serde(untagged)]
enum TokenRef {
    Bare(String),
    Scoped(Scoped),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scoped {
    token: String,
    #[serde(default)]
    scope: Option<String>,
}

impl TokenRef {
    fn parts(&self) -> (&str, Option<&str>) {
        match self {
            TokenRef::Bare(t) => (t, None),
            TokenRef::Scoped(s) => (&s.token, s.scope.as_deref()),
        }
    }
}

/// The answer for one token.
enum Outcome {
    Value {
        class: DataClass,
        value: Plaintext,
        masked: bool,
    },
    Failed(Error),
}

#[derive(Serialize)]
struct ItemOut<'a> {
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    masked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorOut>,
}

#[derive(Serialize)]
struct ErrorOut {
    code: &'static str,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    results: Vec<ItemOut<'a>>,
}

/// What a client may see of a class, with the answer to give when it may see
/// nothing: the same as for a token that does not exist.
pub(crate) fn reveal_mode(client: &Client, class: DataClass) -> Result<RevealMode> {
    client.visible(class, Purpose::Reveal)
}

/// `************4242`: the last four characters, the rest starred.
pub(crate) fn mask(value: &Plaintext) -> Plaintext {
    let len = value.expose().chars().count();
    let mut out = String::with_capacity(len);
    if len <= 4 {
        out.extend(std::iter::repeat_n('*', len));
    } else {
        out.extend(std::iter::repeat_n('*', len - 4));
        // Safe to show: the last four are what receipts and support screens show.
        out.push_str(&value.last4());
    }
    Plaintext::new(out)
}

/// `POST /v1/detokenize`.
pub async fn detokenize(
    state: &ApiState,
    conn: &ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let access = &state.access;
    let client = super::authenticate(access, conn, &req).await?;
    let (parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body, MAX_API_BODY).await?;
    let request: DetokenizeRequest = serde_json::from_slice(&bytes)
        .map_err(|_| Error::BadRequest("expected {\"tokens\": [\"…\", …]}".to_owned()))?;
    let n = request.tokens.len();
    if n == 0 || n > MAX_BATCH {
        return Err(Error::BadRequest(format!(
            "tokens: between 1 and {MAX_BATCH} tokens per request"
        )));
    }
    for item in &request.tokens {
        crate::vault::token::check_token_len(item.parts().0)?;
    }
    access.rate_limit(&client, n, conn).await?;

    let authorize = |class: DataClass| reveal_mode(&client, class).map(|_| ());
    let mut outcomes = Vec::with_capacity(n);
    for item in &request.tokens {
        let (token, scope) = item.parts();
        let timer = std::time::Instant::now();
        let revealed = state.vault.detokenize_with(token, scope, &authorize).await;
        state
            .metrics
            .store_ops
            .with(&["detokenize"])
            .observe(timer.elapsed());
        let outcome = match revealed {
            Ok(revealed) => match reveal_mode(&client, revealed.class) {
                Ok(RevealMode::Masked) => Outcome::Value {
                    class: revealed.class,
                    value: mask(&revealed.value),
                    masked: true,
                },
                Ok(_) => Outcome::Value {
                    class: revealed.class,
                    value: revealed.value,
                    masked: false,
                },
                Err(e) => Outcome::Failed(e),
            },
            Err(e) => Outcome::Failed(e),
        };
        outcomes.push(outcome);
    }

    // Audit first; values leave only once their entries are durable.
    let origin = conn.peer.to_string();
    let events: Vec<AuditEvent> = request
        .tokens
        .iter()
        .zip(&outcomes)
        .map(|(item, outcome)| {
            let (token, _) = item.parts();
            match outcome {
                Outcome::Value { class, masked, .. } => {
                    let action = if *masked {
                        Action::RevealMasked
                    } else {
                        Action::Reveal
                    };
                    AuditEvent::new(client.name(), action)
                        .token(token)
                        .class(*class)
                        .origin(origin.clone())
                }
                Outcome::Failed(e) => AuditEvent::new(client.name(), Action::Reveal)
                    .token(token)
                    .origin(origin.clone())
                    .failed(e),
            }
        })
        .collect();
    super::record(state, &events).await?;
    let mut revealed = 0;
    for outcome in &outcomes {
        if let Outcome::Value { class, .. } = outcome {
            state.metrics.reveals.inc(&[class.as_str()]);
            revealed += 1;
        }
    }
    super::note_values(&parts.extensions, revealed);

    let results = request
        .tokens
        .iter()
        .zip(&outcomes)
        .map(|(item, outcome)| {
            let (token, _) = item.parts();
            match outcome {
                Outcome::Value {
                    class,
                    value,
                    masked,
                } => ItemOut {
                    token,
                    class: Some(class.as_str()),
                    value: Some(value.expose()),
                    masked: *masked,
                    error: None,
                },
                Outcome::Failed(e) => ItemOut {
                    // What was sent is echoed so that a client can match the answer,
                    // unless it holds a card number (sent by mistake as a token): an
                    // error never shows one.
                    token: if crate::rules::guard::shows_card(token.as_bytes()) {
                        "[redacted]"
                    } else {
                        token
                    },
                    class: None,
                    value: None,
                    masked: false,
                    error: Some(ErrorOut {
                        code: public_code(e),
                    }),
                },
            }
        })
        .collect();
    let body = serde_json::to_vec(&ResponseOut { results })
        .map_err(|_| Error::Internal("encoding the reveal response"))?;
    Ok(json(StatusCode::OK, body))
}

/// The per-item code: a store or integrity failure is not the client's business, and
/// a CVV that is gone answers like one never issued ([`super::tokens::public_error`]).
fn public_code(e: &Error) -> &'static str {
    match e {
        Error::TokenNotFound | Error::CvvExpired => Error::TokenNotFound.code(),
        _ if e.status() == StatusCode::INTERNAL_SERVER_ERROR => "internal_error",
        _ => e.code(),
    }
}
