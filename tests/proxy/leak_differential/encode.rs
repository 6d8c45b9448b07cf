//! The test's own encoder: a test card written digit by digit in another form, with
//! separators between its digits, each character spelled raw or through an escape a
//! backend decodes, inside a body of one content type. Nothing here calls vaultgate.

use std::io::Write as _;

use base64::Engine as _;

use super::alphabet::{CARDS, SEPARATORS, cp1252, digit_char};
use super::spell::Tok;

/// The body a case is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Json,
    Form,
    Text,
    Html,
    Xml,
    MultipartText,
    MultipartQp,
    /// A text part in `Content-Transfer-Encoding: base64`.
    MultipartB64,
    Query,
    /// JSON wrapped in base64, as the Plano profile's route reads it: sent to that
    /// route only (a pass-through does not decode a whole body's base64).
    Base64Json,
}

pub const KINDS: [Kind; 10] = [
    Kind::Json,
    Kind::Form,
    Kind::Text,
    Kind::Html,
    Kind::Xml,
    Kind::MultipartText,
    Kind::MultipartQp,
    Kind::MultipartB64,
    Kind::Query,
    Kind::Base64Json,
];

/// How a digit, and the gap before it, are decorated.
#[derive(Clone, Debug)]
pub struct Deco {
    pub form: u8,
    pub esc: u8,
    /// Up to three separators: (which, its spelling).
    pub gap: Vec<(u8, u8)>,
    /// Markup in the gap (XML, HTML), a reference to a code point Python's
    /// `html.unescape` drops (JSON, text), or a soft line break (quoted-printable).
    pub markup: u8,
}

/// One generated request.
#[derive(Clone, Debug)]
pub struct Case {
    pub card: usize,
    pub kind: Kind,
    /// 0 UTF-8; windows-1252 bytes declared as 1 `windows-1252`, 2 `iso-8859-1`, 3
    /// undeclared.
    pub latin1: u8,
    /// XML: the number inside a CDATA section.
    pub cdata: bool,
    /// Content coding: 0 none, 1 gzip, 2 deflate (zlib), 3 deflate as raw DEFLATE
    /// (which servers accept under `deflate` too).
    pub coding: u8,
    /// Every digit an ASCII digit as it is (only the separators decorated): the
    /// cases a rules route may tokenize in place.
    pub plain_digits: bool,
    /// A JSON, text, HTML or XML body in UTF-16 with no charset declared: 1
    /// little-endian with a byte order mark, 2 big-endian with one, 3 and 4 without
    /// (Python's `json.loads` detects either from the bytes); 5 to 8 the same in
    /// UTF-32.
    pub utf16: u8,
    /// Text: octal escapes (`\064`) among the spellings.
    pub octal: bool,
    pub decos: Vec<Deco>,
}

/// What a request is: path with query, content type, content coding, body.
pub struct Request {
    pub path: String,
    pub content_type: Option<String>,
    pub coding: Option<&'static str>,
    pub body: Vec<u8>,
}

const BOUNDARY: &str = "vgDiffBoundary";

impl Case {
    /// The routes this case goes to: the guarded pass-through and the guard-only
    /// rules route; the Plano route for a base64-wrapped body.
    pub fn routes(&self) -> &'static [&'static str] {
        match self.kind {
            Kind::Base64Json => &["/payment-methods"],
            _ => &["/pt/diff", "/payment-method"],
        }
    }

    pub fn card(&self) -> &'static str {
        CARDS
            .get(self.card % CARDS.len())
            .copied()
            .unwrap_or(CARDS[0])
    }

    /// The card as this case writes it, as the field's value.
    pub fn note(&self) -> Vec<u8> {
        let card = self.card();
        let mut toks: Vec<Tok> = Vec::new();
        for (i, (digit, deco)) in card.chars().zip(self.decos.iter()).enumerate() {
            let d = digit.to_digit(10).unwrap_or(0);
            if i > 0 {
                for &(s, esc) in deco.gap.iter().take(3) {
                    let sep = SEPARATORS
                        .get(usize::from(s) % SEPARATORS.len())
                        .map_or(' ', |s| s.0);
                    let sep = if self.latin1() && cp1252(sep).is_none() {
                        [' ', '-', '\u{a0}', '\u{ad}', '\u{2013}', '\u{b7}']
                            .get(usize::from(s) % 6)
                            .copied()
                            .unwrap_or(' ')
                    } else {
                        sep
                    };
                    toks.push(self.spell(sep, esc));
                }
                if let Some(m) = self.kind.markup(self.cdata, deco.markup) {
                    toks.push(Tok {
                        bytes: m.as_bytes().to_vec(),
                        ch: None,
                        open: None,
                    });
                }
                if self.kind == Kind::MultipartQp && deco.markup % 2 == 1 {
                    toks.push(Tok {
                        bytes: b"=\r\n".to_vec(),
                        ch: None,
                        open: None,
                    });
                }
            }
            let (form, esc) = if self.plain_digits {
                (0, 0)
            } else {
                (deco.form, deco.esc)
            };
            let c = digit_char(form, d);
            let c = if self.latin1() && cp1252(c).is_none() {
                digit
            } else {
                c
            };
            toks.push(self.spell(c, esc));
        }
        let mut out = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            out.extend_from_slice(&t.bytes);
            if let Some(hex) = t.open {
                // A reference without `;` ends where its digits end: close it when
                // the character that follows (once the body's own escapes are
                // decoded: `&#32\u0034` is `&#324` in a JSON string) would read as
                // more of them.
                let next = toks.get(i + 1).and_then(|n| n.ch);
                let extends = next.is_some_and(|c| {
                    c == ';' || c.is_ascii_digit() || (hex && c.is_ascii_hexdigit())
                });
                if extends || next.is_none() {
                    out.push(b';');
                }
            }
        }
        if self.kind == Kind::MultipartQp {
            // Bytes quoted-printable cannot carry raw.
            let mut qp = Vec::new();
            for &b in &out {
                if b >= 0x80 || b == b'\t' || b == b'\x0c' {
                    let _ = write!(qp, "={b:02X}");
                } else {
                    qp.push(b);
                }
            }
            out = qp;
        }
        if self.kind == Kind::Xml && self.cdata {
            out = [b"<![CDATA[".as_slice(), &out, b"]]>"].concat();
        }
        out
    }

    fn charset(&self) -> &'static str {
        match (self.latin1(), self.latin1) {
            (true, 1) => "; charset=windows-1252",
            (true, 2) => "; charset=iso-8859-1",
            _ => "",
        }
    }

    /// The request for a route at `route` (a path without a query).
    pub fn request(&self, route: &str) -> Request {
        let note = self.note();
        let cs = self.charset();
        let mut path = route.to_owned();
        let (ct, body): (String, Vec<u8>) = match self.kind {
            Kind::Json => (
                format!("application/json{cs}"),
                [br#"{"id":"abc","note":""#.as_slice(), &note, br#""}"#].concat(),
            ),
            Kind::Base64Json => {
                let json = [br#"{"id":"abc","note":""#.as_slice(), &note, br#""}"#].concat();
                (
                    "text/plain".to_owned(),
                    base64::engine::general_purpose::STANDARD
                        .encode(json)
                        .into_bytes(),
                )
            }
            Kind::Form => (
                format!("application/x-www-form-urlencoded{cs}"),
                [b"id=abc&note=".as_slice(), &note, b"&x=y"].concat(),
            ),
            Kind::Text => (
                format!("text/plain{cs}"),
                [b"note: ".as_slice(), &note, b" thanks"].concat(),
            ),
            Kind::Html => (
                format!("text/html{cs}"),
                [
                    b"<html><body><p>Card ".as_slice(),
                    &note,
                    b"</p></body></html>",
                ]
                .concat(),
            ),
            Kind::Xml => {
                let decl = match (self.latin1(), self.latin1) {
                    (true, 1) => r#"<?xml version="1.0" encoding="windows-1252"?>"#,
                    (true, 2) => r#"<?xml version="1.0" encoding="ISO-8859-1"?>"#,
                    _ => r#"<?xml version="1.0"?>"#,
                };
                (
                    format!("application/xml{cs}"),
                    [
                        format!("{decl}<order><note>").as_bytes(),
                        &note,
                        b"</note></order>",
                    ]
                    .concat(),
                )
            }
            Kind::MultipartText | Kind::MultipartQp | Kind::MultipartB64 => {
                let mut head =
                    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n");
                if !cs.is_empty() {
                    head.push_str(&format!("Content-Type: text/plain{cs}\r\n"));
                }
                let mut content = note;
                if self.kind == Kind::MultipartQp {
                    head.push_str("Content-Transfer-Encoding: quoted-printable\r\n");
                }
                if self.kind == Kind::MultipartB64 {
                    head.push_str("Content-Transfer-Encoding: base64\r\n");
                    content = base64::engine::general_purpose::STANDARD
                        .encode(&content)
                        .into_bytes();
                }
                head.push_str("\r\n");
                (
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                    [
                        head.as_bytes(),
                        &content,
                        format!("\r\n--{BOUNDARY}--\r\n").as_bytes(),
                    ]
                    .concat(),
                )
            }
            Kind::Query => {
                path.push_str("?id=abc&note=");
                path.push_str(&String::from_utf8_lossy(&note));
                ("application/json".to_owned(), br#"{"id":"abc"}"#.to_vec())
            }
        };
        let wide =
            matches!(self.kind, Kind::Json | Kind::Text | Kind::Html | Kind::Xml) && !self.latin1();
        let (ct, body) = match (wide, self.utf16) {
            (true, 1..=8) => {
                let text = String::from_utf8_lossy(&body);
                let le = self.utf16 % 2 == 1;
                let bom = if matches!(self.utf16, 1 | 2 | 5 | 6) {
                    "\u{feff}"
                } else {
                    ""
                };
                let units: Vec<u8> = if self.utf16 <= 4 {
                    bom.encode_utf16()
                        .chain(text.encode_utf16())
                        .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
                        .collect()
                } else {
                    bom.chars()
                        .chain(text.chars())
                        .map(u32::from)
                        .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
                        .collect()
                };
                (ct, units)
            }
            _ => (ct, body),
        };
        let level = flate2::Compression::fast();
        let (body, coding) = match self.coding {
            1 => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
                let _ = e.write_all(&body);
                (e.finish().unwrap_or_default(), Some("gzip"))
            }
            2 => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
                let _ = e.write_all(&body);
                (e.finish().unwrap_or_default(), Some("deflate"))
            }
            3 => {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
                let _ = e.write_all(&body);
                (e.finish().unwrap_or_default(), Some("deflate"))
            }
            _ => (body, None),
        };
        Request {
            path,
            content_type: Some(ct),
            coding,
            body,
        }
    }
}
