//! Where in a text a hit can lie: the candidate runs the guard reads closely.
//!
//! The text is classified 64 bytes at a time with SSE2-wide compares (the `wide`
//! crate; a plain loop elsewhere), into one bit per byte for "may belong to a digit"
//! and one for "breaks a number". Stretches between breaks are then found with bit
//! operations: a block with no stretch long enough to hold a card costs a few
//! instructions after its classification, whatever its bytes.

use std::ops::Range;

use wide::i8x16;

use super::MIN_DIGITS;

/// Bytes classified at once: one bit each in a `u64`.
pub(super) const BLOCK: usize = 64;

/// One bit per byte of a block.
pub(super) struct Classes {
    /// ASCII digits and non-ASCII bytes (which may belong to a digit of another
    /// script): [`ByteClass::DigitLike`](crate::rules::digits::ByteClass).
    pub(super) digit_like: u64,
    /// ASCII bytes that are neither digits nor separators
    /// ([`ByteClass::Other`](crate::rules::digits::ByteClass)): no number continues
    /// across them. A NUL never is one (the guard reads it as nothing, or as the end
    /// of a number when there are more than three in a row).
    pub(super) breaks: u64,
}

/// Classify a block of bytes, sixteen at a time.
pub(super) fn classify(block: &[u8; BLOCK]) -> Classes {
    let mut digit_like = 0u64;
    let mut on_a_number = 0u64;
    for (lane, part) in (0..).step_by(16).zip(block.chunks_exact(16)) {
        let mut lanes = [0i8; 16];
        for (l, b) in lanes.iter_mut().zip(part) {
            *l = i8::from_ne_bytes([*b]);
        }
        let v = i8x16::new(lanes);
        // `lo..=hi`, both ASCII above 0 and below 0x7f.
        let within = |lo: u8, hi: u8| {
            v.simd_gt(i8x16::splat(i8::from_ne_bytes([lo - 1])))
                & v.simd_lt(i8x16::splat(i8::from_ne_bytes([hi + 1])))
        };
        let is = |b: u8| v.simd_eq(i8x16::splat(i8::from_ne_bytes([b])));
        // Non-ASCII bytes are the negative ones as `i8`.
        let non_ascii = v.simd_lt(i8x16::ZERO);
        let digit = within(b'0', b'9') | non_ascii;
        // Digits and the ASCII separators of `digits::is_separator`: NUL, `\t` to
        // `\r`, space, `+` `,` `-` `.` `/` (next to the digits), `_`.
        let on =
            non_ascii | is(0) | within(b'\t', b'\r') | is(b' ') | within(b'+', b'9') | is(b'_');
        digit_like |= u64::from(digit.to_bitmask()) << lane;
        on_a_number |= u64::from(on.to_bitmask()) << lane;
    }
    Classes {
        digit_like,
        breaks: !on_a_number,
    }
}

/// Call `f` with each stretch of `text` a hit can lie in: a maximal run of bytes
/// that are not breaks, from its first digit-like byte to its end, when it holds at
/// least [`MIN_DIGITS`] digit-like bytes. Every hit lies within one.
pub(super) fn candidate_runs(text: &[u8], mut f: impl FnMut(Range<usize>)) {
    let mut open = Stretch::default();
    let mut blocks = text.chunks_exact(BLOCK);
    let mut base = 0;
    for block in &mut blocks {
        if let Ok(block) = <&[u8; BLOCK]>::try_from(block) {
            in_block(&classify(block), base, &mut open, &mut f);
        }
        base += BLOCK;
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        // Padded with a break, so the last stretch ends at the text's end.
        let mut padded = [b'!'; BLOCK];
        if let Some(dst) = padded.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        in_block(&classify(&padded), base, &mut open, &mut f);
    }
    open.end(text.len(), &mut f);
}

/// The stretch being read, which may go on into the next block: its first
/// digit-like byte and how many it has.
#[derive(Default)]
struct Stretch {
    first: Option<usize>,
    digits: u32,
}

impl Stretch {
    /// Bytes `from..to` of the block at `base` belong to this stretch.
    fn add(&mut self, digit_like: u64, base: usize, from: u32, to: u32) {
        let d = bits(digit_like, from, to);
        if d != 0 {
            self.first
                .get_or_insert(base + (from + d.trailing_zeros()) as usize);
            self.digits += d.count_ones();
        }
    }

    /// The stretch ends before byte `at` of the text.
    fn end(&mut self, at: usize, f: &mut impl FnMut(Range<usize>)) {
        if let Some(start) = self.first.take()
            && self.digits as usize >= MIN_DIGITS
        {
            f(start..at);
        }
        self.digits = 0;
    }
}

/// Bits `from..to` of `word` (`from < to <= 64`), shifted down to bit 0.
fn bits(word: u64, from: u32, to: u32) -> u64 {
    let shifted = word >> from;
    match to - from {
        64.. => shifted,
        n => shifted & ((1u64 << n) - 1),
    }
}

/// The stretches of the block at `base`, going on from the one `open` from the block
/// before (and leaving open the one that reaches this block's end).
fn in_block(c: &Classes, base: usize, open: &mut Stretch, f: &mut impl FnMut(Range<usize>)) {
    let Classes { digit_like, breaks } = *c;
    // The stretch from the block before goes on up to this block's first break.
    let lead = breaks.trailing_zeros();
    if lead > 0 {
        open.add(digit_like, base, 0, lead);
    }
    if lead == 64 {
        return;
    }
    open.end(base + lead as usize, f);
    // Of the stretches after it, only those at least MIN_DIGITS bytes long, or that
    // reach the block's end, can hold a hit. Bit i of `long` is set where the
    // thirteen bytes from i on are not breaks (8, then 8 overlapping by 3).
    const _: () = assert!(MIN_DIGITS == 13);
    let on = !breaks;
    let two = on & (on >> 1);
    let four = two & (two >> 2);
    let eight = four & (four >> 4);
    let mut long = eight & (eight >> 5);
    // The stretch that reaches the block's end starts after the last break.
    let tail = 64 - breaks.leading_zeros();
    if tail < 64 {
        long |= 1 << tail;
    }
    // Not the leading stretch again.
    long &= !0u64 << lead;
    while long != 0 {
        let at = long.trailing_zeros();
        // The stretch holding byte `at` starts after the last break before it (there
        // is one: the leading stretch ended at a break below `at`).
        let before = breaks & ((1u64 << at) - 1);
        let start = 64 - before.leading_zeros();
        let end = (at + (breaks >> at).trailing_zeros()).min(64);
        open.add(digit_like, base, start, end);
        if end == 64 {
            return;
        }
        open.end(base + end as usize, f);
        long &= !0u64 << end;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::rules::digits::{ByteClass, byte_class};

    /// The runs as first defined, a byte at a time: from each digit-like byte that
    /// starts a stretch, to the next break.
    fn bytewise(text: &[u8]) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < text.len() {
            if byte_class(text[at]) != ByteClass::DigitLike {
                at += 1;
                continue;
            }
            let start = at;
            let mut digits = 0;
            while at < text.len() {
                match byte_class(text[at]) {
                    ByteClass::DigitLike => digits += 1,
                    ByteClass::Separator => {}
                    ByteClass::Other => break,
                }
                at += 1;
            }
            if digits >= MIN_DIGITS {
                out.push(start..at);
            }
        }
        out
    }

    fn runs(text: &[u8]) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        candidate_runs(text, |r| out.push(r));
        out
    }

    /// Every byte in every lane, beside every kind of byte, gets the bits of its
    /// byte class.
    #[test]
    fn the_classes_agree_with_the_byte_table() {
        for b in 0..=255u8 {
            for filler in [b'a', b' ', b'5', 0x80, 0xff, 0x00, 0x7f, b'!'] {
                for lane in [0, 1, 15, 16, 31, 47, 62, 63] {
                    let mut block = [filler; BLOCK];
                    block[lane] = b;
                    let c = classify(&block);
                    for (i, &byte) in block.iter().enumerate() {
                        let class = byte_class(byte);
                        assert_eq!(
                            c.digit_like >> i & 1 == 1,
                            class == ByteClass::DigitLike,
                            "byte {byte:#04x} at {i}"
                        );
                        assert_eq!(
                            c.breaks >> i & 1 == 1,
                            class == ByteClass::Other,
                            "byte {byte:#04x} at {i}"
                        );
                    }
                }
            }
        }
    }

    /// The blockwise runs are the bytewise ones: on random texts of digits,
    /// separators, multi-byte characters and breaks, across block boundaries, and on
    /// texts of one byte repeated to lengths around the block size.
    #[test]
    fn the_runs_are_those_found_a_byte_at_a_time() {
        use rand::Rng as _;
        let pieces: [&[u8]; 20] = [
            b"4242",
            b"4242424242424242",
            b"1",
            b" ",
            b"-",
            b"x",
            b"\"",
            "\u{a0}".as_bytes(),
            "\u{ff14}".as_bytes(),
            b":",
            b"\0",
            b"\t",
            b"_",
            b"9999999",
            b"\xff",
            b",",
            b"+",
            b"\0\0\0",
            b"4\x002\x004\x002\0",
            b"4\0\0\x002\0\0\0",
        ];
        let mut rng = rand::rng();
        let mut found = 0;
        for _ in 0..50_000 {
            let n = rng.random_range(0..60);
            let text: Vec<u8> = (0..n)
                .flat_map(|_| pieces[rng.random_range(0..pieces.len())].iter().copied())
                .collect();
            let expected = bytewise(&text);
            assert_eq!(
                runs(&text),
                expected,
                "{:?}",
                String::from_utf8_lossy(&text)
            );
            found += expected.len();
        }
        assert!(found > 10_000, "too few runs to compare: {found}");
        for b in 0..=255u8 {
            for len in [0, 12, 13, 63, 64, 65, 76, 127, 128, 129, 200] {
                let text = vec![b; len];
                assert_eq!(runs(&text), bytewise(&text), "{b:#04x} × {len}");
            }
        }
    }

    /// A stretch that crosses one or two block boundaries is one run.
    #[test]
    fn a_run_across_blocks_is_one_run() {
        for at in [40, 55, 60, 63, 64, 65, 120] {
            let mut text = vec![b'x'; 200];
            text[at..at + 19].copy_from_slice(b"4242 4242 4242 4242");
            assert_eq!(runs(&text), vec![at..at + 19], "at {at}");
        }
        let mut text = vec![b'x'; 300];
        text[10..150].fill(b'7');
        assert_eq!(runs(&text), vec![10..150]);
        assert_eq!(runs(&[b'7'; 128]), vec![0..128]);
        // NULs never break a stretch: a card in UTF-32 across blocks is one run.
        let card: Vec<u8> = "4242 4242 4242 4242"
            .bytes()
            .flat_map(|b| [b, 0, 0, 0])
            .collect();
        let mut text = vec![b'x'; 200];
        text[30..30 + card.len()].copy_from_slice(&card);
        assert_eq!(runs(&text), vec![30..30 + card.len()]);
        assert_eq!(runs(&[b' '; 128]), Vec::<Range<usize>>::new());
    }
}
