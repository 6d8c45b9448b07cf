use super::*;

/// A token for `v`. A draw that comes out as `v` itself is `None` (the caller draws
/// again); for a 15-digit card that is one draw in 10,000, so draw until one is not.
fn draw(class: DataClass, f: TokenFormat, v: &str) -> String {
    let template = Template::new(class, f, v).unwrap();
    (0..100).find_map(|_| template.draw()).unwrap()
}

#[test]
fn pan_six_four_keeps_bin_and_last4_and_is_luhn_valid() {
    for card in [
        "4242424242424242",
        "378282246310005",
        "4111111111111111",
        "5555555555554444",
    ] {
        for _ in 0..200 {
            let t = draw(DataClass::Pan, TokenFormat::PanSixFour, card);
            assert_eq!(t.len(), card.len());
            assert_eq!(t[..6], card[..6]);
            assert_eq!(t[t.len() - 4..], card[card.len() - 4..]);
            assert!(luhn::is_valid(&t), "{t}");
            assert_ne!(t, card);
        }
    }
}

#[test]
fn pan_non_luhn_is_never_luhn_valid() {
    for _ in 0..500 {
        let t = draw(DataClass::Pan, TokenFormat::PanNonLuhn, "4242424242424242");
        assert!(!luhn::is_valid(&t));
        assert!(t.starts_with("424242") && t.ends_with("4242"));
    }
}

#[test]
fn opaque_tokens() {
    let t = draw(DataClass::Pan, TokenFormat::Opaque, "4242424242424242");
    assert!(t.starts_with("tok_") && t.len() == 4 + 22);
    assert!(draw(DataClass::Cvv, TokenFormat::Opaque, "123").starts_with("cvv_"));
}

#[test]
fn bank_account_digits_keep_last_four() {
    let t = draw(
        DataClass::BankAccount,
        TokenFormat::Digits,
        "12345678901236491",
    );
    assert_eq!(t.len(), 17);
    assert!(t.ends_with("6491") && t.bytes().all(|b| b.is_ascii_digit()));
    let short = draw(DataClass::BankAccount, TokenFormat::Digits, "1234");
    assert_eq!(short.len(), 4);
}

#[test]
fn iban_tokens_are_valid_ibans() {
    let iban = "DE89370400440532013000";
    assert!(is_iban(iban));
    for _ in 0..200 {
        let t = draw(DataClass::BankAccount, TokenFormat::Digits, iban);
        assert!(is_iban(&t), "{t}");
        assert!(t.starts_with("DE") && t.ends_with("3000") && t.len() == iban.len());
    }
    let gb = "GB82WEST12345698765432";
    assert!(is_iban(gb));
    let t = draw(DataClass::BankAccount, TokenFormat::Digits, gb);
    assert!(is_iban(&t) && t[4..8].bytes().all(|b| b.is_ascii_uppercase()));
}

#[test]
fn cvv_space_is_enumerable_and_excludes_the_value() {
    let t = Template::new(DataClass::Cvv, TokenFormat::Digits, "123").unwrap();
    assert_eq!(t.space(), Some(1000));
    let all: Vec<_> = (0..1000).filter_map(|i| t.nth(i)).collect();
    assert_eq!(all.len(), 999);
    assert!(!all.iter().any(|x| x == "123"));
}

#[test]
fn wrong_format_for_class_is_refused() {
    assert!(Template::new(DataClass::Cvv, TokenFormat::PanSixFour, "123").is_err());
}

/// Every token of a template's space, by enumeration.
fn enumerate_all(t: &Template) -> Vec<String> {
    (0..t.space().unwrap()).filter_map(|i| t.nth(i)).collect()
}

#[test]
fn luhn_enumeration_covers_the_whole_space() {
    // 13 digits: six kept, three random (one of them the check digit), four kept.
    let card = "4222222222222";
    assert!(luhn::is_valid(card));
    let t = Template::new(DataClass::Pan, TokenFormat::PanSixFour, card).unwrap();
    assert_eq!(t.space(), Some(100));
    let all = enumerate_all(&t);
    // Every Luhn-valid 13-digit number with this head and tail but the card itself.
    assert_eq!(all.len(), 99);
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), 99);
    assert!(all.iter().all(|x| luhn::is_valid(x) && x != card));
    assert!(
        all.iter()
            .all(|x| x.starts_with("422222") && x.ends_with("2222"))
    );
    assert_eq!(t.nth(100), None);
}

#[test]
fn non_luhn_enumeration_covers_the_whole_space() {
    let card = "4222222222222";
    let t = Template::new(DataClass::Pan, TokenFormat::PanNonLuhn, card).unwrap();
    assert_eq!(t.space(), Some(900));
    let all = enumerate_all(&t);
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), 900);
    assert!(all.iter().all(|x| !luhn::is_valid(x)));
    // Random draws land in the same space.
    for _ in 0..200 {
        let d = t.draw().unwrap();
        assert!(distinct.contains(&d), "{d}");
    }
}

#[test]
fn iban_enumeration_is_distinct() {
    let iban = "DE89370400440532013000";
    let t = Template::new(DataClass::BankAccount, TokenFormat::Digits, iban).unwrap();
    let all: Vec<String> = (0..5000).filter_map(|i| t.nth(i)).collect();
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len());
    assert!(all.iter().all(|x| is_iban(x)));
}

#[test]
fn token_shapes() {
    for class in [DataClass::Pan, DataClass::Cvv, DataClass::BankAccount] {
        let value = match class {
            DataClass::Pan => "4242424242424242",
            DataClass::Cvv => "123",
            _ => "GB82WEST12345698765432",
        };
        let shaped = match class {
            DataClass::Pan => TokenFormat::PanSixFour,
            _ => TokenFormat::Digits,
        };
        for f in [TokenFormat::Opaque, shaped] {
            let t = draw(class, f, value);
            assert!(looks_like_token(&t), "{t}");
            assert!(check_token_len(&t).is_ok());
        }
    }
    assert!(is_opaque_token(&draw(
        DataClass::Secret,
        TokenFormat::Opaque,
        "s"
    )));
    assert!(!looks_like_token("tok_short"));
    assert!(!looks_like_token("hello world"));
    assert!(!looks_like_token(&"1".repeat(35)));
    assert!(check_token_len(&"x".repeat(65)).is_err());
}
