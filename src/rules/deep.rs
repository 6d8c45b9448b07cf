//! The leak guard inside one field: what a backend could read as a card number
//! beyond the digits written in the field's text.
//!
//! - A JSON number is read as the integer it denotes (`4.242424242424242e15`), and a
//!   number with a fraction or an exponent also as the digits it is written with.
//!   It is also read as the IEEE-754 double that JavaScript's and Python's parsers
//!   make of it, when that is an integer: `<card minus one>.9` is the card, and past
//!   2^53 an integer is another one, read both exactly and as JavaScript prints it
//!   (see [`double_readings`]).
//!   A number literal in text is read so too (`<card>0e-1` in a string):
//!   a backend may parse the string as a number.
//! - Nested encodings are decoded, down to `limits.max_decode_depth` layers
//!   (default [`DEFAULT_DECODE_DEPTH`]): a JSON document inside a string, base64
//!   runs, and `\u`/`%u`/`\x`/octal `\NNN` escapes, HTML character references and
//!   percent-encoding.
//!
//! A hit written in ASCII digits in the field's own text can be replaced in place
//! (the caller tokenizes or rejects it by the route's policy). Every other hit (digits
//! of another script, an exponent number, anything found after decoding) cannot: the
//! caller gets its digits and must refuse the request unless they are a token of its
//! own.

use std::ops::Range;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

use super::guard::{self, MAX_DIGITS, MIN_DIGITS};
use super::pieces::Pieces;
use crate::sensitive::Plaintext;

/// Decoding layers when no limit is set.
pub const DEFAULT_DECODE_DEPTH: usize = 3;
/// The fewest characters of a base64 run worth decoding (13 bytes decode from 18).
const MIN_BASE64_RUN: usize = 16;
/// The most distinct hidden hits kept per field. A field that reaches it is refused
/// whatever its hits are (its callers check): one past it could be a card beside a
/// thousand tokens of ours.
pub const MAX_HIDDEN: usize = 1024;

tokio::task_local! {
    static READING: (usize, bool);
}

/// Run `f` (which scans fields, through the codecs) with the given decode depth.
pub fn with_decode_depth<R>(depth: usize, f: impl FnOnce() -> R) -> R {
    with_reading(depth, true, f)
}

/// Run `f` with the given decode depth, and with a list's values in what is
/// decoded read joined or not (a route's `join_lists`).
pub fn with_reading<R>(depth: usize, join_lists: bool, f: impl FnOnce() -> R) -> R {
    READING.sync_scope((depth, join_lists), f)
}

fn decode_depth() -> usize {
    READING.try_with(|r| r.0).unwrap_or(DEFAULT_DECODE_DEPTH)
}

fn join_lists() -> bool {
    READING.try_with(|r| r.1).unwrap_or(true)
}

/// What kind of leaf a field's text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// A string, key, form value or raw text.
    Text,
    /// A JSON number literal.
    Number,
}

/// Scan one field. Hits that can be replaced in place go to `in_place` (byte ranges
/// of `text`); the digits of every other hit go to `hidden`, each value once.
pub fn scan_leaf(
    text: &str,
    leaf: Leaf,
    in_place: &mut Vec<Range<usize>>,
    hidden: &mut Vec<Plaintext>,
) {
    let mut found = Found {
        hidden,
        pieces: Pieces::default(),
        lists: 0,
        join: false,
    };
    if leaf == Leaf::Number && !is_plain_integer(text) {
        integer_readings(text, |digits| found.card_if_shaped(digits));
        found.doubles(text);
        // The literal's own digits too: `3e` or `.5` around a card's digits makes no
        // card as a value, but the text holds one for whoever reads the body as text
        // (found by the pipeline fuzz target). A number written so is no place for a
        // token: such a hit is refused, not replaced.
        guard::scan_hits(text.as_bytes(), |hit| found.push(hit.digits()));
        return;
    }
    let bytes = text.as_bytes();
    let first = in_place.len();
    guard::scan_hits(bytes, |hit| {
        if hit.ascii {
            in_place.push(hit.range.clone());
        } else {
            found.push(hit.digits());
        }
    });
    if leaf == Leaf::Number {
        // Past 2^53 a double cannot hold every integer: a backend reading the number
        // as one gets another (unless the text is a card, which a token replaces).
        if in_place.len() == first && text.len() >= DOUBLE_EXACT_DIGITS {
            found.doubles(text);
        }
        return;
    }
    let max = decode_depth();
    let literals = may_hold_literal(bytes);
    let hide = max > 0 && may_hide(bytes);
    // Text with NULs is also read as UTF-16 and UTF-32, escapes or not (below).
    let wide = memchr::memchr(0, bytes).is_some();
    if !literals && !hide && !wide {
        return;
    }
    // Read what is left once the in-place hits are taken out (they will be tokens),
    // so that the same card is not also found, hidden, in an escape or a literal.
    let masked;
    let rest = match in_place.get(first..).filter(|r| !r.is_empty()) {
        None => text,
        Some(ranges) => {
            masked = masked_text(bytes, ranges);
            match std::str::from_utf8(&masked) {
                Ok(t) => t,
                Err(_) => return,
            }
        }
    };
    if literals {
        found.literals(rest);
    }
    found.join = join_lists();
    if hide {
        decode(rest, 0, max, &mut found);
    }
    if wide && rest.contains('\0') {
        // Text with NULs may be UTF-16 or UTF-32 (of ASCII it is valid UTF-8) to a
        // backend that detects the encoding: read it as UTF-16 and UTF-32 either way
        // round and as the text without its NULs, escapes and all (`&\0#\05\02\0;\0`, which
        // the NULs hide from `decode`; `` `\x20`` is U+2060, a word joiner, in
        // UTF-16LE). Every hit there has a NUL in its span as sent: none is replaced
        // in place.
        for reading in crate::rules::wide_text::readings(rest.as_bytes()) {
            guard::scan_hits(reading.as_bytes(), |hit| found.push(hit.digits()));
            if max > 0 && may_hide(reading.as_bytes()) {
                decode(&reading, 0, max, &mut found);
            }
        }
    }
    found.ordered_pieces();
}

/// `bytes` with every range in `ranges` overwritten by `x`: the in-place hits taken
/// out (ASCII digits and separators, so the text stays UTF-8).
fn masked_text(bytes: &[u8], ranges: &[Range<usize>]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut masked = zeroize::Zeroizing::new(bytes.to_vec());
    for r in ranges {
        if let Some(span) = masked.get_mut(r.clone()) {
            span.fill(b'x');
        }
    }
    masked
}

/// Where hidden hits go, and the pieces of the lists in what was decoded
/// ([`pieces`](super::pieces)): a card split across a decoded document's list.
struct Found<'a> {
    hidden: &'a mut Vec<Plaintext>,
    pieces: Pieces,
    /// How many lists (arrays, objects, forms) were opened: each one's id.
    lists: u64,
    /// Whether lists are read joined (a route's `join_lists`).
    join: bool,
}

impl Found<'_> {
    /// A new list's id.
    fn list(&mut self) -> u64 {
        self.lists += 1;
        self.lists
    }

    /// One value of a list: the card its pieces join to is a hidden hit.
    fn piece(&mut self, list: u64, order: Option<u64>, text: &str, number: bool) {
        if !self.join {
            return;
        }
        if let Some(card) = self.pieces.add(list, order, text, number).joined {
            self.push(card.expose().as_bytes());
        }
    }

    /// The lists whose pieces came out of the order of their numbers, joined in it.
    fn ordered_pieces(&mut self) {
        if let Some((_, card)) = self.pieces.finish() {
            self.push(card.expose().as_bytes());
        }
    }

    /// A form decoded from a field (base64 of `card[number][]=4242…&…`): its values
    /// as pieces of the lists their keys name.
    fn form(&mut self, text: &str) {
        let salt = self.list();
        for (key, value) in form_urlencoded::parse(text.as_bytes()) {
            let (list, order) = super::pieces::form_list(salt, &key);
            self.piece(list, order, &value, false);
        }
    }

    fn push(&mut self, digits: &[u8]) {
        let Ok(s) = std::str::from_utf8(digits) else {
            return;
        };
        if self.hidden.len() < MAX_HIDDEN && !self.hidden.iter().any(|h| h.expose() == s) {
            self.hidden.push(Plaintext::from_str_copy(s));
        }
    }

    fn card_if_shaped(&mut self, digits: &[u8]) {
        if guard::is_card_shaped(digits) {
            self.push(digits);
        }
    }

    /// The cards a number literal is as a double ([`double_readings`]).
    fn doubles(&mut self, literal: &str) {
        for digits in double_readings(literal).iter().flatten() {
            self.card_if_shaped(digits.as_bytes());
        }
    }

    /// Every hit in text that was decoded at least once, number literals included.
    fn scan(&mut self, bytes: &[u8]) {
        guard::scan_hits(bytes, |hit| self.push(hit.digits()));
        literal_cards(bytes, |_, digits| self.push(digits));
    }

    /// The cards that the number literals with a fraction or an exponent in `text`
    /// denote ([`literal_cards`]).
    fn literals(&mut self, text: &str) {
        literal_cards(text.as_bytes(), |_, digits| self.push(digits));
    }
}

/// Text that has been decoded `level` times: scan it, and decode it further while
/// the depth allows.
fn decoded(bytes: &[u8], level: usize, max: usize, found: &mut Found<'_>) {
    found.scan(bytes);
    // A decoded form (Plano's base64 parameters): its lists' values joined.
    if memchr::memchr(b'=', bytes).is_some()
        && let Ok(text) = std::str::from_utf8(bytes)
        && looks_like_form(text)
    {
        found.form(text);
    }
    // A document declaring its encoding (`<?xml … encoding="Shift_JIS"?>`), as an XML
    // parser given these bytes reads it.
    if let Some(text) = super::xml_decl::decoded(bytes) {
        found.scan(text.as_bytes());
    }
    if level < max
        && may_hide(bytes)
        && let Ok(text) = std::str::from_utf8(bytes)
    {
        decode(text, level, max, found);
    }
}

/// Apply every decoder to `text` (decoded `level` times so far).
fn decode(text: &str, level: usize, max: usize, found: &mut Found<'_>) {
    let next = level + 1;
    let trimmed = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if trimmed.starts_with(['{', '[', '"'])
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(trimmed)
    {
        json_value(&value, next, max, found);
        // Numbers from their literals: a parsed float may be off in the last digit.
        found.literals(trimmed);
    }
    if let Some(unescaped) = unescape(text) {
        decoded(unescaped.as_bytes(), next, max, found);
    }
    for run in base64_runs(text) {
        if let Some(bytes) = base64_decode(run) {
            decoded(&bytes, next, max, found);
        }
    }
}

/// The strings, keys and numbers of a JSON document decoded from a field.
fn json_value(v: &serde_json::Value, level: usize, max: usize, found: &mut Found<'_>) {
    use serde_json::Value;
    match v {
        Value::String(s) => decoded(s.as_bytes(), level, max, found),
        Value::Array(items) => {
            let list = found.list();
            for (i, item) in items.iter().enumerate() {
                json_piece(item, list, u64::try_from(i).ok(), found);
                json_value(item, level, max, found);
            }
        }
        Value::Object(map) => {
            let object = found.list();
            for (k, item) in map {
                decoded(k.as_bytes(), level, max, found);
                // Numbered keys (`cc1`, `cc2`) are the boxes of one value.
                let (stem, n) = super::pieces::numbered(k);
                if n.is_some() {
                    let mut id = super::pieces::ListId::default();
                    id.index(usize::try_from(object).unwrap_or(usize::MAX));
                    id.key(stem);
                    json_piece(item, id.finish(), n, found);
                }
                json_value(item, level, max, found);
            }
        }
        // Integers are digits in the text, found by the flat scan; other numbers
        // are read from their literals.
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A JSON value as a piece of `list`: a string, or a number's literal.
fn json_piece(item: &serde_json::Value, list: u64, order: Option<u64>, found: &mut Found<'_>) {
    match item {
        serde_json::Value::String(s) => found.piece(list, order, s, false),
        serde_json::Value::Number(n) => found.piece(list, order, &n.to_string(), true),
        _ => {}
    }
}

/// Whether decoded text reads as a form: `key=value` pairs joined by `&`, no white
/// space or JSON around them.
fn looks_like_form(text: &str) -> bool {
    text.contains('&')
        && !text.starts_with(['{', '[', '"'])
        && !text.bytes().any(|b| b.is_ascii_whitespace() || b < 0x20)
}

/// Whether text may hide a hit behind an encoding: long enough to hold one, and
/// holding a JSON opener, an escape, a percent sign, XML markup ([`markup_at`]) or a
/// base64-sized word that is not all digits (which [`base64_runs`] leaves alone: a
/// card number's own field).
fn may_hide(bytes: &[u8]) -> bool {
    if bytes.len() < MIN_DIGITS {
        return false;
    }
    let mut run = 0usize;
    let mut letters = false;
    for b in bytes {
        if matches!(b, b'{' | b'[' | b'"' | b'\\' | b'&' | b'%' | b'<' | b']') {
            return true;
        }
        if is_base64_byte(*b) {
            run += 1;
            letters |= !b.is_ascii_digit();
            if run >= MIN_BASE64_RUN && letters {
                return true;
            }
        } else {
            run = 0;
            letters = false;
        }
    }
    false
}

// === numbers ===

/// Whether text may hold a number literal that denotes a card: it may hold a hit at
/// all ([`guard::may_contain`]), and a `.`, `e` or `E` follows an ASCII digit. A
/// cheap check: text leaves of every tokenizing request pass here.
fn may_hold_literal(bytes: &[u8]) -> bool {
    guard::may_contain(bytes)
        && bytes
            .windows(2)
            .any(|w| matches!(w, [b'0'..=b'9', b'.' | b'e' | b'E']))
}

/// Whether a byte may be part of a number literal.
fn in_literal(b: &u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')
}

/// The number literals in text written with a fraction or an exponent (plain
/// integers are digits the flat scan sees), with their byte ranges.
fn number_literals(text: &[u8]) -> impl Iterator<Item = (Range<usize>, &str)> {
    let mut at = 0;
    text.split(|b| !in_literal(b)).filter_map(move |t| {
        let start = at;
        at += t.len() + 1;
        let lead = t
            .iter()
            .take_while(|b| matches!(b, b'+' | b'.' | b'e' | b'E'))
            .count();
        let t = t.get(lead..)?;
        let lit = std::str::from_utf8(t).ok()?;
        (lit.contains(['.', 'e', 'E']) && t.iter().any(u8::is_ascii_digit))
            .then(|| (start + lead..start + lead + t.len(), lit))
    })
}

/// The cards that the number literals with a fraction or an exponent in `text`
/// denote: the integer a literal is (`0.0<card>e17`), and the doubles JavaScript and
/// Python parse it to ([`double_readings`]). `f` gets each card's literal's range and
/// its digits.
///
/// Only literals with at least 13 significant digits before the exponent are read
/// (they lie in a run that may hold a card, [`guard::candidate_runs`]): a card's
/// literal has all its digits there unless the card ends in zeros that the exponent
/// writes (`510510510510e4`). Text without such a run costs the guard's own
/// pre-check.
pub fn literal_cards(text: &[u8], f: impl FnMut(Range<usize>, &[u8])) {
    let mut candidates = Vec::new();
    guard::candidate_runs(text, |run| candidates.push(run));
    literal_cards_in(text, &candidates, f);
}

/// [`literal_cards`], given `text`'s candidate runs.
pub(super) fn literal_cards_in(
    text: &[u8],
    candidates: &[Range<usize>],
    mut f: impl FnMut(Range<usize>, &[u8]),
) {
    for run in candidates.iter().cloned() {
        let Some(digits) = text.get(run.clone()) else {
            continue;
        };
        let exponent = text.get(run.end).is_some_and(|b| matches!(b, b'e' | b'E'));
        if !exponent && memchr::memchr(b'.', digits).is_none() {
            continue;
        }
        // The literal may begin before the run (a sign, a point) and end after it
        // (its exponent).
        let before = text.get(..run.start).unwrap_or_default();
        let start = before
            .iter()
            .rposition(|b| !in_literal(b))
            .map_or(0, |i| i + 1);
        let after = text.get(run.end..).unwrap_or_default();
        let end = run.end
            + after
                .iter()
                .position(|b| !in_literal(b))
                .unwrap_or(after.len());
        let Some(stretch) = text.get(start..end) else {
            continue;
        };
        for (range, lit) in number_literals(stretch) {
            literal_card(start + range.start..start + range.end, lit, &mut f);
        }
    }
}

/// The significant digits a number literal is written with before its exponent
/// (leading zeros are not).
fn significant_digits(lit: &str) -> usize {
    lit.bytes()
        .take_while(|b| !matches!(b, b'e' | b'E'))
        .filter(u8::is_ascii_digit)
        .skip_while(|b| *b == b'0')
        .count()
}

/// [`literal_cards`] for one literal.
fn literal_card(range: Range<usize>, lit: &str, f: &mut impl FnMut(Range<usize>, &[u8])) {
    // Read when its own digits could make a card: wherever the text is cut, such a
    // literal is a candidate run's, whatever stands around it.
    if significant_digits(lit) < MIN_DIGITS {
        return;
    }
    // `<digits>.` and `<digits>.000` are their digits as written, which the flat scan
    // reads (and may find to be our token).
    let (int, frac) = lit.split_once('.').unwrap_or((lit, "e"));
    if frac.bytes().all(|b| b == b'0') && int.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return;
    }
    integer_readings(lit, |digits| {
        if guard::is_card_shaped(digits) {
            f(range.clone(), digits);
        }
    });
    for digits in double_readings(lit).iter().flatten() {
        if guard::is_card_shaped(digits.as_bytes()) {
            f(range.clone(), digits.as_bytes());
        }
    }
}

/// Integers of fewer digits are all exact as doubles (2^53 has 16), and a decimal
/// with fewer significant digits rounds to an integer only if it is one.
const DOUBLE_EXACT_DIGITS: usize = 16;

/// The integers a parser that reads JSON numbers as IEEE-754 doubles (JavaScript,
/// Python's `float`) makes of a literal, if the double is an integer of a card's
/// length: its exact value (what an integer conversion gives) and its shortest
/// round-trip spelling (what JavaScript prints), when they differ. Zeroized: they
/// may be a card.
fn double_readings(literal: &str) -> [Option<zeroize::Zeroizing<String>>; 2] {
    // With fewer significant digits the double is the exact value, which
    // `integer_digits` reads; parsing a float costs more than this count.
    if significant_digits(literal) < DOUBLE_EXACT_DIGITS {
        return [None, None];
    }
    let v = match literal.parse::<f64>() {
        Ok(v) if v.is_finite() && v.fract() == 0.0 => v.abs(),
        _ => return [None, None],
    };
    // 10^12 is the smallest 13-digit integer, 10^19 the smallest with 20.
    if !(1e12..1e19).contains(&v) {
        return [None, None];
    }
    // In range, so the cast is exact: `v` is an integer below u64::MAX.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let exact = zeroize::Zeroizing::new((v as u64).to_string());
    let shortest = zeroize::Zeroizing::new(format!("{v}"));
    let shortest = (*shortest != *exact).then_some(shortest);
    [Some(exact), shortest]
}

/// `-?[0-9]+`: a number whose text is its digits, replaceable in place.
fn is_plain_integer(lit: &str) -> bool {
    let digits = lit.strip_prefix('-').unwrap_or(lit);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The digits of the integer a JSON number literal denotes (`4.2e1` → `42`), if it
/// is an integer of at most [`MAX_DIGITS`] digits.
#[cfg(test)]
fn integer_digits(lit: &str) -> Option<Vec<u8>> {
    integer_part(lit).and_then(|(digits, fraction)| (!fraction).then_some(digits))
}

/// The integers a number literal is read as: the one it denotes, or, when it has a
/// fraction, the integers on either side of it ([`integer_part`]).
fn integer_readings(lit: &str, mut f: impl FnMut(&[u8])) {
    match integer_part(lit) {
        Some((digits, false)) => f(&zeroize::Zeroizing::new(digits)),
        Some((down, true)) => {
            let down = zeroize::Zeroizing::new(down);
            let up = zeroize::Zeroizing::new(incremented(&down));
            f(&down);
            f(&up);
        }
        None => {}
    }
}

/// A decimal number's digits plus one (`4242` → `4243`, `99` → `100`).
fn incremented(digits: &[u8]) -> Vec<u8> {
    let mut out = digits.to_vec();
    for d in out.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return out;
        }
    }
    out.insert(0, b'1');
    out
}

/// The digits of the integer part of the number a JSON number literal denotes, if
/// it has at most [`MAX_DIGITS`] digits, and whether a fraction follows it
/// (`4.2e1` → `42`, none; `424242424242424.21e1` → `4242424242424242`, a fraction).
/// A number with a fraction is read by its integer neighbours too: binders that
/// convert it to an integer truncate it (Jackson binding a JSON number to a `long`,
/// Python's `int()` of a float, JavaScript's `Math.trunc`) or round it.
fn integer_part(lit: &str) -> Option<(Vec<u8>, bool)> {
    let body = lit.strip_prefix('-').unwrap_or(lit);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (body.get(..i)?, body.get(i + 1..)?),
        None => (body, "0"),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, b),
        None => (mantissa, ""),
    };
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let exp_digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    if exp_digits.is_empty() || !exp_digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Beyond this the integer is far too long (or too small) to be a card.
    let exp_abs: i64 = if exp_digits.len() > 6 {
        1_000_000
    } else {
        exp_digits.parse().ok()?
    };
    let exp = if exp.starts_with('-') {
        -exp_abs
    } else {
        exp_abs
    };
    let all: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    // value = all × 10^(exp − frac.len())
    let shift = exp.checked_sub(i64::try_from(frac.len()).ok()?)?;
    let mut digits: Vec<u8> = all.into_iter().skip_while(|b| *b == b'0').collect();
    if shift >= 0 {
        let zeros = usize::try_from(shift).ok()?;
        if digits.len().saturating_add(zeros) > MAX_DIGITS {
            return None;
        }
        if !digits.is_empty() {
            digits.resize(digits.len() + zeros, b'0');
        }
    } else {
        let cut = usize::try_from(shift.unsigned_abs()).ok()?;
        let keep = digits.len().checked_sub(cut)?;
        let fraction = digits.get(keep..)?.iter().any(|b| *b != b'0');
        digits.truncate(keep);
        return (digits.len() <= MAX_DIGITS).then_some((digits, fraction));
    }
    (digits.len() <= MAX_DIGITS).then_some((digits, false))
}

// === escapes ===

/// One escape, decoded.
enum Unescaped {
    /// An escape of a character (`\u0034`, `%u0034`, `&#52;`).
    Char(char),
    /// An escape of a byte (`%34`, `\x34`, `\064`): several may spell one UTF-8
    /// character.
    Byte(u8),
    /// Markup that stands for no text (`<![CDATA[`, `<!-- … -->`).
    Nothing,
}

/// The longest XML comment or processing instruction read as markup.
const MAX_MARKUP: usize = 1024;

/// XML markup at the start of `s` that a parser drops from the text around it, so
/// that `4242<![CDATA[]]>4242…` or `4242<!-- -->4242…` is one number to it: a CDATA
/// section's opening and closing markers, a comment, a processing instruction (at
/// most [`MAX_MARKUP`] bytes long).
fn markup_at(s: &str) -> (Option<Unescaped>, usize) {
    markup_len(s.as_bytes()).map_or((None, 1), |n| (Some(Unescaped::Nothing), n))
}

/// The length of the XML markup [`markup_at`] reads as nothing at the start of `s`.
pub(crate) fn markup_len(s: &[u8]) -> Option<usize> {
    let closed = |open: &[u8], close: &[u8]| {
        let body = s.get(open.len()..)?;
        let body = body.get(..body.len().min(MAX_MARKUP))?;
        let end = memchr::memmem::find(body, close)?;
        Some(open.len() + end + close.len())
    };
    if s.starts_with(b"<![CDATA[") {
        Some(b"<![CDATA[".len())
    } else if s.starts_with(b"]]>") {
        Some(b"]]>".len())
    } else if s.starts_with(b"<!--") {
        closed(b"<!--", b"-->")
    } else if s.starts_with(b"<?") {
        closed(b"<?", b"?>")
    } else {
        None
    }
}

/// Text with `\uXXXX`, `%uXXXX` (surrogate pairs too), `\xHH`, octal `\NNN`, the
/// one-letter backslash escapes (`\/`, `\t`, …), `&#N;`, `&#xH;` and `%HH` escapes
/// decoded, and the XML markup a parser drops from text read as nothing
/// ([`markup_at`]), if it has any.
pub(crate) fn unescape(text: &str) -> Option<String> {
    if !text.contains(['\\', '&', '%', '<', ']']) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(c) = rest.chars().next() {
        let (decoded, used) = match c {
            '\\' => escape_at(rest),
            '&' => char_ref_at(rest),
            '%' => percent_at(rest),
            '<' | ']' => markup_at(rest),
            _ => (None, c.len_utf8()),
        };
        if let Some(Unescaped::Byte(b)) = decoded {
            bytes.push(b);
            changed = true;
            rest = rest.get(used..)?;
            continue;
        }
        flush_bytes(&mut bytes, &mut out);
        match decoded {
            Some(Unescaped::Char(d)) => {
                out.push(d);
                changed = true;
            }
            Some(Unescaped::Nothing) => changed = true,
            _ => out.push_str(rest.get(..used)?),
        }
        rest = rest.get(used..)?;
    }
    flush_bytes(&mut bytes, &mut out);
    changed.then_some(out)
}

/// Append escaped bytes as the UTF-8 they spell, a byte that is not UTF-8 as a
/// single-byte charset reads it (`%A0` a no-break space in a Latin-1 form:
/// [`digits::text_of`](crate::rules::digits::text_of)).
fn flush_bytes(bytes: &mut Vec<u8>, out: &mut String) {
    if !bytes.is_empty() {
        out.push_str(&crate::rules::digits::text_of(bytes));
        bytes.clear();
    }
}

fn hex_value(s: Option<&str>) -> Option<u32> {
    let s = s?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// A backslash escape at the start of `s`: what it decodes to and the bytes used.
fn escape_at(s: &str) -> (Option<Unescaped>, usize) {
    match s.as_bytes().get(1) {
        Some(b'u') => u_escape_at(s),
        Some(b'x') => match hex_value(s.get(2..4)).and_then(|v| u8::try_from(v).ok()) {
            Some(b) => (Some(Unescaped::Byte(b)), 4),
            None => (None, 1),
        },
        Some(b'0'..=b'7') => octal_at(s),
        // The short escapes of JSON and JavaScript: `\/`, `\t`, `\n`, `\r`, `\f` and
        // `\v` decode to separators (`4242\/4242\/…` is a card to a JSON reader).
        Some(&b) => match short_escape(b) {
            Some(c) => (Some(Unescaped::Char(c)), 2),
            None => (None, 1),
        },
        None => (None, 1),
    }
}

/// The character a one-letter backslash escape stands for (JSON's, and JavaScript's
/// `\v`).
fn short_escape(b: u8) -> Option<char> {
    Some(match b {
        b'/' => '/',
        b'\\' => '\\',
        b'"' => '"',
        b'\'' => '\'',
        b't' => '\t',
        b'n' => '\n',
        b'r' => '\r',
        b'f' => '\u{c}',
        b'b' => '\u{8}',
        b'v' => '\u{b}',
        _ => return None,
    })
}

/// A percent escape at the start of `s`: `%uXXXX` (as old JavaScript `escape`
/// writes, and some servers still decode) or `%HH`.
fn percent_at(s: &str) -> (Option<Unescaped>, usize) {
    match s.as_bytes().get(1) {
        Some(b'u' | b'U') => u_escape_at(s),
        _ => match hex_value(s.get(1..3)).and_then(|v| u8::try_from(v).ok()) {
            Some(b) => (Some(Unescaped::Byte(b)), 3),
            None => (None, 1),
        },
    }
}

/// A `\uXXXX` or `%uXXXX` escape at the start of `s`, or a surrogate pair of two
/// escapes with the same prefix: the character and the bytes used.
fn u_escape_at(s: &str) -> (Option<Unescaped>, usize) {
    let Some(unit) = hex_value(s.get(2..6)) else {
        return (None, 1);
    };
    if let Some(c) = char::from_u32(unit) {
        return (Some(Unescaped::Char(c)), 6);
    }
    let low = hex_value(s.get(8..12)).filter(|_| s.get(6..8) == s.get(..2));
    match low.and_then(|low| surrogate_pair(unit, low)) {
        Some(c) => (Some(Unescaped::Char(c)), 12),
        None => (None, 1),
    }
}

/// The character a UTF-16 surrogate pair encodes.
fn surrogate_pair(high: u32, low: u32) -> Option<char> {
    if !(0xD800..0xDC00).contains(&high) || !(0xDC00..0xE000).contains(&low) {
        return None;
    }
    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
}

/// An octal escape at the start of `s` (`\064`: one to three octal digits, at most
/// `\377`): the byte and the bytes used.
fn octal_at(s: &str) -> (Option<Unescaped>, usize) {
    let digits = s
        .bytes()
        .skip(1)
        .take(3)
        .take_while(|b| matches!(b, b'0'..=b'7'))
        .count();
    let value = s
        .get(1..1 + digits)
        .and_then(|o| u32::from_str_radix(o, 8).ok())
        .and_then(|v| u8::try_from(v).ok());
    match value {
        Some(b) => (Some(Unescaped::Byte(b)), 1 + digits),
        None => (None, 1),
    }
}

/// The most digits a numeric character reference is read with (leading zeros
/// included: `&#x0000034;`).
const MAX_REF_DIGITS: usize = 12;

/// A character reference at the start of `s`: what it stands for and the bytes used.
fn char_ref_at(s: &str) -> (Option<Unescaped>, usize) {
    if let Some((c, used)) = numeric_ref_at(s.as_bytes()) {
        return (Some(c.map_or(Unescaped::Nothing, Unescaped::Char)), used);
    }
    named_ref_at(s.as_bytes()).map_or((None, 1), |(c, used)| (Some(Unescaped::Char(c)), used))
}

/// A numeric character reference at the start of `s` (`&#52;`, `&#x34;`), read as
/// HTML reads one: the character (`None`: nothing) and the bytes used.
///
/// It ends where its digits do, with or without `;` (HTML reads `&#52 ` and `&#x34-`
/// as `4`, a parse error it recovers from, as browsers and Python's `html.unescape`
/// do); the numbers 128 to 159 stand for the windows-1252 characters of those bytes
/// (`&#150;` is an en dash, `&#149;` a bullet), not for C1 controls; and one to a
/// control or a noncharacter that Python's `html.unescape` drops (`&#1;`, `&#127;`,
/// `&#xFFFE;`) is nothing, so `4242&#1;4242…` is one number.
pub(crate) fn numeric_ref_at(s: &[u8]) -> Option<(Option<char>, usize)> {
    let body = s.strip_prefix(b"&#")?;
    let (radix, skip) = match body.first() {
        Some(b'x' | b'X') => (16, 1),
        _ => (10, 0),
    };
    let digits = body
        .iter()
        .skip(skip)
        .take(MAX_REF_DIGITS + 1)
        .take_while(|b| char::from(**b).is_digit(radix))
        .count();
    if digits == 0 || digits > MAX_REF_DIGITS {
        return None;
    }
    let num = std::str::from_utf8(body.get(skip..skip + digits)?).ok()?;
    let value = u32::from_str_radix(num, radix).ok()?;
    let dropped = matches!(value, 0x1..=0x8 | 0xB | 0xE..=0x1F | 0x7F | 0xFDD0..=0xFDEF)
        || (value & 0xFFFE == 0xFFFE && value <= 0x10FFFF);
    let c = match u8::try_from(value) {
        _ if dropped => None,
        Ok(b @ 0x80..=0x9F) => Some(crate::rules::digits::single_byte_char(b)),
        _ => Some(char::from_u32(value)?),
    };
    let semi = usize::from(body.get(skip + digits) == Some(&b';'));
    Some((c, 2 + skip + digits + semi))
}

/// The longest name of an HTML5 named character reference (`&CounterClockwiseContourIntegral;`).
const MAX_ENTITY_NAME: usize = 32;

/// An HTML5 named character reference at the start of `s` (`&ndash;`, `&nbsp;`,
/// `&NonBreakingSpace;`, `&sup2;`; the legacy ones without `;` too, as browsers and
/// Python's `html.unescape` read them) that stands for one character: that character
/// and the bytes used.
///
/// Names are looked up in the WHATWG table (`entities.json`, as `htmlize` builds it).
/// quick-xml's table, used before, had the code points from U+0100 to U+0FFF cut to
/// their first two hex digits: `&DownBreve;` (a combining mark, U+0311) read as the
/// digit `1`, `&UnderBar;` (`_`) as `3`, `&Alpha;` as `9`.
pub(crate) fn named_ref_at(s: &[u8]) -> Option<(char, usize)> {
    let rest = s.strip_prefix(b"&")?;
    let len = rest
        .iter()
        .take(MAX_ENTITY_NAME + 1)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let name = rest.get(..len)?;
    let one = |name: &[u8]| {
        let mut key: smallvec::SmallVec<[u8; MAX_ENTITY_NAME + 2]> = smallvec::SmallVec::new();
        key.push(b'&');
        key.extend_from_slice(name);
        key.push(b';');
        let text = std::str::from_utf8(htmlize::ENTITIES.get(key.as_slice())?).ok()?;
        let mut chars = text.chars();
        chars.next().filter(|_| chars.next().is_none())
    };
    if rest.get(len) == Some(&b';') {
        return one(name).map(|c| (c, len + 2));
    }
    // Without `;`, the longest name the text starts with (`&nbsp4242` is a no-break
    // space, then digits).
    (2..=len)
        .rev()
        .find_map(|n| Some((one(name.get(..n)?)?, n + 1)))
}

// === base64 ===

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// The runs of base64 characters (with their `=` padding) long enough to hold a
/// card, that are not just digits.
fn base64_runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii() && is_base64_byte(c as u8)) && c != '=')
        .flat_map(|s| s.split_inclusive('=').filter(|p| !p.starts_with('=')))
        .map(|s| s.trim_end_matches('='))
        .filter(|r| r.len() >= MIN_BASE64_RUN && !r.bytes().all(|b| b.is_ascii_digit()))
}

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

/// Decode a base64 run in whichever alphabet it is written in.
fn base64_decode(run: &str) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let url = run.contains(['-', '_']);
    if url && run.contains(['+', '/']) {
        return None;
    }
    // A length of 4n+1 cannot be base64: drop the stray character.
    let run = if run.len() % 4 == 1 {
        run.get(..run.len() - 1)?
    } else {
        run
    };
    let engine = if url { &URL_SAFE } else { &STANDARD };
    engine.decode(run).ok().map(zeroize::Zeroizing::new)
}

#[cfg(test)]
mod tests;
