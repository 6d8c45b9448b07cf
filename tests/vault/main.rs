//! The vault: core operations on real sled, the store conformance suite (sled and
//! PostgreSQL), the CLI, and property tests.
//!
//! One test binary per area, its files as modules, so that the suite links a few
//! binaries instead of one per file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;

mod cli_vault;
mod explain;
mod properties;
mod seal_pkcs11;
mod seal_shamir;
mod seal_support;
mod store_compat;
mod store_conformance;
mod vault_core;
