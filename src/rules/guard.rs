//! The leak guard: finds card-number-shaped substrings in text that no rule claims.
//!
//! A hit is 13 to 19 ASCII digits, with single spaces or dashes allowed between
//! digits, not adjacent to other digits, that passes the Luhn check. Within a run of
//! digit groups (`4242 4242 4242 4242 123`), hits may start and end at any group
//! boundary, so a card typed next to another number is still found; a plain run of
//! more than 19 digits with no separator is an identifier, not a card.
//!
//! The guard only reports; whether a hit is one of our own tokens, and what to do with
//! it, is the caller's business.

use std::ops::Range;

use crate::sensitive::luhn;

/// The fewest digits a hit has.
pub const MIN_DIGITS: usize = 13;
/// The most digits a hit has.
pub const MAX_DIGITS: usize = 19;

/// Whether a byte string may hold a hit at all: at least [`MIN_DIGITS`] digits.
/// A cheap pre-check for hot paths.
#[inline]
pub fn may_contain(text: &[u8]) -> bool {
    text.len() >= MIN_DIGITS && text.iter().filter(|b| b.is_ascii_digit()).count() >= MIN_DIGITS
}

/// Push the byte ranges of every hit in `text` onto `out`, in order, without overlap.
pub fn scan(text: &[u8], out: &mut Vec<Range<usize>>) {
    if !may_contain(text) {
        return;
    }
    let mut groups: Vec<Range<usize>> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if !text.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            continue;
        }
        // A run of digit groups joined by single separators, starting at `i` (which is
        // not preceded by a digit: we only get here at a run start).
        groups.clear();
        let mut start = i;
        loop {
            let mut end = start;
            while text.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            groups.push(start..end);
            let sep = text.get(end).is_some_and(|b| *b == b' ' || *b == b'-');
            if sep && text.get(end + 1).is_some_and(u8::is_ascii_digit) {
                start = end + 1;
            } else {
                i = end;
                break;
            }
        }
        hits_in_run(text, &groups, out);
    }
}

/// The hits in one run of groups: greedily, the longest Luhn-valid span of whole
/// groups starting at each group.
fn hits_in_run(text: &[u8], groups: &[Range<usize>], out: &mut Vec<Range<usize>>) {
    let mut first = 0;
    while first < groups.len() {
        let mut best: Option<(usize, Range<usize>)> = None;
        let mut digits = 0;
        let Some(start) = groups.get(first).map(|g| g.start) else {
            return;
        };
        for (last, g) in groups.iter().enumerate().skip(first) {
            digits += g.len();
            if digits > MAX_DIGITS {
                break;
            }
            if digits >= MIN_DIGITS {
                let span = start..g.end;
                if luhn_ok(text.get(span.clone()).unwrap_or_default()) {
                    best = Some((last, span));
                }
            }
        }
        match best {
            Some((last, span)) => {
                out.push(span);
                first = last + 1;
            }
            None => first += 1,
        }
    }
}

/// The Luhn check over the digits of `text`, skipping separators.
fn luhn_ok(text: &[u8]) -> bool {
    luhn::is_valid_digits(text.iter().copied().filter(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        scan(s.as_bytes(), &mut out);
        out.into_iter().map(|r| &s[r]).collect()
    }

    #[test]
    fn finds_cards() {
        assert_eq!(hits("4242424242424242"), ["4242424242424242"]);
        assert_eq!(hits("card 4242 4242 4242 4242."), ["4242 4242 4242 4242"]);
        assert_eq!(hits("x4111-1111-1111-1111y"), ["4111-1111-1111-1111"]);
        assert_eq!(hits("amex 378282246310005"), ["378282246310005"]);
        assert_eq!(
            hits("4242424242424242 and 5555555555554444"),
            ["4242424242424242", "5555555555554444"]
        );
        // A card followed by a CVV in the same run.
        assert_eq!(hits("4242 4242 4242 4242 123"), ["4242 4242 4242 4242"]);
        assert_eq!(hits("99 4000056655665556"), ["4000056655665556"]);
    }

    #[test]
    fn ignores_non_cards() {
        assert!(hits("4242424242424241").is_empty()); // Luhn-invalid
        assert!(hits("424242424242424242424").is_empty()); // too long, no separator
        assert!(hits("14242424242424242").is_empty()); // adjacent digit changes it
        assert!(hits("4242  4242 4242 4242").is_empty()); // double space splits
        assert!(hits("4242--4242-4242-4242").is_empty());
        assert!(hits("12345").is_empty());
        assert!(hits("").is_empty());
    }

    #[test]
    fn long_separated_runs_are_linear() {
        let s = "1 ".repeat(100_000);
        let mut out = Vec::new();
        scan(s.as_bytes(), &mut out);
        // Any 13..=19 ones: 13 → sum? whatever; it just must finish quickly.
        assert!(out.len() <= 100_000 / 13 + 1);
    }
}
