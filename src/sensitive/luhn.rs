//! The Luhn (mod 10) check used by card numbers.

/// Whether a string of ASCII digits passes the Luhn check. Non-digits fail.
pub fn is_valid(digits: &str) -> bool {
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && sum(digits.bytes()).is_multiple_of(10)
}

/// The Luhn check over a sequence of ASCII digits (the caller drops separators).
pub fn is_valid_digits(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let mut n = 0usize;
    let total = sum(digits.inspect(|_| n += 1));
    n > 0 && total.is_multiple_of(10)
}

/// The Luhn sum of ASCII digits, rightmost digit undoubled.
fn sum(digits: impl DoubleEndedIterator<Item = u8>) -> u32 {
    digits
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b.wrapping_sub(b'0'));
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum()
}

/// The check digit that makes `payload` followed by it Luhn-valid.
pub fn check_digit(payload: &str) -> u8 {
    // Append a zero, then pick the digit that brings the sum to a multiple of ten.
    let s = sum(payload.bytes().chain(std::iter::once(b'0')));
    ((10 - (s % 10)) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_cards() {
        assert!(is_valid("4242424242424242"));
        assert!(is_valid("378282246310005"));
        assert!(is_valid("4111111111111111"));
        assert!(!is_valid("4242424242424241"));
        assert!(!is_valid("42424242x4242424"));
        assert_eq!(check_digit("424242424242424"), 2);
        assert_eq!(check_digit("37828224631000"), 5);
    }
}
