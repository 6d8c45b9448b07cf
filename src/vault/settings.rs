//! Where the vault keeps its files and how it treats volatile data.

use std::path::PathBuf;

use serde::Deserialize;

/// The `[vault]` section of the config.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VaultSettings {
    /// The keyring file.
    pub keyring: PathBuf,
    /// The store directory (sled).
    pub data: PathBuf,
    /// How long a CVV token lives, in seconds (PCI DSS 3.3.1: only until authorization).
    pub cvv_ttl_secs: u64,
    /// Keep CVVs on disk (under short-lived keys) so they survive a restart.
    pub cvv_durable: bool,
    /// sled's page cache, in MiB (sled's own default is 1 GiB).
    pub cache_capacity_mb: u64,
}

impl Default for VaultSettings {
    fn default() -> Self {
        VaultSettings {
            keyring: PathBuf::from("keys/keyring.json"),
            data: PathBuf::from("data"),
            cvv_ttl_secs: 3600,
            cvv_durable: false,
            cache_capacity_mb: 64,
        }
    }
}
