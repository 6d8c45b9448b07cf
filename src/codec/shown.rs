//! Where known values show in bytes. The outbound proxy looks for the values it
//! revealed into a request in the destination's answer (a processor quoting the card in
//! an error text, a JSON echo of the request, a 3-D Secure redirect URL) to swap each
//! back for its token before the caller sees it.
//!
//! The bytes are read through the leak guard's own views ([`super::bytes_scan`]):
//! UTF-8 with `\uXXXX`, `%XX` and character-reference escapes decoded, and UTF-16 of
//! either byte order, each with a map back to the bytes. In each view a value shows
//!
//! - as written, not glued to a letter or digit that would make it part of another
//!   word or number (`218` in `"cvc":"218"`, not in `42180`);
//! - for a card number, as the leak guard reads one ([`guard::scan_hits`]): its digits
//!   in groups (`4242 4242 4242 4242`, `3782-822463-10005`), in any script, next to
//!   letters.
//!
//! [`still_shows`] reads deeper, as the inbound leak guard reads a field (escapes of
//! escapes, base64, number literals, JSON inside a string): a value found only there
//! cannot be swapped in place, and the caller refuses the answer.
//!
//! The answer guard asks the same of every card number, not only those it revealed:
//! [`cards`] finds them in the same views, [`every_card`] in the same deeper readings.

use std::ops::Range;

use zeroize::Zeroizing;

use super::bytes_scan::{self, View};
use crate::rules::{deep, digits, guard};

/// One place a value shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    /// The bytes it covers.
    pub range: Range<usize>,
    /// Which of the values (its index in the caller's list).
    pub value: usize,
}

/// One value to look for: as written and, for a card number, its digits.
struct Wanted<'a> {
    text: &'a [u8],
    card: Option<Zeroizing<Vec<u8>>>,
}

/// How many times over [`still_shows`] decodes escapes: as many layers as a rules
/// route reads a field through by default (`limits.max_decode_depth`).
const ESCAPE_LEVELS: usize = 3;

fn wanted<'a>(values: &[&'a [u8]]) -> Vec<Wanted<'a>> {
    values
        .iter()
        .map(|v| {
            let d: Zeroizing<Vec<u8>> =
                Zeroizing::new(v.iter().copied().filter(u8::is_ascii_digit).collect());
            Wanted {
                text: v,
                card: guard::is_card_shaped(&d).then_some(d),
            }
        })
        .collect()
}

/// Every place one of `values` shows in `data`, in order, without overlap (of two
/// that overlap, the one that starts first, then the wider, is kept).
pub fn shown(data: &[u8], values: &[&[u8]]) -> Vec<Shown> {
    let wanted = wanted(values);
    let mut out = Vec::new();
    if wanted.iter().all(|w| w.text.is_empty()) {
        return out;
    }
    let mut view = View::with_capacity(data.len());
    bytes_scan::direct(data, &mut view);
    find_in(&view, data, &wanted, &mut out);
    if data.iter().filter(|b| **b == 0).count() >= bytes_scan::MIN_NULS {
        for align in [0, 1] {
            view.clear();
            bytes_scan::utf16le(data, align, &mut view);
            find_in(&view, data, &wanted, &mut out);
        }
    }
    out.sort_by(|a, b| {
        (a.range.start, std::cmp::Reverse(a.range.end))
            .cmp(&(b.range.start, std::cmp::Reverse(b.range.end)))
    });
    let mut kept: Vec<Shown> = Vec::with_capacity(out.len());
    for s in out {
        if kept.last().is_some_and(|k| s.range.start < k.range.end) {
            continue;
        }
        kept.push(s);
    }
    kept
}

/// The places of `wanted` in one view, mapped back to `data`.
fn find_in(view: &View, data: &[u8], wanted: &[Wanted<'_>], out: &mut Vec<Shown>) {
    let text = view.text.as_slice();
    for (i, w) in wanted.iter().enumerate() {
        for r in alone(text, w.text) {
            if let Some(range) = view.source(&r, data.len()) {
                out.push(Shown { range, value: i });
            }
        }
    }
    if wanted.iter().any(|w| w.card.is_some()) {
        guard::scan_hits(text, |hit| {
            let found = wanted
                .iter()
                .position(|w| w.card.as_deref().map(Vec::as_slice) == Some(hit.digits()));
            if let Some(i) = found
                && let Some(range) = view.source(&hit.range, data.len())
            {
                out.push(Shown { range, value: i });
            }
        });
    }
}

/// The places `value` is written in `text` on its own: no letter or digit glued to
/// either end where the value's own end is one. A short value (under
/// [`guard::MIN_DIGITS`] characters: a CVV, a short account number) only where it is
/// a whole value ([`whole_value`]): a number of three digits equal to a CVV is as
/// likely an amount or a status code, which must not change.
fn alone<'t>(text: &'t [u8], value: &'t [u8]) -> impl Iterator<Item = Range<usize>> + 't {
    let word = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    let first = word(value.first());
    let last = word(value.last());
    let short = value.len() < guard::MIN_DIGITS;
    memchr::memmem::find_iter(text, value)
        .filter(move |_| !value.is_empty())
        .map(move |at| at..at + value.len())
        .filter(move |r| {
            let before = r.start.checked_sub(1).and_then(|i| text.get(i));
            let after = text.get(r.end);
            if short {
                return whole_value(before, after);
            }
            let glued_before = first && word(before);
            let glued_after = last && word(after);
            !glued_before && !glued_after
        })
}

/// Whether the bytes around a match make it a whole value: a quoted string
/// (`"218"`, `'218'`, `\"218\"`), a parameter's value (`cvc=218&`, `cvc=218;`, `cvc=218` at the
/// end) or an element's text (`<cvc>218</cvc>`).
fn whole_value(before: Option<&u8>, after: Option<&u8>) -> bool {
    match before {
        // `\"218\"`: a string in a JSON document inside a string.
        Some(b'"') => matches!(after, Some(b'"' | b'\\')),
        Some(b'\'') => after == Some(&b'\''),
        Some(b'=') => {
            after.is_none_or(|b| matches!(b, b'&' | b';' | b'"' | b'\'') || b.is_ascii_whitespace())
        }
        Some(b'>') => after == Some(&b'<'),
        _ => false,
    }
}

/// One card number in bytes, as the leak guard reads it ([`guard::scan_hits`]).
/// Deliberately not `Debug`: it holds the number.
pub struct Card {
    /// The bytes it covers.
    pub range: Range<usize>,
    /// Its digits, in ASCII (leading zeros left out).
    pub digits: Zeroizing<Vec<u8>>,
    /// Found in ASCII digits in the UTF-8 view (as written, or behind one layer of
    /// `\u`, `%XX` or character-reference escapes), with no leading zero: a token can
    /// take the place of its bytes. A card in UTF-16 or in another script's digits
    /// cannot be replaced so.
    pub in_place: bool,
    /// Written as ASCII digits alone: only such a number can be one of this vault's
    /// tokens (a token is written so; see `inbound::exposure::all_ours` for why one
    /// with separators never counts as one).
    pub plain: bool,
}

/// Every card number in `data`, in the views [`shown`] reads: in order, the ones
/// that can be replaced in place without overlap (of two that overlap, the one that
/// starts first, then the wider, is kept; any other reading of them is for
/// [`every_card`] to find).
pub fn cards(data: &[u8]) -> Vec<Card> {
    let mut out: Vec<Card> = Vec::new();
    if !guard::may_contain(data) {
        return out;
    }
    let mut view = View::with_capacity(data.len());
    bytes_scan::direct(data, &mut view);
    let push = |view: &View, wide: bool, out: &mut Vec<Card>| {
        guard::scan_hits(&view.text, |hit| {
            if let Some(range) = view.source(&hit.range, data.len()) {
                let span = data.get(range.clone()).unwrap_or_default();
                out.push(Card {
                    plain: !wide && hit.ascii && span.iter().all(u8::is_ascii_digit),
                    in_place: !wide && hit.ascii,
                    digits: Zeroizing::new(hit.digits().to_vec()),
                    range,
                });
            }
        });
    };
    push(&view, false, &mut out);
    if data.iter().filter(|b| **b == 0).count() >= bytes_scan::MIN_NULS {
        for align in [0, 1] {
            view.clear();
            bytes_scan::utf16le(data, align, &mut view);
            push(&view, true, &mut out);
        }
    }
    out.sort_by(|a, b| {
        (a.range.start, std::cmp::Reverse(a.range.end))
            .cmp(&(b.range.start, std::cmp::Reverse(b.range.end)))
    });
    let mut kept: Vec<Card> = Vec::with_capacity(out.len());
    for c in out {
        let overlaps = kept
            .iter()
            .rev()
            .filter(|k| k.in_place)
            .take(1)
            .any(|k| c.range.start < k.range.end);
        if c.in_place && overlaps {
            continue;
        }
        kept.push(c);
    }
    kept
}

/// The digits of every card number `data` shows in any reading, each once: [`cards`],
/// and the inbound leak guard's readings beyond its views ([`deep::scan_leaf`]:
/// escapes of escapes, base64, number literals, JSON inside a string). A caller
/// that replaced what it could in place reads its output again with this, and
/// refuses it unless every number left is one it may pass (a token).
pub fn every_card(data: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut out: Vec<Zeroizing<Vec<u8>>> = cards(data).into_iter().map(|c| c.digits).collect();
    let text = digits::text_of(data);
    let mut in_place = Vec::new();
    let mut hidden = Vec::new();
    deep::scan_leaf(&text, deep::Leaf::Text, &mut in_place, &mut hidden);
    for r in &in_place {
        out.push(Zeroizing::new(
            text.as_bytes()
                .get(r.clone())
                .unwrap_or_default()
                .iter()
                .copied()
                .filter(u8::is_ascii_digit)
                .collect(),
        ));
    }
    out.extend(
        hidden
            .iter()
            .map(|h| Zeroizing::new(h.expose().as_bytes().to_vec())),
    );
    out.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
    out.dedup();
    out
}

/// Whether any of `values` shows in `data` in any reading: [`shown`], and the
/// readings of the inbound leak guard beyond its views (escapes of escapes, base64,
/// number literals, JSON inside a string) for card numbers, and escapes of escapes for
/// every value.
pub fn still_shows(data: &[u8], values: &[&[u8]]) -> bool {
    if !shown(data, values).is_empty() {
        return true;
    }
    let wanted = wanted(values);
    let text = digits::text_of(data);
    let cards: Vec<&[u8]> = wanted
        .iter()
        .filter_map(|w| w.card.as_deref())
        .map(Vec::as_slice)
        .collect();
    if !cards.is_empty() {
        let mut in_place = Vec::new();
        let mut hidden = Vec::new();
        deep::scan_leaf(&text, deep::Leaf::Text, &mut in_place, &mut hidden);
        let written = in_place.iter().any(|r: &Range<usize>| {
            let d: Zeroizing<Vec<u8>> = Zeroizing::new(
                text.as_bytes()
                    .get(r.clone())
                    .unwrap_or_default()
                    .iter()
                    .copied()
                    .filter(u8::is_ascii_digit)
                    .collect(),
            );
            cards.contains(&d.as_slice())
        });
        if written
            || hidden
                .iter()
                .any(|h| cards.contains(&h.expose().as_bytes()))
        {
            return true;
        }
    }
    let mut level = deep::unescape(&text).map(Zeroizing::new);
    for _ in 0..ESCAPE_LEVELS {
        let Some(decoded) = level else {
            return false;
        };
        if wanted
            .iter()
            .any(|w| alone(decoded.as_bytes(), w.text).next().is_some())
        {
            return true;
        }
        level = deep::unescape(&decoded).map(Zeroizing::new);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &[u8] = b"4242424242424242";
    const AMEX: &[u8] = b"378282246310005";

    fn texts(data: &[u8], values: &[&[u8]]) -> Vec<String> {
        shown(data, values)
            .iter()
            .map(|s| String::from_utf8_lossy(&data[s.range.clone()]).into_owned())
            .collect()
    }

    #[test]
    fn values_show_as_written_grouped_and_escaped() {
        let v: &[&[u8]] = &[CARD, AMEX, b"218"];
        assert_eq!(
            texts(br#"{"number":"4242424242424242","cvc":"218"}"#, v),
            ["4242424242424242", "218"]
        );
        assert_eq!(
            texts(b"card 4242 4242 4242 4242 declined; 3782-822463-10005", v),
            ["4242 4242 4242 4242", "3782-822463-10005"]
        );
        let esc: String = "4242424242424242"
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        assert_eq!(texts(esc.as_bytes(), v), std::slice::from_ref(&esc));
        assert_eq!(
            texts(b"https://acs.example/?pan=%34%32%34%32424242424242&x=1", v),
            ["%34%32%34%32424242424242"]
        );
        assert_eq!(
            texts(b"pan=4242%204242%204242%204242", v),
            ["4242%204242%204242%204242"]
        );
        // Glued to a letter, a card is still one. A short value only as a whole
        // value: not as a number that may be an amount or a status.
        assert_eq!(
            texts(b"x4242424242424242y a218 2180 218 :218,", v),
            ["4242424242424242"]
        );
        assert_eq!(
            texts(b"{\"cvc\":'218'} cvc=218&x=218 <cvc>218</cvc> \"218 \"", v),
            ["218"; 4]
        );
        assert_eq!(texts(br#"{"body":"{\"cvc\":\"218\"}"}"#, v), ["218"]);
    }

    #[test]
    fn nothing_else_shows() {
        let v: &[&[u8]] = &[CARD, b"218"];
        assert!(shown(b"{\"last4\":\"4242\",\"amount\":2180}", v).is_empty());
        assert!(shown(b"4111111111111111", v).is_empty());
        assert!(shown(b"anything", &[b""]).is_empty());
        assert!(!still_shows(b"{\"token\":\"4000056655665556\"}", v));
    }

    #[test]
    fn cards_are_found_in_place_or_deeper() {
        let found = |data: &[u8]| -> Vec<(String, bool, bool)> {
            cards(data)
                .iter()
                .map(|c| {
                    (
                        String::from_utf8_lossy(&data[c.range.clone()]).into_owned(),
                        c.in_place,
                        c.plain,
                    )
                })
                .collect()
        };
        assert_eq!(
            found(br#"{"new":{"number":"4111111111111111"},"old":"4242 4242 4242 4242"}"#),
            [
                ("4111111111111111".to_owned(), true, true),
                ("4242 4242 4242 4242".to_owned(), true, false),
            ]
        );
        assert_eq!(
            found(br#"{"n":"\u0034242424242424242"}"#),
            [("\\u0034242424242424242".to_owned(), true, false)]
        );
        assert!(cards(b"{\"last4\":\"4242\",\"amount\":2180}").is_empty());
        // base64 of `{"pan":"4242424242424242"}`: in no view, in a deeper reading.
        let blob = b"{\"blob\":\"eyJwYW4iOiI0MjQyNDI0MjQyNDI0MjQyIn0=\"}";
        assert!(cards(blob).is_empty());
        assert_eq!(every_card(blob), [Zeroizing::new(CARD.to_vec())]);
        assert_eq!(
            every_card(b"5555555555554444 and 4.242424242424242e15").len(),
            2
        );
        assert!(every_card(b"nothing 1234").is_empty());
    }

    #[test]
    fn deeper_readings_still_show() {
        let v: &[&[u8]] = &[CARD, b"218"];
        // base64 of `{"pan":"4242424242424242"}`
        assert!(still_shows(
            b"{\"blob\":\"eyJwYW4iOiI0MjQyNDI0MjQyNDI0MjQyIn0=\"}",
            v
        ));
        // Escaped twice.
        assert!(still_shows(b"pan=%2534%2532%2534%2532424242424242", v));
        assert!(still_shows(b"cvc=%25321%2538", v));
        // A number literal that denotes the card.
        assert!(still_shows(b"{\"n\":4.242424242424242e15}", v));
    }
}
