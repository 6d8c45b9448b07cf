//! An authenticated client and what it may do. Holds no credential material.

use super::config::ClientConfig;
use crate::error::{Error, Result};
use crate::sensitive::DataClass;

/// What a caller wants to do with a token, for [`Client::visible`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Read its metadata (class, last four, times).
    Metadata,
    /// Reveal it, whole or masked as the client may.
    Reveal,
    /// Reveal it whole (the outbound proxy sends values on, never masks).
    RevealFull,
}

/// The answer for a token a client may not see: the same as for a token that does not
/// exist, so a client learns nothing about tokens outside its grant.
pub fn hidden(class: DataClass) -> Error {
    if class == DataClass::Cvv {
        Error::CvvExpired
    } else {
        Error::TokenNotFound
    }
}

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
    deterministic: ClassSet,
    delete: bool,
    seal: bool,
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
            deterministic: c.deterministic.iter().copied().collect(),
            delete: c.delete,
            seal: c.seal,
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

    /// What this client may see of a token of `class` for `purpose`; a token it may not
    /// see at all answers like a missing one ([`hidden`]). The one place the rule
    /// lives, for the reveal API, the metadata endpoint and the outbound proxy.
    pub fn visible(&self, class: DataClass, purpose: Purpose) -> Result<RevealMode> {
        let mode = self.may_reveal(class);
        let allowed = match (purpose, mode) {
            (_, RevealMode::Denied) => false,
            (Purpose::Metadata, _) => true,
            // A masked CVV would be the whole CVV or nothing: never reveal one masked,
            // and never consume one for a client that cannot see it.
            (Purpose::Reveal, RevealMode::Masked) => class != DataClass::Cvv,
            (Purpose::Reveal, RevealMode::Full) => true,
            (Purpose::RevealFull, m) => m == RevealMode::Full,
        };
        if allowed {
            Ok(mode)
        } else {
            Err(hidden(class))
        }
    }

    /// Whether this client may tokenize values of `class` through the API.
    pub fn may_tokenize(&self, class: DataClass) -> bool {
        self.tokenize.contains(class)
    }

    /// Whether this client may get deterministic tokens of `class` from the API.
    pub fn may_tokenize_deterministic(&self, class: DataClass) -> bool {
        self.deterministic.contains(class)
    }

    /// Whether this client may delete tokens.
    pub fn may_delete(&self) -> bool {
        self.delete
    }

    /// Whether this client may seal the vault.
    pub fn may_seal(&self) -> bool {
        self.seal
    }

    /// Tokens this client may reveal per minute.
    pub fn rate_limit_per_minute(&self) -> u32 {
        self.rate_limit_per_minute
    }
}
