//! Pieces for `vaultgate demo` and the integration tests.

pub mod echo;
