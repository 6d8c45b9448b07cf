//! The header blocks of a multipart body as the backends' parsers read them, checked
//! before the parts are split.
//!
//! `multer` keeps one value per header name in a part (the last), while busboy and
//! Python's `email` read the first; a part with two `Content-Disposition`,
//! `Content-Type` or `Content-Transfer-Encoding` headers would be read here under
//! another name, type or encoding than upstream. Those headers are therefore read
//! from the raw bytes: after every `--boundary` in the body (a superset of the
//! delimiters any parser honours), the lines up to the first empty one, a line that
//! starts with white space continuing the header before it (Python unfolds it).
//! A part whose Content-Type, any of them, declares a charset that is not
//! ASCII-transparent is refused with 415, as a whole body would be
//! ([`media::check_charset`]), and so is one whose Content-Type is `multipart/*` or
//! `message/*` (a nested multipart, whose parts Python's `email` walks and decodes);
//! a second of one of those headers with 400.

use super::encoded_params;
use super::media::{self, Charsets};
use crate::error::{Error, Result};

/// The headers a part may carry once.
const ONCE: [&str; 3] = [
    "content-disposition",
    "content-type",
    "content-transfer-encoding",
];

/// Where `content-type` is in [`ONCE`].
const CONTENT_TYPE: usize = 1;

/// Where `content-transfer-encoding` is in [`ONCE`].
const TRANSFER_ENCODING: usize = 2;

/// Whether the reader of the parts undoes their transfer encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transfer {
    /// The multipart codec decodes base64 and quoted-printable parts.
    Decoded,
    /// The streaming guard reads a part's bytes as sent: a part in base64 or
    /// quoted-printable (which Python's `email` and Django decode) is refused.
    AsSent,
}

/// The longest header block the streaming [`Watch`] holds while it reads one.
const MAX_HEAD: usize = 16 * 1024;

/// Check every header block of `body`: no charset a backend would decode into other
/// characters than the ones scanned, no second Content-Disposition, Content-Type or
/// Content-Transfer-Encoding. Each byte is looked at a bounded number of times: a
/// block ends at an empty line or at the next line that starts with the delimiter
/// (as every real one does), and the search for the next delimiter goes on from
/// there; a delimiter inside the block only starts a part of the same lines.
pub(crate) fn check(body: &[u8], boundary: &str) -> Result<()> {
    check_with(body, boundary, Transfer::Decoded)
}

/// [`check`], parts' transfer encodings read as `transfer` says.
fn check_with(body: &[u8], boundary: &str, transfer: Transfer) -> Result<()> {
    let delimiter = format!("--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let mut from = 0;
    while let Some(found) = body.get(from..).and_then(|rest| finder.find(rest)) {
        let after = from.saturating_add(found).saturating_add(delimiter.len());
        // The rest of the delimiter line, then the header block.
        let Some(eol) = body
            .get(after..)
            .and_then(|rest| memchr::memchr(b'\n', rest))
        else {
            break;
        };
        let start = after.saturating_add(eol).saturating_add(1);
        from = check_block(body, start, delimiter.as_bytes(), transfer)?;
    }
    Ok(())
}

/// One header block, from `start` to its first empty line or line that starts with
/// the delimiter. Returns where that line starts (the end of the body if none).
/// Every Content-Type in the block is checked before a second header is refused,
/// so a charset is refused as such (415) wherever it is declared.
fn check_block(body: &[u8], start: usize, delimiter: &[u8], transfer: Transfer) -> Result<usize> {
    let mut seen = [false; ONCE.len()];
    let mut second: Option<(usize, &str)> = None;
    let mut current: Option<Header> = None;
    let mut end = body.len();
    for (at, line) in lines(body, start) {
        if line.is_empty() || line.starts_with(delimiter) {
            end = at;
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // A folded line continues the header before it.
            if let Some((_, _, value)) = current.as_mut() {
                value.extend_from_slice(line);
            }
            continue;
        }
        finish_header(current.take(), transfer)?;
        let Some((slot, value)) = header_line(line) else {
            continue;
        };
        if let Some(seen) = slot.and_then(|slot| seen.get_mut(slot)) {
            if *seen && second.is_none() {
                let name = slot.and_then(|slot| ONCE.get(slot)).copied();
                second = Some((at, name.unwrap_or_default()));
            }
            *seen = true;
        }
        current = Some((slot, at, value.to_vec()));
    }
    finish_header(current, transfer)?;
    if let Some((at, name)) = second {
        return Err(Error::InvalidBody(format!(
            "invalid multipart body: a part has a second {name} header (byte {at})"
        )));
    }
    Ok(end)
}

/// A header in a block: its slot in [`ONCE`] if it is one of those, the offset of
/// its line, and its value, folded lines joined.
type Header = (Option<usize>, usize, Vec<u8>);

/// A header line: its name's index in [`ONCE`] (matched in any case), if there, and
/// its value. `None` for a line without a `:`.
fn header_line(line: &[u8]) -> Option<(Option<usize>, &[u8])> {
    let colon = memchr::memchr(b':', line)?;
    let name = line.get(..colon)?.trim_ascii();
    let slot = ONCE
        .iter()
        .position(|h| name.eq_ignore_ascii_case(h.as_bytes()));
    Some((slot, line.get(colon.saturating_add(1)..)?))
}

/// A whole header. A Content-Type is refused (415) if it is `multipart/*` or
/// `message/*` or declares a charset that is not ASCII-transparent; a transfer
/// encoding other than `7bit`, `8bit` or `binary` (415) when the parts are read as
/// sent; any header whose values a backend would join or decode into digits
/// ([`encoded_params`]).
fn finish_header(header: Option<Header>, transfer: Transfer) -> Result<()> {
    let Some((slot, at, value)) = header else {
        return Ok(());
    };
    match slot {
        Some(TRANSFER_ENCODING) => transfer_encoding(&value, at, transfer)?,
        Some(CONTENT_TYPE) => content_type(&value, at)?,
        _ => {}
    }
    encoded_params::check(&value, at)
}

/// A part's Content-Transfer-Encoding, checked when the parts are read as sent.
fn transfer_encoding(value: &[u8], at: usize, transfer: Transfer) -> Result<()> {
    let value = value.trim_ascii();
    let identity = [&b"7bit"[..], b"8bit", b"binary"]
        .iter()
        .any(|v| value.eq_ignore_ascii_case(v));
    if transfer == Transfer::AsSent && !identity {
        return Err(Error::UnsupportedMedia(format!(
            "a multipart part's Content-Transfer-Encoding is not read on a pass-through route (send the part as it is: 7bit, 8bit or binary; the header at byte {at} of its block)"
        )));
    }
    Ok(())
}

/// A part's Content-Type: not a nested multipart or message, not in a charset the
/// guard cannot read.
fn content_type(value: &[u8], at: usize) -> Result<()> {
    if nested(value) {
        return Err(Error::UnsupportedMedia(format!(
            "a multipart part is itself multipart or a message, whose parts are not read (send each as a part of its own; the Content-Type at byte {at} of its block)"
        )));
    }
    let text = String::from_utf8_lossy(value);
    media::check_charset(Some(&text), Charsets::AsciiTransparent).map_err(|_| {
        Error::UnsupportedMedia(format!(
            "a multipart part's charset is not one the leak guard can read (use UTF-8, ASCII, ISO 8859 or a Windows code page; the Content-Type at byte {at})"
        ))
    })
}

/// Whether a part's Content-Type is `multipart/*` or `message/*`: Python's `email`
/// walks into such a part and decodes the parts (or message) in it, which no codec
/// here reads (RFC 7578 deprecates nested `multipart/mixed`). Read as a lenient
/// parser reads the media type: in any case, with white space and (closed) comments
/// anywhere in it (`Multipart / Mixed`, `(x)multipart/mixed`).
fn nested(content_type: &[u8]) -> bool {
    let mut media = Vec::with_capacity(content_type.len());
    let mut depth = 0usize;
    for &b in content_type {
        match b {
            b'(' => depth = depth.saturating_add(1),
            b')' if depth > 0 => depth -= 1,
            b';' if depth == 0 => break,
            _ if depth > 0 || b.is_ascii_whitespace() => {}
            _ => media.push(b.to_ascii_lowercase()),
        }
    }
    media.starts_with(b"multipart/") || media.starts_with(b"message/")
}

/// A body declared `multipart/*` that the route reads with another codec than the
/// multipart one (a guard-only route's raw text, a `multipart/mixed` body; a route
/// that reads every body as JSON): a backend choosing its parser by the header
/// still finds parts in it. Its header blocks are checked as the streaming guard
/// checks a pass-through body's (a transfer encoding, a charset, a nested multipart
/// refused), and its boundary must be readable ([`media::boundary`]).
pub(crate) fn check_declared(content_type: Option<&str>, body: &[u8]) -> Result<()> {
    let Some(ct) = content_type.filter(|ct| is_multipart(ct.as_bytes())) else {
        return Ok(());
    };
    match media::boundary(ct)? {
        Some(boundary) => check_with(body, &boundary, Transfer::AsSent),
        None => Ok(()),
    }
}

/// The header blocks of a multipart body read as it streams through the
/// pass-through guard, with the checks [`check`] makes on a whole body, and a part
/// in a transfer encoding refused ([`Transfer::AsSent`]): the guard reads its bytes as
/// sent. A block is checked once it is whole, before the chunk that ends it (and the
/// part's content after it) is sent on. Holds at most a delimiter's length of bytes
/// between blocks, and a block of up to [`MAX_HEAD`] bytes (a longer one is refused).
pub(crate) struct Watch {
    delimiter: Vec<u8>,
    /// The bytes not read to an end: a delimiter's possible start, or the lines of
    /// the block being read.
    buf: Vec<u8>,
    in_head: bool,
    /// In a block: where its first line not read to its end starts.
    read: usize,
}

impl Watch {
    /// A watch for a body of this Content-Type: `None` unless it is `multipart/*`
    /// with a boundary (without one, no backend finds any part either). A boundary
    /// that cannot be read unambiguously (given in RFC 2231 form, twice, ...) is
    /// refused (415, [`media::boundary`]): a backend may find parts the guard would
    /// not follow.
    pub(crate) fn new(content_type: &str) -> Result<Option<Watch>> {
        if !is_multipart(content_type.as_bytes()) {
            return Ok(None);
        }
        let Some(boundary) = media::boundary(content_type)? else {
            return Ok(None);
        };
        Ok(Some(Watch {
            delimiter: format!("--{boundary}").into_bytes(),
            buf: Vec::new(),
            in_head: false,
            read: 0,
        }))
    }

    /// [`Watch::new`] for a request's Content-Type header; a multipart one that is
    /// not ASCII is refused (415).
    pub(crate) fn for_header(content_type: &http::HeaderValue) -> Result<Option<Watch>> {
        // Every guarded pass-through body asks: most are not multipart, which the
        // bytes tell without checking the whole value.
        if !is_multipart(content_type.as_bytes()) {
            return Ok(None);
        }
        let ct = content_type.to_str().map_err(|_| {
            Error::UnsupportedMedia("the multipart Content-Type header is not ASCII".into())
        })?;
        Watch::new(ct)
    }

    /// Read the next bytes of the body.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(chunk);
        let dlen = self.delimiter.len();
        loop {
            if self.in_head {
                let end = match head_end(&self.buf, &self.delimiter, self.read) {
                    Ok(end) => end,
                    Err(read) => {
                        self.read = read;
                        return self.bounded();
                    }
                };
                self.read = 0;
                check_block(&self.buf, 0, &self.delimiter, Transfer::AsSent)?;
                // The line that ended the block may be the next delimiter's.
                self.buf.drain(..end);
                self.in_head = false;
                continue;
            }
            match memchr::memmem::find(&self.buf, &self.delimiter) {
                None => {
                    let keep = self.buf.len().min(dlen.saturating_sub(1));
                    self.buf.drain(..self.buf.len() - keep);
                    return Ok(());
                }
                Some(at) => {
                    let after = at.saturating_add(dlen);
                    let eol = self
                        .buf
                        .get(after..)
                        .and_then(|rest| memchr::memchr(b'\n', rest));
                    match eol {
                        None => {
                            self.buf.drain(..at);
                            return self.bounded();
                        }
                        Some(eol) => {
                            self.buf
                                .drain(..after.saturating_add(eol).saturating_add(1));
                            self.in_head = true;
                        }
                    }
                }
            }
        }
    }

    /// The end of the body: a block it ends in is checked as it is.
    pub(crate) fn finish(&mut self) -> Result<()> {
        if self.in_head {
            check_block(&self.buf, 0, &self.delimiter, Transfer::AsSent)?;
        }
        self.buf.clear();
        self.in_head = false;
        self.read = 0;
        Ok(())
    }

    fn bounded(&self) -> Result<()> {
        if self.buf.len() > MAX_HEAD {
            return Err(Error::InvalidBody(format!(
                "invalid multipart body: a part's header block is longer than {MAX_HEAD} bytes"
            )));
        }
        Ok(())
    }
}

/// Whether a Content-Type's media type is `multipart/*`.
fn is_multipart(content_type: &[u8]) -> bool {
    content_type
        .trim_ascii_start()
        .get(..10)
        .is_some_and(|t| t.eq_ignore_ascii_case(b"multipart/"))
}

/// Where the header block at the start of `buf` ends: the start of its first
/// complete line that is empty or starts with the delimiter. `None` while no such
/// line has arrived.
/// `from` is where the first line not read yet starts; on `Err`, where the first
/// incomplete line starts (so a block arriving in pieces is read once).
fn head_end(buf: &[u8], delimiter: &[u8], from: usize) -> std::result::Result<usize, usize> {
    let mut at = from;
    while let Some(len) = buf.get(at..).and_then(|rest| memchr::memchr(b'\n', rest)) {
        let line = buf.get(at..at + len).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line.starts_with(delimiter) {
            return Ok(at);
        }
        at += len + 1;
    }
    Err(at)
}

/// The lines of `body` from `start`, each with its offset, without its line break
/// (`\n`, or `\r\n`).
fn lines(body: &[u8], start: usize) -> impl Iterator<Item = (usize, &[u8])> {
    let mut at = start;
    std::iter::from_fn(move || {
        let rest = body.get(at..).filter(|r| !r.is_empty())?;
        let len = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = rest.get(..len).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let this = at;
        at = at.saturating_add(len).saturating_add(1);
        Some((this, line))
    })
}

/// Whether the streaming [`Watch`], fed `body` in pieces of `step` bytes, decides as
/// the whole-body check reading parts as sent does (the fuzz oracle).
#[cfg(any(fuzzing, test))]
pub(crate) fn watch_agrees(content_type: &str, body: &[u8], step: usize) -> bool {
    let Ok(Some(mut w)) = Watch::new(content_type) else {
        return true;
    };
    let Ok(Some(boundary)) = media::boundary(content_type) else {
        return true;
    };
    let whole = check_with(body, &boundary, Transfer::AsSent).is_ok();
    let streamed = body
        .chunks(step.max(1))
        .try_for_each(|piece| w.feed(piece))
        .and_then(|()| w.finish())
        .is_ok();
    whole == streamed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn bodies() -> Vec<Vec<u8>> {
        let part = |head: &str, content: &str| format!("--XyZ\r\n{head}\r\n\r\n{content}\r\n");
        let d = "Content-Disposition: form-data; name=\"a\"";
        [
            format!("{}--XyZ--\r\n", part(d, "1")),
            format!(
                "{}--XyZ--\r\n",
                part(&format!("{d}\r\nContent-Transfer-Encoding: base64"), "MTIz")
            ),
            format!(
                "{}--XyZ--\r\n",
                part(&format!("{d}\r\nContent-Transfer-Encoding:\r\n 8bit"), "1")
            ),
            format!(
                "{}--XyZ--\r\n",
                part(
                    &format!("{d}\r\nContent-Type: text/plain;\r\n charset=utf-7"),
                    "+ADQ-"
                )
            ),
            format!(
                "{}{}--XyZ--\r\n",
                part(d, "x --XyZ y"),
                part(&format!("{d}\r\n{d}"), "2")
            ),
            "preamble\n--XyZ\nContent-Transfer-Encoding: quoted-printable\n\n=34\n--XyZ--"
                .to_owned(),
            format!(
                "--XyZ\r\n{d}\r\n--XyZ\r\nContent-Transfer-Encoding: base64\r\n\r\nMTIz\r\n--XyZ--"
            ),
            // A block the body ends in (no empty line after it).
            "--XyZ\r\nContent-Transfer-Encoding: base64".to_owned(),
            "--XyZ--\r\nepilogue: x\r\nContent-Type: text/plain; charset=utf-16".to_owned(),
            "no delimiter at all --XyZ".to_owned(),
            format!(
                "{}--XyZ--\r\n",
                part(
                    &format!("{d}\r\nContent-Type: Multipart /\r\n Mixed; boundary=In"),
                    "--In\r\n\r\nx\r\n--In--"
                )
            ),
        ]
        .into_iter()
        .map(String::into_bytes)
        .collect()
    }

    /// The streaming watch decides as the whole-body check does, wherever the body
    /// is cut, and refuses a part in a transfer encoding that the rules routes'
    /// check lets the codec decode.
    #[test]
    fn the_watch_agrees_with_the_whole_body_check_at_every_cut() {
        for body in bodies() {
            let whole = check_with(&body, "XyZ", Transfer::AsSent).is_ok();
            for a in 0..=body.len() {
                for b in a..=body.len() {
                    let mut w = Watch::new(CT).unwrap().unwrap();
                    let streamed = [&body[..a], &body[a..b], &body[b..]]
                        .iter()
                        .try_for_each(|piece| w.feed(piece))
                        .and_then(|()| w.finish())
                        .is_ok();
                    assert_eq!(
                        streamed,
                        whole,
                        "{:?} cut at {a}, {b}",
                        String::from_utf8_lossy(&body)
                    );
                }
            }
        }
        let encoded = &bodies()[1];
        assert!(check(encoded, "XyZ").is_ok());
        assert!(check_with(encoded, "XyZ", Transfer::AsSent).is_err());
    }

    /// A part that is itself multipart or a message is refused (415) on both kinds
    /// of route, however its media type is spelled; other types pass.
    #[test]
    fn nested_multipart_parts_are_refused() {
        for ct in [
            "multipart/mixed; boundary=In",
            "MULTIPART/Alternative",
            "multipart / related",
            "(x; y)multipart/mixed",
            "message/rfc822",
            " Message/Partial; id=1",
        ] {
            assert!(nested(ct.as_bytes()), "{ct}");
            let body = format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Type: {ct}\r\n\r\nx\r\n--XyZ--\r\n"
            );
            for transfer in [Transfer::Decoded, Transfer::AsSent] {
                let got = check_with(body.as_bytes(), "XyZ", transfer);
                assert!(matches!(got, Err(Error::UnsupportedMedia(_))), "{ct}");
            }
        }
        for ct in [
            "text/plain; name=\"multipart/mixed\"",
            "application/octet-stream",
            "image/jpeg",
            "text/x-multipart",
        ] {
            assert!(!nested(ct.as_bytes()), "{ct}");
        }
    }

    #[test]
    fn a_body_declared_multipart_is_checked_whatever_reads_it() {
        let body = b"--XyZ\r\nContent-Transfer-Encoding: base64\r\n\r\nMTIz\r\n--XyZ--";
        assert!(check_declared(Some("multipart/mixed; boundary=XyZ"), body).is_err());
        assert!(check_declared(Some("multipart/mixed; boundary*=''XyZ"), body).is_err());
        assert!(check_declared(Some("application/json"), body).is_ok());
        assert!(check_declared(Some("multipart/mixed"), body).is_ok());
        assert!(check_declared(None, body).is_ok());
    }

    #[test]
    fn only_multipart_bodies_are_watched() {
        assert!(Watch::new("multipart/mixed; boundary=a").unwrap().is_some());
        assert!(
            Watch::new("Multipart/Form-Data; boundary=\"a b\"")
                .unwrap()
                .is_some()
        );
        assert!(Watch::new("multipart/form-data").unwrap().is_none());
        assert!(Watch::new("application/json").unwrap().is_none());
    }

    #[test]
    fn a_header_block_past_the_limit_is_refused() {
        let mut w = Watch::new(CT).unwrap().unwrap();
        w.feed(b"--XyZ\r\nX-Long: ").unwrap();
        let long = vec![b'a'; MAX_HEAD];
        assert!(w.feed(&long).is_err());
    }
}
