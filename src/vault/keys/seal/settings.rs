//! `[vault.seal]`: which seal the keyring uses and, for `pkcs11`, where the HSM is.

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The environment variable the HSM PIN is read from when no other source is named.
pub const DEFAULT_PIN_ENV: &str = "VAULTGATE_HSM_PIN";

/// Which seal holds the master key.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SealKind {
    /// A passphrase (argon2id): the default.
    #[default]
    Passphrase,
    /// k-of-n Shamir shares.
    Shamir,
    /// A non-extractable key in an HSM, through PKCS#11.
    Pkcs11,
}

impl SealKind {
    /// The name used in config, on the command line and in the keyring file.
    pub fn as_str(self) -> &'static str {
        match self {
            SealKind::Passphrase => "passphrase",
            SealKind::Shamir => "shamir",
            SealKind::Pkcs11 => "pkcs11",
        }
    }
}

/// The `[vault.seal]` section.
///
/// ```toml
/// [vault.seal]
/// kind = "pkcs11"
/// module = "/usr/lib/softhsm/libsofthsm2.so"
/// token_label = "vaultgate"          # or slot = 0
/// pin_file = "/run/secrets/hsm-pin"  # or pin_env = "VAULTGATE_HSM_PIN" (the default)
/// key_label = "vaultgate-master"
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SealSettings {
    /// The seal the keyring must have; `serve` refuses a keyring sealed otherwise.
    pub kind: SealKind,
    /// Shamir: how long submitted shares wait for the rest of the quorum before they
    /// are forgotten, in seconds.
    pub share_timeout_secs: u64,
    /// PKCS#11: the module (shared library).
    pub module: Option<PathBuf>,
    /// PKCS#11: the token's label (else `slot`, else the keyring's).
    pub token_label: Option<String>,
    /// PKCS#11: the slot id, instead of a token label.
    pub slot: Option<u64>,
    /// PKCS#11: a file holding the user PIN.
    pub pin_file: Option<PathBuf>,
    /// PKCS#11: the environment variable holding the user PIN (default
    /// `VAULTGATE_HSM_PIN`).
    pub pin_env: Option<String>,
    /// PKCS#11: the label of the AES key that wraps the master key (else the
    /// keyring's; at `init`, default `vaultgate-master`).
    pub key_label: Option<String>,
    /// PKCS#11: accept a wrapping key that is extractable or not sensitive. Off: such
    /// a key is refused, since its value could leave the HSM.
    pub allow_extractable: bool,
}

impl Default for SealSettings {
    fn default() -> Self {
        SealSettings {
            kind: SealKind::Passphrase,
            share_timeout_secs: 600,
            module: None,
            token_label: None,
            slot: None,
            pin_file: None,
            pin_env: None,
            key_label: None,
            allow_extractable: false,
        }
    }
}

impl SealSettings {
    /// Check the keys fit the kind.
    pub fn validate(&self) -> Result<()> {
        if self.share_timeout_secs == 0 {
            return Err(Error::Config(
                "vault.seal.share_timeout_secs: must be at least 1".into(),
            ));
        }
        if self.kind == SealKind::Pkcs11 {
            if self.module.is_none() {
                return Err(Error::Config(
                    "vault.seal.module: required when vault.seal.kind = \"pkcs11\"".into(),
                ));
            }
            if self.pin_file.is_some() && self.pin_env.is_some() {
                return Err(Error::Config(
                    "vault.seal: set pin_file or pin_env, not both".into(),
                ));
            }
        }
        Ok(())
    }
}
