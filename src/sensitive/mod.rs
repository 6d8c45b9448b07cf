//! Sensitive values as types that cannot be printed, serialized or left in memory.
//!
//! None of these types implements `Debug`, `Display` or `Serialize`. Reading the
//! value is one call, `expose()`, which is easy to grep for.

pub mod format;
pub mod luhn;

pub use format::TokenFormat;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The kinds of data vaultgate protects. Each record names its class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// A primary account number (card number).
    Pan,
    /// A card security code; volatile (PCI DSS 3.3.1).
    Cvv,
    /// A bank account number or IBAN.
    BankAccount,
    /// Any other secret string.
    Secret,
}

impl DataClass {
    /// All classes, for iteration in config checks and metrics.
    pub const ALL: [DataClass; 4] = [
        DataClass::Pan,
        DataClass::Cvv,
        DataClass::BankAccount,
        DataClass::Secret,
    ];

    /// The stable name used in config, records, metrics and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::Pan => "pan",
            DataClass::Cvv => "cvv",
            DataClass::BankAccount => "bank_account",
            DataClass::Secret => "secret",
        }
    }

    /// Parse the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        DataClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// One byte for binary record formats.
    pub fn tag(self) -> u8 {
        match self {
            DataClass::Pan => 1,
            DataClass::Cvv => 2,
            DataClass::BankAccount => 3,
            DataClass::Secret => 4,
        }
    }

    /// The class for a record tag byte.
    pub fn from_tag(tag: u8) -> Option<Self> {
        DataClass::ALL.into_iter().find(|c| c.tag() == tag)
    }
}

/// A plaintext value in a zeroizing buffer. No `Debug`, no `Display`.
#[derive(Clone)]
pub struct Plaintext(Zeroizing<String>);

impl Plaintext {
    /// Take ownership of a value.
    pub fn new(value: String) -> Self {
        Plaintext(Zeroizing::new(value))
    }

    /// Take ownership of a value already in a zeroizing buffer.
    pub fn from_zeroizing(value: Zeroizing<String>) -> Self {
        Plaintext(value)
    }

    /// Copy a value out of a borrowed string into a zeroizing buffer.
    pub fn from_str_copy(value: &str) -> Self {
        Plaintext(Zeroizing::new(value.to_owned()))
    }

    /// Decode UTF-8 bytes (as decrypted from a record).
    pub fn from_utf8(bytes: Zeroizing<Vec<u8>>) -> Result<Self> {
        let s = std::str::from_utf8(&bytes).map_err(|_| Error::Integrity("record is not UTF-8"))?;
        Ok(Plaintext::from_str_copy(s))
    }

    /// The value itself. Every call site is a place where plaintext is handled.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The last four characters, which PCI DSS 3.4.1 allows to display.
    // Safe to make public: at most four trailing characters of the value.
    pub fn last4(&self) -> String {
        // Read from the end, so that no other copy of the value is made.
        let mut last: Vec<char> = self
            .0
            .chars()
            .rev()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(4)
            .collect();
        last.reverse();
        last.into_iter().collect()
    }
}

/// A card number: 12 to 19 ASCII digits (spaces and dashes removed).
pub struct Pan(Plaintext);

/// A card security code: 3 or 4 ASCII digits.
pub struct Cvv(Plaintext);

/// A bank account number (digits) or an IBAN (letters and digits).
pub struct AccountNumber(Plaintext);

/// Strip the separators people type into card and account numbers. The buffer is
/// made at its final size: one that grew would leave earlier copies of the value
/// behind in freed memory, which no zeroizing reaches.
fn compact(raw: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(raw.len()));
    out.extend(raw.chars().filter(|c| *c != ' ' && *c != '-'));
    out
}

impl Pan {
    /// Validate and normalise a card number.
    pub fn parse(raw: &str) -> Result<Self> {
        let digits = compact(raw);
        let n = digits.len();
        if !(12..=19).contains(&n) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidValue("card number"));
        }
        Ok(Pan(Plaintext(digits)))
    }

    /// The digits.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl Cvv {
    /// Validate a card security code.
    pub fn parse(raw: &str) -> Result<Self> {
        let n = raw.len();
        if !(3..=4).contains(&n) || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidValue("card security code"));
        }
        Ok(Cvv(Plaintext::from_str_copy(raw)))
    }

    /// The digits.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl AccountNumber {
    /// Validate a bank account number: 4 to 34 ASCII letters and digits.
    pub fn parse(raw: &str) -> Result<Self> {
        let mut v = compact(raw);
        let n = v.len();
        if !(4..=34).contains(&n) || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::InvalidValue("bank account number"));
        }
        // In place: `to_ascii_uppercase` would make a copy that is not zeroized.
        v.make_ascii_uppercase();
        Ok(AccountNumber(Plaintext(v)))
    }

    /// The account number.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// A value of any class, checked for its class.
pub enum Sensitive {
    Pan(Pan),
    Cvv(Cvv),
    BankAccount(AccountNumber),
    Secret(Plaintext),
}

impl Sensitive {
    /// Parse a raw value as the given class.
    pub fn parse(class: DataClass, raw: &str) -> Result<Self> {
        Ok(match class {
            DataClass::Pan => Sensitive::Pan(Pan::parse(raw)?),
            DataClass::Cvv => Sensitive::Cvv(Cvv::parse(raw)?),
            DataClass::BankAccount => Sensitive::BankAccount(AccountNumber::parse(raw)?),
            DataClass::Secret => {
                // Characters, not bytes: the limit the OpenAPI document states.
                if raw.is_empty() || raw.chars().count() > 4096 {
                    return Err(Error::InvalidValue("secret"));
                }
                Sensitive::Secret(Plaintext::from_str_copy(raw))
            }
        })
    }

    /// The class of this value.
    pub fn class(&self) -> DataClass {
        match self {
            Sensitive::Pan(_) => DataClass::Pan,
            Sensitive::Cvv(_) => DataClass::Cvv,
            Sensitive::BankAccount(_) => DataClass::BankAccount,
            Sensitive::Secret(_) => DataClass::Secret,
        }
    }

    /// The normalised value.
    pub fn expose(&self) -> &str {
        match self {
            Sensitive::Pan(v) => v.expose(),
            Sensitive::Cvv(v) => v.expose(),
            Sensitive::BankAccount(v) => v.expose(),
            Sensitive::Secret(v) => v.expose(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_is_normalised_and_checked() {
        assert_eq!(
            Pan::parse("4242 4242-4242 4242").unwrap().expose(),
            "4242424242424242"
        );
        assert!(Pan::parse("4242x").is_err());
        assert!(Cvv::parse("12").is_err());
        assert_eq!(Plaintext::from_str_copy("378282246310005").last4(), "0005");
        // Separators are passed over; a short value gives what it has.
        assert_eq!(
            Plaintext::from_str_copy("4242 4242-4242 4-2-4-2").last4(),
            "4242"
        );
        assert_eq!(
            Plaintext::from_str_copy("s3cr3t-api-password").last4(),
            "word"
        );
        assert_eq!(Plaintext::from_str_copy("a-b").last4(), "ab");
        assert_eq!(Plaintext::from_str_copy("--").last4(), "");
        assert_eq!(
            AccountNumber::parse("de89 3704").unwrap().expose(),
            "DE893704"
        );
    }
}
