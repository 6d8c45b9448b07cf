//! Body codecs: JSON, form, base64 "sensitive params", query strings.
//!
//! The proxy calls [`extract`] with the parts of a request and the route's
//! [`RouteRules`]; it gets back an [`Extraction`] holding the decoded document(s)
//! and the [`Finding`]s (rule matches and leak-guard hits, with their values in
//! [`Plaintext`]). It tokenizes what it wants and calls [`Extraction::apply`] with one
//! optional replacement per finding; the [`Rewritten`] request differs from the
//! original only in the replaced values (and in the re-encoding of the layers around
//! them: base64, gzip/deflate).
//!
//! Layers, outermost first: Content-Encoding (gzip, deflate; nothing may follow the
//! compressed stream) → base64 (for `BodyKind::Base64`: a JSON object, a UTF-8 BOM
//! allowed, or a form; anything else is refused) → JSON, form, multipart/form-data
//! (each part through its own codec, see [`multipart`]), or (on a route with no body
//! rules and a content type that is none of these) raw text for the leak guard.
//!
//! Whatever no codec reads — a body that is not UTF-8, a binary part — is still
//! scanned at the byte level ([`bytes_scan`]: ASCII and UTF-16 digits, `\u` escapes,
//! character references). A card-shaped hit that cannot be replaced in place refuses
//! the request with `card_number_detected`.

pub mod base64;
mod bytes_scan;
mod collect;
pub mod cookie;
mod disposition;
mod encoded_params;
pub mod form;
pub mod json;
mod media;
mod multipart;
mod params;
mod part_heads;
mod pieces;
pub mod query;
mod rack_name;
pub mod shown;
mod wide;
mod xml_decl;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_readings;
#[cfg(test)]
mod tests_wide;

use std::ops::Range;

use zeroize::Zeroizing;

use collect::{Collector, Found, OwnedElem, PathStyle, PathView, Place, Slot, SlotKind};

use crate::error::{Error, Result};
use crate::rules::{BodyKind, FieldRule, LeakPolicy, Location, PathElem, RouteRules};
use crate::sensitive::{DataClass, Plaintext};
pub(crate) use media::Coding;
pub(crate) use media::{declares_xml_entity, entity_refusal};
pub(crate) use part_heads::Watch as PartHeads;
#[cfg(any(fuzzing, test))]
pub(crate) use part_heads::watch_agrees;
pub(crate) use wide::{Watch as WidthWatch, refusal as wide_refusal};
pub(crate) use xml_decl::{
    declares_xml_encoding, refusal as encoding_refusal, seam as xml_decl_seam,
};

/// The parts of a request the body pipeline reads.
pub struct RequestParts<'a> {
    pub content_type: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    pub body: &'a [u8],
    /// The limit for the decoded (decompressed, base64-decoded) body, in bytes.
    pub max_body: usize,
}

/// Why a value was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindingKind {
    /// A field rule (its index in `RouteRules::fields`) matched the value.
    Rule { rule: usize },
    /// The leak guard found a card-number-shaped substring no rule claims.
    Leak,
    /// The leak guard found a card number it cannot replace in place (digits of
    /// another script, a number in exponent form, inside a nested encoding). The
    /// value holds its ASCII digits. It cannot be tokenized: the request is refused
    /// unless the digits are a token of this vault.
    Hidden,
}

/// One sensitive value in a request. Deliberately not `Debug`.
pub struct Finding {
    pub kind: FindingKind,
    /// The rule's class; `Pan` for leak findings.
    pub class: DataClass,
    /// The value exactly as found (decoded from its JSON or form encoding).
    pub value: Plaintext,
    /// Where it is, e.g. `body:$.cardNumber` or `query:card` — never a value.
    pub location: String,
    /// For a rule with `scope`: the index (in the findings) of the finding at the
    /// scope path, if there is one.
    pub scope: Option<usize>,
}

/// The request's decoded document(s) and the findings in them.
pub struct Extraction {
    findings: Vec<Finding>,
    places: Vec<(Target, Place)>,
    body: Option<BodyDoc>,
    query: Option<Doc>,
}

/// The request after [`Extraction::apply`]. `None` means unchanged: forward the
/// original bytes.
#[derive(Debug, Default)]
pub struct Rewritten {
    pub body: Option<bytes::Bytes>,
    pub query: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Body,
    Query,
}

/// A decoded document with the slots that hold findings.
struct Doc {
    text: Zeroizing<Vec<u8>>,
    slots: Vec<Slot>,
}

/// The body's document and the layers around it.
struct BodyDoc {
    doc: Doc,
    base64: Option<base64::Style>,
    coding: Option<media::Coding>,
    /// For a multipart body: its parts (the document is their decoded contents).
    multipart: Option<multipart::Layout>,
}

/// Which document codec reads a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Codec {
    Json,
    Form,
    Multipart,
    /// Raw text (or bytes), for the leak guard only.
    Raw,
}

/// For a streamed body the leak guard scans as bytes: refuse (415) a Content-Type,
/// in any of the request's Content-Type headers (`content_types`), declaring a
/// charset in which the upstream would decode other characters than the bytes
/// scanned ([`media::Charsets::AsciiTransparent`]).
pub fn check_streamed_charset(
    content_types: &http::header::GetAll<'_, http::HeaderValue>,
) -> Result<()> {
    for v in content_types {
        // No parameter, no charset: the common case, passed over at once (a bare
        // `charset=…` with no media type has an `=`).
        if v.as_bytes().is_ascii() && memchr::memchr2(b';', b'=', v.as_bytes()).is_none() {
            continue;
        }
        let ct = v
            .to_str()
            .map_err(|_| Error::UnsupportedMedia("the Content-Type header is not ASCII".into()))?;
        media::check_charset(Some(ct), media::Charsets::AsciiTransparent)?;
    }
    Ok(())
}

/// The content coding of a body the streaming guard would read as sent: `None` for
/// none (or `identity`). The guard reads bytes, so a compressed body is read whole and
/// scanned decompressed instead ([`decompress_streamed`]). A coding the proxy cannot
/// undo, or more than one, is refused (415): what the upstream decodes would be read
/// by no one.
pub(crate) fn streamed_coding(headers: &http::HeaderMap) -> Result<Option<media::Coding>> {
    let mut values = headers.get_all(http::header::CONTENT_ENCODING).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::UnsupportedMedia(
            "multiple content codings are not supported".into(),
        ));
    }
    let value = first
        .to_str()
        .map_err(|_| Error::UnsupportedMedia("the Content-Encoding header is not ASCII".into()))?;
    media::coding(Some(value))
}

/// A body in `coding`, decompressed under `max` bytes (413 past it; 400 for a body
/// that is not what its coding says, which a lenient upstream might still decode).
pub(crate) fn decompress_streamed(
    coding: media::Coding,
    body: &[u8],
    max: usize,
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    media::decompress(coding, body, max).map(|(d, _)| d)
}

/// A body compressed again in `coding`, after a rewrite of its decompressed bytes.
pub(crate) fn compress_streamed(coding: media::Coding, body: &[u8]) -> Result<Vec<u8>> {
    media::compress(coding, body)
}

/// The Content-Type to forward instead of the client's, if any. A route that reads
/// every body as JSON (`body = "json"`, as the JSON profiles do, since documented
/// clients send JSON as `curl -d` forms) forwards a body declared as a form or as
/// multipart as `application/json`: a backend choosing its parser by the header would
/// otherwise read a second document in the same bytes (`&cardCode=…` inside a JSON
/// string), one no rule looked at.
pub fn forwarded_content_type(
    rules: &RouteRules,
    content_type: Option<&str>,
) -> Option<http::HeaderValue> {
    let declared_other = matches!(
        media::media_of(content_type),
        media::Media::Form | media::Media::Multipart
    );
    (rules.body == BodyKind::Json && declared_other)
        .then(|| http::HeaderValue::from_static("application/json"))
}

/// Decode a request and find its sensitive values.
pub fn extract(rules: &RouteRules, req: RequestParts<'_>) -> Result<Extraction> {
    let guard = rules.guard_on();
    let mut found: Vec<(Target, Found)> = Vec::new();
    let mut body = None;
    if (guard || rules.has_rules_at(Location::Body))
        && !req.body.is_empty()
        && let Some((f, doc)) = extract_body(rules, &req)?
    {
        found.extend(f.into_iter().map(|f| (Target::Body, f)));
        body = Some(doc);
    }
    let mut query = None;
    if let Some(q) = req.query.filter(|q| !q.is_empty())
        && rules.has_rules_at(Location::Body)
    {
        body_fields_in_query(rules, q)?;
    }
    if !req.body.is_empty() && rules.has_rules_at(Location::Query) {
        query_fields_in_body(rules, &req)?;
    }
    if let Some(q) = req.query.filter(|q| !q.is_empty())
        && (guard || rules.has_rules_at(Location::Query))
    {
        let mut c = Collector::new(rules, Location::Query, "query:", PathStyle::Form);
        query::scan(q, &mut c).map_err(query_error)?;
        let (f, slots) = c.finish(q.as_bytes(), decode_slot).map_err(query_error)?;
        if !f.is_empty() {
            found.extend(f.into_iter().map(|f| (Target::Query, f)));
            query = Some(Doc {
                text: Zeroizing::new(q.as_bytes().to_vec()),
                slots,
            });
        }
    }
    let scopes = resolve_scopes(rules, &found);
    let mut findings = Vec::with_capacity(found.len());
    let mut places = Vec::with_capacity(found.len());
    for ((target, f), scope) in found.into_iter().zip(scopes) {
        let mut finding = f.finding;
        finding.scope = scope;
        findings.push(finding);
        places.push((target, f.place));
    }
    Ok(Extraction {
        findings,
        places,
        body,
        query,
    })
}

/// Refuse a request that sends, in its query string, a field the route reads in the
/// body (`?cardCode=218` on a route with a `cardCode` body rule): frameworks that
/// merge query and body parameters (Rails `params`, PHP `$_REQUEST`, Spring model
/// binding) would read it as that field, raw. The body rules' paths are matched
/// against the query's keys as form keys, whatever their `when` conditions (those
/// read the body); an empty value passes.
fn body_fields_in_query(rules: &RouteRules, q: &str) -> Result<()> {
    let as_query = moved(rules, Location::Body, Location::Query);
    let mut c = Collector::new(&as_query, Location::Query, "query:", PathStyle::Form);
    query::scan(q, &mut c).map_err(query_error)?;
    let (found, _) = c.finish(q.as_bytes(), decode_slot).map_err(query_error)?;
    match found.iter().find(|f| !f.finding.value.expose().is_empty()) {
        Some(f) => Err(Error::AmbiguousSensitiveField(format!(
            "{}: this route reads that field in the body, not in the query string",
            f.finding.location
        ))),
        None => Ok(()),
    }
}

/// Refuse a request that sends, in its body, a field the route reads in the query
/// string (`cvv=218` in a form body on a route with a `cvv` query rule): the
/// frameworks that merge query and body parameters read it as that field, raw, as
/// [`body_fields_in_query`] says for the other way round. The body is read as the
/// route reads bodies (a JSON, form or multipart one; a body of another type is no
/// parameters to them), the query rules' paths matched as body paths whatever their
/// conditions; an empty value passes.
fn query_fields_in_body(rules: &RouteRules, req: &RequestParts<'_>) -> Result<()> {
    if rules.body == BodyKind::Auto && media::media_of(req.content_type) == media::Media::Other {
        return Ok(());
    }
    let as_body = moved(rules, Location::Query, Location::Body);
    let Some((found, _)) = extract_body(&as_body, req)? else {
        return Ok(());
    };
    match found.iter().find(|f| !f.finding.value.expose().is_empty()) {
        Some(f) => Err(Error::AmbiguousSensitiveField(format!(
            "{}: this route reads that field in the query string, not in the body",
            f.finding.location
        ))),
        None => Ok(()),
    }
}

/// Whether `rule` reads its field at `location` and no rule reads the same path at
/// the other (a field a route reads in both places is its own in either).
/// The rules a route has only at `from`, read at `to` instead, whatever their `when`
/// conditions, with no leak guard: where a framework merging query and body
/// parameters would find those fields.
fn moved(rules: &RouteRules, from: Location, to: Location) -> RouteRules {
    RouteRules {
        body: rules.body,
        fields: rules
            .fields
            .iter()
            .filter(|f| only_at(rules, f, from))
            .map(|f| FieldRule {
                location: to,
                when: None,
                scope: None,
                ..f.clone()
            })
            .collect(),
        leak_guard: LeakPolicy::Allow,
        keys: rules.keys,
        lists_alone: rules.lists_alone,
    }
}

fn only_at(rules: &RouteRules, rule: &FieldRule, location: Location) -> bool {
    rule.location == location
        && !rules
            .fields
            .iter()
            .any(|other| other.location != location && other.path == rule.path)
}

fn query_error(e: Error) -> Error {
    match e {
        Error::InvalidBody(m) => {
            Error::BadRequest(format!("the query string could not be parsed: {m}"))
        }
        e => e,
    }
}

/// Decode the body's layers and scan its document. `None` when there is nothing to
/// find (a binary body on a leak-guard-only route, or no findings).
fn extract_body(
    rules: &RouteRules,
    req: &RequestParts<'_>,
) -> Result<Option<(Vec<Found>, BodyDoc)>> {
    let has_rules = rules.has_rules_at(Location::Body);
    let (mut codec, base64) = match rules.body {
        BodyKind::Json => (Codec::Json, false),
        BodyKind::Form => (Codec::Form, false),
        BodyKind::Base64 => (Codec::Json, true),
        BodyKind::Auto => match media::classify(req.content_type)? {
            media::Media::Json => (Codec::Json, false),
            media::Media::Form => (Codec::Form, false),
            media::Media::Multipart => (Codec::Multipart, false),
            media::Media::Other if has_rules => {
                return Err(Error::UnsupportedMedia(
                    "this route reads JSON or form bodies; the content type is missing or is neither"
                        .into(),
                ));
            }
            media::Media::Other => (Codec::Raw, false),
        },
    };
    // Whatever codec the route forces, the upstream may decode the bytes with the
    // charset the request declares: refuse one that would turn them into other
    // characters than the ones read here.
    let charsets = match (codec, base64) {
        (Codec::Json | Codec::Form, false) => media::Charsets::Utf8,
        _ => media::Charsets::AsciiTransparent,
    };
    media::check_charset(req.content_type, charsets)?;
    let max = req.max_body;
    let coding = media::coding(req.content_encoding)?;
    let (decompressed, coding) = match coding {
        None if req.body.len() > max => return Err(Error::BodyTooLarge { limit: max }),
        None => (None, None),
        Some(c) => {
            let (d, c) = media::decompress(c, req.body, max)?;
            // A body with nothing to rewrite goes upstream as it came, coding and all.
            if rules.guard_on() && bytes_scan::only_in_coded(req.body, &d) {
                return Err(Error::LeakRejected("body".into()));
            }
            (Some(d), Some(c))
        }
    };
    let layer: &[u8] = decompressed.as_ref().map_or(req.body, |d| d.as_slice());
    let (unwrapped, style) = if base64 {
        let (d, s) = base64::decode(layer, max)?;
        codec = wrapped_codec(&d)?;
        (Some(d), Some(s))
    } else {
        (None, None)
    };
    // A form or multipart body that is also a JSON document holds a second set of
    // fields, which the rules below never see, for a backend that decodes JSON
    // whatever the Content-Type (`{"cvv":"218","a":"&card_number=…"}` is a form with a
    // card and, to Go's `json.NewDecoder`, a CVV in clear; a multipart body's
    // preamble is forwarded as it came).
    if has_rules
        && !base64
        && matches!(codec, Codec::Form | Codec::Multipart)
        && json::opens_document(layer)
    {
        return Err(Error::UnsupportedMedia(
            "a form or multipart body that opens a JSON document is ambiguous; send JSON as application/json".into(),
        ));
    }
    if codec != Codec::Multipart {
        part_heads::check_declared(req.content_type, layer)?;
    }
    let text: &[u8] = unwrapped.as_ref().map_or(layer, |d| d.as_slice());
    if rules.guard_on() && media::declares_xml_entity(&[], text) {
        return Err(media::entity_refusal());
    }
    if rules.guard_on() && xml_decl::declares_xml_encoding(text) {
        return Err(xml_decl::refusal());
    }
    let style_of = if matches!(codec, Codec::Form | Codec::Multipart) {
        PathStyle::Form
    } else {
        PathStyle::Json
    };
    let mut c = Collector::new(rules, Location::Body, "body:", style_of);
    let mut parts = None;
    match codec {
        Codec::Json => json::scan(text, &mut c)?,
        Codec::Form => form::scan(text, &mut c)?,
        Codec::Multipart => {
            let ct = req.content_type.unwrap_or_default();
            let (doc, layout) = multipart::split(ct, text, max)?;
            multipart::scan(&doc, &layout, &mut c)?;
            parts = Some((doc, layout));
        }
        Codec::Raw => match std::str::from_utf8(text) {
            Ok(s) => {
                let slot = Slot {
                    span: 0..text.len(),
                    kind: SlotKind::Raw,
                };
                c.value(&RootPath, slot, s);
            }
            // Not UTF-8: scanned at the byte level.
            Err(_) => c.bytes(&RootPath, 0..text.len(), text),
        },
    }
    let doc_text: &[u8] = parts.as_ref().map_or(text, |(d, _)| d.as_slice());
    let (found, slots) = c.finish(doc_text, decode_slot)?;
    if found.is_empty() {
        // A multipart body with nothing found goes upstream as it came: nothing in
        // it (a preamble, an epilogue, anything the parser read differently) may
        // look like a card either.
        if parts.is_some() && rules.guard_on() && !bytes_scan::scan(text).is_empty() {
            return Err(Error::LeakRejected("body".into()));
        }
        return Ok(None);
    }
    let (text, multipart) = match (parts, unwrapped, decompressed) {
        (Some((d, layout)), _, _) => (d, Some(layout)),
        (None, Some(u), _) => (u, None),
        (None, None, Some(d)) => (d, None),
        (None, None, None) => (Zeroizing::new(req.body.to_vec()), None),
    };
    Ok(Some((
        found,
        BodyDoc {
            doc: Doc { text, slots },
            base64: style,
            coding,
            multipart,
        },
    )))
}

/// The codec for a base64 body's content: a JSON object (a UTF-8 byte order mark
/// may open it) or a form. Anything else — a JSON string, an array, a number, text —
/// is refused rather than guessed at.
fn wrapped_codec(decoded: &[u8]) -> Result<Codec> {
    let after_bom = decoded.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(decoded);
    match after_bom.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(Codec::Json),
        _ if form::looks_like_form(decoded) => Ok(Codec::Form),
        _ => Err(Error::InvalidBody(
            "the decoded body is neither a JSON object nor a form (invalid-encoded-params)".into(),
        )),
    }
}

/// The empty path of a document's root.
struct RootPath;

impl PathView for RootPath {
    fn len(&self) -> usize {
        0
    }
    fn get(&self, _: usize) -> Option<PathElem<'_>> {
        None
    }
}

/// The decoded text of a slot.
fn decode_slot(text: &[u8], slot: &Slot) -> Result<Zeroizing<String>> {
    match slot.kind {
        SlotKind::FormPart => form::decode_slot(text, slot),
        SlotKind::JsonString | SlotKind::JsonNumber | SlotKind::Raw => {
            json::decode_slot(text, slot)
        }
    }
}

/// For each rule finding whose rule has a `scope`, the rule finding at the scope path:
/// among several, the one sharing the longest path prefix (same document first),
/// then the earliest.
fn resolve_scopes(rules: &RouteRules, found: &[(Target, Found)]) -> Vec<Option<usize>> {
    found
        .iter()
        .enumerate()
        .map(|(i, (target, f))| {
            let FindingKind::Rule { rule } = f.finding.kind else {
                return None;
            };
            let scope = rules.scope(rule)?;
            found
                .iter()
                .enumerate()
                .filter(|(j, (_, g))| {
                    *j != i && matches!(g.finding.kind, FindingKind::Rule { .. }) && {
                        let elems: Vec<PathElem<'_>> =
                            g.path.iter().map(OwnedElem::as_elem).collect();
                        let keys_only: Vec<PathElem<'_>> = elems
                            .iter()
                            .filter(|e| matches!(e, PathElem::Key(_)))
                            .copied()
                            .collect();
                        scope.matches_shape(rules.keys, &elems, &keys_only)
                    }
                })
                .map(|(j, (t, g))| {
                    let common = f
                        .path
                        .iter()
                        .zip(&g.path)
                        .take_while(|(a, b)| a.as_elem() == b.as_elem())
                        .count();
                    (j, (t == target, common))
                })
                .rev()
                .max_by_key(|(_, key)| *key)
                .map(|(j, _)| j)
        })
        .collect()
}

// === impl Extraction ===

/// One replacement to make in a document.
struct Edit<'a> {
    slot: usize,
    sub: Option<Range<usize>>,
    token: &'a str,
}

impl Extraction {
    /// The findings, in document order (body first, then query).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Rewrite the request: `replacements[i]` is for `findings()[i]`; `Some(token)`
    /// replaces the value (for a leak finding, just the matched substring), `None`
    /// keeps it. Parts with no replacement come back as `None` (unchanged), except a
    /// multipart body with findings: it is always emitted anew from its parts, so
    /// the upstream gets exactly what was scanned.
    pub fn apply(self, replacements: &[Option<String>]) -> Result<Rewritten> {
        self.apply_with(replacements)
    }

    /// [`apply`](Self::apply) with replacements held in any string type, such as the
    /// zeroizing buffers of revealed values.
    pub fn apply_with<S: AsRef<str>>(self, replacements: &[Option<S>]) -> Result<Rewritten> {
        self.rewrite_with(replacements, true)
    }

    /// [`apply`](Self::apply) without re-encoding the body's outer layers (base64,
    /// gzip/deflate): the document as the codec read it, for people to look at.
    pub fn preview(self, replacements: &[Option<String>]) -> Result<Rewritten> {
        self.rewrite_with(replacements, false)
    }

    /// The body's outer layers, outermost first (`gzip`, `base64`), as [`preview`]
    /// leaves them off.
    ///
    /// [`preview`]: Self::preview
    pub fn body_layers(&self) -> Vec<&'static str> {
        let Some(b) = &self.body else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(c) = b.coding {
            out.push(match c {
                media::Coding::Gzip => "gzip",
                media::Coding::Zlib | media::Coding::RawDeflate => "deflate",
            });
        }
        if b.base64.is_some() {
            out.push("base64");
        }
        out
    }

    fn rewrite_with<S: AsRef<str>>(
        self,
        replacements: &[Option<S>],
        layers: bool,
    ) -> Result<Rewritten> {
        if replacements.len() != self.findings.len() {
            return Err(Error::Internal("one replacement per finding is required"));
        }
        let mut body_edits = Vec::new();
        let mut query_edits = Vec::new();
        for ((target, place), rep) in self.places.iter().zip(replacements) {
            let Some(token) = rep else { continue };
            let edit = Edit {
                slot: place.slot,
                sub: place.sub.clone(),
                token: token.as_ref(),
            };
            match target {
                Target::Body => body_edits.push(edit),
                Target::Query => query_edits.push(edit),
            }
        }
        let mut out = Rewritten::default();
        if let Some(b) = &self.body
            && let Some(layout) = &b.multipart
        {
            body_edits.sort_by_key(|e| (e.slot, e.sub.as_ref().map_or(0, |r| r.start)));
            let mut contents = Vec::with_capacity(layout.parts.len());
            for part in &layout.parts {
                let mut edits: Vec<Edit<'_>> = body_edits
                    .iter()
                    .filter(|e| {
                        b.doc.slots.get(e.slot).is_some_and(|s| {
                            part.range.start <= s.span.start && s.span.end <= part.range.end
                        })
                    })
                    .map(|e| Edit {
                        slot: e.slot,
                        sub: e.sub.clone(),
                        token: e.token,
                    })
                    .collect();
                contents.push(rewrite_range(&b.doc, &mut edits, part.range.clone())?);
            }
            let bytes = multipart::emit(layout, &contents)?;
            let bytes = match b.coding {
                Some(c) if layers => media::compress(c, &bytes)?,
                _ => bytes,
            };
            out.body = Some(bytes::Bytes::from(bytes));
            body_edits.clear();
        }
        if let (Some(b), false) = (&self.body, body_edits.is_empty()) {
            let mut bytes = rewrite(&b.doc, &mut body_edits)?;
            if let (Some(style), true) = (&b.base64, layers) {
                bytes = Zeroizing::new(base64::encode(&bytes, style));
            }
            let bytes = match b.coding {
                Some(c) if layers => media::compress(c, &bytes)?,
                _ => std::mem::take(&mut *bytes),
            };
            out.body = Some(bytes::Bytes::from(bytes));
        }
        if let (Some(q), false) = (&self.query, query_edits.is_empty()) {
            let mut bytes = rewrite(q, &mut query_edits)?;
            let s = String::from_utf8(std::mem::take(&mut *bytes))
                .map_err(|_| Error::Internal("rewritten query is not UTF-8"))?;
            out.query = Some(s);
        }
        Ok(out)
    }
}

/// Rebuild a document with the edits made: every byte outside an edited slot is
/// copied as it was.
fn rewrite(doc: &Doc, edits: &mut [Edit<'_>]) -> Result<Zeroizing<Vec<u8>>> {
    rewrite_range(doc, edits, 0..doc.text.len())
}

/// [`rewrite`] for the bytes of `range` only (one part of a multipart document);
/// every edit's slot must lie inside it.
fn rewrite_range(
    doc: &Doc,
    edits: &mut [Edit<'_>],
    range: Range<usize>,
) -> Result<Zeroizing<Vec<u8>>> {
    edits.sort_by_key(|e| (e.slot, e.sub.as_ref().map_or(0, |r| r.start)));
    let text = &doc.text;
    let mut out = Zeroizing::new(Vec::with_capacity(range.len() + 64));
    let mut at = range.start;
    for group in edits.chunk_by(|a, b| a.slot == b.slot) {
        let Some(first) = group.first() else { continue };
        let slot = doc
            .slots
            .get(first.slot)
            .ok_or(Error::Internal("finding without a slot"))?;
        let before = text
            .get(at..slot.span.start)
            .ok_or(Error::Internal("slots out of order"))?;
        out.extend_from_slice(before);
        let value = match group.iter().find(|e| e.sub.is_none()) {
            Some(whole) => Zeroizing::new(whole.token.to_owned()),
            None => {
                let decoded = decode_slot(text, slot)?;
                let subs: Vec<(Range<usize>, &str)> = group
                    .iter()
                    .filter_map(|e| Some((e.sub.clone()?, e.token)))
                    .collect();
                collect::splice(&decoded, &subs)?
            }
        };
        match slot.kind {
            SlotKind::JsonString | SlotKind::JsonNumber => {
                json::encode_slot(&mut out, slot.kind, &value)
            }
            SlotKind::FormPart => form::encode_component(&mut out, &value),
            SlotKind::Raw => out.extend_from_slice(value.as_bytes()),
        }
        at = slot.span.end;
    }
    out.extend_from_slice(
        text.get(at..range.end)
            .ok_or(Error::Internal("slot past the end"))?,
    );
    Ok(out)
}
