//! Where the vault keeps its files and how it treats volatile data.

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::vault::keys::seal::SealSettings;

/// Which token store backs the vault.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded store in `data` (one instance).
    #[default]
    Sled,
    /// The embedded store on fjall in `data` (one instance): one disk round trip per
    /// durable write instead of sled's two, and a smaller store. Opt-in.
    Fjall,
    /// A PostgreSQL database that several instances share.
    Postgres,
}

/// A connection URL that may carry a password: never printed.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }

    /// The URL itself, to hand to the database driver.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    // The URL may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretUrl(..)")
    }
}

/// The `[vault]` section of the config.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VaultSettings {
    /// The keyring file.
    pub keyring: PathBuf,
    /// The store directory (sled; with PostgreSQL only `cvv-keys.json` would go here,
    /// and it does not: window keys live in the database).
    pub data: PathBuf,
    /// How long a CVV token lives, in seconds (PCI DSS 3.3.1: only until authorization).
    pub cvv_ttl_secs: u64,
    /// Keep CVVs on disk (under short-lived keys) so they survive a restart. Always on
    /// with PostgreSQL, where every instance must reach every CVV.
    pub cvv_durable: bool,
    /// The most CVV records held in memory at once (not durable mode). A full
    /// store drops expired records, then refuses new CVVs with 503 `cvv_store_full`.
    pub cvv_max_entries: usize,
    /// The most bytes (keys, sealed records and bookkeeping) CVV records take in
    /// memory at once.
    pub cvv_max_bytes: u64,
    /// The most live CVV tokens per card scope; a new one evicts the oldest, so that
    /// nobody can fill a card's token space (default 8).
    pub cvv_per_scope: usize,
    /// New card numbers sharing one first six and last four that may be tokenized
    /// deterministically per `sweep_window_secs` (default 32; 0 turns the detector
    /// off). Past it, that bucket answers 429 `tokenization_sweep_detected`.
    pub sweep_threshold: u32,
    /// The sweep detector's window, in seconds (default 600).
    pub sweep_window_secs: u64,
    /// sled's page cache, in MiB (sled's own default is 1 GiB).
    pub cache_capacity_mb: u64,
    /// `sled` (default) or `postgres`.
    pub store: StoreKind,
    /// `postgres://user:password@host:port/db?options=…` when `store = "postgres"`.
    pub postgres_url: Option<SecretUrl>,
    /// A PEM file of CA certificates for the database's TLS certificate (else the
    /// webpki roots). TLS is required unless the host is local (loopback or a socket).
    pub postgres_ca: Option<PathBuf>,
    /// Connections in the pool, per instance.
    pub postgres_pool_size: usize,
    /// Apply pending schema migrations when the vault opens.
    pub postgres_migrate_on_start: bool,
    /// How long one store operation may wait for the database, a free pooled
    /// connection included, before it fails with 503 `store_unavailable` (default
    /// 5000). Migrations at start are not bounded by it.
    pub postgres_timeout_ms: u64,
    /// How long a request waits for an embedded store (sled, fjall) to make its
    /// writes durable, and for a write to be taken, before it fails with 503
    /// `store_unavailable`, nothing forwarded (default 5000). While a flush has been
    /// running for longer than this (a hung or frozen disk), new writes are refused at
    /// once and `/readyz` reports the store not ready, until the flush returns. It
    /// bounds the audit log's writes and syncs the same way (503 `audit_unavailable`),
    /// whatever the store.
    pub flush_timeout_ms: u64,
    /// `[vault.seal]`: how the master key is sealed (default: a passphrase).
    pub seal: SealSettings,
}

impl Default for VaultSettings {
    fn default() -> Self {
        VaultSettings {
            keyring: PathBuf::from("keys/keyring.json"),
            data: PathBuf::from("data"),
            cvv_ttl_secs: 3600,
            cvv_durable: false,
            cvv_max_entries: 100_000,
            cvv_max_bytes: 64 * 1024 * 1024,
            cvv_per_scope: 8,
            sweep_threshold: 32,
            sweep_window_secs: 600,
            cache_capacity_mb: 64,
            store: StoreKind::Sled,
            postgres_url: None,
            postgres_ca: None,
            postgres_pool_size: 16,
            postgres_migrate_on_start: true,
            postgres_timeout_ms: 5000,
            flush_timeout_ms: 5000,
            seal: SealSettings::default(),
        }
    }
}

impl VaultSettings {
    /// `flush_timeout_ms` as a duration.
    pub fn flush_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.flush_timeout_ms)
    }

    /// Check the store keys fit together.
    pub fn validate(&self) -> Result<()> {
        if self.cvv_max_entries == 0 {
            return Err(Error::Config(
                "vault.cvv_max_entries: must be at least 1".into(),
            ));
        }
        if self.cvv_max_bytes == 0 {
            return Err(Error::Config(
                "vault.cvv_max_bytes: must be at least 1".into(),
            ));
        }
        if self.cvv_per_scope == 0 {
            return Err(Error::Config(
                "vault.cvv_per_scope: must be at least 1".into(),
            ));
        }
        if self.sweep_window_secs == 0 {
            return Err(Error::Config(
                "vault.sweep_window_secs: must be at least 1".into(),
            ));
        }
        if self.flush_timeout_ms == 0 {
            return Err(Error::Config(
                "vault.flush_timeout_ms: must be at least 1".into(),
            ));
        }
        self.seal.validate()?;
        match self.store {
            StoreKind::Sled | StoreKind::Fjall => Ok(()),
            StoreKind::Postgres => {
                if self.postgres_url.is_none() {
                    return Err(Error::Config(
                        "vault.postgres_url: required when vault.store = \"postgres\"".into(),
                    ));
                }
                if self.postgres_pool_size == 0 {
                    return Err(Error::Config(
                        "vault.postgres_pool_size: must be at least 1".into(),
                    ));
                }
                if self.postgres_timeout_ms == 0 {
                    return Err(Error::Config(
                        "vault.postgres_timeout_ms: must be at least 1".into(),
                    ));
                }
                Ok(())
            }
        }
    }
}
