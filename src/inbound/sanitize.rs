//! Sanitize a request: decode its body, tokenize what the rules and the leak guard
//! find, make the tokens durable, re-encode.

use bytes::Bytes;

use crate::codec::{self, Extraction, RequestParts};
use crate::error::{Error, Result};
use crate::rules::{RouteRules, guard};
use crate::vault::{TokenizeOptions, Vault};

use super::exposure;
use super::plan::{Plan, Step, needs_ownership_check, plan};

/// What changes in the forwarded request. `None` means unchanged.
#[derive(Debug, Default)]
pub struct Sanitized {
    pub body: Option<Bytes>,
    pub query: Option<String>,
}

/// A header the body pipeline reads. Two of them would let us read the body one
/// way and the upstream another: a second Content-Type is refused with
/// `duplicate_content_type`, a second Content-Encoding as stacked codings.
fn header(parts: &http::request::Parts, name: http::HeaderName) -> Result<Option<&str>> {
    let mut all = parts.headers.get_all(&name).iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(if name == http::header::CONTENT_TYPE {
            Error::DuplicateContentType
        } else {
            Error::UnsupportedMedia(format!("the request has more than one {name} header"))
        });
    }
    match first {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| Error::UnsupportedMedia(format!("the {name} header is not ASCII"))),
    }
}

/// The `[limits]` a request is sanitized under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest decoded (decompressed, base64-decoded) body.
    pub max_body: usize,
    /// The most sensitive values one request may carry.
    pub max_sensitive_values: usize,
    /// How many encoding layers the leak guard decodes inside a field.
    pub max_decode_depth: usize,
}

impl Limits {
    /// The defaults of `[limits]`, with a body limit.
    pub fn with_max_body(max_body: usize) -> Limits {
        Limits {
            max_body,
            ..Limits::from(&crate::config::Limits::default())
        }
    }
}

impl From<&crate::config::Limits> for Limits {
    fn from(l: &crate::config::Limits) -> Limits {
        Limits {
            max_body: l.max_body_bytes.get(),
            max_sensitive_values: l.max_sensitive_values.get(),
            max_decode_depth: l.max_decode_depth,
        }
    }
}

/// Decode a request and find its sensitive values, as the route's rules and the leak
/// guard read it. Touches no vault.
pub fn extract(
    rules: &RouteRules,
    parts: &http::request::Parts,
    body: &[u8],
    limits: &Limits,
) -> Result<Extraction> {
    codec::cookie::fields_in_cookies(
        rules,
        parts
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .map(http::HeaderValue::as_bytes),
    )?;
    let req = RequestParts {
        content_type: header(parts, http::header::CONTENT_TYPE)?,
        content_encoding: header(parts, http::header::CONTENT_ENCODING)?,
        query: parts.uri.query(),
        body,
        max_body: limits.max_body,
    };
    let (depth, join) = (limits.max_decode_depth, !rules.lists_alone);
    guard::with_reading(depth, join, || codec::extract(rules, req))
}

/// Tokenize every sensitive value in a request. Returns only after every new token
/// is durable; on any error nothing may be forwarded.
///
/// Nothing is stored before the request is known to be acceptable: too many values,
/// a leak-guard hit on a `reject` route, or a hit that cannot be replaced in place
/// (and is not one of our tokens) refuse it first.
#[tracing::instrument(skip_all)]
pub async fn sanitize(
    vault: &Vault,
    rules: &RouteRules,
    parts: &http::request::Parts,
    body: &[u8],
    limits: &Limits,
) -> Result<Sanitized> {
    let extraction = extract(rules, parts, body, limits)?;
    if extraction.findings().is_empty() {
        return Ok(Sanitized {
            body: None,
            query: None,
        });
    }
    let replacements = tokenize_findings(vault, rules, &extraction, limits).await?;
    vault.flush().await?;
    let out = extraction.apply(&replacements)?;
    Ok(Sanitized {
        body: out.body,
        query: out.query,
    })
}

async fn tokenize_findings(
    vault: &Vault,
    rules: &RouteRules,
    extraction: &Extraction,
    limits: &Limits,
) -> Result<Vec<Option<String>>> {
    let findings = extraction.findings();
    // Decide every finding before anything is stored: a refused request must not
    // leave records behind.
    let mut ours = vec![false; findings.len()];
    if findings.len() <= limits.max_sensitive_values {
        for (i, f) in findings.iter().enumerate() {
            if needs_ownership_check(rules, f)
                && let Some(slot) = ours.get_mut(i)
            {
                *slot = exposure::is_our_token(vault, f.value.expose()).await?;
            }
        }
    }
    let plan = plan(rules, findings, limits, &ours)?;
    let mut out: Vec<Option<String>> = vec![None; findings.len()];
    for i in Plan::order(findings) {
        let Some(Step::Tokenize(t)) = plan.steps.get(i) else {
            continue;
        };
        // The plan checked that the scope finding was tokenized before this one.
        let scope = match t.scope {
            Some(j) => Some(
                out.get(j)
                    .cloned()
                    .flatten()
                    .ok_or(Error::Internal("a scope without a token"))?,
            ),
            None => None,
        };
        let opts = TokenizeOptions {
            format: t.format,
            deterministic: t.deterministic,
            scope,
        };
        // A scope is the token just returned for this request's card.
        let token = vault
            .tokenize_unsynced_in_issued_scope(&t.value, &opts)
            .await?;
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(token);
        }
    }
    Ok(out)
}
