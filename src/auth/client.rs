//! An authenticated client and what it may do. Holds no credential material.

use super::config::ClientConfig;
use crate::sensitive::DataClass;

/// How much of a value a client may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevealMode {
    /// The whole value.
    Full,
    /// The last four characters only.
    Masked,
    /// Nothing.
    Denied,
}

/// A small set of data classes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassSet(u8);

impl ClassSet {
    fn bit(class: DataClass) -> u8 {
        1u8 << (class.tag() & 7)
    }

    /// Whether the set holds `class`.
    pub fn contains(self, class: DataClass) -> bool {
        self.0 & Self::bit(class) != 0
    }
}

impl FromIterator<DataClass> for ClassSet {
    fn from_iter<I: IntoIterator<Item = DataClass>>(iter: I) -> Self {
        ClassSet(iter.into_iter().fold(0, |acc, c| acc | Self::bit(c)))
    }
}

/// A configured client, as handed to request handlers after authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    name: String,
    reveal: ClassSet,
    reveal_masked: ClassSet,
    tokenize: ClassSet,
    delete: bool,
    rate_limit_per_minute: u32,
}

impl Client {
    /// Build from a validated config entry.
    pub fn from_config(c: &ClientConfig) -> Self {
        Client {
            name: c.name.clone(),
            reveal: c.reveal.iter().copied().collect(),
            reveal_masked: c.reveal_masked.iter().copied().collect(),
            tokenize: c.tokenize.iter().copied().collect(),
            delete: c.delete,
            rate_limit_per_minute: c.rate_limit_per_minute,
        }
    }

    /// The client's name, as written to the audit log.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How much of a value of `class` this client may see.
    pub fn may_reveal(&self, class: DataClass) -> RevealMode {
        if self.reveal.contains(class) {
            RevealMode::Full
        } else if self.reveal_masked.contains(class) {
            RevealMode::Masked
        } else {
            RevealMode::Denied
        }
    }

    /// Whether this client may tokenize values of `class` through the API.
    pub fn may_tokenize(&self, class: DataClass) -> bool {
        self.tokenize.contains(class)
    }

    /// Whether this client may delete tokens.
    pub fn may_delete(&self) -> bool {
        self.delete
    }

    /// Tokens this client may reveal per minute.
    pub fn rate_limit_per_minute(&self) -> u32 {
        self.rate_limit_per_minute
    }
}
