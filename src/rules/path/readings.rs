//! The other ways common backend parsers read a form key.
//!
//! [`FieldPath::split_form_key`](super::FieldPath::split_form_key) is our strict
//! reading. Backends disagree with it on malformed keys, and a key a backend reads as
//! `payment_method[cvc]` must be tokenized whatever we think of it, so a form key
//! matches a rule when any of these readings does:
//!
//! - **lenient brackets** (Rack 2, Node `qs`): `[`, `]` and `.` all separate keys
//!   and empty pieces vanish, so a leading `[` (`[payment_method][cvc]`), an unclosed
//!   `[` (`payment_method[cvc`) or stray `]` (`payment_method]][cvc]`) still nest;
//!   a key in quotes between brackets is the key inside them, as Spring's map-key
//!   syntax writes it (`payment_method['cvc']` is `payment_method.cvc` to its
//!   `BeanWrapper`);
//! - **PHP names** (`parse_str`, `$_POST`): a name is a C string, read up to its
//!   first NUL (`cvv%00x` is `cvv`); leading spaces are dropped, and in the
//!   top-level name (up to the first `[`) a space, `.` or `+` becomes `_`, as does a
//!   `[` with no `]` after it (`payment.method[cvc]` is `payment_method[cvc]`);
//! - **Spring field defaults** (`WebDataBinder`): a key that starts with `!` is a
//!   default value for the property it names without the `!`, bound when that one
//!   is not sent (`!cvv` is `cvv`; read past the `!` as the lenient reading reads a
//!   key, so `!payment_method.cvc` and `!payment_method[cvc]` nest).
//!
//! Only keys holding one of `[`, `]`, `.`, ` `, `+` or NUL, or starting with `!`, can
//! read differently, so every other key costs one byte scan.

use zeroize::Zeroizing;

use super::{FieldPath, FormElem, KeyMatch, PathElem, parse_index};

/// The readings of one form key besides the strict one, in reusable buffers: a
/// scanner keeps one and calls [`read`](Self::read) for each key.
#[derive(Default)]
pub struct FormKeyReadings {
    /// The lenient bracket reading, as ranges of the key (empty: none differs).
    lenient: Vec<FormElem>,
    /// The key as PHP names it (it may hold a card number: zeroized on drop).
    php_key: Zeroizing<String>,
    /// The strict split of `php_key` (empty: no PHP reading differs).
    php: Vec<FormElem>,
    /// The Spring field-default reading, as ranges of the key (empty: none).
    default_of: Vec<FormElem>,
}

/// One reading of a form key: the text its element ranges index, and the elements.
pub type Reading<'a> = (&'a str, &'a [FormElem]);

impl FormKeyReadings {
    /// Work out the readings of `key` that differ from `strict`, its strict split.
    /// Cheap for a key without `[`, `]`, `.`, ` ` or `+`: it has no other reading.
    pub fn read(&mut self, key: &str, strict: &[FormElem]) {
        self.lenient.clear();
        self.php.clear();
        self.default_of.clear();
        if !may_read_differently(key) {
            return;
        }
        if key.starts_with(SPRING_DEFAULT_PREFIX) {
            split_lenient_from(key, SPRING_DEFAULT_PREFIX.len_utf8(), &mut self.default_of);
        }
        split_lenient(key, &mut self.lenient);
        if same_reading((key, &self.lenient), (key, strict)) {
            self.lenient.clear();
        }
        if php_name(key, &mut self.php_key) {
            FieldPath::split_form_key(&self.php_key, &mut self.php);
            let php = (self.php_key.as_str(), self.php.as_slice());
            if same_reading(php, (key, strict))
                || (!self.lenient.is_empty() && same_reading(php, (key, &self.lenient)))
            {
                self.php.clear();
            }
        }
    }

    /// The readings found by the last [`read`](Self::read) of `key`, besides the
    /// strict one (`key` must be the key that was read).
    pub fn others<'a>(&'a self, key: &'a str) -> impl Iterator<Item = Reading<'a>> {
        let lenient = (!self.lenient.is_empty()).then_some((key, self.lenient.as_slice()));
        let php = (!self.php.is_empty()).then_some((self.php_key.as_str(), self.php.as_slice()));
        let default_of = (!self.default_of.is_empty()).then_some((key, self.default_of.as_slice()));
        lenient.into_iter().chain(php).chain(default_of)
    }
}

/// The prefix of a Spring `WebDataBinder` field default (`!cvv=218` binds `cvv` when
/// no `cvv` is sent).
const SPRING_DEFAULT_PREFIX: char = '!';

/// Whether a key holds a byte some parser reads differently from us.
#[inline]
pub fn may_read_differently(key: &str) -> bool {
    key.starts_with(SPRING_DEFAULT_PREFIX)
        || key
            .bytes()
            .any(|b| matches!(b, b'[' | b']' | b'.' | b' ' | b'+' | b'\0'))
}

/// The highest array index the lenient reading takes as one: `qs` reads a larger one
/// as an object key (its `arrayLimit`). A long number in a key is then a key, whatever
/// a rewrite puts in its place, so the key's shape does not change when a card
/// written there is replaced (found by the multipart fuzz target).
const MAX_LENIENT_INDEX: usize = 20;

/// The lenient bracket reading: `[`, `]` and `.` each end a key, empty pieces are
/// dropped, and a decimal piece up to [`MAX_LENIENT_INDEX`] is an array index
/// (`[payment_method][cvc` is `payment_method.cvc`). A key of separators alone is one
/// empty key.
pub fn split_lenient(key: &str, out: &mut Vec<FormElem>) {
    split_lenient_from(key, 0, out);
}

/// [`split_lenient`] of the key's bytes from `from` on, as ranges of the whole key.
fn split_lenient_from(key: &str, from: usize, out: &mut Vec<FormElem>) {
    out.clear();
    let mut start = from;
    for (i, b) in key
        .bytes()
        .enumerate()
        .skip(from)
        .chain([(key.len(), b'.')])
    {
        if !matches!(b, b'[' | b']' | b'.') {
            continue;
        }
        if i > start {
            let piece = key.get(start..i).unwrap_or_default();
            let bracketed = b == b']' && start > 0 && key.as_bytes().get(start - 1) == Some(&b'[');
            out.push(match parse_index(piece) {
                Some(n) if n <= MAX_LENIENT_INDEX => FormElem::Index(n),
                _ if bracketed && is_quoted(piece) => FormElem::Key(start + 1..i - 1),
                _ => FormElem::Key(start..i),
            });
        }
        start = i + 1;
    }
    if out.is_empty() {
        out.push(FormElem::Key(from..from));
    }
}

/// Whether a bracketed key is written in quotes, as Spring's map-key syntax writes
/// it (`payment_method['cvc']`, `payment_method["cvc"]`: the key `cvc`).
fn is_quoted(piece: &str) -> bool {
    let b = piece.as_bytes();
    b.len() >= 2 && matches!(b.first(), Some(b'\'' | b'"')) && b.first() == b.last()
}

/// The key as PHP names the variable, into `out`; whether that differs from `key`.
/// The name ends at its first NUL (PHP reads it as a C string); leading spaces are
/// dropped; in the top-level name a space, `.` or `+` becomes `_` (`+` for a reader
/// that decodes it as a space), and so does a first `[` with no `]` after it, the
/// rest of the key then kept as it is.
pub fn php_name(key: &str, out: &mut String) -> bool {
    out.clear();
    let c_string = key.split('\0').next().unwrap_or_default();
    let name = c_string.trim_start_matches(' ');
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        let after = rest.get(c.len_utf8()..).unwrap_or_default();
        match c {
            ' ' | '.' | '+' => out.push('_'),
            '[' if after.contains(']') => break,
            '[' => {
                out.push('_');
                rest = after;
                break;
            }
            c => out.push(c),
        }
        rest = after;
    }
    out.push_str(rest);
    out.as_str() != key
}

/// Whether two readings (text and elements) name the same path, compared exactly.
fn same_reading(a: Reading<'_>, b: Reading<'_>) -> bool {
    a.1.len() == b.1.len()
        && a.1.iter().zip(b.1).all(|(x, y)| match (x, y) {
            (FormElem::Index(m), FormElem::Index(n)) => m == n,
            (FormElem::Key(r), FormElem::Key(s)) => a.0.get(r.clone()) == b.0.get(s.clone()),
            _ => false,
        })
}

/// A reading's elements as path elements (keys borrowed from the reading's text).
pub fn reading_elems<'a>(reading: Reading<'a>) -> impl Iterator<Item = PathElem<'a>> {
    let (text, elems) = reading;
    elems.iter().filter_map(move |e| e.as_path_elem(text))
}

impl FieldPath {
    /// Whether this path names the form key `key` (or a container of the value) under
    /// any reading of it: the strict one or one of [`FormKeyReadings`]. Allocates;
    /// the scanners keep their buffers and match each reading themselves.
    pub fn matches_form_key(&self, keys: KeyMatch, key: &str) -> bool {
        let mut strict = Vec::new();
        FieldPath::split_form_key(key, &mut strict);
        let mut readings = FormKeyReadings::default();
        readings.read(key, &strict);
        std::iter::once((key, strict.as_slice()))
            .chain(readings.others(key))
            .any(|reading| {
                let path: Vec<PathElem<'_>> = reading_elems(reading).collect();
                let keys_only: Vec<PathElem<'_>> = path
                    .iter()
                    .filter(|e| matches!(e, PathElem::Key(_)))
                    .copied()
                    .collect();
                self.matches_shape(keys, &path, &keys_only)
            })
    }
}
