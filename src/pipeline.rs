//! The body pipeline seam between the proxy and the codecs / vault.
//!
//! The proxy collects a rules route's body under the size limit and calls
//! [`sanitize`]; whatever it returns is forwarded, and any error becomes the JSON
//! error response with nothing forwarded. The body of `sanitize` belongs to the
//! codec/vault work; this file keeps its signature stable.

use bytes::Bytes;

use crate::select::RouteRules;

/// What the pipeline changed. `None` means "forward the original unchanged".
#[derive(Debug, Default)]
pub struct Sanitized {
    pub body: Option<Bytes>,
    pub query: Option<String>,
}

// PLACEHOLDER (replaced at merge): `crate::vault::Vault`. At merge, delete this struct
// and `pub use crate::vault::Vault;` instead.
/// The vault (placeholder until the vault module lands).
#[derive(Debug, Default)]
pub struct Vault;

// PLACEHOLDER (replaced at merge): `crate::codec::CompiledRules`. At merge, delete this
// struct and its impl and `pub use crate::codec::CompiledRules;` instead.
/// A route's rules, compiled for the codecs (placeholder: holds the rules as is).
#[derive(Clone, Debug)]
pub struct CompiledRules(pub RouteRules);

// PLACEHOLDER (replaced at merge): see `CompiledRules`.
impl CompiledRules {
    /// Compile a route's rules; the error names the bad field rule.
    pub fn compile(rules: &RouteRules) -> crate::Result<CompiledRules> {
        Ok(CompiledRules(rules.clone()))
    }
}

/// Tokenize the sensitive fields of a request body (and query string).
///
/// PLACEHOLDER (replaced at merge): returns the body and query unchanged.
pub async fn sanitize(
    vault: &Vault,
    rules: &CompiledRules,
    parts: &http::request::Parts,
    body: &[u8],
    max_body: usize,
) -> crate::Result<Sanitized> {
    let _ = (vault, rules, parts, body, max_body);
    Ok(Sanitized::default())
}
