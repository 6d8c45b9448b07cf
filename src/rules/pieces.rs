//! Cards split across the values of a list: what the leak guard reads when a backend
//! joins them.
//!
//! The guard reads each value alone. A backend that joins a list (JavaScript's
//! `String(list)`, Python's `"".join`, PHP's `implode`) and keeps its digits reads
//! `["42424242","42424242"]`, `card[number][]=42424242&card[number][]=42424242`, a key
//! given twice (`n=4242&n=4242…`, which Express and Rack make a list of) or numbered
//! keys (`cc1=4242&cc2=4242…`, the four boxes of an old card form) as one number.
//!
//! A *piece* is a value that is digits alone, in any script, with separators between
//! them (`4242 4242`), with fewer digits than the longest card (a card may be cut
//! anywhere: `4242424242424` and `242`). The caller says which *list* a piece is in (for a document's leaves,
//! [`codec`](crate::codec)'s paths without a trailing index, `[]` or the number a
//! last key ends in) and the number its place gives it, if any. A list whose
//! consecutive pieces, joined, are card-shaped ([`guard::is_card_shaped`]) holds a
//! card no token can stand for: the caller refuses it. Pieces are joined in the
//! order they come and, when they carry numbers (`a[1]`, `cc2`), in that order too
//! (qs sorts `a[1]=…&a[0]=…`): [`Pieces::finish`].
//!
//! A list of other numbers joins to a card-shaped one about as often as a lone number
//! of that length is card-shaped (Luhn passes one in ten, and the prefix must be a card
//! network's): the same false refusals the guard makes on a 16-digit id. Values that
//! mix digits with other text are not pieces: `["card 4242", "4242…"]` is not joined.
//!
//! One pass: a piece costs a walk back over at most [`guard::MAX_DIGITS`] earlier
//! pieces of its list; memory is linear in the pieces.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use zeroize::Zeroizing;

use super::{digits, guard};
use crate::sensitive::Plaintext;

/// No link: the first piece of its list.
const NONE: u32 = u32::MAX;

/// One piece: where its digits are in [`Pieces::digits`], the number its place gives
/// it, and the piece of the same list before it.
struct Piece {
    start: u32,
    len: u8,
    order: Option<u64>,
    prev: u32,
}

/// What is known of one list.
struct List {
    /// The list's last piece.
    last: u32,
    count: u32,
    /// Whether the numbers its pieces carry came in ascending order so far.
    ordered: bool,
    last_order: Option<u64>,
}

/// The pieces of one document, by list.
#[derive(Default)]
pub struct Pieces {
    digits: Zeroizing<Vec<u8>>,
    pieces: Vec<Piece>,
    lists: HashMap<u64, List>,
}

/// What one more value told.
#[derive(Default)]
pub struct Added {
    /// The card its list's pieces join to, ending with this one.
    pub joined: Option<Plaintext>,
    /// Its number came out of order: its list is joined in order too, by
    /// [`Pieces::finish`] (once per list).
    pub unordered: bool,
}

impl Pieces {
    /// Read one value of `list`. `number` for a JSON number, whose literal is a piece
    /// only when it denotes an integer.
    pub fn add(&mut self, list: u64, order: Option<u64>, text: &str, number: bool) -> Added {
        self.add_in(text, number, || Some((list, order)))
    }

    /// Read one value; `list` tells its list and number, asked only of a piece (most
    /// values are not, and working a list out costs a hash of the value's path).
    pub fn add_in(
        &mut self,
        text: &str,
        number: bool,
        list: impl FnOnce() -> Option<(u64, Option<u64>)>,
    ) -> Added {
        let mut buf = [0u8; MAX_PIECE];
        let Some(len) = piece_digits(text, number, &mut buf) else {
            return Added::default();
        };
        let Some((list, order)) = list() else {
            buf.fill(0);
            return Added::default();
        };
        let (Ok(start), Ok(index), Ok(len8)) = (
            u32::try_from(self.digits.len()),
            u32::try_from(self.pieces.len()),
            u8::try_from(len),
        ) else {
            return Added::default();
        };
        self.digits
            .extend_from_slice(buf.get(..len).unwrap_or_default());
        buf.fill(0);
        let entry = self.lists.entry(list).or_insert(List {
            last: NONE,
            count: 0,
            ordered: true,
            last_order: None,
        });
        self.pieces.push(Piece {
            start,
            len: len8,
            order,
            prev: entry.last,
        });
        entry.last = index;
        entry.count = entry.count.saturating_add(1);
        let mut added = Added::default();
        if let (Some(before), Some(now)) = (entry.last_order, order)
            && now <= before
            && entry.ordered
        {
            entry.ordered = false;
            added.unordered = true;
        }
        entry.last_order = order.or(entry.last_order);
        if entry.count >= 2 {
            let back = Chain {
                pieces: &self.pieces,
                at: index,
            };
            added.joined = joined_card(&self.digits, back.map(|p| (p.start, p.len)));
        }
        added
    }

    /// After the whole document: a list whose pieces came out of the order of their
    /// numbers, joined in that order; the first that holds a card, and the card.
    pub fn finish(&self) -> Option<(u64, Plaintext)> {
        for (id, list) in &self.lists {
            if list.ordered {
                continue;
            }
            let mut pieces: Vec<&Piece> = Chain {
                pieces: &self.pieces,
                at: list.last,
            }
            .collect();
            pieces.sort_by_key(|p| p.order);
            for end in (0..pieces.len()).rev() {
                let back = pieces.get(..=end).unwrap_or_default().iter().rev();
                if let Some(card) = joined_card(&self.digits, back.map(|p| (p.start, p.len))) {
                    return Some((*id, card));
                }
            }
        }
        None
    }
}

/// A list's pieces from one back to its first.
struct Chain<'a> {
    pieces: &'a [Piece],
    at: u32,
}

impl<'a> Iterator for Chain<'a> {
    type Item = &'a Piece;

    fn next(&mut self) -> Option<&'a Piece> {
        let p = self.pieces.get(self.at as usize)?;
        self.at = p.prev;
        Some(p)
    }
}

/// The card that some run of two or more pieces ending at the first of `back` (given
/// last to first, as `(start, len)` in `all`) joins to.
fn joined_card(all: &[u8], back: impl Iterator<Item = (u32, u8)>) -> Option<Plaintext> {
    let mut joined = [0u8; guard::MAX_DIGITS];
    let mut at = guard::MAX_DIGITS;
    let mut count = 0;
    let mut card = None;
    for (start, len) in back {
        let start = start as usize;
        let d = all.get(start..start + usize::from(len))?;
        let Some(from) = at.checked_sub(d.len()) else {
            break;
        };
        joined.get_mut(from..at)?.copy_from_slice(d);
        at = from;
        count += 1;
        let run = joined.get(at..).unwrap_or_default();
        if count >= 2 && guard::is_card_shaped(run) {
            card = std::str::from_utf8(run).ok().map(Plaintext::from_str_copy);
            break;
        }
    }
    zeroize::Zeroize::zeroize(&mut joined);
    card
}

/// The most digits a piece has: one fewer than the longest card, which takes two.
const MAX_PIECE: usize = guard::MAX_DIGITS - 1;

/// The digits of a piece, written to `out`: how many, or `None` when `text` is not
/// one (anything but digits and separators, no digit, or too many). A JSON number
/// is one when it denotes an integer: `4242.0` and `4.242e3` are `4242`, as
/// JavaScript prints them when it joins a list.
fn piece_digits(text: &str, number: bool, out: &mut [u8; MAX_PIECE]) -> Option<usize> {
    let mut n = 0;
    let mut push = |d: u8, n: &mut usize| -> Option<()> {
        *out.get_mut(*n)? = b'0' + d;
        *n += 1;
        Some(())
    };
    if number {
        if text.bytes().all(|b| b.is_ascii_digit()) {
            for b in text.bytes() {
                push(b - b'0', &mut n)?;
            }
        } else {
            let v: f64 = text.parse().ok()?;
            // Exact below 2^53; a piece has at most 18 digits.
            if !(0.0..1e18).contains(&v) || v.fract() != 0.0 {
                return None;
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let int = v as u64;
            for b in int.to_string().bytes() {
                push(b - b'0', &mut n)?;
            }
        }
    } else {
        for c in text.chars() {
            if let Some(d) = digits::value(c) {
                push(d, &mut n)?;
                if let Some(d) = digits::second_digit(c) {
                    push(d, &mut n)?;
                }
            } else if !digits::is_separator(c) {
                return None;
            }
        }
    }
    (n > 0).then_some(n)
}

/// A list's id from the parts of a path that name it (keys and indices, hashed in
/// turn by the caller), as [`ListId::finish`] gives it.
pub struct ListId(DefaultHasher);

impl Default for ListId {
    fn default() -> Self {
        ListId(DefaultHasher::new())
    }
}

impl ListId {
    pub fn key(&mut self, k: &str) {
        0u8.hash(&mut self.0);
        k.hash(&mut self.0);
    }

    pub fn index(&mut self, i: usize) {
        1u8.hash(&mut self.0);
        i.hash(&mut self.0);
    }

    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// A last key without the digits it ends in (`cc2` is `cc`), and their number: the
/// numbered boxes of one value.
pub fn numbered(key: &str) -> (&str, Option<u64>) {
    let stem = key.trim_end_matches(|c: char| c.is_ascii_digit());
    let number = key.get(stem.len()..).unwrap_or_default();
    if number.is_empty() || number.len() > 18 {
        return (key, None);
    }
    (stem, number.parse().ok())
}

/// The list a form key's value is in, in a form decoded from a field (the leak
/// guard's [`deep`](super::deep) reading): the key without trailing `[]` or `[n]`,
/// or without the number it ends in. `salt` tells one decoded form from another.
pub fn form_list(salt: u64, key: &str) -> (u64, Option<u64>) {
    let mut id = ListId::default();
    id.index(usize::try_from(salt).unwrap_or(usize::MAX));
    let mut rest = key;
    let mut order = None;
    while let Some(open) = rest.strip_suffix(']').and_then(|r| r.rfind('[')) {
        let inner = rest.get(open + 1..rest.len() - 1).unwrap_or_default();
        if !inner.is_empty() && !inner.bytes().all(|b| b.is_ascii_digit()) {
            break;
        }
        if order.is_none() && !inner.is_empty() {
            order = inner.parse().ok();
        }
        rest = rest.get(..open).unwrap_or_default();
    }
    if rest.len() == key.len() {
        let (stem, n) = numbered(key);
        id.key(stem);
        return (id.finish(), n);
    }
    id.key(rest);
    (id.finish(), order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(list: &[(&str, Option<u64>)]) -> Option<String> {
        let mut p = Pieces::default();
        let mut out = None;
        for (text, order) in list {
            let added = p.add(7, *order, text, false);
            if let Some(card) = added.joined {
                out = Some(card.expose().to_owned());
            }
        }
        out.or_else(|| p.finish().map(|(_, c)| c.expose().to_owned()))
    }

    #[test]
    fn a_card_in_two_to_sixteen_pieces_is_joined() {
        let card = "4242424242424242";
        for n in [2usize, 3, 4, 8, 16] {
            let size = card.len().div_ceil(n);
            let parts: Vec<&str> = (0..card.len())
                .step_by(size)
                .map(|i| &card[i..(i + size).min(card.len())])
                .collect();
            let list: Vec<(&str, Option<u64>)> = parts.iter().map(|p| (*p, None)).collect();
            assert_eq!(joined(&list).as_deref(), Some(card), "{n} pieces");
        }
    }

    #[test]
    fn pieces_are_joined_after_other_values_and_in_groups() {
        // Other numbers before it; a card spaced inside its pieces; other scripts.
        let list = [
            ("7", None),
            ("1000", None),
            ("4242 4242", None),
            ("4242-4242", None),
        ];
        assert_eq!(joined(&list).as_deref(), Some("4242424242424242"));
        let list = [("٤٢٤٢٤٢٤٢", None), ("42424242", None)];
        assert_eq!(joined(&list).as_deref(), Some("4242424242424242"));
    }

    #[test]
    fn numbered_pieces_out_of_order_are_joined_in_order() {
        // 3782 8224 6310 005 (Amex), sent as boxes 2, 1, 4, 3.
        let list = [
            ("8224", Some(2)),
            ("3782", Some(1)),
            ("005", Some(4)),
            ("6310", Some(3)),
        ];
        assert_eq!(joined(&list).as_deref(), Some("378282246310005"));
    }

    #[test]
    fn lists_that_hold_no_card_are_not_refused() {
        // Amounts, ids, a date, a card that fails Luhn, text beside digits.
        for list in [
            vec![("1000", None), ("2500", None), ("300", None)],
            vec![("2026", None), ("12", None), ("31", None)],
            vec![("42424242", None), ("42424243", None)],
            vec![("card 42424242", None), ("42424242", None)],
            vec![("4242424242424242", None)],
            vec![("1.5", None), ("2.25", None)],
        ] {
            assert_eq!(joined(&list), None, "{list:?}");
        }
    }

    #[test]
    fn json_numbers_are_pieces_as_the_integers_they_denote() {
        for second in ["42424242", "42424242.0", "4.2424242e7"] {
            let mut p = Pieces::default();
            assert!(p.add(1, None, "42424242", true).joined.is_none());
            assert!(p.add(1, None, second, true).joined.is_some(), "{second}");
        }
        for second in ["4242424.25e1", "42424242.5", "-42424242"] {
            let mut p = Pieces::default();
            assert!(p.add(1, None, "42424242", true).joined.is_none());
            assert!(p.add(1, None, second, true).joined.is_none(), "{second}");
        }
    }

    #[test]
    fn a_card_cut_anywhere_is_joined() {
        let card = "4242424242424242";
        for cut in 1..card.len() {
            let list = [(&card[..cut], None), (&card[cut..], None)];
            assert_eq!(joined(&list).as_deref(), Some(card), "cut at {cut}");
        }
    }

    #[test]
    fn form_keys_name_their_list() {
        let (a, none) = form_list(0, "card[number][]");
        let (b, one) = form_list(0, "card[number][1]");
        let (c, two) = form_list(0, "card[number]2");
        let (d, _) = form_list(0, "card[number]");
        assert_eq!(none, None);
        assert_eq!(a, b);
        assert_eq!(one, Some(1));
        assert_eq!(a, c);
        assert_eq!(two, Some(2));
        assert_eq!(a, d);
        let (cc, n) = form_list(0, "cc3");
        assert_eq!((cc, n), (form_list(0, "cc").0, Some(3)));
        assert_ne!(form_list(0, "a").0, form_list(1, "a").0);
    }
}
