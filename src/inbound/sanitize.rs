//! Sanitize a request: decode its body, tokenize what the rules and the leak guard
//! find, make the tokens durable, re-encode.

use bytes::Bytes;
use zeroize::Zeroizing;

use crate::codec::{self, Extraction, FindingKind, RequestParts};
use crate::error::{Error, Result};
use crate::rules::{LeakPolicy, RouteRules, guard};
use crate::sensitive::{DataClass, Sensitive};
use crate::vault::{TokenizeOptions, Vault};

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
    let req = RequestParts {
        content_type: header(parts, http::header::CONTENT_TYPE)?,
        content_encoding: header(parts, http::header::CONTENT_ENCODING)?,
        query: parts.uri.query(),
        body,
        max_body: limits.max_body,
    };
    let extraction =
        guard::with_decode_depth(limits.max_decode_depth, || codec::extract(rules, req))?;
    if extraction.findings().is_empty() {
        return Ok(Sanitized {
            body: None,
            query: None,
        });
    }
    if extraction.findings().len() > limits.max_sensitive_values {
        return Err(Error::TooManySensitiveValues {
            limit: limits.max_sensitive_values,
        });
    }
    let replacements = tokenize_findings(vault, rules, &extraction).await?;
    vault.flush().await?;
    let out = extraction.apply(&replacements)?;
    Ok(Sanitized {
        body: out.body,
        query: out.query,
    })
}

/// Whether a leak-guard hit is one of our tokens rather than a card: issued by this
/// vault and not itself a card number this vault holds.
async fn leak_is_our_token(vault: &Vault, raw: &str) -> Result<bool> {
    let compact = Zeroizing::new(raw.chars().filter(char::is_ascii_digit).collect::<String>());
    Ok(vault.is_issued(&compact).await? && !vault.holds_value(DataClass::Pan, &compact).await?)
}

async fn tokenize_findings(
    vault: &Vault,
    rules: &RouteRules,
    extraction: &Extraction,
) -> Result<Vec<Option<String>>> {
    let findings = extraction.findings();
    let mut out: Vec<Option<String>> = vec![None; findings.len()];
    let policy = rules.leak_guard;
    // Decide every leak-guard hit before anything is stored: one that is refused
    // must not leave records behind.
    let mut ours = vec![false; findings.len()];
    for (i, f) in findings.iter().enumerate() {
        let refusable = match f.kind {
            FindingKind::Rule { .. } => continue,
            FindingKind::Hidden => true,
            FindingKind::Leak => policy == LeakPolicy::Reject,
        };
        if policy == LeakPolicy::Allow || f.value.is_empty() {
            continue;
        }
        let is_ours = leak_is_our_token(vault, f.value.expose()).await?;
        if let Some(slot) = ours.get_mut(i) {
            *slot = is_ours;
        }
        if refusable && !is_ours {
            return Err(Error::LeakRejected(f.location.clone()));
        }
    }
    // CVVs last: a same-length CVV token is scoped by the card token it travels with.
    for pass_cvv in [false, true] {
        for (i, f) in findings.iter().enumerate() {
            if (f.class == DataClass::Cvv) != pass_cvv {
                continue;
            }
            let raw = f.value.expose();
            if raw.is_empty() {
                continue;
            }
            // A value in a sensitive field is always tokenized, even if it equals a token
            // this vault issued: a six-four token is a valid card number, and a real
            // card that happens to equal one must never go upstream in clear.
            if !matches!(f.kind, FindingKind::Rule { .. }) && ours.get(i).copied().unwrap_or(false)
            {
                continue;
            }
            let opts = match f.kind {
                FindingKind::Rule { rule } => {
                    let r = rules
                        .fields
                        .get(rule)
                        .ok_or(Error::Internal("a finding names an unknown rule"))?;
                    // A scope is always a token of this vault (the card field was
                    // tokenized in the first pass); a raw value never becomes part of
                    // a stored key.
                    let scope = match f.scope {
                        Some(j) => Some(out.get(j).cloned().flatten().ok_or_else(|| {
                            Error::InvalidBody(format!(
                                "{} has no card number to belong to",
                                f.location
                            ))
                        })?),
                        None => None,
                    };
                    TokenizeOptions {
                        format: r.format,
                        deterministic: r.deterministic,
                        scope,
                    }
                }
                FindingKind::Leak => match policy {
                    LeakPolicy::Allow => continue,
                    LeakPolicy::Reject => return Err(Error::LeakRejected(f.location.clone())),
                    LeakPolicy::Tokenize => TokenizeOptions::default(),
                },
                // Refused above unless it is one of our tokens.
                FindingKind::Hidden => match policy {
                    LeakPolicy::Allow => continue,
                    _ => return Err(Error::LeakRejected(f.location.clone())),
                },
            };
            // A hit may be written with any separators; the card is its digits.
            let compact;
            let raw = match f.kind {
                FindingKind::Leak => {
                    compact = Zeroizing::new(
                        raw.chars().filter(char::is_ascii_digit).collect::<String>(),
                    );
                    compact.as_str()
                }
                _ => raw,
            };
            let value = Sensitive::parse(f.class, raw).map_err(|_| {
                Error::InvalidBody(format!(
                    "{} is not a valid {}",
                    f.location,
                    f.class.as_str()
                ))
            })?;
            let token = vault.tokenize_unsynced(&value, &opts).await?;
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(token);
            }
        }
    }
    Ok(out)
}
