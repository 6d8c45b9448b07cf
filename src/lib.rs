//! vaultgate: a tokenizing vault proxy.
//!
//! Card numbers, CVVs and bank account numbers in request bodies are swapped for
//! tokens before a request reaches the upstream; the values are kept
//! AES-256-GCM-encrypted in an embedded store. The README's architecture section maps
//! the modules and the one-way rules between them:
//!
//! ```text
//! error, sensitive, commit,  the vocabulary: errors, data classes, secret values;
//! positive                   one group-commit primitive, numbers of at least 1
//! rules → codec              which fields hold what; decode, find, re-encode
//! vault (keys, store)        tokens, records, keyring, sled / PostgreSQL
//! audit, metrics, health     the keyed audit log, one registry, readiness
//! net                        listeners, TLS, bodies, headers, upstream, forward
//! auth                       clients, credentials, rate limits, what a client may see
//! config, logging            the file, parsed once into section types
//! inbound, outbound, api     the three handlers (never import each other)
//! app                        wiring, reload, shutdown
//! cli, demo                  entry points
//! ```

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
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod codec;
pub mod commit;
pub mod config;
pub mod custody;
pub mod demo;
pub mod error;
pub mod explain;
/// Fuzz entry points and their oracles: built for `cargo fuzz` (`--cfg fuzzing`) and
/// for the unit tests that keep them compiling, never into a release library.
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod inbound;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod outbound;
pub mod positive;
pub mod rules;
pub mod sensitive;
pub mod vault;

pub use error::{Error, Result};
