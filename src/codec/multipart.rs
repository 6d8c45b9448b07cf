//! `multipart/form-data` bodies, read part by part with `multer`.
//!
//! Each part's `Content-Transfer-Encoding` is undone (`base64`, `quoted-printable`
//! written as RFC 2045 writes it, 7-bit lines ending in CRLF; `7bit`, `8bit` and
//! `binary` are identity; anything else is refused), then the part
//! goes through the codec its Content-Type names:
//!
//! - no Content-Type, or `text/plain`: a form field named by the part's `name`
//!   (`payment_method[card_number]` is a path, as in a form), its whole content the
//!   value (rules apply to it; a value that is not UTF-8 is scanned at the byte level);
//! - JSON (`application/json`, `application/*+json`): the JSON codec, paths from the
//!   part's root;
//! - `application/x-www-form-urlencoded`: the form codec;
//! - JSON in another spelling (`text/json`, `application/x-json`, `text/*+json`): the
//!   JSON codec too;
//! - a document format binders read as an object (XML, YAML, CBOR…,
//!   [`media::is_bound_document`]): refused (415) on a route with field rules, which
//!   cannot read it, scanned at the byte level elsewhere;
//! - anything else (files, images): the byte-level scanner. A part that is itself
//!   `multipart/*` or `message/*` is refused (415, [`part_heads`]): Python's `email`
//!   walks into it and decodes its parts, which nothing here reads.
//!
//! A part whose name a field rule names is that field whatever its Content-Type or
//! filename (Python's `cgi` and `email` read a file part's content as the field's
//! value): its content, which must then be UTF-8, is the value.
//!
//! A part without a `Content-Disposition` (RFC 7578 requires one) is refused, and so
//! is one whose disposition backends read differently ([`disposition`]), one with a
//! second Content-Disposition, Content-Type or Content-Transfer-Encoding (`multer`
//! keeps the last, the backends the first), and (415) one whose Content-Type declares
//! a charset that is not ASCII-transparent ([`part_heads`]).
//!
//! The document the collector sees is the parts' decoded contents one after another;
//! [`Layout`] keeps where each part is and how to write it back. A rewritten body is
//! emitted anew from the parts with the same boundary (headers as they were, contents
//! re-encoded with their transfer encoding); a preamble or epilogue is dropped, so
//! the upstream gets exactly what was scanned. A rewritten body is read back before it
//! goes: one whose parts do not read back as written (a re-encoded content that now
//! holds the boundary), or whose raw bytes show a card-shaped number the decoded parts
//! do not hold, is refused.

use std::future::Future;
use std::ops::Range;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use zeroize::Zeroizing;

use super::base64;
use super::collect::{Collector, PathStyle, PathView};
use super::disposition;
use super::form;
use super::json;
use super::media::{self, Media};
use super::part_heads;
use super::rack_name;
use crate::error::{Error, Result};
use crate::rules::guard;

fn invalid(what: &str) -> Error {
    Error::InvalidBody(format!("invalid multipart body: {what}"))
}

/// How a part's content is written on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Transfer {
    Identity,
    Base64(base64::Style),
    QuotedPrintable,
}

/// Which codec reads a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PartKind {
    /// A form field: its content is one value.
    Field,
    Json,
    Form,
    /// A document format binders read as an object and no codec here does
    /// ([`media::is_bound_document`]): refused on a route with field rules.
    Document,
    /// Bytes no codec reads.
    Opaque,
}

/// One part of a multipart body.
pub(crate) struct Part {
    /// The field name from `Content-Disposition`, if any.
    pub name: Option<String>,
    /// The name Rack reads in the part's head, when it is another ([`rack_name`]).
    pub rack_name: Option<String>,
    pub kind: PartKind,
    /// The header block as it is written back: `name: value\r\n` per header.
    pub head: Vec<u8>,
    /// Where the decoded content is in the document.
    pub range: Range<usize>,
    pub transfer: Transfer,
}

/// A multipart body's boundary and parts.
pub(crate) struct Layout {
    pub boundary: String,
    pub parts: Vec<Part>,
}

/// Split a multipart body into its parts and decode each part's transfer encoding.
/// Returns the document (the decoded contents, one after another) and the layout.
pub(crate) fn split(
    content_type: &str,
    body: &[u8],
    max: usize,
) -> Result<(Zeroizing<Vec<u8>>, Layout)> {
    let boundary = media::boundary(content_type)?
        .ok_or_else(|| invalid("the Content-Type has no boundary"))?;
    part_heads::check(body, &boundary)?;
    let raw = read_parts(&boundary, body, max)?;
    let mut doc = Zeroizing::new(Vec::with_capacity(body.len()));
    let mut parts = Vec::with_capacity(raw.len());
    for (number, (headers, data)) in (1usize..).zip(raw) {
        let name = name_of(number, &headers)?;
        let (content, transfer) = undo_transfer(&headers, &data, max)?;
        let start = doc.len();
        doc.extend_from_slice(&content);
        if doc.len() > max {
            return Err(Error::BodyTooLarge { limit: max });
        }
        let head = head_of(&headers);
        parts.push(Part {
            rack_name: rack_name::other_name(&head, name.as_deref()),
            name,
            kind: kind_of(&headers),
            head,
            range: start..doc.len(),
            transfer,
        });
    }
    Ok((doc, Layout { boundary, parts }))
}

type RawPart = (http::HeaderMap, Bytes);

/// The `name` of part `number` (from 1), read from its `Content-Disposition`
/// ([`disposition::parse`]).
///
/// RFC 7578 §4.2: every part has a `Content-Disposition`. multer reads a part whose
/// header block is empty as if its headers ran to the first blank line inside its
/// content, and drops what lies between; refusing such a part keeps the parts the
/// upstream parses the ones scanned here.
fn name_of(number: usize, headers: &http::HeaderMap) -> Result<Option<String>> {
    let Some(value) = headers.get(http::header::CONTENT_DISPOSITION) else {
        return Err(invalid("a part has no Content-Disposition"));
    };
    let d = disposition::parse(value.as_bytes()).map_err(|r| {
        invalid(&format!(
            "part {number}'s Content-Disposition {} (byte {} of the header value)",
            r.what, r.at
        ))
    })?;
    Ok(d.name)
}

/// Run multer over the in-memory body. Its stream is ready at once, so the future
/// completes on its first poll; one that does not is an error, never a wait.
fn read_parts(boundary: &str, body: &[u8], max: usize) -> Result<Vec<RawPart>> {
    let stream = futures_util::stream::iter([Ok::<Bytes, std::convert::Infallible>(
        Bytes::copy_from_slice(body),
    )]);
    let limit = u64::try_from(max).unwrap_or(u64::MAX);
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(limit.saturating_add(4096)));
    let mut mp = multer::Multipart::with_constraints(stream, boundary.to_owned(), constraints);
    let read = async move {
        let mut out = Vec::new();
        while let Some(field) = mp.next_field().await.map_err(multer_error)? {
            let headers = field.headers().clone();
            let data = field.bytes().await.map_err(multer_error)?;
            out.push((headers, data));
        }
        Ok::<_, Error>(out)
    };
    ready(read)?
}

fn multer_error(e: multer::Error) -> Error {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            invalid("it is too large")
        }
        multer::Error::IncompleteStream => invalid("it ends before its closing boundary"),
        multer::Error::IncompleteHeaders | multer::Error::ReadHeaderFailed(_) => {
            invalid("a part's headers are malformed")
        }
        multer::Error::IncompleteFieldData { .. } => invalid("a part is not terminated"),
        _ => invalid("it could not be parsed"),
    }
}

/// Poll a future that never waits to its end.
fn ready<F: Future>(fut: F) -> Result<F::Output> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..16 {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Ok(v);
        }
    }
    Err(Error::Internal(
        "the multipart parser waited on an in-memory body",
    ))
}

fn header<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Undo a part's `Content-Transfer-Encoding`.
fn undo_transfer(
    headers: &http::HeaderMap,
    data: &[u8],
    max: usize,
) -> Result<(Zeroizing<Vec<u8>>, Transfer)> {
    let cte = match headers.get("content-transfer-encoding") {
        None => String::new(),
        Some(v) => v
            .to_str()
            .map_err(|_| invalid("a Content-Transfer-Encoding is not ASCII"))?
            .trim()
            .to_ascii_lowercase(),
    };
    match cte.as_str() {
        "" | "7bit" | "8bit" | "binary" => Ok((Zeroizing::new(data.to_vec()), Transfer::Identity)),
        "base64" if data.iter().all(u8::is_ascii_whitespace) => Ok((
            Zeroizing::new(Vec::new()),
            Transfer::Base64(base64::Style {
                url_safe: false,
                padded: true,
                wrap: None,
                crlf: true,
                final_newline: false,
            }),
        )),
        "base64" => {
            let (d, style) = base64::decode(data, max)
                .map_err(|_| invalid("a part's base64 content is invalid"))?;
            Ok((d, Transfer::Base64(style)))
        }
        "quoted-printable" if !is_canonical_qp(data) => Err(invalid(
            "a part's quoted-printable content is not 7-bit lines ending in CRLF",
        )),
        "quoted-printable" => {
            let d = quoted_printable::decode(data, quoted_printable::ParseMode::Robust)
                .map_err(|_| invalid("a part's quoted-printable content is invalid"))?;
            Ok((Zeroizing::new(d), Transfer::QuotedPrintable))
        }
        _ => Err(invalid(
            "a part has an unsupported Content-Transfer-Encoding",
        )),
    }
}

/// Whether `data` is quoted-printable as RFC 2045 writes it: printable ASCII, tabs
/// and spaces, in lines that end in CRLF. Decoders read anything else their own way:
/// the `quoted_printable` crate drops other bytes and writes a bare line feed as CRLF
/// (one separator more between two digits: `4242\n  4242…` is four to it and three to
/// Python's `quopri`, which keeps both), so the guard would not read what a backend
/// does.
fn is_canonical_qp(data: &[u8]) -> bool {
    let mut prev = 0u8;
    for (i, &b) in data.iter().enumerate() {
        let ok = match b {
            b'\t' | b' '..=b'~' => true,
            b'\r' => data.get(i + 1) == Some(&b'\n'),
            b'\n' => prev == b'\r',
            _ => false,
        };
        if !ok {
            return false;
        }
        prev = b;
    }
    true
}

/// Which codec reads a part, by its Content-Type.
fn kind_of(headers: &http::HeaderMap) -> PartKind {
    let Some(ct) = header(headers, "content-type") else {
        return if headers.contains_key("content-type") {
            PartKind::Opaque
        } else {
            PartKind::Field
        };
    };
    if media::essence(ct) == "text/plain" {
        return PartKind::Field;
    }
    let essence = media::essence(ct);
    match media::classify(Some(ct)) {
        Ok(Media::Json) => PartKind::Json,
        Ok(Media::Form) => PartKind::Form,
        _ if media::is_json_spelling(&essence) => PartKind::Json,
        _ if media::is_bound_document(&essence) => PartKind::Document,
        _ => PartKind::Opaque,
    }
}

/// Report every part to the collector.
pub(crate) fn scan(doc: &[u8], layout: &Layout, c: &mut Collector<'_>) -> Result<()> {
    // Part names are a form's keys: all under one first key, they also read
    // without it ([`form::RootSkim`]).
    let mut skim = form::RootSkim::default();
    for part in &layout.parts {
        skim.key(part.name.as_deref().unwrap_or_default());
    }
    let mut buf = form::KeyBuf::default();
    buf.unwrap_root = skim.is_wrapper();
    for (number, part) in (1usize..).zip(&layout.parts) {
        if let Some(other) = &part.rack_name
            && c.names_rule(&buf.path(other))
        {
            return Err(invalid(&format!(
                "part {number} is named, as Rack reads its headers, as a field a rule names, but not by its Content-Disposition's name"
            )));
        }
        let name = part.name.as_deref().unwrap_or_default();
        let path = buf.path(name);
        let data = doc
            .get(part.range.clone())
            .ok_or(Error::Internal("part outside the document"))?;
        c.set_base(part.range.start);
        c.set_style(PathStyle::Form);
        // The headers (name, filename) go upstream as they are.
        c.unreplaceable(&path, &part.head);
        let whole = 0..data.len();
        if c.names_rule(&path) {
            rule_field(number, data, c, &path)?;
            continue;
        }
        match part.kind {
            PartKind::Field => match std::str::from_utf8(data) {
                Ok(text) => c.value(
                    &path,
                    super::collect::Slot {
                        span: whole,
                        kind: super::collect::SlotKind::Raw,
                    },
                    text,
                ),
                Err(_) => c.bytes(&path, whole, data),
            },
            PartKind::Json => {
                c.set_style(PathStyle::Json);
                json::scan(data, c)?;
            }
            PartKind::Form => form::scan(data, c)?,
            PartKind::Document if c.has_rules() => {
                return Err(Error::UnsupportedMedia(format!(
                    "part {number} is in a document type that backends bind as an object and this route's field rules cannot read (send it as JSON)"
                )));
            }
            PartKind::Document | PartKind::Opaque => c.bytes(&path, whole, data),
        }
    }
    c.set_base(0);
    c.set_style(PathStyle::Form);
    Ok(())
}

/// Part `number` (from 1), whose name a field rule names: its whole content is the
/// field's value, whatever its Content-Type. Content that is not UTF-8 is refused:
/// the rule could not read it, and the backend reads it as the field.
fn rule_field(
    number: usize,
    data: &[u8],
    c: &mut Collector<'_>,
    path: &dyn PathView,
) -> Result<()> {
    let text = std::str::from_utf8(data).map_err(|e| {
        invalid(&format!(
            "part {number} is a field a rule names, but its content is not UTF-8 (byte {} of the content)",
            e.valid_up_to()
        ))
    })?;
    let slot = super::collect::Slot {
        span: 0..data.len(),
        kind: super::collect::SlotKind::Raw,
    };
    c.value(path, slot, text);
    Ok(())
}

/// Write the body back: every part with its (possibly rewritten) decoded content,
/// `contents[i]` for `layout.parts[i]`, re-encoded with its transfer encoding.
pub(crate) fn emit(layout: &Layout, contents: &[Zeroizing<Vec<u8>>]) -> Result<Vec<u8>> {
    if contents.len() != layout.parts.len() {
        return Err(Error::Internal("one content per part is required"));
    }
    let size: usize = contents.iter().map(|c| c.len() * 2 + 256).sum();
    let mut out = Vec::with_capacity(size);
    for (part, content) in layout.parts.iter().zip(contents) {
        out.extend_from_slice(b"--");
        out.extend_from_slice(layout.boundary.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&part.head);
        out.extend_from_slice(b"\r\n");
        match &part.transfer {
            Transfer::Identity => out.extend_from_slice(content),
            Transfer::Base64(style) => out.extend_from_slice(&base64::encode(content, style)),
            // Without soft line breaks: one could fall inside a run of digits, and a
            // reader that does not undo the encoding would see a card-shaped piece
            // of a longer number (found by the multipart fuzz target). The content's
            // own line breaks stay.
            Transfer::QuotedPrintable => out.extend_from_slice(
                quoted_printable::encode_with_options(
                    content.as_slice(),
                    quoted_printable::Options::default()
                        .input_mode(quoted_printable::InputMode::Text)
                        .line_length_limit(usize::MAX),
                )
                .as_bytes(),
            ),
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--");
    out.extend_from_slice(layout.boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
    reads_back(layout, contents, &out)?;
    shows_nothing_new(layout, contents, &out)?;
    Ok(out)
}

/// Check that a reader who does not undo the transfer encodings sees no card-shaped
/// number in `out` that the parts' contents, heads or boundary do not hold. An
/// escape's hex digits next to a run of digits can make one: the `4` of `=D4`
/// leads the twelve digits after it into a 13-digit number (found by the multipart
/// fuzz target).
fn shows_nothing_new(layout: &Layout, contents: &[Zeroizing<Vec<u8>>], out: &[u8]) -> Result<()> {
    let mut held: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut hold = |text: &[u8]| {
        guard::scan_hits(text, |hit| held.push(Zeroizing::new(hit.digits().to_vec())));
    };
    hold(layout.boundary.as_bytes());
    for (part, content) in layout.parts.iter().zip(contents) {
        hold(&part.head);
        hold(content);
    }
    // Sorted and searched: one look through them per hit of `out` would cost their
    // product (quadratic in a body of many of our tokens).
    held.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
    held.dedup();
    let mut new = false;
    guard::scan_hits(out, |hit| {
        new |= held
            .binary_search_by(|h| h.as_slice().cmp(hit.digits()))
            .is_err();
    });
    if new {
        return Err(invalid(
            "a part, as written, would show a card number its content does not hold",
        ));
    }
    Ok(())
}

/// Check that `out` reads back as the parts it was written from: the same number of
/// parts, each with its header block and, once its transfer encoding is undone, its
/// content. A re-encoded content can hold the boundary where the original did not:
/// quoted-printable writes a line break before a `--boundary` that followed a bare
/// `\n`. An upstream would then read other parts, with other headers, than the ones
/// scanned here; such a body is refused.
/// Its raw header blocks must pass the same check as the request's
/// ([`part_heads::check`]): a rewritten content can join a `--boundary` inside it to
/// lines that now read as a second header block (found by the multipart fuzz target).
fn reads_back(layout: &Layout, contents: &[Zeroizing<Vec<u8>>], out: &[u8]) -> Result<()> {
    let differs = || invalid("a part would not read back as it is written");
    part_heads::check(out, &layout.boundary).map_err(|_| differs())?;
    let raw = read_parts(&layout.boundary, out, out.len()).map_err(|_| differs())?;
    if raw.len() != layout.parts.len() {
        return Err(differs());
    }
    for ((headers, data), (part, content)) in raw.iter().zip(layout.parts.iter().zip(contents)) {
        let (decoded, _) = undo_transfer(headers, data, out.len()).map_err(|_| differs())?;
        if decoded.as_slice() != content.as_slice() || head_of(headers) != part.head {
            return Err(differs());
        }
    }
    Ok(())
}

/// A part's header block as it is written back: `name: value\r\n` per header.
fn head_of(headers: &http::HeaderMap) -> Vec<u8> {
    let mut head = Vec::new();
    for (n, v) in headers {
        head.extend_from_slice(n.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head
}

#[cfg(test)]
#[path = "multipart_tests.rs"]
mod tests;
