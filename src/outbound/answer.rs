//! The destination's answer on its way back to the caller: read once, whole, for the
//! echo swap ([`super::echo`]: values the request revealed, back to *their* tokens)
//! and then for the answer guard ([`super::cards`]: every other card number, a new
//! token), and passed on rewritten or refused.
//!
//! - **Which answers are read.** Every answer of a route whose `answer_guard` is not
//!   `off`, and every answer to a request that revealed values (unless the route sets
//!   `swap_echoes = false`). Any other answer streams through unread.
//! - **Read whole**, under `limits.max_body_bytes`, the process's body budget
//!   ([`crate::net::budget`]) and `limits.upstream_timeout_ms`, so a card split
//!   between chunks is read in one piece. Streaming a large answer through instead
//!   would let the first bytes of a card go before its last ones are seen, and a card
//!   cannot be made a token once it has been sent: a body over the limit is refused
//!   (502), never passed unread. A route whose answers are large downloads or long
//!   streams sets `answer_guard = "off"` (its callers then see those answers raw) or
//!   the limit is raised.
//! - A body in a content coding other than gzip or deflate (`br`, `zstd`, two
//!   codings), or one that is not what its coding says, is refused (502). A gzip or
//!   deflate body is decompressed, rewritten and compressed again in the same coding.
//!   `Content-Length` is set to the rewritten length; trailers are dropped. A request
//!   whose answer is read asks for no other coding ([`super::echo::readable_codings`]).
//! - An unreadable answer to a request that revealed values is `echo_unchecked` (as
//!   before the guard); to one that revealed nothing, `answer_unchecked`.
//! - Counted in `vaultgate_outbound_answer_tokens_total{route,outcome}` (`tokenized`:
//!   one per new token; `refused`: one per answer) and logged with the route, the
//!   place and how many, never a value.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use zeroize::Zeroizing;

use super::cards::{AnswerCards, Places, Refusal};
use super::echo::{self, EchoCtx, Revealed};
use crate::codec;
use crate::config::AnswerGuard;
use crate::metrics::CounterVec;
use crate::net::body::{Body, full_held};
use crate::net::budget::BodyBudget;
use crate::net::linger::read_limited;
use crate::vault::Vault;
use crate::{Error, Result};

/// What reading an answer needs from the outbound state and its route.
pub struct AnswerCtx<'a> {
    pub route: &'a str,
    pub guard: AnswerGuard,
    pub vault: &'a Vault,
    pub max_body: usize,
    /// `limits.max_sensitive_values`: the most distinct card numbers in one answer.
    pub max_cards: usize,
    /// `limits.max_decode_depth`: how deep the guard reads.
    pub decode_depth: usize,
    pub timeout: Duration,
    pub budget: &'a Arc<BodyBudget>,
    /// `vaultgate_outbound_echoes_total{route,outcome}`.
    pub echoes: &'a CounterVec,
    /// `vaultgate_outbound_answer_tokens_total{route,outcome}`.
    pub tokens: &'a CounterVec,
}

impl AnswerCtx<'_> {
    /// Whether answers to a request that revealed `revealed` are read at all.
    pub fn reads(&self, revealed: &Revealed) -> bool {
        self.guard != AnswerGuard::Off || !revealed.is_empty()
    }

    fn echo(&self) -> EchoCtx<'_> {
        EchoCtx {
            route: self.route,
            echoes: self.echoes,
        }
    }

    /// The answer refused by the guard, counted and logged with the place and why.
    fn refuse(&self, place: &'static str, why: Refusal) -> Error {
        let err = match why {
            Refusal::Card if self.guard == AnswerGuard::Refuse => Error::AnswerCardRefused,
            Refusal::Card => Error::AnswerUnswappable,
            Refusal::TooMany => Error::AnswerUnchecked(
                "it shows more card numbers than limits.max_sensitive_values",
            ),
            Refusal::Vault(e) => e,
        };
        self.tokens.inc(&[self.route, "refused"]);
        tracing::warn!(
            route = self.route,
            place,
            code = err.code(),
            "the destination's answer shows card numbers its request did not reveal; refused"
        );
        err
    }

    /// An answer that could not be read whole: `echo_unchecked` when it was read for
    /// revealed values, else `answer_unchecked`.
    fn unreadable(&self, echo: bool, why: &'static str) -> Error {
        if echo {
            return echo::unchecked(&self.echo(), why);
        }
        self.tokens.inc(&[self.route, "refused"]);
        tracing::warn!(
            route = self.route,
            why,
            "the destination's answer could not be checked for card numbers; refused"
        );
        Error::AnswerUnchecked(match why {
            "size" => "the answer is larger than limits.max_body_bytes",
            _ => {
                "the answer's content coding is not gzip or deflate, or the body is not what it says"
            }
        })
    }
}

/// The destination's answer as the caller may have it: revealed values swapped back,
/// other cards tokenized; an error when it cannot be (see the module docs).
pub async fn pass_back(
    res: Response<Body>,
    revealed: &Revealed,
    ctx: &AnswerCtx<'_>,
) -> Result<Response<Body>> {
    if !ctx.reads(revealed) {
        return Ok(res);
    }
    let echo = !revealed.is_empty();
    let ectx = ctx.echo();
    let (mut parts, body) = res.into_parts();
    let mut swapped = echo::swap_head(&mut parts, revealed, &ectx)?;

    let coding =
        codec::streamed_coding(&parts.headers).map_err(|_| ctx.unreadable(echo, "coding"))?;
    let mut lease = ctx.budget.lease();
    let mut body = body;
    let read = read_limited(&parts.headers, &mut body, ctx.max_body, &mut lease);
    let raw = match tokio::time::timeout(ctx.timeout, read).await {
        Err(_) => return Err(Error::UpstreamTimeout),
        Ok(Ok(raw)) => raw,
        Ok(Err(Error::BodyTooLarge { .. })) => return Err(ctx.unreadable(echo, "size")),
        Ok(Err(Error::BodyMemoryFull)) => return Err(Error::BodyMemoryFull),
        Ok(Err(_)) => return Err(Error::UpstreamUnavailable),
    };
    drop(body);
    // An empty body (a HEAD answer, a 204 or 304) shows nothing, whatever its coding.
    let decoded = match coding.filter(|_| !raw.is_empty()) {
        None => None,
        Some(c) => Some(
            codec::decompress_streamed(c, &raw, ctx.max_body)
                .map_err(|_| ctx.unreadable(echo, "coding"))?,
        ),
    };
    let text: &[u8] = decoded.as_ref().map_or(&raw, |d| d.as_slice());
    let mut changed: Option<Zeroizing<Vec<u8>>> = match echo::swap_body(text, revealed, &ectx)? {
        None => None,
        Some((out, n)) => {
            swapped += n;
            Some(out)
        }
    };
    if ctx.guard != AnswerGuard::Off {
        let text = changed.as_ref().map_or(text, |c| c.as_slice());
        if let Some(out) = guard(ctx, revealed, &mut parts, text).await? {
            changed = Some(out);
        }
    }

    // Counted once the answer is known to pass.
    ectx.swapped(swapped);
    let out = match changed {
        None => raw,
        Some(out) => {
            let out = match decoded.as_ref().and(coding) {
                None => out.to_vec(),
                Some(c) => codec::compress_streamed(c, &out)?,
            };
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
            Bytes::from(out)
        }
    };
    Ok(Response::from_parts(parts, full_held(out, lease)))
}

/// The answer guard over the head and the body's text (after the echo swap): header
/// values rewritten in `parts`, the body's new text returned when it changed.
async fn guard(
    ctx: &AnswerCtx<'_>,
    revealed: &Revealed,
    parts: &mut http::response::Parts,
    text: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let mut cards = AnswerCards::new(
        ctx.vault,
        ctx.guard,
        revealed.tokens(),
        ctx.max_cards,
        ctx.decode_depth,
    );
    for name in parts.headers.keys() {
        if !codec::shown::every_card(name.as_str().as_bytes()).is_empty() {
            return Err(ctx.refuse("header name", Refusal::Card));
        }
    }
    // A reason phrase is the status's description only: the canonical one stands in
    // for one that shows a card.
    if let Some(reason) = parts.extensions.get::<hyper::ext::ReasonPhrase>()
        && !codec::shown::every_card(reason.as_bytes()).is_empty()
    {
        parts.extensions.remove::<hyper::ext::ReasonPhrase>();
    }
    let mut heads: Vec<(usize, Places)> = Vec::new();
    for (i, value) in parts.headers.values().enumerate() {
        let places = cards
            .find(value.as_bytes())
            .await
            .map_err(|why| ctx.refuse("header value", why))?;
        if !places.is_empty() {
            heads.push((i, places));
        }
    }
    let body = cards
        .find(text)
        .await
        .map_err(|why| ctx.refuse("body", why))?;
    if heads.is_empty() && body.is_empty() {
        return Ok(None);
    }
    cards
        .tokenize()
        .await
        .map_err(|e| ctx.refuse("vault", Refusal::Vault(e)))?;
    for (i, value) in parts.headers.values_mut().enumerate() {
        let Some((_, places)) = heads.iter().find(|(h, _)| *h == i) else {
            continue;
        };
        let out = cards
            .rewrite(value.as_bytes(), places)
            .await
            .map_err(|why| ctx.refuse("header value", why))?;
        *value =
            HeaderValue::from_bytes(&out).map_err(|_| ctx.refuse("header value", Refusal::Card))?;
    }
    let out = match body.is_empty() {
        true => None,
        false => Some(
            cards
                .rewrite(text, &body)
                .await
                .map_err(|why| ctx.refuse("body", why))?,
        ),
    };
    let tokenized = cards.tokenized();
    ctx.tokens.add(
        &[ctx.route, "tokenized"],
        u64::try_from(tokenized).unwrap_or(u64::MAX),
    );
    tracing::info!(
        route = ctx.route,
        tokenized,
        "the destination's answer showed card numbers its request did not reveal; tokenized"
    );
    Ok(out)
}
