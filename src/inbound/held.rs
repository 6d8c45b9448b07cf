//! What a guarded pass-through route reads, in the proxy's order, apart from the
//! streaming itself: the head (the charset the body is declared in, the path, the
//! query string), how the body is framed for the guard (its multipart header blocks,
//! its content coding) and a body held whole rather than streamed (a compressed one,
//! which is decompressed first). `vaultgate explain` reads a request through these
//! same functions, so that what it says is what the proxy does.
//!
//! Hits are returned, not judged: the proxy lets through those that are tokens of
//! this vault ([`super::exposure::all_ours`]); `explain` has no vault. What is
//! refused whatever the vault holds is an error here.

use http::{HeaderMap, HeaderValue, header};

use super::exposure::{self, HitDigits};
use super::stream_guard::TailScanner;
use crate::Result;
use crate::codec::{Coding, PartHeads, WidthWatch};
use crate::config::GuardMode;
use crate::rules::guard;

/// The places of a request's head that hold hits, with them, in the order the proxy
/// reads them: `the path`, then `the query string`. In `block` mode a body declared
/// in a charset the guard cannot read is refused first (it would decode into other
/// characters than those scanned).
pub(crate) fn head_hits(
    mode: GuardMode,
    parts: &http::request::Parts,
) -> Result<Vec<(&'static str, Vec<HitDigits>)>> {
    if mode == GuardMode::Block {
        crate::codec::check_streamed_charset(&parts.headers.get_all(header::CONTENT_TYPE))?;
    }
    let mut places = Vec::new();
    let path = parts.uri.path();
    if guard::may_contain(path.as_bytes()) {
        let hits = exposure::path_hits(path);
        if !hits.is_empty() {
            places.push(("the path", hits));
        }
    }
    if let Some(query) = parts.uri.query()
        && guard::may_contain(query.as_bytes())
    {
        let hits = exposure::query_hits(query);
        if !hits.is_empty() {
            places.push(("the query string", hits));
        }
    }
    Ok(places)
}

/// The watch over a guarded body's multipart header blocks, if it is multipart
/// ([`PartHeads::for_header`]). A multipart Content-Type whose boundary cannot be
/// read unambiguously is refused in `block` mode; `detect` sends the body on with its
/// parts unread.
pub(crate) fn part_heads(
    mode: GuardMode,
    route: &str,
    content_type: Option<&HeaderValue>,
) -> Result<Option<PartHeads>> {
    let Some(content_type) = content_type else {
        return Ok(None);
    };
    match PartHeads::for_header(content_type) {
        Ok(heads) => Ok(heads),
        Err(e) if mode == GuardMode::Block => Err(e),
        Err(e) => {
            tracing::warn!(route, error = %e, "a multipart body whose boundary the guard cannot read was forwarded unread (detect mode)");
            Ok(None)
        }
    }
}

/// The content coding of a guarded body, if it has one the guard must undo to read
/// it. One it cannot undo is refused in `block` mode; `detect` sends it on as it is,
/// unread.
pub(crate) fn coding(mode: GuardMode, route: &str, headers: &HeaderMap) -> Result<Option<Coding>> {
    if !headers.contains_key(header::CONTENT_ENCODING) {
        return Ok(None);
    }
    match crate::codec::streamed_coding(headers) {
        Ok(coding) => Ok(coding),
        Err(e) if mode == GuardMode::Block => Err(e),
        Err(_) => {
            tracing::warn!(
                route,
                "a body in a content coding the guard cannot read was forwarded unread (detect mode)"
            );
            Ok(None)
        }
    }
}

/// The hits of a body held whole, read as the streaming guard reads a body (its
/// multipart header blocks by `heads`, an XML entity declaration, an XML declaration
/// of an encoding it cannot read or UTF-16 or UTF-32 text the guard does not read
/// (`width`) refused in `block` mode, escapes decoded, number literals), the whole
/// text one chunk, a wide one also without its NULs. With a
/// `coding`, the body is decompressed (under `max_body`) and read so, and also as
/// sent, which goes upstream: decompressing drops a gzip member's own header
/// (FNAME, FCOMMENT, FEXTRA), plain text to whoever stores or logs the body.
pub(crate) fn body_hits(
    mode: GuardMode,
    route: &str,
    coding: Option<Coding>,
    (heads, mut width): (Option<PartHeads>, WidthWatch),
    bytes: &[u8],
    max_body: usize,
) -> Result<Vec<HitDigits>> {
    let decompressed = match coding {
        Some(coding) => Some(crate::codec::decompress_streamed(coding, bytes, max_body)?),
        None => None,
    };
    let text: &[u8] = decompressed.as_deref().map_or(bytes, |d| d.as_slice());
    if let Some(mut heads) = heads {
        match heads.feed(text).and_then(|()| heads.finish()) {
            Err(e) if mode == GuardMode::Block => return Err(e),
            Err(e) => {
                tracing::warn!(route, error = %e, "a multipart part the guard cannot read was forwarded (detect mode)");
            }
            Ok(()) => {}
        }
    }
    if mode == GuardMode::Block && crate::codec::declares_xml_entity(&[], text) {
        return Err(crate::codec::entity_refusal());
    }
    if mode == GuardMode::Block && crate::codec::declares_xml_encoding(text) {
        return Err(crate::codec::encoding_refusal());
    }
    if mode == GuardMode::Block && width.feed(text) {
        return Err(crate::codec::wide_refusal());
    }
    let mut hits = Vec::new();
    TailScanner::default().hits(text, &mut hits);
    if width.is_wide() {
        // A wide body also without its NULs (its text is ASCII, or it was refused).
        let narrow: Vec<u8> = text.iter().copied().filter(|b| *b != 0).collect();
        TailScanner::default().hits(&narrow, &mut hits);
    }
    if decompressed.is_some() {
        TailScanner::default().hits(bytes, &mut hits);
    }
    Ok(hits)
}
