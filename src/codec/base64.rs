//! Base64 "sensitive params" bodies (Plano): a base64 text wrapping JSON or a form.
//!
//! Decoding accepts the standard or the URL-safe alphabet (never both in one body),
//! with or without `=` padding, wrapped in lines ending in LF or CRLF. Re-encoding
//! keeps the alphabet and the padding style, and re-wraps lines at the width of the
//! original first line with the original line ending (and a final line ending if the
//! original had one). When the body has no padding and its length is a multiple of
//! four, the style is ambiguous: the standard alphabet is then taken as padded and the
//! URL-safe one as unpadded; a body with neither `+/` nor `-_` is taken as standard.

use base64::Engine as _;
use base64::engine::general_purpose::{
    STANDARD, STANDARD_NO_PAD, STANDARD_PAD_INDIFFERENT, URL_SAFE, URL_SAFE_NO_PAD,
    URL_SAFE_PAD_INDIFFERENT,
};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

fn invalid(what: &str) -> Error {
    Error::InvalidBody(format!(
        "the body is not valid base64 (invalid-encoded-params): {what}"
    ))
}

/// How a base64 body was written, to write it back the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Style {
    pub url_safe: bool,
    pub padded: bool,
    /// Line width, when the body was wrapped over several lines.
    pub wrap: Option<usize>,
    pub crlf: bool,
    pub final_newline: bool,
}

/// Decode a base64 body. The decoded size is checked against `max` before decoding.
pub(crate) fn decode(body: &[u8], max: usize) -> Result<(Zeroizing<Vec<u8>>, Style)> {
    let mut compact = Zeroizing::new(Vec::with_capacity(body.len()));
    let (mut std_seen, mut url_seen, mut crlf) = (false, false, false);
    let mut first_line: Option<usize> = None;
    let mut lines = 0usize;
    let mut line_len = 0usize;
    let mut prev = 0u8;
    for (i, &b) in body.iter().enumerate() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'=' => {}
            b'+' | b'/' => std_seen = true,
            b'-' | b'_' => url_seen = true,
            b'\r' => {
                prev = b;
                continue;
            }
            b'\n' => {
                if prev == b'\r' {
                    crlf = true;
                }
                if first_line.is_none() {
                    first_line = Some(line_len);
                }
                lines += 1;
                line_len = 0;
                prev = b;
                continue;
            }
            _ => return Err(invalid(&format!("unexpected character at byte {i}"))),
        }
        if prev == b'\r' {
            return Err(invalid(&format!("stray carriage return before byte {i}")));
        }
        compact.push(b);
        line_len += 1;
        prev = b;
    }
    if std_seen && url_seen {
        return Err(invalid("it mixes the standard and URL-safe alphabets"));
    }
    if compact.is_empty() {
        return Err(Error::InvalidBody(
            "the base64 body is empty (no-params-decoded)".into(),
        ));
    }
    let final_newline = body.last() == Some(&b'\n');
    // Several lines of text (the last possibly unterminated): wrapped.
    let text_lines = if final_newline { lines } else { lines + 1 };
    let wrap = if text_lines > 1 {
        first_line.filter(|w| *w > 0)
    } else {
        None
    };
    let padded = compact.last() == Some(&b'=') || (compact.len() % 4 == 0 && !url_seen);
    if compact.len() / 4 * 3 > max {
        return Err(Error::BodyTooLarge { limit: max });
    }
    let engine = if url_seen {
        &URL_SAFE_PAD_INDIFFERENT
    } else {
        &STANDARD_PAD_INDIFFERENT
    };
    let decoded = Zeroizing::new(engine.decode(&*compact).map_err(|e| {
        invalid(match e {
            base64::DecodeError::InvalidLength(_) => "it is truncated",
            base64::DecodeError::InvalidLastSymbol { .. } => {
                "it is truncated or corrupt at the end"
            }
            base64::DecodeError::InvalidPadding => "invalid padding",
            base64::DecodeError::InvalidByte(_, _) => "misplaced padding or invalid character",
        })
    })?);
    if decoded.is_empty() {
        return Err(Error::InvalidBody(
            "the base64 body decoded to nothing (no-params-decoded)".into(),
        ));
    }
    if decoded.len() > max {
        return Err(Error::BodyTooLarge { limit: max });
    }
    Ok((
        decoded,
        Style {
            url_safe: url_seen,
            padded,
            wrap,
            crlf,
            final_newline,
        },
    ))
}

/// Encode `data` in `style`.
pub(crate) fn encode(data: &[u8], style: &Style) -> Vec<u8> {
    let engine = match (style.url_safe, style.padded) {
        (false, true) => &STANDARD,
        (false, false) => &STANDARD_NO_PAD,
        (true, true) => &URL_SAFE,
        (true, false) => &URL_SAFE_NO_PAD,
    };
    let text = engine.encode(data);
    let eol: &[u8] = if style.crlf { b"\r\n" } else { b"\n" };
    let mut out = Vec::with_capacity(text.len() + text.len() / 32 + 2);
    match style.wrap {
        Some(w) => {
            for (i, line) in text.as_bytes().chunks(w).enumerate() {
                if i > 0 {
                    out.extend_from_slice(eol);
                }
                out.extend_from_slice(line);
            }
        }
        None => out.extend_from_slice(text.as_bytes()),
    }
    if style.final_newline {
        out.extend_from_slice(eol);
    }
    out
}
