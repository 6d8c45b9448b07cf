//! How a token looks: the token formats a field rule can name.

use serde::Deserialize;

use super::DataClass;

/// How a token looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFormat {
    /// Same length as the card, first six and last four kept, Luhn-valid.
    PanSixFour,
    /// As `pan_six_four` but deliberately Luhn-invalid.
    PanNonLuhn,
    /// `tok_` (or `cvv_` for a CVV) and 128 random bits, URL-safe base64.
    Opaque,
    /// Same number of digits (CVV), or same-length digits keeping the last four of a
    /// bank account (an IBAN gets an IBAN-shaped token).
    Digits,
}

impl TokenFormat {
    /// The stable name used in config and records.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::PanSixFour => "pan_six_four",
            TokenFormat::PanNonLuhn => "pan_non_luhn",
            TokenFormat::Opaque => "opaque",
            TokenFormat::Digits => "digits",
        }
    }

    /// Parse the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            TokenFormat::PanSixFour,
            TokenFormat::PanNonLuhn,
            TokenFormat::Opaque,
            TokenFormat::Digits,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }

    /// The default format of a class.
    pub fn default_for(class: DataClass) -> Self {
        match class {
            DataClass::Pan => TokenFormat::PanSixFour,
            DataClass::Cvv | DataClass::BankAccount => TokenFormat::Digits,
            DataClass::Secret => TokenFormat::Opaque,
        }
    }

    /// Whether this format can hold a value of the class.
    pub fn fits(self, class: DataClass) -> bool {
        matches!(
            (class, self),
            (_, TokenFormat::Opaque)
                | (
                    DataClass::Pan,
                    TokenFormat::PanSixFour | TokenFormat::PanNonLuhn
                )
                | (DataClass::Cvv | DataClass::BankAccount, TokenFormat::Digits)
        )
    }
}
