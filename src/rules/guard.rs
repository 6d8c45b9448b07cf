//! The leak guard: finds card numbers in text that no rule claims.
//!
//! A hit is 13 to 19 decimal digits, in any script (ASCII, full-width,
//! Arabic-Indic, any Unicode `Nd` digit, and the compatibility digits that read as
//! them: superscripts, subscripts, circled digits, …), that are card-shaped: Luhn-valid, with
//! the prefix and length of a real card network ([`iin`]). The digits may be split
//! into groups by short runs (at most [`MAX_SEPARATOR_RUN`] characters) of
//! separators: spaces of every width, dashes and minus signs, dots, middle dots and
//! bullets, slashes, underscores, commas, `+`, line breaks, and invisible
//! format characters ([`digits::is_separator`]). A hit is not
//! adjacent to other digits. Within a run of digit groups
//! (`4242 4242 4242 4242 123`), hits may start and end at any group boundary, so a
//! card typed next to another number is still found; a group of more than 19 digits
//! is an identifier, not a card, and no hit crosses it.
//!
//! NUL bytes are read as nothing, up to [`MAX_NUL_RUN`] of them in a row: they
//! neither end a group nor count toward a separator run. That is how UTF-16 and
//! UTF-32 text reads to a backend that detects its encoding (Python's `json.loads`
//! on bytes): `4\0\0\0 \0\0\0 2` is `4 2`, and `4\02\0` is `42`. A longer run of
//! NULs is no text encoding's and no number continues across it. A hit with a NUL
//! in its span is never replaced in place (a token there would leave the encoding
//! around it broken, or its digits behind); and since a reader that stops at a NUL
//! reads `<card>\0999` and `4242 4242 4242 4242\0999` as the card, the text's
//! NUL-free pieces are read on their own too, and the NUL-free pieces of a group, as
//! the ASCII runs of a group that mixes scripts are.
//!
//! A hit's leading zeros are not its digits: a backend that parses an integer reads
//! `000<card>` (or `0000 <card in groups>`) as the card. The digits are
//! read after them, they do not count toward a group's 19, and such a hit cannot be
//! replaced in place (the zeros would survive around a token, and the span is not
//! what a backend reads as the number): it is refused.
//!
//! [`scan`] reads bytes as UTF-8 where they are UTF-8 and skips any other byte, so
//! it runs on any buffer. [`deep`](super::deep) adds what only makes sense inside one field:
//! JSON numbers read as the integers they denote, and nested encodings (JSON in a
//! string, base64, escapes) decoded to a bounded depth.
//!
//! The guard only reports; whether a hit is one of our own tokens, and what to do with
//! it, is the caller's business.

use std::collections::VecDeque;
use std::ops::Range;

use zeroize::Zeroize;

use super::digits;
use super::iin;
use crate::sensitive::luhn;

pub use super::deep::{
    Leaf, MAX_HIDDEN, literal_cards, scan_leaf, with_decode_depth, with_reading,
};

#[cfg(test)]
mod false_positives;
#[cfg(test)]
mod nul_tests;
mod runs;
mod spans;
#[cfg(test)]
mod tests;

pub use spans::Spans;

/// The fewest digits a hit has.
pub const MIN_DIGITS: usize = 13;
/// The most digits a hit has.
pub const MAX_DIGITS: usize = 19;
/// The most separator characters between two digit groups of one number
/// (`4242 - 4242` has three).
pub const MAX_SEPARATOR_RUN: usize = 3;
/// The most NUL bytes in a row read as nothing: UTF-32 puts three beside each ASCII
/// character, UTF-16 one.
pub const MAX_NUL_RUN: usize = 3;

/// Whether a byte string may hold a hit at all: at least [`MIN_DIGITS`] bytes that
/// are ASCII digits or not ASCII (part of a character that may be a digit in another
/// script, or a digit of a single-byte charset: [`digits::single_byte_char`]). A
/// cheap pre-check for hot paths.
#[inline]
pub fn may_contain(text: &[u8]) -> bool {
    if text.len() < MIN_DIGITS {
        return false;
    }
    // Counted in byte-wide lanes, 255 bytes at a time so that no lane overflows:
    // branch-free, so that it compiles to vector code.
    let mut n = 0usize;
    for part in text.chunks(255) {
        let in_part = part.iter().fold(0u8, |acc, &b| {
            acc.wrapping_add(u8::from(b.wrapping_sub(b'0') < 10) | u8::from(b >= 0x80))
        });
        n += usize::from(in_part);
        if n >= MIN_DIGITS {
            return true;
        }
    }
    false
}

/// Call `f` with each stretch of `text` a hit can lie in: digits and separators
/// holding at least [`MIN_DIGITS`] digit-like bytes, from the first of them (every
/// hit lies in one). Empty for text that cannot hold a hit ([`may_contain`]).
pub fn candidate_runs(text: &[u8], f: impl FnMut(Range<usize>)) {
    if may_contain(text) {
        runs::candidate_runs(text, f);
    }
}

/// Whether `text` holds a hit ([`scan_hits`]).
pub fn holds_card(text: &[u8]) -> bool {
    let mut found = false;
    scan_hits(text, |_| found = true);
    found
}

/// Whether a reader would see a card-shaped number in `text`, read as it is or with
/// its escapes decoded (`%34242…`, `\u0034242…`, `&#52;242…`), escapes of escapes
/// too, as deep as the rules routes decode by default: the one check for a string a
/// client sent before it is written out (a log field, an audit line, an error body).
pub fn shows_card(text: &[u8]) -> bool {
    if holds_card(text) {
        return true;
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let mut decoded = super::deep::unescape(text);
    for _ in 0..SHOWN_DEPTH {
        let Some(d) = decoded else {
            return false;
        };
        if holds_card(d.as_bytes()) {
            return true;
        }
        decoded = super::deep::unescape(&d);
    }
    false
}

/// How many times [`shows_card`] decodes escapes: `limits.max_decode_depth`'s default.
const SHOWN_DEPTH: usize = 3;

/// Push the byte ranges of every hit in `text` onto `out`, in order, without overlap.
pub fn scan(text: &[u8], out: &mut Vec<Range<usize>>) {
    scan_hits(text, |hit| out.push(hit.range.clone()));
}

/// Whether ASCII digits are card-shaped: 13 to 19 of them, Luhn-valid, with the
/// prefix and length of a card network.
pub fn is_card_shaped(digits: &[u8]) -> bool {
    (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && luhn::is_valid_digits(digits.iter().copied())
        && iin::is_card_network(digits)
}

/// One hit: where it is, its digits normalised to ASCII (leading zeros left out), and
/// whether it can be replaced in place (ASCII digits only, no leading zero, no NUL;
/// separators of any kind).
pub struct Hit {
    pub range: Range<usize>,
    /// Every digit is ASCII, the first is not a zero and no NUL lies between them, so
    /// the span is what a backend would read as the card number and a token can take
    /// its place.
    pub ascii: bool,
    digits: [u8; MAX_DIGITS],
    len: usize,
}

impl Hit {
    /// The card number, as ASCII digits, without the span's leading zeros.
    pub fn digits(&self) -> &[u8] {
        self.digits.get(..self.len).unwrap_or_default()
    }
}

impl Drop for Hit {
    fn drop(&mut self) {
        self.digits.zeroize();
    }
}

/// Call `f` for every hit in `text`, in order, without overlap; then, for text with
/// NULs or digits of another script, for every further hit of the other ways a
/// backend may read it ([`every_reading`]), refused ones that may overlap.
pub fn scan_hits(text: &[u8], f: impl FnMut(&Hit)) {
    // Most field text cannot hold a hit: no look for NULs in it.
    if text.len() < runs::BLOCK && !may_contain(text) {
        return;
    }
    every_reading(text, |t, g| scan_with(t, is_card_shaped, g), f);
}

/// Read `text` with `scan`, the guard's own reading; then, for text with NULs
/// ([`nul_free_pieces`]) or digits of another script than ASCII
/// ([`ascii_digits_only`]), the other ways a backend may read it, and both at once:
/// each hit of those not found already (the same digits over some of the same bytes)
/// goes to `f` too, never replaceable in place.
fn every_reading(
    text: &[u8],
    mut scan: impl FnMut(&[u8], &mut dyn FnMut(&Hit)),
    mut f: impl FnMut(&Hit),
) {
    let nul = memchr::memchr(0, text).is_some();
    let ascii_only = ascii_digits_only(text);
    if !nul && ascii_only.is_none() {
        return scan(text, &mut f);
    }
    let mut seen = Vec::new();
    scan(text, &mut |hit: &Hit| {
        seen.push((
            hit.range.clone(),
            zeroize::Zeroizing::new(hit.digits().to_vec()),
        ));
        f(hit);
    });
    // Asked once for each hit of the other readings: indexed, not searched.
    let spans = Spans::new(seen.iter().map(|(r, _)| r));
    let mut unseen = |at: usize, hit: &Hit| {
        let range = at + hit.range.start..at + hit.range.end;
        let found = spans.overlapping(&range).any(|(_, i)| {
            seen.get(i)
                .is_some_and(|(_, d)| d.as_slice() == hit.digits())
        });
        if !found {
            let refused = Hit {
                range,
                ascii: false,
                digits: hit.digits,
                len: hit.len,
            };
            f(&refused);
        }
    };
    if nul {
        nul_free_pieces(text, &mut scan, &mut unseen);
    }
    if let Some(ascii) = ascii_only {
        // The two readings compose: a C-string reader may take ASCII digits only.
        // The copy keeps every byte's offset, so its hits map onto `text`.
        scan(&ascii, &mut |hit: &Hit| unseen(0, hit));
        if nul {
            nul_free_pieces(&ascii, &mut scan, &mut unseen);
        }
    }
}

/// `text` as a reader that takes only ASCII digits for digits reads it: every other
/// digit (`٤`, `４`, `²`) a letter, which ends a number (`٤4111111101111 111111` is
/// a 19-digit card to it, a 20-digit identifier to a reader of every script). `None`
/// when the text has no such digit. A group mixing scripts is read so already
/// ([`ascii_card_in_mixed`]); this reads the groups around it too.
fn ascii_digits_only(text: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    if text.is_ascii() {
        return None;
    }
    let mut out: Option<zeroize::Zeroizing<Vec<u8>>> = None;
    let mut i = 0;
    while i < text.len() {
        if text.get(i).is_some_and(u8::is_ascii) {
            i += 1;
            continue;
        }
        let (c, w) = char_at(text, i);
        if c.and_then(digits::value).is_some() {
            let copy = out.get_or_insert_with(|| zeroize::Zeroizing::new(text.to_vec()));
            if let Some(span) = copy.get_mut(i..i + w) {
                span.fill(b'x');
            }
        }
        i += w;
    }
    out
}

/// Text with NULs is also read piece by piece between its NULs, as a reader that
/// stops at a NUL reads it (a C string): `4242 4242 4242 4242\0999` is a card to it,
/// though read as nothing the NUL joins `999` to the last group. `scan` reads a
/// piece; `found` gets each hit with the piece's offset. (Text interleaved with NULs,
/// UTF-16 or UTF-32, has no piece long enough to hold a card.)
fn nul_free_pieces(
    text: &[u8],
    scan: &mut impl FnMut(&[u8], &mut dyn FnMut(&Hit)),
    found: &mut impl FnMut(usize, &Hit),
) {
    let mut start = 0;
    for piece in text.split(|b| *b == 0) {
        let at = start;
        start += piece.len() + 1;
        if piece.len() < MIN_DIGITS {
            continue;
        }
        scan(piece, &mut |hit: &Hit| found(at, hit));
    }
}

/// [`scan_hits`] with another test of which digit strings are hits.
fn scan_with(text: &[u8], shaped: fn(&[u8]) -> bool, mut f: impl FnMut(&Hit)) {
    // A text of a block or more is classified anyway, which finds its digits.
    if text.len() < runs::BLOCK && !may_contain(text) {
        return;
    }
    let mut window = Window::new(shaped);
    runs::candidate_runs(text, |run| read_run(text, run, &mut window, &mut f));
}

/// One candidate run of `text`: a lone group of ASCII digits (the common case) at
/// once, any other with the window.
fn read_run(text: &[u8], run: Range<usize>, window: &mut Window, f: &mut impl FnMut(&Hit)) {
    match text.get(run.clone()) {
        Some(digits) if digits.iter().all(u8::is_ascii_digit) => {
            one_group(digits, run, window.shaped, f);
        }
        _ => scan_run(text, run, window, f),
    }
}

/// [`scan_hits`], and `literal` gets the cards the number literals in `text`
/// denote ([`literal_cards`]): the pass-through guard's reading of a chunk, with
/// one classification of the text for both.
pub fn scan_hits_and_literals(
    text: &[u8],
    f: impl FnMut(&Hit),
    literal: impl FnMut(Range<usize>, &[u8]),
) {
    if text.len() < runs::BLOCK && !may_contain(text) {
        return;
    }
    // Most chunks hold a few runs: kept on the stack (this runs for every chunk).
    let mut candidates: smallvec::SmallVec<[Range<usize>; 8]> = smallvec::SmallVec::new();
    runs::candidate_runs(text, |run| candidates.push(run));
    // Every reading's hits lie in the plain reading's runs (a NUL piece or a
    // letter for another script's digit only shortens them), and so do literals.
    if candidates.is_empty() {
        return;
    }
    let whole = text.as_ptr_range();
    // The other readings only shorten runs, at a NUL or a digit of another script:
    // a run that is one group of ASCII digits holds neither, so when every run is
    // such a group (the common case: ids, amounts, a card) they find nothing the
    // plain reading does not, and the text is not searched for NULs and scripts.
    let lone_ascii_groups = candidates.iter().all(|run| {
        text.get(run.clone())
            .is_some_and(|g| g.iter().all(u8::is_ascii_digit))
    });
    let plain = |t: &[u8], g: &mut dyn FnMut(&Hit)| {
        if t.as_ptr_range() != whole {
            return scan_with(t, is_card_shaped, g);
        }
        let mut window = Window::new(is_card_shaped);
        for run in &candidates {
            read_run(t, run.clone(), &mut window, &mut |h: &Hit| g(h));
        }
    };
    if lone_ascii_groups {
        let mut f = f;
        plain(text, &mut f);
    } else {
        every_reading(text, plain, f);
    }
    super::deep::literal_cards_in(text, &candidates, literal);
}

/// A candidate run that is one group of ASCII digits (the common case) is a hit
/// when it is card-shaped as a whole, after its leading zeros: what [`scan_run`]
/// decides for a lone group, without its window.
fn one_group(group: &[u8], run: Range<usize>, shaped: fn(&[u8]) -> bool, f: &mut impl FnMut(&Hit)) {
    let zeros = group.iter().take_while(|b| **b == b'0').count();
    let digits = group.get(zeros..).unwrap_or_default();
    if (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) && shaped(digits) {
        let mut hit = Hit {
            range: run,
            ascii: zeros == 0,
            digits: [0; MAX_DIGITS],
            len: digits.len(),
        };
        if let Some(dst) = hit.digits.get_mut(..digits.len()) {
            dst.copy_from_slice(digits);
        }
        f(&hit);
    }
}

/// Every hit in `text` by reading it all as one candidate run: what [`scan_hits`]
/// must find (a differential oracle for the candidate runs and the lone-group path).
#[cfg(any(test, fuzzing))]
pub fn scan_hits_slowly(text: &[u8], f: impl FnMut(&Hit)) {
    fn slowly(text: &[u8], f: &mut dyn FnMut(&Hit)) {
        let mut window = Window::new(is_card_shaped);
        scan_run(text, 0..text.len(), &mut window, &mut |h: &Hit| f(h));
    }
    every_reading(text, slowly, f);
}

/// Scan one candidate run of `text` ([`runs::candidate_runs`]).
fn scan_run(text: &[u8], run: Range<usize>, window: &mut Window, f: &mut impl FnMut(&Hit)) {
    let mut i = run.start;
    while i < run.end {
        let (c, w) = char_at(text, i);
        if c.and_then(digits::value).is_none() {
            i += w;
            continue;
        }
        // A run of digit groups joined by short separator runs, starting at `i`
        // (which is not preceded by a digit: we only get here at a run start).
        let mut at = i;
        let mut nul_before = false;
        loop {
            let mut group = read_group(text, at);
            group.nul_before = nul_before;
            at = group.bytes.end;
            if let Some(hit) = ascii_card_in_mixed(text, &group) {
                // Read as one group of every script, or by a reader that keeps
                // only ASCII digits: the second finds a card. Refused whole.
                window.finish(f);
                f(&hit);
                break;
            }
            match group.n {
                Some(_) => window.push(group, f),
                // Too long for a card: no hit spans it.
                None => window.finish(f),
            }
            // The separators up to the next group, NULs read as nothing.
            let mut k = at;
            let mut seps = 0;
            let mut nul = false;
            let digit_next = loop {
                let Some(after) = past_nuls(text, k) else {
                    break false;
                };
                nul |= after > k;
                k = after;
                let (c, w) = char_at(text, k);
                match c {
                    Some(c) if seps < MAX_SEPARATOR_RUN && digits::is_separator(c) => {
                        k += w;
                        seps += 1;
                    }
                    c => break c.and_then(digits::value).is_some(),
                }
            };
            if seps > 0 && digit_next {
                at = k;
                nul_before = nul;
            } else {
                break;
            }
        }
        window.finish(f);
        i = at;
    }
}

/// A group that mixes ASCII digits with digits of another script (`٤4111…`) is one
/// number to a reader of every script, but a reader that keeps only ASCII digits
/// reads its ASCII runs alone; so is a group with NULs inside (`<card>\0999`) to a
/// reader that stops at a NUL. When one of those runs is card-shaped: a hit over the
/// whole group, never replaced in place.
fn ascii_card_in_mixed(text: &[u8], group: &Group) -> Option<Hit> {
    let bytes = text.get(group.bytes.clone())?;
    if group.ascii || !bytes.iter().any(u8::is_ascii_digit) {
        return None;
    }
    bytes
        .split(|b| !b.is_ascii_digit())
        .find(|run| is_card_shaped(run))
        .map(|run| {
            let mut hit = Hit {
                range: group.bytes.clone(),
                ascii: false,
                digits: [0; MAX_DIGITS],
                len: run.len(),
            };
            if let Some(dst) = hit.digits.get_mut(..run.len()) {
                dst.copy_from_slice(run);
            }
            hit
        })
}

/// The character at byte `i` and its width; `None` at the end. A byte that does not
/// start a valid UTF-8 character reads as the single-byte charsets read it
/// ([`digits::single_byte_char`]), width 1: `4242\xa04242…` in Latin-1 is a card
/// written with no-break spaces, `\xb2` a superscript two.
fn char_at(text: &[u8], i: usize) -> (Option<char>, usize) {
    let Some(&b) = text.get(i) else {
        return (None, 1);
    };
    if b.is_ascii() {
        return (Some(char::from(b)), 1);
    }
    let w = match b {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (Some(digits::single_byte_char(b)), 1),
    };
    match text
        .get(i..i + w)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.chars().next())
    {
        Some(c) => (Some(c), w),
        None => (Some(digits::single_byte_char(b)), 1),
    }
}

/// Where the NULs that start at `i` end: `i` itself when there are none, `None` when
/// there are more than [`MAX_NUL_RUN`] (no number continues across them).
fn past_nuls(text: &[u8], i: usize) -> Option<usize> {
    let n = text
        .get(i..)
        .unwrap_or_default()
        .iter()
        .take(MAX_NUL_RUN + 1)
        .take_while(|b| **b == 0)
        .count();
    (n <= MAX_NUL_RUN).then_some(i + n)
}

/// A maximal group of digits (NULs between them read as nothing).
struct Group {
    bytes: Range<usize>,
    /// How many zeros the group starts with. Counted apart from `digits`, so that
    /// zero padding does not make a card an identifier; a group of zeros alone has
    /// only these.
    zeros: usize,
    /// The digits after the leading zeros, as ASCII; `None` count for more than
    /// [`MAX_DIGITS`] of them.
    digits: [u8; MAX_DIGITS],
    n: Option<usize>,
    /// ASCII digits alone, without a NUL between them.
    ascii: bool,
    /// The separators before it (in its run of groups) hold a NUL.
    nul_before: bool,
}

impl Group {
    /// Whether the group is zeros alone (leading zeros of any hit it starts).
    fn is_zeros(&self) -> bool {
        self.n == Some(0)
    }

    /// Its digits, zeros included: what it adds to a hit once a significant digit
    /// came before it.
    fn len(&self) -> usize {
        self.zeros.saturating_add(self.n.unwrap_or(0))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.digits.zeroize();
    }
}

fn read_group(text: &[u8], start: usize) -> Group {
    let mut g = Group {
        bytes: start..start,
        zeros: 0,
        digits: [0; MAX_DIGITS],
        n: Some(0),
        ascii: true,
        nul_before: false,
    };
    let mut at = start;
    loop {
        // ASCII digits first, without decoding a character.
        let (v, w) = match text.get(at) {
            Some(&b) if b.is_ascii_digit() => (b - b'0', 1),
            // NULs between two digits are read as nothing (UTF-16 and UTF-32).
            Some(0) => match past_nuls(text, at) {
                Some(next) if char_at(text, next).0.and_then(digits::value).is_some() => {
                    g.ascii = false;
                    at = next;
                    continue;
                }
                _ => break,
            },
            _ => {
                let (c, w) = char_at(text, at);
                let Some((c, v)) = c.and_then(|c| Some((c, digits::value(c)?))) else {
                    break;
                };
                g.ascii &= c.is_ascii();
                // A character that stands for two digits (circled forty-two).
                if let Some(second) = digits::second_digit(c) {
                    g.add(v);
                    g.add(second);
                    at += w;
                    continue;
                }
                (v, w)
            }
        };
        g.add(v);
        at += w;
    }
    g.bytes.end = at;
    g
}

impl Group {
    /// Add a digit: a leading zero is counted, any other kept (up to
    /// [`MAX_DIGITS`]: past them the group is too long for a card).
    #[inline]
    fn add(&mut self, v: u8) {
        if v == 0 && self.n == Some(0) {
            self.zeros = self.zeros.saturating_add(1);
        } else if let Some(n) = self.n {
            match self.digits.get_mut(n) {
                Some(slot) => {
                    *slot = b'0' + v;
                    self.n = Some(n + 1);
                }
                None => self.n = None,
            }
        }
    }
}

/// The groups of a run whose hits are not decided yet: at most the groups within
/// [`MAX_DIGITS`] significant digits of the first (leading groups of zeros alone
/// are joined into one, so the window stays short on any input).
struct Window {
    groups: VecDeque<Group>,
    /// Every digit of the groups, zeros included ([`Group::len`]).
    digits: usize,
    shaped: fn(&[u8]) -> bool,
}

impl Window {
    /// An empty window deciding hits with `shaped`.
    fn new(shaped: fn(&[u8]) -> bool) -> Window {
        Window {
            groups: VecDeque::new(),
            digits: 0,
            shaped,
        }
    }

    fn push(&mut self, g: Group, f: &mut impl FnMut(&Hit)) {
        if g.is_zeros()
            && self.significant() == 0
            && let Some(last) = self.groups.back_mut()
        {
            // Zeros after zeros alone: every hit starting at either has the same
            // digits, so one group starting at the first holds them.
            last.bytes.end = g.bytes.end;
            last.zeros = last.zeros.saturating_add(g.zeros);
            last.ascii &= g.ascii && !g.nul_before;
            self.digits = self.digits.saturating_add(g.zeros);
            return;
        }
        self.digits = self.digits.saturating_add(g.len());
        self.groups.push_back(g);
        // Once the window holds more significant digits than a card, no hit
        // starting at its first group can grow any more.
        while self.significant() > MAX_DIGITS {
            self.decide_first(f);
        }
    }

    /// The digits a hit starting at the first group and covering the whole window
    /// would have: all of them but its leading zeros.
    fn significant(&self) -> usize {
        let mut lead = 0usize;
        for g in &self.groups {
            lead = lead.saturating_add(g.zeros);
            if !g.is_zeros() {
                break;
            }
        }
        self.digits.saturating_sub(lead)
    }

    fn finish(&mut self, f: &mut impl FnMut(&Hit)) {
        while !self.groups.is_empty() {
            self.decide_first(f);
        }
    }

    /// The longest card-shaped span of whole groups starting at the first group, if
    /// any, is a hit; drop the groups it covers (or just the first).
    fn decide_first(&mut self, f: &mut impl FnMut(&Hit)) {
        let mut hit = Hit {
            range: 0..0,
            ascii: true,
            digits: [0; MAX_DIGITS],
            len: 0,
        };
        let mut best: Option<(usize, usize)> = None;
        for (k, g) in self.groups.iter().enumerate() {
            if !hit.append(g) {
                break;
            }
            if hit.len >= MIN_DIGITS && (self.shaped)(hit.digits()) {
                best = Some((k, hit.len));
            }
        }
        let take = match best {
            Some((last, len)) => {
                hit.len = len;
                let covered = self.groups.range(..=last);
                let padded = self.groups.front().is_some_and(|g| g.zeros > 0);
                hit.ascii = !padded
                    && covered.clone().all(|g| g.ascii)
                    && !covered.clone().skip(1).any(|g| g.nul_before);
                let start = self.groups.front().map_or(0, |g| g.bytes.start);
                let end = covered.last().map_or(start, |g| g.bytes.end);
                hit.range = start..end;
                f(&hit);
                last + 1
            }
            None => 1,
        };
        for _ in 0..take {
            if let Some(g) = self.groups.pop_front() {
                self.digits = self.digits.saturating_sub(g.len());
            }
        }
    }
}

impl Hit {
    /// Append a group's digits; its zeros too once a significant digit came before
    /// (they are then inside the number). `false` when the group does not fit.
    fn append(&mut self, g: &Group) -> bool {
        let Some(n) = g.n else { return false };
        let zeros = if self.len == 0 { 0 } else { g.zeros };
        let end = self.len.saturating_add(zeros).saturating_add(n);
        let (Some(dst), Some(src)) = (self.digits.get_mut(self.len..end), g.digits.get(..n)) else {
            return false;
        };
        let (pad, rest) = dst.split_at_mut(zeros.min(dst.len()));
        pad.fill(b'0');
        rest.copy_from_slice(src);
        self.len = end;
        true
    }
}
