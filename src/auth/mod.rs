//! Clients, their credentials, what they may do, and how fast.
//!
//! - [`ClientConfig`]: one `[[clients]]` table; [`validate_clients`] checks the set.
//! - [`Authenticator`]: API key (argon2id, cached under a keyed HMAC) or verified
//!   certificate name → [`Client`].
//! - [`Client::may_reveal`] and friends: authorization by data class.
//! - [`RateLimiter`]: per-client token bucket over tokens revealed.
//! - [`generate_api_key`]: a new key and its hash, for `vaultgate clients add`;
//!   [`client_toml_snippet`] and [`key_id`] for `clients add` and `clients list`.
//! - [`Access`]: the above plus the audit log, as the vault API and the outbound
//!   proxy use them.
//!
//! Identity comes only from a checked credential or the verified TLS peer, never
//! from a header.

mod access;
mod apikey;
mod authenticator;
mod client;
mod config;
mod ratelimit;

#[cfg(test)]
mod tests;

pub use access::{AUTH_FAILURE_INTERVAL, Access, api_auth_header, api_client};
pub use apikey::{KEY_PREFIX, client_toml_snippet, generate_api_key, key_id};
pub use authenticator::{Authenticator, CacheSettings};
pub use client::{ClassSet, Client, Purpose, RevealMode, hidden};
pub use config::{ClientConfig, DEFAULT_RATE_LIMIT_PER_MINUTE, validate_clients};
pub use ratelimit::RateLimiter;
