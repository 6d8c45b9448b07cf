//! Pieces for `vaultgate demo` and the integration tests.

pub mod clients;
pub mod echo;
pub mod reveal;
pub mod run;
