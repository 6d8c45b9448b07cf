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
//! ([`media::check_charset`]); a second of one of those headers with 400.

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

/// Check every header block of `body`: no charset a backend would decode into other
/// characters than the ones scanned, no second Content-Disposition, Content-Type or
/// Content-Transfer-Encoding. Each byte is looked at a bounded number of times: a
/// block ends at an empty line or at the next line that starts with the delimiter
/// (as every real one does), and the search for the next delimiter goes on from
/// there; a delimiter inside the block only starts a part of the same lines.
pub(crate) fn check(body: &[u8], boundary: &str) -> Result<()> {
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
        from = check_block(body, start, delimiter.as_bytes())?;
    }
    Ok(())
}

/// One header block, from `start` to its first empty line or line that starts with
/// the delimiter. Returns where that line starts (the end of the body if none).
/// Every Content-Type in the block is checked before a second header is refused,
/// so a charset is refused as such (415) wherever it is declared.
fn check_block(body: &[u8], start: usize, delimiter: &[u8]) -> Result<usize> {
    let mut seen = [false; ONCE.len()];
    let mut second: Option<(usize, &str)> = None;
    let mut current: Option<(usize, Vec<u8>)> = None;
    let mut end = body.len();
    for (at, line) in lines(body, start) {
        if line.is_empty() || line.starts_with(delimiter) {
            end = at;
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // A folded line continues the header before it.
            if let Some((_, value)) = current.as_mut() {
                value.extend_from_slice(line);
            }
            continue;
        }
        finish_header(current.take())?;
        let Some((slot, value)) = once_header(line) else {
            continue;
        };
        if let Some(seen) = seen.get_mut(slot) {
            if *seen && second.is_none() {
                second = Some((at, ONCE.get(slot).copied().unwrap_or_default()));
            }
            *seen = true;
        }
        current = (slot == CONTENT_TYPE).then(|| (at, value.to_vec()));
    }
    finish_header(current)?;
    if let Some((at, name)) = second {
        return Err(Error::InvalidBody(format!(
            "invalid multipart body: a part has a second {name} header (byte {at})"
        )));
    }
    Ok(end)
}

/// A header line naming one of [`ONCE`] (in any case): its index there, and its
/// value.
fn once_header(line: &[u8]) -> Option<(usize, &[u8])> {
    let colon = memchr::memchr(b':', line)?;
    let name = line.get(..colon)?.trim_ascii();
    let slot = ONCE
        .iter()
        .position(|h| name.eq_ignore_ascii_case(h.as_bytes()))?;
    Some((slot, line.get(colon.saturating_add(1)..)?))
}

/// A whole Content-Type header (`(offset, value)`), folded lines joined: refused
/// (415) if it declares a charset that is not ASCII-transparent.
fn finish_header(content_type: Option<(usize, Vec<u8>)>) -> Result<()> {
    let Some((at, value)) = content_type else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&value);
    media::check_charset(Some(&text), Charsets::AsciiTransparent).map_err(|_| {
        Error::UnsupportedMedia(format!(
            "a multipart part's charset is not one the leak guard can read (use UTF-8, ASCII, ISO 8859 or a Windows code page; the Content-Type at byte {at})"
        ))
    })
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
