//! Content-Type and Content-Encoding headers.

use std::io::{Read, Write};

use flate2::Compression;
use zeroize::Zeroizing;

use super::params;
use crate::error::{Error, Result};

/// What a Content-Type says the body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Media {
    Json,
    Form,
    /// `multipart/form-data` (its boundary is read by the multipart codec).
    Multipart,
    Other,
}

/// The media type of a Content-Type, lower-cased, without parameters.
pub(crate) fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Classify a Content-Type: `application/json`, `application/*+json`,
/// `application/x-www-form-urlencoded`, `multipart/form-data`, in any letter case,
/// with parameters. A JSON or form body in a charset other than UTF-8 (or its subset
/// US-ASCII) is refused ([`check_charset`]).
pub(crate) fn classify(content_type: Option<&str>) -> Result<Media> {
    let media = media_of(content_type);
    if matches!(media, Media::Json | Media::Form) {
        check_charset(content_type, Charsets::Utf8)?;
    }
    Ok(media)
}

/// Whether a media type (an [`essence`]) names JSON in a spelling a backend's JSON
/// reader takes besides `application/json` and `application/*+json`: ASP.NET Core
/// reads `text/json`, and `application/x-json` and `text/*+json` are sent for it.
pub(crate) fn is_json_spelling(essence: &str) -> bool {
    essence
        .split_once('/')
        .is_some_and(|(_, sub)| matches!(sub, "json" | "x-json") || sub.ends_with("+json"))
}

/// Whether a media type (an [`essence`]) names a document format that data binders
/// turn into an object and the codecs do not read: XML, YAML, CBOR, Smile,
/// MessagePack, Protocol Buffers, BSON, TOML, JSON sequences and JSON5, with or
/// without an `x-` prefix or as a structured-syntax suffix (`application/vnd.x+xml`).
/// Spring's `@RequestPart` picks a message converter by a part's Content-Type.
pub(crate) fn is_bound_document(essence: &str) -> bool {
    let Some((_, sub)) = essence.split_once('/') else {
        return false;
    };
    let base = sub.strip_prefix("x-").unwrap_or(sub);
    matches!(
        base,
        "xml"
            | "yaml"
            | "yml"
            | "cbor"
            | "smile"
            | "jackson-smile"
            | "msgpack"
            | "messagepack"
            | "protobuf"
            | "vnd.google.protobuf"
            | "bson"
            | "toml"
            | "ndjson"
            | "json-seq"
            | "json5"
    ) || ["+xml", "+yaml", "+cbor", "+protobuf"]
        .iter()
        .any(|suffix| sub.ends_with(suffix))
}

/// What a Content-Type's media type is, parameters aside.
pub(crate) fn media_of(content_type: Option<&str>) -> Media {
    let Some(ct) = content_type else {
        return Media::Other;
    };
    let essence = essence(ct);
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Media::Json
    } else if essence == "application/x-www-form-urlencoded" {
        Media::Form
    } else if essence == "multipart/form-data" {
        Media::Multipart
    } else {
        Media::Other
    }
}

/// The boundary of a multipart Content-Type, read so that every reader of the body
/// finds the same one; `None` when it names none in any form (no reader finds a part
/// then). `multer` and the streaming guard read a plain `boundary`; Python's `email`
/// also decodes an RFC 2231 one, and readers differ over which of two they take and
/// over a `;` inside quotes. Refused (415), so that no part goes unread:
///
/// - a boundary in extended or continued form (`boundary*=''XyZ`, `boundary*0="Xy"`),
///   alone or beside a plain one;
/// - a second `boundary`, in any case;
/// - parameters that cannot be read unambiguously ([`params::read`]), or in which a
///   reader splitting on every `;` finds a `boundary` the quote-aware reading does
///   not (`foo="a;boundary=b"`);
/// - a boundary that is empty, quoted with a backslash in it, ends in a space, or
///   holds a byte that is not visible ASCII or a space.
pub(crate) fn boundary(content_type: &str) -> Result<Option<String>> {
    let refuse = |why: &str| {
        Error::UnsupportedMedia(format!(
            "the multipart Content-Type's boundary cannot be read unambiguously: {why}"
        ))
    };
    let plain = |name: &[u8]| name.eq_ignore_ascii_case(b"boundary");
    // `boundary*`, `boundary*0`, `boundary*0*`: RFC 2231 forms.
    let extended = |name: &[u8]| {
        name.get(..b"boundary*".len())
            .is_some_and(|n| n.eq_ignore_ascii_case(b"boundary*"))
    };
    let mut found: Option<params::Value> = None;
    let mut second = false;
    let mut rfc2231 = false;
    params::read(
        content_type.as_bytes(),
        |b| params::is_tchar(b) || b == b'/',
        |name, value, _| {
            rfc2231 |= extended(name);
            if plain(name) {
                second |= found.is_some();
                found = Some(value);
            }
            Ok(())
        },
    )
    .map_err(|r| refuse(&format!("it {} (byte {})", r.what, r.at)))?;
    if rfc2231 {
        return Err(refuse("it is given in RFC 2231 form (boundary*)"));
    }
    if second {
        return Err(refuse("it is given more than once"));
    }
    let naive = content_type
        .split(';')
        .skip(1)
        .filter(|p| {
            p.split_once('=').is_some_and(|(n, _)| {
                let n = n.trim().as_bytes();
                plain(n) || extended(n)
            })
        })
        .count();
    if naive != usize::from(found.is_some()) {
        return Err(refuse("a ';' inside a quoted parameter hides or shows one"));
    }
    let Some(value) = found else {
        return Ok(None);
    };
    let text = value.text;
    let allowed = |b: &u8| b.is_ascii_graphic() || *b == b' ';
    if value.escaped || text.is_empty() || text.ends_with(b" ") || !text.iter().all(allowed) {
        return Err(refuse("it is empty or holds a byte a boundary may not"));
    }
    String::from_utf8(text)
        .map(Some)
        .map_err(|_| refuse("it is not ASCII"))
}

/// Which declared charsets a reader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Charsets {
    /// UTF-8 and its subset US-ASCII: what the JSON and form codecs read.
    Utf8,
    /// Also the single-byte ISO 8859 and Windows code pages. In these an ASCII byte
    /// is always that ASCII character, and the leak guard reads every other byte as
    /// these code pages do (a digit or separator in any of them is one:
    /// [`crate::rules::digits::single_byte_char`]), so it scans the digits a backend
    /// decoding the body with the declared charset reads. Not UTF-7, UTF-16/32, EBCDIC or the ISO 2022 and multi-byte East
    /// Asian charsets: there, bytes the guard reads as punctuation or letters decode
    /// to digits (`+ADQ-` is `4` in UTF-7, `#4` a full-width `4` in ISO-2022-JP).
    AsciiTransparent,
}

/// Refuse (415) a body whose Content-Type declares a charset the reader does not
/// accept: the upstream would decode its bytes into other characters than the ones
/// scanned. No charset parameter reads as the reader's default.
///
/// Every `;`-separated piece is looked at, the first too (a media type has no `=`, so
/// `charset=utf-16be` alone is a charset without a media type), and a `;` inside a
/// quoted value splits it as well: a reader that splits on every `;` sees no charset
/// that one honouring quotes does not. A parameter name is matched in any case; an
/// RFC 2231 `charset*` (Python's `email` decodes it) is never accepted, nor a value
/// whose quotes are not one pair around it.
pub(crate) fn check_charset(content_type: Option<&str>, accepted: Charsets) -> Result<()> {
    let Some(ct) = content_type else {
        return Ok(());
    };
    for param in ct.split(';') {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let name = name.trim();
        let extended = name
            .get(.."charset*".len())
            .is_some_and(|n| n.eq_ignore_ascii_case("charset*"));
        if !extended && !name.eq_ignore_ascii_case("charset") {
            continue;
        }
        let v = unquoted(value.trim()).to_ascii_lowercase();
        let utf8 = utf8_or_ascii(&v);
        let ok = !extended && (utf8 || (accepted == Charsets::AsciiTransparent && single_byte(&v)));
        if !ok {
            return Err(Error::UnsupportedMedia(match accepted {
                Charsets::Utf8 => "only UTF-8 request bodies are supported".into(),
                Charsets::AsciiTransparent => {
                    "the body's charset is not one the leak guard can read (use UTF-8, ASCII, ISO 8859 or a Windows code page)".into()
                }
            }));
        }
    }
    Ok(())
}

/// A parameter value without the one pair of quotes around it, if it has them; as it
/// is otherwise (a lone or inner quote stays, and no charset name holds one).
fn unquoted(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// UTF-8 or US-ASCII, by their common names (lower case).
fn utf8_or_ascii(charset: &str) -> bool {
    matches!(charset, "utf-8" | "utf8" | "us-ascii" | "ascii")
}

/// Whether a charset, in any case, is one [`Charsets::AsciiTransparent`] accepts:
/// its ASCII bytes are those characters, and no other byte is a digit.
pub(crate) fn ascii_transparent(charset: &str) -> bool {
    let v = charset.trim().to_ascii_lowercase();
    utf8_or_ascii(&v) || single_byte(&v)
}

/// Whether `text` declares an XML entity (`<!ENTITY`, in any case): what an entity
/// stands for is text an XML parser puts where it is referenced (`&e;`), which the
/// leak guard does not expand, so a body declaring one is refused
/// ([`entity_refusal`]). `before`: the last bytes of the text read before, for a
/// declaration cut between two chunks.
pub(crate) fn declares_xml_entity(before: &[u8], text: &[u8]) -> bool {
    const DECL: &[u8] = b"<!ENTITY";
    let declares = |t: &[u8]| {
        memchr::memchr_iter(b'<', t).any(|i| {
            t.get(i..i + DECL.len())
                .is_some_and(|d| d.eq_ignore_ascii_case(DECL))
        })
    };
    // A declaration cut between the two: only when the bytes before hold its `<`
    // (joined on the stack: this runs for every streamed chunk).
    let before = before
        .get(before.len().saturating_sub(DECL.len() - 1)..)
        .unwrap_or(before);
    if memchr::memchr(b'<', before).is_some() {
        let head = text.get(..DECL.len()).unwrap_or(text);
        let mut seam = [0u8; 2 * DECL.len()];
        let n = before.len() + head.len();
        if let Some(dst) = seam.get_mut(..before.len()) {
            dst.copy_from_slice(before);
        }
        if let Some(dst) = seam.get_mut(before.len()..n) {
            dst.copy_from_slice(head);
        }
        if declares(seam.get(..n).unwrap_or_default()) {
            return true;
        }
    }
    declares(text)
}

/// The refusal of a body that declares an XML entity ([`declares_xml_entity`]).
pub(crate) fn entity_refusal() -> Error {
    Error::UnsupportedMedia(
        "an XML body that declares an entity (<!ENTITY): the leak guard does not read what entities stand for".into(),
    )
}

/// An ISO 8859 or Windows single-byte code page, by its common names.
fn single_byte(charset: &str) -> bool {
    let numbered = |prefix: &str| {
        charset
            .strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    numbered("iso-8859-")
        || numbered("iso8859-")
        || numbered("iso_8859-")
        || numbered("latin")
        || numbered("windows-125")
        || numbered("cp125")
        || matches!(charset, "l1" | "iso-latin-1")
}

/// A Content-Encoding we can undo and redo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    /// `deflate` as the RFC means it: zlib-wrapped.
    Zlib,
    /// `deflate` as some clients send it: raw DEFLATE.
    RawDeflate,
}

/// Parse a Content-Encoding header. `None` means identity.
pub(crate) fn coding(header: Option<&str>) -> Result<Option<Coding>> {
    let Some(h) = header.map(str::trim) else {
        return Ok(None);
    };
    if h.contains(',') {
        return Err(Error::UnsupportedMedia(
            "multiple content codings are not supported".into(),
        ));
    }
    match h.to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(None),
        "gzip" | "x-gzip" => Ok(Some(Coding::Gzip)),
        "deflate" => Ok(Some(Coding::Zlib)),
        _ => Err(Error::UnsupportedMedia(
            "the content encoding is not supported (use gzip, deflate or identity)".into(),
        )),
    }
}

/// Undo a content coding, stopping as soon as the output passes `max` bytes (a
/// compression bomb costs at most `max + 1` bytes of memory). For `deflate`, the body
/// is read as zlib when it has a zlib header and as raw DEFLATE otherwise; the
/// returned coding says which.
///
/// The whole body must be compressed data: any byte after the end of the stream (for
/// gzip, after the last member) is an error, never forwarded unread.
pub(crate) fn decompress(
    coding: Coding,
    body: &[u8],
    max: usize,
) -> Result<(Zeroizing<Vec<u8>>, Coding)> {
    let coding = match coding {
        Coding::Gzip => Coding::Gzip,
        Coding::Zlib | Coding::RawDeflate if zlib_header(body) => Coding::Zlib,
        Coding::Zlib | Coding::RawDeflate => Coding::RawDeflate,
    };
    let invalid = || {
        Error::InvalidBody(match coding {
            Coding::Gzip => "the body is not valid gzip".into(),
            _ => "the body is not valid deflate".into(),
        })
    };
    let mut out = Zeroizing::new(Vec::new());
    let mut input: &[u8] = body;
    let trailing =
        || Error::InvalidBody("the body has data after the end of its compressed stream".into());
    // One stream, or for gzip one member per turn, until the input is used up.
    for member in 0usize.. {
        let left = max.saturating_sub(out.len());
        let limit = u64::try_from(left).unwrap_or(u64::MAX).saturating_add(1);
        let (res, rest) = match coding {
            Coding::Gzip => {
                let mut d = flate2::bufread::GzDecoder::new(input);
                let res = d.by_ref().take(limit).read_to_end(&mut out);
                (res, d.into_inner())
            }
            Coding::Zlib => {
                let mut d = flate2::bufread::ZlibDecoder::new(input);
                let res = d.by_ref().take(limit).read_to_end(&mut out);
                (res, d.into_inner())
            }
            Coding::RawDeflate => {
                let mut d = flate2::bufread::DeflateDecoder::new(input);
                let res = d.by_ref().take(limit).read_to_end(&mut out);
                (res, d.into_inner())
            }
        };
        if out.len() > max {
            return Err(Error::BodyTooLarge { limit: max });
        }
        res.map_err(|_| if member > 0 { trailing() } else { invalid() })?;
        if rest.is_empty() {
            return Ok((out, coding));
        }
        if coding != Coding::Gzip || rest.len() == input.len() {
            return Err(trailing());
        }
        input = rest;
    }
    Err(Error::Internal("decompression ended without a result"))
}

/// Redo a content coding.
pub(crate) fn compress(coding: Coding, data: &[u8]) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| Error::io("compressing the rewritten body", e);
    let level = Compression::default();
    match coding {
        Coding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)
        }
        Coding::Zlib => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)
        }
        Coding::RawDeflate => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)
        }
    }
}

/// A zlib stream header: CM = 8 (deflate), CINFO ≤ 7, and the check bits.
fn zlib_header(body: &[u8]) -> bool {
    match (body.first(), body.get(1)) {
        (Some(&cmf), Some(&flg)) => {
            cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && (u16::from(cmf) * 256 + u16::from(flg)).is_multiple_of(31)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn an_entity_declaration_is_found_wherever_chunks_cut_it() {
        let body = b"<?xml?><!DOCTYPE n [<!entity g \"4242\">]><n>&g;</n>";
        assert!(super::declares_xml_entity(b"", body));
        for cut in 0..body.len() {
            let (a, b) = body.split_at(cut);
            // The streaming guard keeps the last 7 bytes of what came before.
            let kept = &a[a.len().saturating_sub(7)..];
            assert!(
                super::declares_xml_entity(b"", a) || super::declares_xml_entity(kept, b),
                "cut at {cut}"
            );
        }
        assert!(!super::declares_xml_entity(
            b"<n",
            b">4242</n><!-- ENTITY -->"
        ));
        assert!(!super::declares_xml_entity(b"", b"{\"a\":\"<b>\"}"));
    }

    use super::*;

    #[test]
    fn a_boundary_every_reader_finds_is_read() {
        let ct = |params: &str| format!("multipart/form-data{params}");
        for (params, want) in [
            ("; boundary=XyZ", Some("XyZ")),
            ("; BOUNDARY=\"a b\"; charset=utf-8", Some("a b")),
            (
                ";boundary = ----WebKitFormBoundary7MA4YWxk",
                Some("----WebKitFormBoundary7MA4YWxk"),
            ),
            ("; foo=\"a b\"; boundary==_Part_1.2", Some("=_Part_1.2")),
            ("", None),
            ("; charset=utf-8", None),
        ] {
            assert_eq!(boundary(&ct(params)).unwrap().as_deref(), want, "{params}");
        }
    }

    #[test]
    fn a_boundary_readers_find_differently_is_refused() {
        for params in [
            "; boundary*=''XyZ",
            "; boundary*=us-ascii'en'XyZ",
            "; boundary*0=\"Xy\"; boundary*1=\"Z\"",
            "; Boundary*0*=''Xy; boundary*1=Z",
            "; boundary=XyZ; boundary*=''Other",
            "; boundary=XyZ; Boundary=Other",
            "; foo=\"a;boundary=Other\"; boundary=XyZ",
            "; boundary=\"XyZ",
            "; boundary=\"X\\yZ\"",
            "; boundary=\"\"",
            "; boundary=\"XyZ \"",
            "; boundary=Xy\u{e9}Z",
            "; boundary",
            "; boundary=XyZ junk",
        ] {
            let got = boundary(&format!("multipart/form-data{params}"));
            assert!(
                matches!(got, Err(Error::UnsupportedMedia(_))),
                "{params}: {got:?}"
            );
        }
    }

    #[test]
    fn json_spellings_and_bound_documents() {
        for e in [
            "text/json",
            "application/x-json",
            "text/vnd.a+json",
            "application/json",
        ] {
            assert!(is_json_spelling(e), "{e}");
        }
        for e in ["application/jsonp", "text/plain", "json"] {
            assert!(!is_json_spelling(e), "{e}");
        }
        for e in [
            "application/xml",
            "text/xml",
            "application/vnd.a+xml",
            "application/x-yaml",
            "application/cbor",
            "application/x-protobuf",
            "application/x-msgpack",
        ] {
            assert!(is_bound_document(e), "{e}");
        }
        for e in [
            "image/png",
            "application/pdf",
            "text/csv",
            "application/octet-stream",
        ] {
            assert!(!is_bound_document(e), "{e}");
        }
    }
}
