//! What the test's encoder writes a card with: test cards, digit forms (any `Nd`
//! script and compatibility digits), separators with their HTML5 names and
//! windows-1252 bytes.

/// Test cards of several networks and lengths (Luhn-valid, card-shaped).
pub const CARDS: [&str; 10] = [
    "4242424242424242",
    "378282246310005",
    "4111111111111111",
    "5555555555554444",
    "6011111111111117",
    "3530111333300000",
    "2223003122003222",
    "36227206271667",
    "4000056655665556",
    "5105105105105100",
];

/// How a card digit is written: the zero of a run of ten `Nd` code points, or a
/// compatibility form that NFKC reads as the digit.
const ND_ZEROS: [u32; 27] = [
    0x30, 0xFF10, 0x660, 0x6F0, 0x966, 0x9E6, 0xE50, 0x1040, 0x1810, 0x7C0, 0x1E950, 0x1D7CE,
    0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1FBF0, 0xBE6, 0x17E0, 0xED0, 0x1C50, 0xA8D0, 0x104A0,
    0x11066, 0x16A60, 0x11F50, 0x1E4F0,
];
/// Superscripts, subscripts, circled, dingbat circled: after the `Nd` forms.
pub const DIGIT_FORMS: u8 = 31;

pub fn digit_char(form: u8, d: u32) -> char {
    let form = usize::from(form % DIGIT_FORMS);
    let cp = if let Some(zero) = ND_ZEROS.get(form) {
        zero + d
    } else {
        match (form - ND_ZEROS.len(), d) {
            (0, 1) => 0xB9,
            (0, 2 | 3) => 0xB0 + d,
            (0, _) => 0x2070 + d,
            (1, _) => 0x2080 + d,
            (2, 0) => 0x24EA,
            (2, _) => 0x2460 + d - 1,
            (_, 0) => 0x30,
            (_, _) => 0x2780 + d - 1,
        }
    };
    char::from_u32(cp).unwrap_or('0')
}

/// A separator: the character, its HTML5 name (if it has one), whether that name
/// has a legacy form without `;`, and its windows-1252 byte (if it has one).
type Sep = (char, Option<&'static str>, bool, Option<u8>);

pub const SEPARATORS: [Sep; 68] = [
    (' ', None, false, Some(b' ')),
    ('-', None, false, Some(b'-')),
    ('.', Some("period"), false, Some(b'.')),
    ('/', Some("sol"), false, Some(b'/')),
    ('_', Some("lowbar"), false, Some(b'_')),
    (',', Some("comma"), false, Some(b',')),
    ('\t', Some("Tab"), false, Some(b'\t')),
    ('\n', Some("NewLine"), false, Some(b'\n')),
    ('\r', None, false, Some(b'\r')),
    ('\u{c}', None, false, None),
    ('+', Some("plus"), false, Some(b'+')),
    ('\u{a0}', Some("nbsp"), true, Some(0xA0)),
    ('\u{ad}', Some("shy"), true, Some(0xAD)),
    ('\u{b7}', Some("middot"), true, Some(0xB7)),
    ('\u{2022}', Some("bull"), false, Some(0x95)),
    ('\u{2013}', Some("ndash"), false, Some(0x96)),
    ('\u{2014}', Some("mdash"), false, Some(0x97)),
    ('\u{2010}', Some("hyphen"), false, None),
    ('\u{2011}', None, false, None),
    ('\u{2012}', None, false, None),
    ('\u{2015}', Some("horbar"), false, None),
    ('\u{2212}', Some("minus"), false, None),
    ('\u{fe58}', None, false, None),
    ('\u{fe63}', None, false, None),
    ('\u{ff0d}', None, false, None),
    ('\u{2009}', Some("thinsp"), false, None),
    ('\u{200a}', Some("hairsp"), false, None),
    ('\u{2002}', Some("ensp"), false, None),
    ('\u{2003}', Some("emsp"), false, None),
    ('\u{2007}', Some("numsp"), false, None),
    ('\u{2008}', Some("puncsp"), false, None),
    ('\u{202f}', None, false, None),
    ('\u{205f}', Some("MediumSpace"), false, None),
    ('\u{3000}', None, false, None),
    ('\u{200b}', Some("ZeroWidthSpace"), false, None),
    ('\u{200c}', Some("zwnj"), false, None),
    ('\u{200d}', Some("zwj"), false, None),
    ('\u{2060}', Some("NoBreak"), false, None),
    ('\u{feff}', None, false, None),
    ('\u{200e}', Some("lrm"), false, None),
    ('\u{200f}', Some("rlm"), false, None),
    ('\u{2062}', Some("InvisibleTimes"), false, None),
    ('\u{2063}', Some("ic"), false, None),
    ('\u{fe0f}', None, false, None),
    ('\u{3164}', None, false, None),
    ('\u{30fb}', None, false, None),
    ('\u{20e3}', None, false, None),
    ('\u{b}', None, false, Some(0x0B)),
    ('\u{85}', None, false, None),
    ('\u{2028}', None, false, None),
    ('\u{2029}', None, false, None),
    ('\u{1680}', None, false, None),
    ('\u{180e}', None, false, None),
    ('\u{2061}', Some("af"), false, None),
    ('\u{2064}', None, false, None),
    ('\u{061c}', None, false, None),
    ('\u{206a}', None, false, None),
    ('\u{fe00}', None, false, None),
    ('\u{e0020}', None, false, None),
    // Unicode tag characters (format characters, invisible): a tag digit, tag
    // letters, the language tag, cancel tag.
    ('\u{e0034}', None, false, None),
    ('\u{e0061}', None, false, None),
    ('\u{e007e}', None, false, None),
    ('\u{e007f}', None, false, None),
    ('\u{e0001}', None, false, None),
    ('\u{0311}', Some("DownBreve"), false, None),
    ('\u{20dd}', None, false, None),
    ('\u{115f}', None, false, None),
    ('\u{ffa0}', None, false, None),
];

/// Named references for the Latin-1 superscript digits (legacy forms too).
pub fn digit_name(c: char) -> Option<&'static str> {
    match c {
        '\u{b9}' => Some("sup1"),
        '\u{b2}' => Some("sup2"),
        '\u{b3}' => Some("sup3"),
        _ => None,
    }
}

/// A byte of windows-1252 for `c`, where it has one that the cases use.
pub fn cp1252(c: char) -> Option<u8> {
    if c.is_ascii() {
        return u8::try_from(c).ok();
    }
    if let Some(b) = digit_name(c).and(u8::try_from(u32::from(c)).ok()) {
        return Some(b);
    }
    SEPARATORS.iter().find(|s| s.0 == c).and_then(|s| s.3)
}
