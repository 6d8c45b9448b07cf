//! The vault: tokenize and detokenize over an encrypted store.

pub mod crypto;
pub mod keyring;
pub mod settings;
pub mod token;

pub use settings::VaultSettings;
pub use token::TokenFormat;
