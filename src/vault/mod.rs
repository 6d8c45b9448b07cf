//! The vault: tokenize and detokenize over an encrypted store.

pub mod token;

pub use token::TokenFormat;
