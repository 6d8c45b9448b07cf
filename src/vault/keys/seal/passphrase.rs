//! The passphrase seal: the master key under a key derived with argon2id.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Wrapped, unwrap_key, wrap};
use crate::error::{Error, Result};
use crate::vault::keys::crypto::{self, Sealer, SecretKey};

/// The associated data of the master key under a passphrase (unchanged since
/// `vaultgate-keyring/1`).
const AAD_MASTER: &[u8] = b"vaultgate-keyring/1 master";

/// An operator passphrase in a zeroizing buffer.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wrap a passphrase, trimming one trailing newline (as files and prompts add).
    pub fn new(mut s: String) -> Result<Self> {
        if s.ends_with('\n') {
            s.pop();
            if s.ends_with('\r') {
                s.pop();
            }
        }
        let p = Passphrase(Zeroizing::new(s));
        if p.0.chars().count() < 8 {
            return Err(Error::Keyring(
                "the passphrase must be at least 8 characters".into(),
            ));
        }
        Ok(p)
    }

    fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The passphrase, to send to a server's unseal endpoint.
    pub fn expose_str(&self) -> &str {
        &self.0
    }
}

/// argon2id parameters, stored in the keyring file.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 256 MiB, 3 passes, 1 lane: about 0.6 s per unseal on a shared 2-core machine,
    /// well above argon2's minimum recommendation (19 MiB, 2 passes) and still under
    /// the second an operator should wait at start-up. Measured 2026-11-21: 64 MiB /
    /// 3 passes took 0.13 s, 256 MiB / 3 passes 0.66 s, 512 MiB / 3 passes 1.28 s.
    fn default() -> Self {
        KdfParams {
            m_cost_kib: 256 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// The cheapest parameters accepted: argon2's own recommended minimum.
    pub const MINIMUM: KdfParams = KdfParams {
        m_cost_kib: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };

    fn check(&self) -> Result<()> {
        if self.m_cost_kib < Self::MINIMUM.m_cost_kib
            || self.t_cost < Self::MINIMUM.t_cost
            || self.p_cost < 1
            || self.m_cost_kib > 4 * 1024 * 1024
            || self.t_cost > 64
            || self.p_cost > 64
        {
            return Err(Error::Keyring("argon2 parameters are out of range".into()));
        }
        Ok(())
    }
}

/// The key derivation of a passphrase seal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    algorithm: String,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

impl Kdf {
    /// The argon2 parameters.
    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// Only argon2id is known.
    pub(crate) fn check_algorithm(&self) -> Result<()> {
        if self.algorithm != "argon2id" {
            return Err(Error::Keyring("unknown key derivation algorithm".into()));
        }
        Ok(())
    }
}

/// `seal` with `kind = "passphrase"`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PassphraseSeal {
    pub(crate) kdf: Kdf,
    pub(crate) master: Wrapped,
}

fn derive_kek(pass: &Passphrase, salt: &[u8], p: KdfParams) -> Result<SecretKey> {
    p.check()?;
    let params = argon2::Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(crypto::KEY_LEN))
        .map_err(|_| Error::Keyring("argon2 parameters are out of range".into()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; crypto::KEY_LEN]);
    argon
        .hash_password_into(pass.expose(), salt, out.as_mut())
        .map_err(|_| Error::Keyring("argon2 key derivation failed".into()))?;
    SecretKey::from_slice(out.as_ref())
}

impl PassphraseSeal {
    /// Seal `master` under `pass` with a fresh salt.
    pub fn create(pass: &Passphrase, params: KdfParams, master: &SecretKey) -> Result<Self> {
        let salt: [u8; 16] = crypto::random_bytes();
        let kek = Sealer::new(&derive_kek(pass, &salt, params)?)?;
        Ok(PassphraseSeal {
            kdf: Kdf {
                algorithm: "argon2id".to_owned(),
                params,
                salt: B64.encode(salt),
            },
            master: wrap(&kek, AAD_MASTER, master)?,
        })
    }

    /// Open the master key with the passphrase.
    pub fn open(&self, pass: &Passphrase) -> Result<SecretKey> {
        self.kdf.check_algorithm()?;
        let salt = B64
            .decode(&self.kdf.salt)
            .map_err(|_| Error::Keyring("the keyring salt is damaged".into()))?;
        let kek = Sealer::new(&derive_kek(pass, &salt, self.kdf.params)?)?;
        unwrap_key(&kek, AAD_MASTER, &self.master)
            .map_err(|_| Error::Keyring("wrong passphrase, or the keyring file was edited".into()))
    }
}
