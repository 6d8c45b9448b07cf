//! How often the leak guard takes a realistic number that is not a card for one:
//! 100k generated ids, timestamps, phone numbers, order numbers and UUIDs, scanned
//! with the Luhn check alone (the guard before IIN ranges) and with Luhn + IIN.
//!
//! `cargo test --lib false_positive -- --nocapture` prints the rates.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const PER_KIND: usize = 12_500;

fn luhn_only(digits: &[u8]) -> bool {
    (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
        && luhn::is_valid_digits(digits.iter().copied())
}

fn flagged(text: &str, shaped: fn(&[u8]) -> bool) -> bool {
    let mut any = false;
    scan_with(text.as_bytes(), shaped, |_| any = true);
    any
}

/// A time in milliseconds between 2015 and 2035.
fn ms(rng: &mut StdRng) -> u64 {
    rng.random_range(1_420_070_400_000u64..2_051_222_400_000)
}

fn snowflake(rng: &mut StdRng) -> String {
    // Twitter's and Discord's epochs; 41 bits of time, 22 of worker and sequence.
    let epoch = if rng.random_bool(0.5) {
        1_288_834_974_657
    } else {
        1_420_070_400_000
    };
    let id = ((ms(rng) - epoch) << 22) | rng.random_range(0..1u64 << 22);
    id.to_string()
}

fn random_id(rng: &mut StdRng) -> String {
    // A 64-bit id drawn uniformly, of 18 or 19 digits.
    rng.random_range(100_000_000_000_000_000u64..=u64::MAX)
        .to_string()
}

fn timestamp(rng: &mut StdRng) -> String {
    let t = ms(rng);
    match rng.random_range(0..3) {
        0 => t.to_string(),
        1 => (t * 1_000 + rng.random_range(0..1_000)).to_string(),
        _ => (t * 1_000_000 + rng.random_range(0..1_000_000)).to_string(),
    }
}

fn phone(rng: &mut StdRng) -> String {
    // (country code, national number lengths)
    const PLANS: [(&str, &[usize]); 24] = [
        ("1", &[10]),
        ("44", &[10]),
        ("49", &[10, 11]),
        ("33", &[9]),
        ("39", &[9, 10]),
        ("34", &[9]),
        ("31", &[9]),
        ("43", &[10, 11]),
        ("41", &[9]),
        ("46", &[9]),
        ("48", &[9]),
        ("7", &[10]),
        ("90", &[10]),
        ("55", &[11]),
        ("52", &[10]),
        ("61", &[9]),
        ("62", &[10, 11]),
        ("63", &[10]),
        ("65", &[8]),
        ("81", &[10]),
        ("86", &[11]),
        ("91", &[10]),
        ("234", &[10]),
        ("353", &[9]),
    ];
    let (cc, lens) = PLANS[rng.random_range(0..PLANS.len())];
    let n = lens[rng.random_range(0..lens.len())];
    let mut s = format!("+{cc}{}", rng.random_range(1..10u8));
    for _ in 1..n {
        s.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    s
}

fn order_number(rng: &mut StdRng) -> String {
    let digits = |rng: &mut StdRng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect()
    };
    match rng.random_range(0..3) {
        // 123-4567890-1234567
        0 => format!(
            "{}{}-{}-{}",
            rng.random_range(1..10u8),
            digits(rng, 2),
            digits(rng, 7),
            digits(rng, 7)
        ),
        // A date and a daily sequence: 20240115 000123
        1 => {
            let n = rng.random_range(5..9);
            format!(
                "20{:02}{:02}{:02}{}",
                rng.random_range(15..36u8),
                rng.random_range(1..13u8),
                rng.random_range(1..29u8),
                digits(rng, n)
            )
        }
        // A random number of 10 to 16 digits.
        _ => {
            let n = rng.random_range(10..17);
            format!("{}{}", rng.random_range(1..10u8), digits(rng, n - 1))
        }
    }
}

fn uuid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        ["8", "9", "a", "b"][usize::from(b[8] & 3)],
        &h[17..20],
        &h[20..32]
    )
}

/// Text as UTF-16LE or UTF-32BE bytes.
fn utf16le(text: &str) -> String {
    let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    String::from_utf8(bytes).unwrap()
}

fn utf32be(text: &str) -> String {
    let bytes: Vec<u8> = text
        .chars()
        .flat_map(|c| u32::from(c).to_be_bytes())
        .collect();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn false_positive_rates() {
    type Make = fn(&mut StdRng) -> String;
    let kinds: [(&str, Make); 10] = [
        ("snowflake id", snowflake),
        ("random 64-bit id", random_id),
        ("unix time ms/us/ns", timestamp),
        ("E.164 phone", phone),
        ("order number", order_number),
        ("UUID", uuid),
        ("UUID digits only", |rng| {
            uuid(rng).chars().filter(char::is_ascii_digit).collect()
        }),
        ("snowflake in text", |rng| {
            format!(
                "{{\"id\":\"{}\",\"ts\":{}}}",
                snowflake(rng),
                timestamp(rng)
            )
        }),
        // NULs are read as nothing: these read as their UTF-8 selves.
        ("snowflake, UTF-16", |rng| {
            utf16le(&format!("{{\"id\":\"{}\"}}", snowflake(rng)))
        }),
        ("order no., UTF-32", |rng| utf32be(&order_number(rng))),
    ];
    let mut rng = StdRng::seed_from_u64(11);
    let (mut total, mut luhn_total, mut iin_total) = (0usize, 0usize, 0usize);
    println!(
        "{:<20} {:>8} {:>12} {:>12}",
        "kind", "values", "Luhn only", "Luhn + IIN"
    );
    for (name, make) in kinds {
        let (mut luhn, mut iin) = (0usize, 0usize);
        for _ in 0..PER_KIND {
            let v = make(&mut rng);
            luhn += usize::from(flagged(&v, luhn_only));
            iin += usize::from(flagged(&v, is_card_shaped));
        }
        let pct = |n: usize| 100.0 * n as f64 / PER_KIND as f64;
        println!(
            "{name:<20} {PER_KIND:>8} {:>11.2}% {:>11.2}%",
            pct(luhn),
            pct(iin)
        );
        if name.starts_with("unix") {
            assert_eq!(iin, 0, "{name}");
        }
        total += PER_KIND;
        luhn_total += luhn;
        iin_total += iin;
    }
    let pct = |n: usize| 100.0 * n as f64 / total as f64;
    println!(
        "{:<20} {total:>8} {:>11.2}% {:>11.2}%",
        "all",
        pct(luhn_total),
        pct(iin_total)
    );
    assert!(total >= 100_000);
    // Luhn alone flags about one value in ten that has 13 to 19 digits.
    assert!(pct(luhn_total) > 5.0);
    assert!(pct(iin_total) < 1.5, "{}", pct(iin_total));
}

/// Binary data full of NULs, as a body may carry it (integer arrays, zero-filled
/// records, UTF-16 text of other kinds), is not taken for cards more than its
/// ASCII reading would be.
#[test]
fn binary_data_with_nuls_is_not_flagged() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut flagged = [0usize; 5];
    let mut as_spaces = [0usize; 5];
    const N: usize = 2_000;
    for _ in 0..N {
        let mut kinds: [Vec<u8>; 5] = Default::default();
        for _ in 0..64 {
            // Little-endian u32 and u64 counters, small values.
            let v: u32 = rng.random_range(0..70_000);
            kinds[0].extend(v.to_le_bytes());
            kinds[1].extend(u64::from(v).to_le_bytes());
        }
        // A zero-filled record with a byte set here and there.
        kinds[2] = vec![0; 512];
        for _ in 0..96 {
            let at = rng.random_range(0..512);
            kinds[2][at] = rng.random();
        }
        // Random bytes, one in three a NUL and one in three an ASCII digit.
        kinds[3] = (0..512)
            .map(|_| match rng.random_range(0..3) {
                0 => 0,
                1 => b'0' + rng.random_range(0..10u8),
                _ => rng.random(),
            })
            .collect();
        // Other numbers in UTF-16: timestamps and phone numbers, spaced.
        let t: u64 = rng.random_range(1_420_070_400_000..2_051_222_400_000);
        let phone: u64 = rng.random_range(2_000_000_000..9_999_999_999);
        kinds[4] = utf16le(&format!("{{\"ts\":{t},\"tel\":\"+1 {phone}\"}}")).into_bytes();
        for ((n, old), bytes) in flagged.iter_mut().zip(&mut as_spaces).zip(&kinds) {
            let mut any = false;
            scan_hits(bytes, |_| any = true);
            *n += usize::from(any);
            // The reading before NULs were transparent: each NUL one separator.
            let spaced: Vec<u8> = bytes
                .iter()
                .map(|b| if *b == 0 { b' ' } else { *b })
                .collect();
            let mut any = false;
            scan_hits(&spaced, |_| any = true);
            *old += usize::from(any);
        }
    }
    println!("flagged of {N}: {flagged:?}, with NULs read as spaces {as_spaces:?}");
    // Counters of a few bytes each hold at most two ASCII digits in a row.
    assert_eq!(flagged[0], 0);
    assert_eq!(flagged[1], 0);
    assert_eq!(flagged[2], 0);
    assert_eq!(flagged[4], 0);
    // A digit in three bytes, between NULs, rarely makes thirteen in a row.
    assert!(flagged[3] * 100 < N, "{flagged:?}");
}
