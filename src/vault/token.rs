//! Token formats and how a token is drawn for a value.
//!
//! Every format is a template: some characters are kept from the value, the rest
//! are drawn at random, then a check digit is fixed where the format needs one. A
//! format's random part is small for short values (a 3-digit CVV has 1,000
//! tokens), so the caller can also enumerate candidates to tell a full token space
//! from bad luck.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;

use crate::error::{Error, Result};
pub use crate::sensitive::TokenFormat;
use crate::sensitive::{DataClass, luhn};

/// Prefix of opaque tokens.
pub const OPAQUE_PREFIX: &str = "tok_";
/// Prefix of opaque CVV tokens, so a reveal knows to look among volatile records.
pub const OPAQUE_CVV_PREFIX: &str = "cvv_";

/// The longest string any token format of this vault can produce (an IBAN-shaped
/// token is at most 34 characters, an opaque one 26). Longer inputs are refused with
/// 400 before they reach a store lookup or the audit log.
pub const MAX_TOKEN_LEN: usize = 64;

/// Refuse a submitted "token" longer than any token can be.
pub fn check_token_len(token: &str) -> Result<()> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::BadRequest(format!(
            "a token is at most {MAX_TOKEN_LEN} characters"
        )));
    }
    Ok(())
}

/// Whether `s` is an opaque token: `tok_` or `cvv_` and 22 base64url characters.
pub fn is_opaque_token(s: &str) -> bool {
    let rest = s
        .strip_prefix(OPAQUE_PREFIX)
        .or_else(|| s.strip_prefix(OPAQUE_CVV_PREFIX));
    rest.is_some_and(|r| {
        r.len() == 22
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Whether `s` is well-formed for some token format of this vault: an opaque token,
/// 1 to 34 digits (card, CVV and digit bank-account tokens keep their value's
/// length), or an IBAN-shaped token. Digit and IBAN shapes are also the shapes of
/// values, so this alone does not make a string safe to log (see the audit module).
pub fn looks_like_token(s: &str) -> bool {
    is_opaque_token(s)
        || ((1..=34).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
        || is_iban(s)
}

/// Where each character of a token comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Keep(u8),
    Digit,
    Letter,
}

/// A token shape for one value: the slots to fill and the check to apply.
pub struct Template {
    slots: Vec<Slot>,
    check: Check,
    /// The value itself, to refuse a token equal to it.
    value: zeroize::Zeroizing<Vec<u8>>,
    opaque_prefix: Option<&'static str>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    /// The last random digit is fixed so that the whole token is Luhn-valid.
    Luhn,
    /// The last random digit is bumped if the token happens to be Luhn-valid.
    NotLuhn,
    /// Positions 2 and 3 are IBAN check digits, computed last.
    Iban,
}

/// Whether a value is a valid IBAN (ISO 13616: country, check digits, mod 97 = 1).
pub fn is_iban(v: &str) -> bool {
    let b = v.as_bytes();
    (15..=34).contains(&b.len())
        && b.iter().take(2).all(u8::is_ascii_uppercase)
        && b.iter().skip(2).take(2).all(u8::is_ascii_digit)
        && b.iter().all(u8::is_ascii_alphanumeric)
        && iban_mod97(b) == Some(1)
}

/// The ISO 7064 mod-97 remainder of an IBAN (first four characters moved to the end).
fn iban_mod97(b: &[u8]) -> Option<u32> {
    let mut rem: u32 = 0;
    for &c in b.iter().skip(4).chain(b.iter().take(4)) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return None,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    Some(rem)
}

impl Template {
    /// The template for a (normalised) value of a class in a format.
    pub fn new(class: DataClass, format: TokenFormat, value: &str) -> Result<Self> {
        if !format.fits(class) {
            return Err(Error::Config(format!(
                "token format {} cannot hold a {}",
                format.as_str(),
                class.as_str()
            )));
        }
        let bytes = zeroize::Zeroizing::new(value.as_bytes().to_vec());
        let n = bytes.len();
        let mut t = Template {
            slots: Vec::with_capacity(n),
            check: Check::None,
            value: bytes,
            opaque_prefix: None,
        };
        match (class, format) {
            (DataClass::Cvv, TokenFormat::Opaque) => t.opaque_prefix = Some(OPAQUE_CVV_PREFIX),
            (_, TokenFormat::Opaque) => t.opaque_prefix = Some(OPAQUE_PREFIX),
            (DataClass::Pan, f) => {
                // Keep at most the first six and last four, leaving at least three
                // random digits so that short card numbers still have room.
                let keep_head = 6.min(n.saturating_sub(4 + 3));
                let keep_tail = 4.min(n.saturating_sub(keep_head + 3));
                t.fill(keep_head, keep_tail);
                t.check = if f == TokenFormat::PanSixFour {
                    Check::Luhn
                } else {
                    Check::NotLuhn
                };
            }
            (DataClass::BankAccount, _) if is_iban(value) => {
                // Country kept, check digits recomputed, BBAN drawn per character
                // class, last four kept.
                for (i, &c) in t.value.iter().enumerate() {
                    let slot = if i < 2 || i >= n - 4 {
                        Slot::Keep(c)
                    } else if i < 4 || c.is_ascii_digit() {
                        Slot::Digit
                    } else {
                        Slot::Letter
                    };
                    t.slots.push(slot);
                }
                t.check = Check::Iban;
            }
            (DataClass::BankAccount, _) if t.value.iter().all(u8::is_ascii_digit) => {
                let keep_tail = if n >= 8 { 4 } else { 0 };
                t.fill(0, keep_tail);
            }
            (DataClass::BankAccount, _) => t.opaque_prefix = Some(OPAQUE_PREFIX),
            (DataClass::Cvv, _) => t.fill(0, 0),
            (DataClass::Secret, _) => t.opaque_prefix = Some(OPAQUE_PREFIX),
        }
        Ok(t)
    }

    fn fill(&mut self, keep_head: usize, keep_tail: usize) {
        let n = self.value.len();
        for (i, &c) in self.value.iter().enumerate() {
            self.slots.push(if i < keep_head || i + keep_tail >= n {
                Slot::Keep(c)
            } else {
                Slot::Digit
            });
        }
    }

    /// How many values each position of the template takes in [`nth`](Self::nth)'s
    /// enumeration: 1 for a kept character or a check digit (computed, not chosen),
    /// 9 for the last random digit of a Luhn-invalid format (one of its ten values
    /// would make the token Luhn-valid), 10 for a digit, 26 for a letter.
    fn radices(&self) -> impl DoubleEndedIterator<Item = u64> + ExactSizeIterator + '_ {
        let last_random = self.slots.iter().rposition(|s| *s == Slot::Digit);
        self.slots.iter().enumerate().map(move |(pos, s)| {
            let is_check = match self.check {
                Check::Luhn => Some(pos) == last_random,
                Check::Iban => pos == 2 || pos == 3,
                Check::None | Check::NotLuhn => false,
            };
            match s {
                Slot::Keep(_) => 1,
                _ if is_check => 1,
                Slot::Digit if self.check == Check::NotLuhn && Some(pos) == last_random => 9,
                Slot::Digit => 10,
                Slot::Letter => 26,
            }
        })
    }

    /// How many distinct tokens the template can produce, if small enough to count.
    /// [`nth`](Self::nth) yields each of them exactly once for `i` in `0..space`
    /// (except the value itself, which it never yields).
    pub fn space(&self) -> Option<u64> {
        if self.opaque_prefix.is_some() {
            return None;
        }
        self.radices().try_fold(1u64, u64::checked_mul)
    }

    /// A random token, or `None` when the draw produced the value itself.
    pub fn draw(&self) -> Option<String> {
        if let Some(prefix) = self.opaque_prefix {
            let bits: [u8; 16] = rand::rng().random();
            return Some(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bits)));
        }
        let mut rng = rand::rng();
        let raw: Vec<u8> = self
            .slots
            .iter()
            .map(|s| match s {
                Slot::Keep(c) => *c,
                Slot::Digit => b'0' + rng.random_range(0..10u8),
                Slot::Letter => b'A' + rng.random_range(0..26u8),
            })
            .collect();
        self.finish(raw)
    }

    /// The `i`-th token in a fixed order, for enumerating a small space: `i` is read
    /// as a mixed-radix number over the freely chosen positions (see `radices`), so
    /// that `0..space()` covers every token once. Check digits are not enumerated:
    /// [`finish`](Self::finish) computes them.
    pub fn nth(&self, mut i: u64) -> Option<String> {
        if self.opaque_prefix.is_some() || i >= self.space()? {
            return None;
        }
        let mut raw = vec![0u8; self.slots.len()];
        let mut not_luhn_last = None;
        for ((pos, s), radix) in self.slots.iter().enumerate().zip(self.radices()).rev() {
            let d = i % radix;
            i /= radix;
            let c = match s {
                Slot::Keep(c) => *c,
                Slot::Digit if radix == 9 => {
                    // Chosen below, once every other digit is known.
                    not_luhn_last = Some((pos, d));
                    b'0'
                }
                Slot::Digit => b'0' + u8::try_from(d).ok()?,
                Slot::Letter => b'A' + u8::try_from(d).ok()?,
            };
            *raw.get_mut(pos)? = c;
        }
        if let Some((pos, k)) = not_luhn_last {
            // The k-th of the nine digits that leave the token Luhn-invalid.
            let mut valid = None;
            for d in 0..10u8 {
                *raw.get_mut(pos)? = b'0' + d;
                if std::str::from_utf8(&raw).is_ok_and(luhn::is_valid) {
                    valid = Some(d);
                    break;
                }
            }
            let valid = valid?;
            let k = u8::try_from(k).ok()?;
            *raw.get_mut(pos)? = b'0' + if k < valid { k } else { k + 1 };
        }
        self.finish(raw)
    }

    /// Apply the check and refuse a token equal to its value.
    fn finish(&self, mut raw: Vec<u8>) -> Option<String> {
        let last_random = self.slots.iter().rposition(|s| *s == Slot::Digit);
        match self.check {
            Check::None => {}
            Check::Luhn => {
                let pos = last_random?;
                *raw.get_mut(pos)? = b'0';
                for d in 0..10u8 {
                    *raw.get_mut(pos)? = b'0' + d;
                    if luhn::is_valid(std::str::from_utf8(&raw).ok()?) {
                        break;
                    }
                }
            }
            Check::NotLuhn => {
                if luhn::is_valid(std::str::from_utf8(&raw).ok()?) {
                    let pos = last_random?;
                    let c = raw.get_mut(pos)?;
                    *c = b'0' + (*c - b'0' + 1) % 10;
                }
            }
            Check::Iban => {
                *raw.get_mut(2)? = b'0';
                *raw.get_mut(3)? = b'0';
                let check = 98 - iban_mod97(&raw)?;
                *raw.get_mut(2)? = b'0' + (check / 10) as u8;
                *raw.get_mut(3)? = b'0' + (check % 10) as u8;
            }
        }
        if raw == *self.value {
            return None;
        }
        String::from_utf8(raw).ok()
    }
}

#[cfg(test)]
mod tests;
