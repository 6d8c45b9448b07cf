//! `POST /v1/tokenize`, `GET /v1/tokens/{token}` (metadata) and
//! `DELETE /v1/tokens/{token}`.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::ApiState;
use super::reveal::{MAX_API_BODY, MAX_BATCH};
use crate::audit::{Action, AuditEvent};
use crate::net::ConnInfo;
use crate::net::body::read_body;
use crate::net::body::{Body, json};
use crate::sensitive::{DataClass, Sensitive};
use crate::vault::{TokenFormat, TokenizeOptions};
use crate::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenizeRequest {
    values: Vec<TokenizeItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenizeItem {
    class: DataClass,
    value: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    deterministic: Option<bool>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Serialize)]
struct TokenOut<'a> {
    token: &'a str,
    class: &'static str,
}

#[derive(Serialize)]
struct TokenizeOut<'a> {
    results: Vec<TokenOut<'a>>,
}

/// `POST /v1/tokenize`. Every value's class must be one the client may tokenize,
/// or nothing is tokenized (403). A value gets a deterministic token (the class's
/// default, or `deterministic: true`) only if the client is granted `deterministic`
/// for its class; otherwise a fresh random one.
pub async fn tokenize(
    state: &ApiState,
    conn: &ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let access = &state.access;
    let client = super::authenticate(access, conn, &req).await?;
    let (parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body, MAX_API_BODY).await?;
    let request: TokenizeRequest = serde_json::from_slice(&bytes).map_err(|_| {
        Error::BadRequest("expected {\"values\": [{\"class\": …, \"value\": …}, …]}".to_owned())
    })?;
    let n = request.values.len();
    if n == 0 || n > MAX_BATCH {
        return Err(Error::BadRequest(format!(
            "values: between 1 and {MAX_BATCH} values per request"
        )));
    }
    // One budget per client for every API call: tokenize counts its values.
    access.rate_limit(&client, n, conn).await?;
    if request.values.iter().any(|v| !client.may_tokenize(v.class)) {
        return Err(Error::Forbidden("this client may not tokenize that class"));
    }
    let mut items = Vec::with_capacity(n);
    for (i, mut item) in request.values.into_iter().enumerate() {
        let parsed = Sensitive::parse(item.class, &item.value);
        item.value.zeroize();
        let value = parsed.map_err(|_| {
            Error::BadRequest(format!("values[{i}]: not a valid {}", item.class.as_str()))
        })?;
        let format = match &item.format {
            Some(f) => Some(TokenFormat::parse(f).ok_or_else(|| {
                Error::BadRequest(format!("values[{i}].format: unknown token format"))
            })?),
            None => None,
        };
        if format.as_ref().is_some_and(|f| !f.fits(item.class)) {
            return Err(Error::BadRequest(format!(
                "values[{i}].format: does not fit the class"
            )));
        }
        // Same value, same token only for a client granted it: a deterministic token
        // tells its holder that two records hold the same card.
        let deterministic = if client.may_tokenize_deterministic(item.class) {
            item.deterministic
        } else {
            Some(false)
        };
        let opts = TokenizeOptions {
            format,
            deterministic,
            scope: item.scope,
        };
        items.push((value, opts));
    }
    let timer = std::time::Instant::now();
    let origin = conn.peer.to_string();
    let tokens = match state.vault.tokenize_batch(&items).await {
        Ok(tokens) => tokens,
        Err(err @ Error::TokenizationSweepDetected { .. }) => {
            // Audited without the value or its digits: who, when, from where.
            let event = AuditEvent::new(client.name(), Action::Tokenize)
                .class(DataClass::Pan)
                .origin(origin)
                .failed(&err);
            access.record(std::slice::from_ref(&event)).await?;
            return Err(err);
        }
        Err(err) => return Err(err),
    };
    state
        .metrics
        .store_ops
        .with(&["tokenize"])
        .observe(timer.elapsed());
    let events: Vec<AuditEvent> = tokens
        .iter()
        .zip(&items)
        .map(|(token, (value, _))| {
            AuditEvent::new(client.name(), Action::Tokenize)
                .token(token.as_str())
                .class(value.class())
                .origin(origin.clone())
        })
        .collect();
    super::record(state, &events).await?;
    super::note_values(&parts.extensions, tokens.len());
    let results = tokens
        .iter()
        .zip(&items)
        .map(|(token, (value, _))| TokenOut {
            token,
            class: value.class().as_str(),
        })
        .collect();
    let body = serde_json::to_vec(&TokenizeOut { results })
        .map_err(|_| Error::Internal("encoding the tokenize response"))?;
    Ok(json(StatusCode::OK, body))
}

/// The `{token}` of `/v1/tokens/{token}` and the optional `scope` query parameter,
/// percent-decoded (`+` in the query is a space, as forms and most clients send it).
fn token_and_scope(req: &Request<Incoming>) -> Result<(String, Option<String>)> {
    let raw = req
        .uri()
        .path()
        .strip_prefix("/v1/tokens/")
        .filter(|t| !t.is_empty() && !t.contains('/'))
        .ok_or(Error::NoRoute)?;
    crate::vault::token::check_token_len(raw)?;
    // Not UTF-8 after decoding: no token has that name.
    let token = decode(raw).ok_or(Error::TokenNotFound)?;
    let scope = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("scope=")))
        .map(|s| decode(&s.replace('+', " ")).ok_or(Error::TokenNotFound))
        .transpose()?;
    Ok((token, scope))
}

fn decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(String::from)
}

/// What the API answers for a vault error about one token. A CVV that is gone
/// (revealed, expired, dropped by a restart) answers like one never issued: the vault
/// keeps nothing of a used CVV, so it cannot tell them apart, and a token that does
/// not exist is 404 whatever its scope. The audit log keeps the vault's own reason.
pub(crate) fn public_error(e: Error) -> Error {
    match e {
        Error::CvvExpired => Error::TokenNotFound,
        e => e,
    }
}

#[derive(Serialize)]
struct MetaOut<'a> {
    token: &'a str,
    class: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last4: Option<&'a str>,
    created: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<u64>,
}

/// `GET /v1/tokens/{token}`: class, last four, created, expires. Needs at least
/// masked reveal of the token's class; otherwise it answers like a missing token.
pub async fn metadata(
    state: &ApiState,
    conn: &ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let access = &state.access;
    let client = super::authenticate(access, conn, &req).await?;
    // Metadata tells the last four: it draws on the same budget as reveals.
    access.rate_limit(&client, 1, conn).await?;
    let (token, scope) = token_and_scope(&req)?;
    let result = match state.vault.metadata(&token, scope.as_deref()).await {
        Ok(meta) => client
            .visible(meta.class, crate::auth::Purpose::Metadata)
            .map(|_| meta),
        Err(e) => Err(e),
    };
    let mut event = AuditEvent::new(client.name(), Action::Metadata)
        .token(token.as_str())
        .origin(conn.peer.to_string())
        .outcome_of(&result);
    if let Ok(meta) = &result {
        event = event.class(meta.class);
    }
    access.record(std::slice::from_ref(&event)).await?;
    let meta = result.map_err(public_error)?;
    let body = serde_json::to_vec(&MetaOut {
        token: &token,
        class: meta.class.as_str(),
        last4: meta.last4.as_deref(),
        created: meta.created,
        expires: meta.expires,
    })
    .map_err(|_| Error::Internal("encoding the metadata response"))?;
    Ok(json(StatusCode::OK, body))
}

/// `DELETE /v1/tokens/{token}`: for clients with `delete = true`.
pub async fn delete(
    state: &ApiState,
    conn: &ConnInfo,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let access = &state.access;
    let client = super::authenticate(access, conn, &req).await?;
    access.rate_limit(&client, 1, conn).await?;
    let (token, scope) = token_and_scope(&req)?;
    let result = if client.may_delete() {
        match state.vault.delete(&token, scope.as_deref()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::TokenNotFound),
            Err(e) => Err(e),
        }
    } else {
        Err(Error::Forbidden("this client may not delete tokens"))
    };
    let event = AuditEvent::new(client.name(), Action::Delete)
        .token(token.as_str())
        .origin(conn.peer.to_string())
        .outcome_of(&result);
    access.record(std::slice::from_ref(&event)).await?;
    result.map_err(public_error)?;
    let body = serde_json::json!({ "token": token, "deleted": true }).to_string();
    Ok(json(StatusCode::OK, body))
}
