//! Card networks' issuer identification number (IIN) ranges and card lengths: a
//! Luhn-valid number is card-shaped only if a real network issues cards with its
//! prefix and length. This keeps ids, timestamps and phone numbers (which pass the
//! Luhn check one time in ten) out of the leak guard's hits.
//!
//! | network | prefixes | lengths |
//! |---|---|---|
//! | Visa | 4 | 13, 16, 19 |
//! | Mastercard | 51–55, 2221–2720 | 16 |
//! | American Express | 34, 37 | 15 |
//! | Discover | 6011, 644–649, 65 | 16–19 |
//! | JCB | 3528–3589 | 16–19 |
//! | UnionPay | 62 | 16–19 |
//! | Diners Club | 300–305, 36, 38, 39 | 14–19 |
//! | Maestro | 50, 56–69 | 13–19 (12 in the wild; below the guard's minimum) |

/// The number formed by the first `n` digits (ASCII), or `None` if there are fewer.
fn prefix(digits: &[u8], n: usize) -> Option<u32> {
    digits.get(..n)?.iter().try_fold(0u32, |acc, d| {
        d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
    })
}

/// Whether ASCII `digits` have the prefix and length of a card some network issues.
pub fn is_card_network(digits: &[u8]) -> bool {
    let len = digits.len();
    let (Some(p1), Some(p2), Some(p3), Some(p4)) = (
        prefix(digits, 1),
        prefix(digits, 2),
        prefix(digits, 3),
        prefix(digits, 4),
    ) else {
        return false;
    };
    let in_len = |lo: usize, hi: usize| (lo..=hi).contains(&len);
    match p1 {
        // Visa.
        4 => matches!(len, 13 | 16 | 19),
        // Mastercard 51–55; Maestro 50 and 56–59.
        5 => match p2 {
            51..=55 => len == 16,
            _ => in_len(13, 19),
        },
        // Discover, UnionPay and Maestro (56–69) cover every 6 prefix.
        6 => in_len(13, 19),
        // Mastercard 2-series.
        2 => (2221..=2720).contains(&p4) && len == 16,
        3 => match p2 {
            34 | 37 => len == 15,
            36 | 38 | 39 => in_len(14, 19),
            30 => (300..=305).contains(&p3) && in_len(14, 19),
            35 => (3528..=3589).contains(&p4) && in_len(16, 19),
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        is_card_network(s.as_bytes())
    }

    #[test]
    fn test_cards_are_in_range() {
        for card in [
            "4242424242424242",
            "4000056655665556",
            "4111111111111111",
            "4222222222222",
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "371449635398431",
            "6011111111111117",
            "6011000990139424",
            "3056930009020004",
            "36227206271667",
            "3566002020360505",
            "6200000000000005",
            "6759649826438453",
        ] {
            assert!(ok(card), "{card}");
        }
    }

    #[test]
    fn ids_and_wrong_lengths_are_not() {
        assert!(!ok("1234567890123")); // no network starts with 1
        assert!(!ok("1780000000000000000")); // a snowflake id
        assert!(!ok("7000000000000000")); // 7 and 8 are not card prefixes
        assert!(!ok("8000000000000000"));
        assert!(!ok("9000000000000000"));
        assert!(!ok("42424242424242")); // Visa is 13, 16 or 19 digits
        assert!(!ok("55555555555544")); // Mastercard is 16
        assert!(!ok("37828224631000")); // Amex is 15
        assert!(!ok("2000000000000000")); // below the 2-series
        assert!(!ok("2721000000000000"));
        assert!(!ok("3060000000000000")); // Diners 300–305 only
        assert!(!ok("3527000000000000")); // JCB from 3528
        assert!(!ok("33000000000000"));
        assert!(!ok(""));
        assert!(!ok("4x42424242424242"));
    }
}
