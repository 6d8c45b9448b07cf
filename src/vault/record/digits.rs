//! Decimal digits packed two to a byte, the form a record seals an all-digit value in
//! (card numbers, CVVs): a 16-digit card number is 8 bytes of ciphertext instead of 16.
//!
//! Each byte holds two digits, the first in its high half. An odd count ends in the
//! pad `0xF` in the last byte's low half. Any other half-byte above 9 is malformed, so
//! each digit string has exactly one packed form.

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The low half of the last byte of an odd number of digits.
const PAD: u8 = 0x0f;

/// `value` packed, if it is one or more ASCII digits; `None` otherwise.
pub fn pack(value: &str) -> Option<Zeroizing<Vec<u8>>> {
    let digits = value.as_bytes();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(digits.len().div_ceil(2)));
    for pair in digits.chunks(2) {
        let (hi, lo) = match *pair {
            [a, b] => (a - b'0', b - b'0'),
            [a] => (a - b'0', PAD),
            _ => return None,
        };
        out.push(hi << 4 | lo);
    }
    Some(out)
}

/// The digits `packed` holds. Empty input, a half-byte above 9, or a pad anywhere
/// but in the last byte's low half is an integrity error.
pub fn unpack(packed: &[u8]) -> Result<Zeroizing<String>> {
    let bad = Error::Integrity("malformed packed digits in record");
    if packed.is_empty() {
        return Err(bad);
    }
    // Sized once: a grown buffer would leave a copy of the digits behind.
    let mut out = Zeroizing::new(String::with_capacity(packed.len() * 2));
    for (i, &byte) in packed.iter().enumerate() {
        let (hi, lo) = (byte >> 4, byte & 0x0f);
        if hi > 9 {
            return Err(bad);
        }
        out.push(char::from(b'0' + hi));
        if lo <= 9 {
            out.push(char::from(b'0' + lo));
        } else if !(lo == PAD && i + 1 == packed.len()) {
            return Err(bad);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_round_trip_at_every_length() {
        for value in [
            "0",
            "42",
            "123",
            "0000",
            "378282246310005",
            "4242424242424242",
            "0123456789012345678",
        ] {
            let packed = pack(value).unwrap();
            assert_eq!(packed.len(), value.len().div_ceil(2), "{value}");
            assert_eq!(unpack(&packed).unwrap().as_str(), value);
        }
        assert_eq!(*pack("4242").unwrap(), [0x42, 0x42]);
        assert_eq!(*pack("123").unwrap(), [0x12, 0x3f]);
    }

    #[test]
    fn only_digit_strings_are_packed() {
        for value in ["", "4242 4242", "42a", "-1", "٤٢", "4242424242424242\n"] {
            assert!(pack(value).is_none(), "{value:?}");
        }
    }

    #[test]
    fn malformed_packed_digits_are_refused() {
        for packed in [
            &[][..],
            &[0xa0],       // high half above 9
            &[0x1f, 0x23], // pad before the end
            &[0x12, 0xf3], // pad in a high half
            &[0x1e],       // low half neither a digit nor the pad
            &[0xff],       // no digit at all
        ] {
            assert!(unpack(packed).is_err(), "{packed:02x?}");
        }
    }
}
