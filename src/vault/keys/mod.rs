//! Key material: the AES-GCM and HMAC primitives, and the keyring that seals the
//! master key and wraps the versioned data keys.

pub mod crypto;
pub mod keyring;
pub mod seal;

pub use keyring::{Keys, Passphrase};
