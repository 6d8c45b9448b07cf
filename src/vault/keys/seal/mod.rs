//! How the master key is sealed at rest: under a passphrase (argon2id), split into
//! k-of-n Shamir shares, or wrapped by a non-extractable key inside an HSM (PKCS#11).
//!
//! Each seal turns its credential (a passphrase, a quorum of shares, an HSM session)
//! into the master key, and wraps a master key into its `seal` object in the keyring
//! file. Nothing else in the keyring depends on the seal, so moving between seals
//! ([`super::keyring::reseal`]) re-wraps one key and touches no record.

pub mod passphrase;
pub mod pkcs11;
mod settings;
pub mod shamir;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::crypto::{Sealer, SecretKey};
use crate::error::{Error, Result};

pub use passphrase::{KdfParams, Passphrase, PassphraseSeal};
pub use pkcs11::{HsmKeyInfo, Pkcs11Seal};
pub use settings::{SealKind, SealSettings};
pub use shamir::{ShamirSeal, Share, ShareText};

/// A key sealed with AES-256-GCM: the nonce and the ciphertext (tag last), base64.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Wrapped {
    pub(crate) nonce: String,
    pub(crate) ciphertext: String,
}

/// Seal `key` under `sealer`, bound to `aad`.
pub(crate) fn wrap(sealer: &Sealer, aad: &[u8], key: &SecretKey) -> Result<Wrapped> {
    let (nonce, ct) = sealer.seal(aad, key.expose())?;
    Ok(Wrapped {
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ct),
    })
}

/// Open a key sealed by [`wrap`]; any change to it or to `aad` fails.
pub(crate) fn unwrap_key(sealer: &Sealer, aad: &[u8], w: &Wrapped) -> Result<SecretKey> {
    let bad = || Error::Keyring("the keyring file is damaged or was edited".into());
    let nonce = B64.decode(&w.nonce).map_err(|_| bad())?;
    let ct = B64.decode(&w.ciphertext).map_err(|_| bad())?;
    let raw = sealer.open(aad, &nonce, &ct).map_err(|_| bad())?;
    SecretKey::from_slice(&raw).map_err(|_| bad())
}

/// The `seal` object of a keyring file: how its master key is held.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SealFile {
    /// Under a key derived from a passphrase.
    Passphrase(PassphraseSeal),
    /// Under a key split into shares.
    Shamir(ShamirSeal),
    /// Under a key inside an HSM.
    Pkcs11(Pkcs11Seal),
}

impl SealFile {
    /// Which seal this is.
    pub fn kind(&self) -> SealKind {
        match self {
            SealFile::Passphrase(_) => SealKind::Passphrase,
            SealFile::Shamir(_) => SealKind::Shamir,
            SealFile::Pkcs11(_) => SealKind::Pkcs11,
        }
    }

    /// Open the master key with a credential of the matching kind.
    pub fn open(&self, unlock: &Unlock<'_>) -> Result<SecretKey> {
        match (self, unlock) {
            (SealFile::Passphrase(s), Unlock::Passphrase(p)) => s.open(p),
            (SealFile::Shamir(s), Unlock::Shares(shares)) => s.open(shares),
            (SealFile::Pkcs11(s), Unlock::Hsm(settings)) => s.open(settings),
            (seal, unlock) => Err(Error::Keyring(format!(
                "the keyring is sealed with `{}`, not `{}`",
                seal.kind().as_str(),
                unlock.kind().as_str()
            ))),
        }
    }
}

/// What opens a seal.
pub enum Unlock<'a> {
    /// The passphrase.
    Passphrase(&'a Passphrase),
    /// At least the threshold of shares, parsed.
    Shares(&'a [Share]),
    /// A session with the HSM (module, token, PIN, key label).
    Hsm(&'a SealSettings),
}

impl Unlock<'_> {
    /// The seal this credential opens.
    pub fn kind(&self) -> SealKind {
        match self {
            Unlock::Passphrase(_) => SealKind::Passphrase,
            Unlock::Shares(_) => SealKind::Shamir,
            Unlock::Hsm(_) => SealKind::Pkcs11,
        }
    }
}

/// A seal to create (at `init`, or when moving to another seal).
pub enum NewSeal<'a> {
    /// A passphrase, stretched with argon2id.
    Passphrase {
        pass: &'a Passphrase,
        params: KdfParams,
    },
    /// `shares` shares, any `threshold` of which open the master key.
    Shamir { shares: u8, threshold: u8 },
    /// A key in an HSM, created if the token has none under the label.
    Pkcs11(&'a SealSettings),
}

/// Seal `master` anew. For Shamir, the new shares are returned: the only time they
/// exist outside their holders' hands.
pub fn seal(new: &NewSeal<'_>, master: &SecretKey) -> Result<(SealFile, Vec<ShareText>)> {
    match new {
        NewSeal::Passphrase { pass, params } => Ok((
            SealFile::Passphrase(PassphraseSeal::create(pass, *params, master)?),
            Vec::new(),
        )),
        NewSeal::Shamir { shares, threshold } => {
            let (seal, texts) = ShamirSeal::create(*shares, *threshold, master)?;
            Ok((SealFile::Shamir(seal), texts))
        }
        NewSeal::Pkcs11(settings) => Ok((
            SealFile::Pkcs11(Pkcs11Seal::create(settings, master)?),
            Vec::new(),
        )),
    }
}
