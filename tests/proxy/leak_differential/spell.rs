//! How the test's encoder spells one character: raw in the body's charset, or through
//! an escape a backend decodes in that body (JSON, percent, HTML references, markup,
//! quoted-printable). Nothing here calls vaultgate.

use std::io::Write as _;

use super::alphabet::{SEPARATORS, cp1252, digit_name};
use super::encode::{Case, Kind};

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
    /// `%u00A0` (`%uD835%uDFCE` beyond the BMP), as old JavaScript `unescape` and IIS
    /// decode.
    PercentU,
    /// `\x34` and octal `\064` (ASCII only: the escapes of C, Python, PHP strings
    /// decode to bytes); octal only in the cases that allow it (`Case::octal`).
    BackslashX,
    Octal,
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
                PercentU,
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
                PercentU,
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
                PercentU,
                BackslashX,
                Octal,
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
                &[Raw, HtmlDec, HtmlHex, HtmlNamed, HtmlC1, Percent, PercentU]
            }
            Kind::MultipartQp => &[Raw, Qp],
            Kind::Query => &[Percent, Percent2, Plus, Raw, PercentU],
        }
    }

    /// Markup a parser of this body drops between two digits.
    pub(super) fn markup(self, cdata: bool, m: u8) -> Option<&'static str> {
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

/// A spelled character (`ch`: the character, `None` for markup), and whether it is a
/// character reference whose end a following digit (or hex digit) would extend.
pub(super) struct Tok {
    pub(super) bytes: Vec<u8>,
    pub(super) ch: Option<char>,
    pub(super) open: Option<bool>,
}

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
    pub(super) fn latin1(&self) -> bool {
        self.latin1 != 0 && self.kind != Kind::Query
    }

    /// The bytes of `c` as the body's charset writes them.
    pub(super) fn raw_bytes(&self, c: char) -> Vec<u8> {
        match (self.latin1(), cp1252(c)) {
            (true, Some(b)) => vec![b],
            _ => c.to_string().into_bytes(),
        }
    }

    pub(super) fn spell(&self, c: char, esc: u8) -> Tok {
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
        if esc == Esc::Octal && !self.octal {
            esc = Esc::BackslashX;
        }
        if matches!(esc, Esc::BackslashX | Esc::Octal) && !c.is_ascii() {
            esc = Esc::Raw;
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
            Esc::PercentU => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = if cp % 2 == 0 {
                        write!(out, "%u{u:04X}")
                    } else {
                        write!(out, "%u{u:04x}")
                    };
                }
            }
            Esc::BackslashX => {
                let _ = write!(out, "\\x{cp:02x}");
            }
            Esc::Octal => {
                let _ = write!(out, "\\{cp:03o}");
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
}
