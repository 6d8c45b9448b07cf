//! The test's own encoder: a test card written digit by digit in another form, with
//! separators between its digits, each character spelled raw or through an escape a
//! backend decodes, inside a body of one content type. Nothing here calls vaultgate.

use std::io::Write as _;

use base64::Engine as _;

use super::alphabet::{CARDS, SEPARATORS, cp1252, digit_char, digit_name};

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

/// How one character is spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Esc {
    Raw,
    /// `\u00a0` (`\ud835\udfce` beyond the BMP), and in capitals.
    JsonU,
    JsonUUpper,
    /// `\/`, `\t`, `\n`, `\r`, `\f`; `\uXXXX` for others.
    JsonShort,
    /// `&#160;`, then without `;`, `&#xA0;`, then without `;`.
    HtmlDec,
    HtmlDecBare,
    HtmlHex,
    HtmlHexBare,
    /// `&nbsp;`, then the legacy `&nbsp` where there is one (numeric otherwise).
    HtmlNamed,
    HtmlNamedBare,
    /// `&#150;` for an en dash: HTML reads the numbers 128 to 159 as the
    /// windows-1252 characters of those bytes (`&#160;` for others).
    HtmlC1,
    /// A character reference escaped once more (`&amp;#52;`, `&amp;ndash;`), as a
    /// value HTML-escaped twice is.
    HtmlDouble,
    /// In JSON, a percent escape or a character reference whose `%` or `&` is a
    /// `\u` escape (`\u002534`, `\u0026#52;`): the JSON string holds `%34`.
    JsonPercent,
    JsonHtml,
    /// `%C2%A0` (`%A0` in a windows-1252 body), and `%25C2%25A0`.
    Percent,
    Percent2,
    /// `+` for a space in a form or query.
    Plus,
    /// `=C2=A0` in a quoted-printable part.
    Qp,
}

impl Kind {
    /// The spellings a backend decodes in this body.
    fn escapes(self, cdata: bool) -> &'static [Esc] {
        use Esc::*;
        match self {
            Kind::Json | Kind::Base64Json => &[
                Raw,
                JsonU,
                JsonUUpper,
                JsonShort,
                HtmlDec,
                HtmlDecBare,
                HtmlHex,
                HtmlHexBare,
                HtmlNamed,
                HtmlNamedBare,
                HtmlC1,
                Percent,
                Percent2,
                HtmlDouble,
                JsonPercent,
                JsonHtml,
            ],
            Kind::Form => &[
                Raw,
                Percent,
                Percent2,
                Plus,
                HtmlDec,
                HtmlHex,
                HtmlNamed,
                HtmlNamedBare,
                HtmlC1,
                HtmlDouble,
            ],
            Kind::Text => &[
                Raw,
                HtmlDec,
                HtmlDecBare,
                HtmlHex,
                HtmlHexBare,
                HtmlNamed,
                HtmlNamedBare,
                HtmlC1,
                Percent,
                Percent2,
                HtmlDouble,
            ],
            Kind::Html => &[
                Raw,
                HtmlDec,
                HtmlDecBare,
                HtmlHex,
                HtmlHexBare,
                HtmlNamed,
                HtmlNamedBare,
                HtmlC1,
                HtmlDouble,
            ],
            Kind::Xml if cdata => &[Raw],
            Kind::Xml => &[Raw, HtmlDec, HtmlHex, HtmlDouble],
            Kind::MultipartText | Kind::MultipartB64 => {
                &[Raw, HtmlDec, HtmlHex, HtmlNamed, HtmlC1, Percent]
            }
            Kind::MultipartQp => &[Raw, Qp],
            Kind::Query => &[Percent, Percent2, Plus, Raw],
        }
    }

    /// Markup a parser of this body drops between two digits.
    fn markup(self, cdata: bool, m: u8) -> Option<&'static str> {
        let list: &[&str] = match self {
            Kind::Xml if cdata => &[
                "]]><![CDATA[",
                "]]><!-- x --><![CDATA[",
                "]]><?pi x?><![CDATA[",
            ],
            Kind::Xml => &["<![CDATA[]]>", "<!-- x -->", "<!---->", "<?pi x?>"],
            Kind::Html => &["<!-- x -->", "<!---->", "&#1;", "&#x1F;", "&#65534;"],
            // References to code points Python's `html.unescape` drops (controls,
            // noncharacters): nothing between two digits to a Python backend.
            Kind::Json | Kind::Base64Json | Kind::Text | Kind::MultipartText => &[
                "&#1;", "&#x8;", "&#11;", "&#127;", "&#x1f;", "&#65534;", "&#xFDD0;",
            ],
            _ => &[],
        };
        if m == 0 || list.is_empty() {
            return None;
        }
        list.get(usize::from(m - 1) % list.len()).copied()
    }
}

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
    pub gzip: bool,
    /// Every digit an ASCII digit as it is (only the separators decorated): the
    /// cases a rules route may tokenize in place.
    pub plain_digits: bool,
    /// A JSON, text, HTML or XML body in UTF-16 with no charset declared: 1
    /// little-endian with a byte order mark, 2 big-endian with one, 3 and 4 without
    /// (Python's `json.loads` detects either from the bytes).
    pub utf16: u8,
    pub decos: Vec<Deco>,
}

/// A spelled character (`ch`: the character, `None` for markup), and whether it is a
/// character reference whose end a following digit (or hex digit) would extend.
struct Tok {
    bytes: Vec<u8>,
    ch: Option<char>,
    open: Option<bool>,
}

/// What a request is: path with query, content type, content coding, body.
pub struct Request {
    pub path: String,
    pub content_type: Option<String>,
    pub coding: Option<&'static str>,
    pub body: Vec<u8>,
}

const BOUNDARY: &str = "vgDiffBoundary";

/// `%XX` (`%25XX` when `double`) for each byte, the hex digits in capitals or not.
fn pct(out: &mut Vec<u8>, bytes: &[u8], double: bool, lower: bool) {
    for b in bytes {
        let lead = if double { "%25" } else { "%" };
        let _ = if lower {
            write!(out, "{lead}{b:02x}")
        } else {
            write!(out, "{lead}{b:02X}")
        };
    }
}

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

    fn latin1(&self) -> bool {
        self.latin1 != 0 && self.kind != Kind::Query
    }

    /// The bytes of `c` as the body's charset writes them.
    fn raw_bytes(&self, c: char) -> Vec<u8> {
        match (self.latin1(), cp1252(c)) {
            (true, Some(b)) => vec![b],
            _ => c.to_string().into_bytes(),
        }
    }

    fn spell(&self, c: char, esc: u8) -> Tok {
        let escapes = self.kind.escapes(self.cdata);
        let mut esc = escapes
            .get(usize::from(esc) % escapes.len())
            .copied()
            .unwrap_or(Esc::Raw);
        // What this body cannot hold raw.
        if esc == Esc::Raw {
            esc = match self.kind {
                Kind::Json | Kind::Base64Json if c.is_control() => Esc::JsonShort,
                Kind::Query if !(c.is_ascii_alphanumeric() || "-._/,".contains(c)) => Esc::Percent,
                _ => esc,
            };
        }
        if esc == Esc::Plus && c != ' ' {
            esc = Esc::Percent;
        }
        let name = SEPARATORS
            .iter()
            .find(|s| s.0 == c)
            .map(|s| (s.1, s.2))
            .unwrap_or((digit_name(c), digit_name(c).is_some()));
        let c1 = cp1252(c).filter(|b| (0x80..0xA0).contains(b));
        if esc == Esc::HtmlC1 && c1.is_none() {
            esc = Esc::HtmlDec;
        }
        if esc == Esc::HtmlNamed && name.0.is_none() {
            esc = Esc::HtmlDec;
        }
        if esc == Esc::HtmlNamedBare && !name.1 {
            esc = if name.0.is_some() {
                Esc::HtmlNamed
            } else {
                Esc::HtmlDecBare
            };
        }
        // An escape of an escape: the inner one first.
        let outer = esc;
        if matches!(esc, Esc::HtmlDouble | Esc::JsonHtml) {
            esc = if name.0.is_some() {
                Esc::HtmlNamed
            } else {
                Esc::HtmlDec
            };
        }
        if esc == Esc::JsonPercent {
            esc = Esc::Percent;
        }
        let mut out = Vec::new();
        let mut open = None;
        let cp = u32::from(c);
        match esc {
            Esc::Raw => out = self.raw_bytes(c),
            Esc::JsonU | Esc::JsonUUpper | Esc::JsonShort => {
                let short = match c {
                    '/' => Some("\\/"),
                    '\t' => Some("\\t"),
                    '\n' => Some("\\n"),
                    '\r' => Some("\\r"),
                    '\u{c}' => Some("\\f"),
                    _ => None,
                };
                match short {
                    Some(s) if esc == Esc::JsonShort => out.extend_from_slice(s.as_bytes()),
                    _ => {
                        let mut units = [0u16; 2];
                        for u in c.encode_utf16(&mut units) {
                            let _ = if esc == Esc::JsonUUpper {
                                write!(out, "\\u{u:04X}")
                            } else {
                                write!(out, "\\u{u:04x}")
                            };
                        }
                    }
                }
            }
            Esc::HtmlDec | Esc::HtmlDecBare => {
                // Some with leading zeros (`&#00052;`).
                let zeros = if cp % 4 == 1 { "000" } else { "" };
                let _ = write!(out, "&#{zeros}{cp}");
                if esc == Esc::HtmlDec {
                    out.push(b';');
                } else {
                    open = Some(false);
                }
            }
            Esc::HtmlHex | Esc::HtmlHexBare => {
                let x = if cp % 2 == 0 { 'x' } else { 'X' };
                let _ = write!(out, "&#{x}{cp:X}");
                if esc == Esc::HtmlHex {
                    out.push(b';');
                } else {
                    open = Some(true);
                }
            }
            Esc::HtmlC1 => {
                let _ = write!(out, "&#{};", c1.unwrap_or(0xA0));
            }
            Esc::HtmlNamed | Esc::HtmlNamedBare => {
                let _ = write!(out, "&{}", name.0.unwrap_or("nbsp"));
                if esc == Esc::HtmlNamed {
                    out.push(b';');
                }
            }
            Esc::Percent | Esc::Percent2 | Esc::Plus => {
                if esc == Esc::Plus {
                    out.push(b'+');
                } else {
                    pct(
                        &mut out,
                        &self.raw_bytes(c),
                        esc == Esc::Percent2,
                        cp % 3 == 0,
                    );
                }
            }
            Esc::Qp => {
                for b in self.raw_bytes(c) {
                    let _ = write!(out, "={b:02X}");
                }
            }
            Esc::HtmlDouble | Esc::JsonPercent | Esc::JsonHtml => {}
        }
        let wrap = |out: &[u8], lead: u8, with: &[u8]| -> Vec<u8> {
            let mut w = Vec::new();
            for &b in out {
                if b == lead {
                    w.extend_from_slice(with);
                } else {
                    w.push(b);
                }
            }
            w
        };
        match outer {
            Esc::HtmlDouble => out = wrap(&out, b'&', b"&amp;"),
            Esc::JsonPercent => out = wrap(&out, b'%', b"\\u0025"),
            Esc::JsonHtml => out = wrap(&out, b'&', b"\\u0026"),
            _ => {}
        }
        // A character reference in a form value or a query is itself percent-encoded.
        if matches!(self.kind, Kind::Form | Kind::Query) && out.first() == Some(&b'&') {
            let mut p = Vec::new();
            for &b in &out {
                if matches!(b, b'&' | b'#' | b';') {
                    pct(&mut p, &[b], false, false);
                } else {
                    p.push(b);
                }
            }
            out = p;
        }
        Tok {
            bytes: out,
            ch: Some(c),
            open,
        }
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
            (true, 1..=4) => {
                let text = String::from_utf8_lossy(&body);
                let le = self.utf16 % 2 == 1;
                let bom = if self.utf16 <= 2 { "\u{feff}" } else { "" };
                let units: Vec<u8> = bom
                    .encode_utf16()
                    .chain(text.encode_utf16())
                    .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
                    .collect();
                (ct, units)
            }
            _ => (ct, body),
        };
        let (body, coding) = if self.gzip {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = e.write_all(&body);
            (e.finish().unwrap_or_default(), Some("gzip"))
        } else {
            (body, None)
        };
        Request {
            path,
            content_type: Some(ct),
            coding,
            body,
        }
    }
}
