use super::*;

fn header() -> Header {
    Header {
        class: DataClass::Pan,
        key_version: 7,
        created: 1_700_000_000,
        expires: Some(1_700_003_600),
        deterministic: true,
        packed: false,
    }
}

#[test]
fn header_round_trips_and_short_input_is_an_error() {
    for format in [Format::V1, Format::V2] {
        for h in [
            header(),
            Header {
                expires: None,
                deterministic: false,
                key_version: u32::MAX,
                ..header()
            },
            Header {
                packed: format == Format::V2,
                ..header()
            },
        ] {
            let bytes = h.encode_record(format, &[9u8; NONCE_LEN], &[1u8; 20]);
            let r = Record::parse(&bytes).unwrap();
            assert_eq!(r.format, format);
            assert_eq!(r.header, h);
            assert_eq!(r.aad("k"), h.aad(format, "k"));
            assert_eq!(r.nonce, &[9u8; NONCE_LEN]);
            assert_eq!(r.ciphertext, &[1u8; 20]);
            for n in 0..bytes.len() - 20 + TAG_LEN {
                assert!(Record::parse(&bytes[..n]).is_err());
            }
        }
    }
}

#[test]
fn a_card_record_is_shorter_in_format_2() {
    let h = Header {
        expires: None,
        key_version: 1,
        ..header()
    };
    let v2 = h.encode_record(Format::V2, &[0u8; NONCE_LEN], &[0u8; 32]);
    let v1 = h.encode_record(Format::V1, &[0u8; NONCE_LEN], &[0u8; 32]);
    assert_eq!(v1.len(), 23 + 12 + 32);
    assert_eq!(v2.len(), 8 + 12 + 32);
}

/// A format-1 record exactly as the vault wrote it before format 2 still parses,
/// and its associated data is the one it was sealed with (its stored header).
#[test]
fn a_format_1_record_still_parses() {
    let mut bytes = vec![1u8, 1, 0, 0, 0, 3];
    bytes.extend_from_slice(&1_700_000_000u64.to_be_bytes());
    bytes.extend_from_slice(&0u64.to_be_bytes());
    bytes.push(1);
    bytes.extend_from_slice(&[5u8; NONCE_LEN]);
    bytes.extend_from_slice(&[6u8; 32]);
    let r = Record::parse(&bytes).unwrap();
    assert_eq!(r.format, Format::V1);
    assert_eq!(
        r.header,
        Header {
            class: DataClass::Pan,
            key_version: 3,
            created: 1_700_000_000,
            expires: None,
            deterministic: true,
            packed: false,
        }
    );
    let mut aad = b"vaultgate-record/1".to_vec();
    aad.extend_from_slice(&3u32.to_be_bytes());
    aad.extend_from_slice(b"tok");
    aad.extend_from_slice(&bytes[..23]);
    assert_eq!(r.aad("tok"), aad);
}

#[test]
fn non_canonical_headers_are_refused() {
    let tail = [0u8; NONCE_LEN + TAG_LEN];
    let with = |head: &[u8]| {
        let mut b = head.to_vec();
        b.extend_from_slice(&tail);
        b
    };
    // Minimal: parses.
    assert!(Record::parse(&with(&[2, 0x01, 1, 5])).is_ok());
    // Overlong varint, unknown bits, unknown class, unknown format, v1 unknown flag.
    assert!(Record::parse(&with(&[2, 0x01, 0x81, 0x00, 5])).is_err());
    assert!(Record::parse(&with(&[2, 0x81, 1, 5])).is_err());
    assert!(Record::parse(&with(&[2, 0x09, 1, 5])).is_err());
    assert!(Record::parse(&with(&[3, 0x01, 1, 5])).is_err());
    let mut v1 = header().encode_record(Format::V1, &[0u8; NONCE_LEN], &[0u8; TAG_LEN]);
    v1[22] = 2;
    assert!(Record::parse(&v1).is_err());
    // A key version over 32 bits.
    assert!(Record::parse(&with(&[2, 0x01, 0x80, 0x80, 0x80, 0x80, 0x10, 5])).is_err());
    // Varint overflow past 64 bits.
    let mut over = vec![2, 0x01, 1];
    over.extend_from_slice(&[0xff; 9]);
    over.push(0x02);
    assert!(Record::parse(&with(&over)).is_err());
    let mut max = vec![2, 0x01, 1];
    max.extend_from_slice(&[0xff; 9]);
    max.push(0x01);
    let max = with(&max);
    assert_eq!(Record::parse(&max).unwrap().header.created, u64::MAX);
}

#[test]
fn an_all_digit_value_is_sealed_packed_in_format_2_only() {
    let card = SealedValue::of(Format::V2, "4242424242424242");
    assert!(card.packed());
    assert_eq!(card.bytes(), [0x42; 8]);
    let amex = SealedValue::of(Format::V2, "378282246310005");
    assert_eq!(amex.bytes().len(), 8);
    // Not all digits, or format 1 (no room for the flag): the UTF-8 bytes.
    for (format, value) in [
        (Format::V2, "GB29NWBK60161331926819"),
        (Format::V2, "s3cr3t"),
        (Format::V1, "4242424242424242"),
    ] {
        let sealed = SealedValue::of(format, value);
        assert!(!sealed.packed(), "{value}");
        assert_eq!(sealed.bytes(), value.as_bytes());
    }
}

#[test]
fn a_value_opens_as_it_was_sealed() {
    for value in [
        "4242424242424242",
        "378282246310005",
        "123",
        "GB29NWBK60161331926819",
    ] {
        let sealed = SealedValue::of(Format::V2, value);
        let h = Header {
            packed: sealed.packed(),
            ..header()
        };
        let opened = zeroize::Zeroizing::new(sealed.bytes().to_vec());
        assert_eq!(open_value(&h, opened).unwrap().expose(), value);
    }
    // A packed flag over bytes that are not packed digits is an integrity error.
    let h = Header {
        packed: true,
        ..header()
    };
    let e = open_value(&h, zeroize::Zeroizing::new(b"4242-4242".to_vec()));
    assert!(e.is_err());
}
