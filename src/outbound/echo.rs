//! The destination's echo: values revealed into an outbound request, swapped back for
//! their tokens in the answer before the caller gets it.
//!
//! Processors quote what they were sent: an error text with the card
//! (`card 4242…4242 declined`), a JSON echo of the submitted `number`, a 3-D
//! Secure redirect URL with it percent-encoded. Passed on, the caller (a service kept
//! out of PCI DSS scope by holding only tokens) would hold the value again. The proxy
//! knows exactly which values it revealed into the request, and which token each came
//! from; where the answer shows one, in its body, its header values or its HTTP/1
//! reason phrase, the token takes its place ([`crate::codec::shown`] says where a
//! value shows: as written, a card in groups or in another script's digits, behind
//! `\u`, `%XX` or character-reference escapes, in UTF-16).
//!
//! - **The body is read whole** by [`super::answer`], with the answer guard's reading
//!   of the same answer, so a value split between chunks is read in one piece. On a
//!   request that revealed values, a body that cannot be read (over
//!   `limits.max_body_bytes`, a content coding other than gzip or deflate, not what
//!   its coding says) is refused with 502 `echo_unchecked`, never passed unread. Such
//!   a request asks for no other coding ([`readable_codings`]).
//! - **A value shown where it cannot be swapped in place** (base64, escaped twice, a
//!   number literal, UTF-16, a header name) refuses the whole answer: 502
//!   `echo_unswappable`, nothing of it passed on. The check runs on the rewritten
//!   answer, so a swap that missed a reading is refused too.
//! - Counted in `vaultgate_outbound_echoes_total{route,outcome}` (`swapped`,
//!   `refused`) and logged with the route and how many, never a value.
//! - A short value (a CVV, an account number under 13 characters) is swapped only
//!   where it is a whole value: a quoted string (`"cvc":"218"`), a parameter
//!   (`cvc=218`), an element's text (`<cvc>218</cvc>`). A bare number equal to it is
//!   as likely an amount or a status code (`"amount":218`) and is left alone; so is a
//!   CVV quoted in running text (`cvc 218 invalid`), which processors do not write.

use http::{HeaderMap, HeaderValue, header};
use zeroize::Zeroizing;

use crate::codec::shown;
use crate::metrics::CounterVec;
use crate::{Error, Result};

/// The values revealed into one request, each with the token it came from.
#[derive(Default)]
pub struct Revealed {
    /// `(value, token)`, each value once.
    pairs: Vec<(Zeroizing<String>, Zeroizing<String>)>,
}

impl Revealed {
    /// From `(token, value)` pairs; empty values are left out.
    pub fn new<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Revealed {
        let mut out = Revealed::default();
        for (token, value) in pairs {
            if value.is_empty() || out.pairs.iter().any(|(v, _)| v.as_str() == value) {
                continue;
            }
            out.pairs.push((
                Zeroizing::new(value.to_owned()),
                Zeroizing::new(token.to_owned()),
            ));
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The tokens of the values revealed: what the swap writes into the answer.
    pub fn tokens(&self) -> impl Iterator<Item = &[u8]> {
        self.pairs.iter().map(|(_, t)| t.as_bytes())
    }

    fn values(&self) -> Vec<&[u8]> {
        self.pairs.iter().map(|(v, _)| v.as_bytes()).collect()
    }

    fn token(&self, value: usize) -> &str {
        self.pairs.get(value).map_or("", |(_, t)| t.as_str())
    }
}

/// What the swap needs from the outbound state.
pub struct EchoCtx<'a> {
    pub route: &'a str,
    /// `vaultgate_outbound_echoes_total{route,outcome}`.
    pub echoes: &'a CounterVec,
}

impl EchoCtx<'_> {
    /// Count an answer whose values were swapped back, and say how many: never which.
    pub fn swapped(&self, swapped: usize) {
        if swapped == 0 {
            return;
        }
        self.echoes.inc(&[self.route, "swapped"]);
        tracing::info!(
            route = self.route,
            swapped,
            "the destination's answer showed revealed values; swapped back for their tokens"
        );
    }

    /// 502 `echo_unswappable`, counted as refused.
    fn refuse(&self, place: &'static str) -> Error {
        self.echoes.inc(&[self.route, "refused"]);
        tracing::warn!(
            route = self.route,
            place,
            "the destination's answer shows a revealed value that cannot be swapped back; refused"
        );
        Error::EchoUnswappable
    }
}

/// Swap every revealed value the answer's head shows (header values, the HTTP/1
/// reason phrase) back for its token; an error when one shows where it cannot be (a
/// header name). Returns how many were swapped.
pub fn swap_head(
    parts: &mut http::response::Parts,
    revealed: &Revealed,
    ctx: &EchoCtx<'_>,
) -> Result<usize> {
    if revealed.is_empty() {
        return Ok(0);
    }
    let values = revealed.values();
    let mut swapped = 0usize;
    for name in parts.headers.keys() {
        if shown::still_shows(name.as_str().as_bytes(), &values) {
            return Err(ctx.refuse("header name"));
        }
    }
    for value in parts.headers.values_mut() {
        match swap(value.as_bytes(), revealed, &values) {
            Swap::Same => {}
            Swap::Changed(out, n) => {
                *value = HeaderValue::from_bytes(&out).map_err(|_| ctx.refuse("header value"))?;
                swapped += n;
            }
            Swap::Refused => return Err(ctx.refuse("header value")),
        }
    }
    if let Some(reason) = parts.extensions.get::<hyper::ext::ReasonPhrase>() {
        match swap(reason.as_bytes(), revealed, &values) {
            Swap::Same => {}
            // A reason phrase is the status's description only: the canonical one
            // stands in for it.
            Swap::Changed(..) | Swap::Refused => {
                parts.extensions.remove::<hyper::ext::ReasonPhrase>();
                swapped += 1;
            }
        }
    }
    Ok(swapped)
}

/// The answer's body (decoded from its content coding) with every revealed value it
/// shows swapped back for its token, and how many; `None` when it shows none; an
/// error when one shows where it cannot be swapped.
pub fn swap_body(
    text: &[u8],
    revealed: &Revealed,
    ctx: &EchoCtx<'_>,
) -> Result<Option<(Zeroizing<Vec<u8>>, usize)>> {
    if revealed.is_empty() {
        return Ok(None);
    }
    match swap(text, revealed, &revealed.values()) {
        Swap::Same => Ok(None),
        Swap::Refused => Err(ctx.refuse("body")),
        Swap::Changed(out, n) => Ok(Some((out, n))),
    }
}

/// Ask the destination only for content codings the swap can read, on a request
/// that reveals values: `Accept-Encoding` keeps `gzip`, `x-gzip`, `deflate` and
/// `identity` (with their weights) and drops the rest (`br`, `zstd`, `*`); with none
/// left, `identity`. An answer in another coding anyway is refused
/// (`echo_unchecked`), never passed unread.
pub fn readable_codings(headers: &mut HeaderMap) {
    if !headers.contains_key(header::ACCEPT_ENCODING) {
        return;
    }
    let mut kept: Vec<String> = Vec::new();
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for item in value.split(',').map(str::trim) {
            let name = item.split(';').next().unwrap_or_default().trim();
            if ["gzip", "x-gzip", "deflate", "identity"]
                .iter()
                .any(|c| c.eq_ignore_ascii_case(name))
            {
                kept.push(item.to_owned());
            }
        }
    }
    let value = match kept.is_empty() {
        true => HeaderValue::from_static("identity"),
        false => HeaderValue::from_str(&kept.join(", "))
            .unwrap_or_else(|_| HeaderValue::from_static("identity")),
    };
    headers.insert(header::ACCEPT_ENCODING, value);
}

/// 502 `echo_unchecked`, counted as refused: the answer could not be read whole
/// (`why`: `size`, or anything else for its coding).
pub fn unchecked(ctx: &EchoCtx<'_>, why: &'static str) -> Error {
    ctx.echoes.inc(&[ctx.route, "refused"]);
    tracing::warn!(
        route = ctx.route,
        why,
        "the destination's answer could not be checked for revealed values; refused"
    );
    Error::EchoUnchecked(match why {
        "size" => "the answer is larger than limits.max_body_bytes",
        _ => "the answer's content coding is not gzip or deflate, or the body is not what it says",
    })
}

/// What [`swap`] made of some bytes.
enum Swap {
    /// No value shows in them.
    Same,
    /// The bytes with this many values swapped back.
    Changed(Zeroizing<Vec<u8>>, usize),
    /// A value shows where it cannot be swapped.
    Refused,
}

/// `text` with every place a revealed value shows ([`shown::shown`]) replaced by its
/// token, checked again in every reading ([`shown::still_shows`]).
fn swap(text: &[u8], revealed: &Revealed, values: &[&[u8]]) -> Swap {
    let places = shown::shown(text, values);
    if places.is_empty() {
        return if shown::still_shows(text, values) {
            Swap::Refused
        } else {
            Swap::Same
        };
    }
    let mut out = Zeroizing::new(Vec::with_capacity(text.len()));
    let mut at = 0;
    for place in &places {
        out.extend_from_slice(text.get(at..place.range.start).unwrap_or_default());
        let span = text.get(place.range.clone()).unwrap_or_default();
        write_token(&mut out, span, revealed.token(place.value));
        at = place.range.end;
    }
    out.extend_from_slice(text.get(at..).unwrap_or_default());
    if shown::still_shows(&out, values) {
        return Swap::Refused;
    }
    Swap::Changed(out, places.len())
}

/// The token in place of `span`: in the span's grouping (`4242 4242 …`) when the span
/// is ASCII digits and separators and the token has as many digits; otherwise as it
/// is (an escaped or percent-encoded value is replaced by the plain token, which reads
/// the same in a JSON string, a URL and HTML).
pub fn write_token(out: &mut Vec<u8>, span: &[u8], token: &str) {
    let digits = span.iter().filter(|b| b.is_ascii_digit()).count();
    let grouped = span
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'.'))
        && token.len() == digits
        && token.bytes().all(|b| b.is_ascii_digit());
    if !grouped {
        out.extend_from_slice(token.as_bytes());
        return;
    }
    let mut digits = token.bytes();
    for b in span {
        match b.is_ascii_digit() {
            true => out.extend(digits.next()),
            false => out.push(*b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revealed() -> Revealed {
        Revealed::new([("4242421234564242", "4242424242424242"), ("739", "218")].into_iter())
    }

    fn swapped(text: &str) -> String {
        let r = revealed();
        match swap(text.as_bytes(), &r, &r.values()) {
            Swap::Changed(out, _) => String::from_utf8(out.to_vec()).unwrap(),
            Swap::Same => text.to_owned(),
            Swap::Refused => "refused".to_owned(),
        }
    }

    #[test]
    fn values_are_swapped_for_their_tokens() {
        assert_eq!(
            swapped(r#"{"number":"4242424242424242","cvc":"218","amount":218}"#),
            r#"{"number":"4242421234564242","cvc":"739","amount":218}"#
        );
        assert_eq!(
            swapped("card 4242 4242 4242 4242 declined"),
            "card 4242 4212 3456 4242 declined"
        );
        assert_eq!(
            swapped(r#"{"n":"\u0034\u0032\u0034\u0032424242424242"}"#),
            r#"{"n":"4242421234564242"}"#
        );
        assert_eq!(
            swapped("https://acs.example/3ds?pan=4242%204242%204242%204242&x=1"),
            "https://acs.example/3ds?pan=4242421234564242&x=1"
        );
        assert_eq!(swapped("nothing here"), "nothing here");
        assert_eq!(
            swapped(r#"{"blob":"eyJwYW4iOiI0MjQyNDI0MjQyNDI0MjQyIn0="}"#),
            "refused"
        );
    }
}
