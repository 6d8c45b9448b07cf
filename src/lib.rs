//! vaultgate: a tokenizing vault proxy.
//!
//! Card numbers, CVVs and bank account numbers in request bodies are swapped for
//! tokens before a request reaches the upstream; the values are kept
//! AES-256-GCM-encrypted in an embedded store. See `DESIGN.md` in the shared docs and
//! the README for the architecture.

#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod codec;
pub mod config;
pub mod demo;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod outbound;
pub mod pipeline;
pub mod proxy;
pub mod select;
pub mod sensitive;
pub mod server;
pub mod vault;

pub use error::{Error, Result};
