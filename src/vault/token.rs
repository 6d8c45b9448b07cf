//! Token formats.

use serde::Deserialize;

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
