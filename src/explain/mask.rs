//! What `explain` may print of a value: PCI DSS lets a card show its first six and
//! last four digits; a CVV shows nothing; an account its last four.

use std::ops::Range;

use crate::inbound::exposure;
use crate::rules::guard;
use crate::sensitive::DataClass;

/// A value of a class, masked.
pub fn value(class: DataClass, raw: &str) -> String {
    match class {
        // Safe to print: at most the first six and last four digits.
        DataClass::Pan => {
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            exposure::mask(&digits)
        }
        DataClass::BankAccount => format!("****{}", last4(raw)),
        DataClass::Cvv | DataClass::Secret => "***".to_owned(),
    }
}

/// The last four letters and digits of a value.
fn last4(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().filter(char::is_ascii_alphanumeric).collect();
    let start = chars.len().saturating_sub(4);
    chars.get(start..).unwrap_or_default().iter().collect()
}

/// A text with every card-number-shaped run of digits masked, whatever field it is
/// in: what `explain` prints of a body or a query it did not tokenize. A text that
/// still shows a card once masked (one in an escape, in full-width digits, behind a
/// no-break space: a hit with no plain range to mask) is not shown at all.
pub fn cards_in(text: &str) -> String {
    let masked = plain_cards_in(text);
    if guard::shows_card(masked.as_bytes()) {
        return "(not shown: it holds a card number)".to_owned();
    }
    masked
}

/// [`cards_in`]'s masking of the hits written plainly.
fn plain_cards_in(text: &str) -> String {
    if !guard::may_contain(text.as_bytes()) {
        return text.to_owned();
    }
    let mut ranges: Vec<Range<usize>> = Vec::new();
    guard::scan(text.as_bytes(), &mut ranges);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in ranges {
        // Hits are ASCII digits and separators, so their bounds are char bounds.
        let (Some(before), Some(hit)) = (text.get(at..r.start), text.get(r.clone())) else {
            continue;
        };
        out.push_str(before);
        out.push_str(&value(DataClass::Pan, hit));
        at = r.end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_by_class() {
        assert_eq!(
            value(DataClass::Pan, "4242424242424242"),
            "424242******4242"
        );
        assert_eq!(value(DataClass::Cvv, "123"), "***");
        assert_eq!(value(DataClass::BankAccount, "9900000002"), "****0002");
        let text = r#"{"a":"4111 1111 1111 1111","b":"378282246310005"}"#;
        let masked = cards_in(text);
        assert!(!masked.contains("4111 1111 1111 1111"), "{masked}");
        assert!(!masked.contains("378282246310005"), "{masked}");
        assert!(masked.contains("378282*****0005"), "{masked}");
    }
}
