//! The keyring file: a master key sealed under a passphrase, and the data and
//! fingerprint keys wrapped by the master key. The format is documented in
//! `keys/README.md`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::crypto::{self, Sealer, SecretKey};
use crate::error::{Error, Result};

/// The format tag written into every keyring file.
pub const FORMAT: &str = "vaultgate-keyring/1";

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

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Kdf {
    algorithm: String,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Wrapped {
    nonce: String,
    ciphertext: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct WrappedDataKey {
    version: u32,
    created: u64,
    #[serde(flatten)]
    key: Wrapped,
}

/// The keyring file as stored. Holds only wrapped keys.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyringFile {
    format: String,
    kdf: Kdf,
    master: Wrapped,
    fingerprint_key: Wrapped,
    data_keys: Vec<WrappedDataKey>,
    active_version: u32,
    #[serde(default)]
    mac: String,
}

/// The unsealed keys, held in memory while vaultgate runs.
pub struct Keys {
    master: SecretKey,
    fingerprint: SecretKey,
    data: BTreeMap<u32, Sealer>,
    active: u32,
}

impl Keys {
    /// The active data key version and its cipher.
    pub fn active(&self) -> Result<(u32, &Sealer)> {
        self.data
            .get(&self.active)
            .map(|s| (self.active, s))
            .ok_or(Error::Integrity("the active data key is missing"))
    }

    /// The cipher of a given data key version.
    pub fn version(&self, v: u32) -> Result<&Sealer> {
        self.data
            .get(&v)
            .ok_or(Error::Integrity("a record names an unknown key version"))
    }

    /// The fingerprint (HMAC) key.
    pub fn fingerprint_key(&self) -> &SecretKey {
        &self.fingerprint
    }

    /// The master key, for wrapping further keys (short-lived CVV keys).
    pub fn master(&self) -> &SecretKey {
        &self.master
    }

    /// The audit log's MAC key: HMAC-SHA256(master, "vaultgate-audit/1"). Derived,
    /// never stored, and the same across rotations (the master key does not change).
    pub fn audit_key(&self) -> Result<SecretKey> {
        let derived = Zeroizing::new(crypto::hmac_sha256(&self.master, &[AUDIT_LABEL])?);
        SecretKey::from_slice(derived.as_ref())
    }

    /// The known data key versions.
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.data.keys().copied()
    }

    /// Throwaway keys that never touch disk (unit tests and fuzzing only; integration
    /// tests seal a real keyring file).
    #[cfg(any(test, fuzzing))]
    pub fn ephemeral() -> Result<Self> {
        let mut data = BTreeMap::new();
        data.insert(1, Sealer::new(&SecretKey::random())?);
        Ok(Keys {
            master: SecretKey::random(),
            fingerprint: SecretKey::random(),
            data,
            active: 1,
        })
    }
}

const AAD_MASTER: &[u8] = b"vaultgate-keyring/1 master";
const AAD_FINGERPRINT: &[u8] = b"vaultgate-keyring/1 fingerprint-key";
const MAC_LABEL: &[u8] = b"vaultgate-keyring/1 mac";
const AUDIT_LABEL: &[u8] = b"vaultgate-audit/1";

fn data_key_aad(version: u32) -> Vec<u8> {
    format!("vaultgate-keyring/1 data-key {version}").into_bytes()
}

fn wrap(sealer: &Sealer, aad: &[u8], key: &SecretKey) -> Result<Wrapped> {
    let (nonce, ct) = sealer.seal(aad, key.expose())?;
    Ok(Wrapped {
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ct),
    })
}

fn unwrap_key(sealer: &Sealer, aad: &[u8], w: &Wrapped) -> Result<SecretKey> {
    let bad = || Error::Keyring("the keyring file is damaged or was edited".into());
    let nonce = B64.decode(&w.nonce).map_err(|_| bad())?;
    let ct = B64.decode(&w.ciphertext).map_err(|_| bad())?;
    let raw = sealer.open(aad, &nonce, &ct).map_err(|_| bad())?;
    SecretKey::from_slice(&raw).map_err(|_| bad())
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

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl KeyringFile {
    /// A new keyring: fresh master, fingerprint and first data key.
    fn create(pass: &Passphrase, params: KdfParams) -> Result<(KeyringFile, Keys)> {
        let salt: [u8; 16] = crypto::random_bytes();
        let kek = Sealer::new(&derive_kek(pass, &salt, params)?)?;
        let master = SecretKey::random();
        let fingerprint = SecretKey::random();
        let data_key = SecretKey::random();
        let ms = Sealer::new(&master)?;
        let mut file = KeyringFile {
            format: FORMAT.to_owned(),
            kdf: Kdf {
                algorithm: "argon2id".to_owned(),
                params,
                salt: B64.encode(salt),
            },
            master: wrap(&kek, AAD_MASTER, &master)?,
            fingerprint_key: wrap(&ms, AAD_FINGERPRINT, &fingerprint)?,
            data_keys: vec![WrappedDataKey {
                version: 1,
                created: now_secs(),
                key: wrap(&ms, &data_key_aad(1), &data_key)?,
            }],
            active_version: 1,
            mac: String::new(),
        };
        file.mac = file.compute_mac(&master)?;
        let mut data = BTreeMap::new();
        data.insert(1, Sealer::new(&data_key)?);
        Ok((
            file,
            Keys {
                master,
                fingerprint,
                data,
                active: 1,
            },
        ))
    }

    fn compute_mac(&self, master: &SecretKey) -> Result<String> {
        let mut body = self.clone();
        body.mac = String::new();
        let bytes =
            serde_json::to_vec(&body).map_err(|_| Error::Internal("keyring serialisation"))?;
        let mac_key = SecretKey::from_slice(&crypto::hmac_sha256(master, &[MAC_LABEL])?)?;
        Ok(B64.encode(crypto::hmac_sha256(&mac_key, &[&bytes])?))
    }

    /// Parse a keyring file's text. Fails on anything truncated or malformed.
    pub fn parse(text: &str) -> Result<KeyringFile> {
        let file: KeyringFile = serde_json::from_str(text).map_err(|e| {
            Error::Keyring(format!(
                "the keyring file is not valid (line {}, column {}): truncated or edited?",
                e.line(),
                e.column()
            ))
        })?;
        if file.format != FORMAT {
            return Err(Error::Keyring("unknown keyring format".into()));
        }
        if file.kdf.algorithm != "argon2id" {
            return Err(Error::Keyring("unknown key derivation algorithm".into()));
        }
        Ok(file)
    }

    /// Read a keyring file.
    pub fn load(path: &Path) -> Result<KeyringFile> {
        let text = fs::read_to_string(path).map_err(|e| {
            Error::Keyring(format!("cannot read the keyring {}: {e}", path.display()))
        })?;
        KeyringFile::parse(&text)
    }

    /// The argon2 parameters of this keyring.
    pub fn kdf_params(&self) -> KdfParams {
        self.kdf.params
    }

    /// The active data key version.
    pub fn active_version(&self) -> u32 {
        self.active_version
    }

    /// Open the master key with the passphrase, check the file's MAC and unwrap every key.
    pub fn unseal(&self, pass: &Passphrase) -> Result<Keys> {
        let salt = B64
            .decode(&self.kdf.salt)
            .map_err(|_| Error::Keyring("the keyring salt is damaged".into()))?;
        let kek = Sealer::new(&derive_kek(pass, &salt, self.kdf.params)?)?;
        let master = unwrap_key(&kek, AAD_MASTER, &self.master).map_err(|_| {
            Error::Keyring("wrong passphrase, or the keyring file was edited".into())
        })?;
        let expected = self.compute_mac(&master)?;
        let ok: bool =
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), self.mac.as_bytes()).into();
        if !ok {
            return Err(Error::Keyring(
                "the keyring file was edited (MAC mismatch)".into(),
            ));
        }
        let ms = Sealer::new(&master)?;
        let fingerprint = unwrap_key(&ms, AAD_FINGERPRINT, &self.fingerprint_key)?;
        let mut data = BTreeMap::new();
        for dk in &self.data_keys {
            let key = unwrap_key(&ms, &data_key_aad(dk.version), &dk.key)?;
            data.insert(dk.version, Sealer::new(&key)?);
        }
        if !data.contains_key(&self.active_version) {
            return Err(Error::Keyring("the active data key is missing".into()));
        }
        Ok(Keys {
            master,
            fingerprint,
            data,
            active: self.active_version,
        })
    }

    /// Add a new data key version and make it active.
    fn rotate(&mut self, keys: &Keys) -> Result<u32> {
        let next = self
            .data_keys
            .iter()
            .map(|k| k.version)
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or(Error::Keyring("no key version left".into()))?;
        let ms = Sealer::new(&keys.master)?;
        self.data_keys.push(WrappedDataKey {
            version: next,
            created: now_secs(),
            key: wrap(&ms, &data_key_aad(next), &SecretKey::random())?,
        });
        self.active_version = next;
        self.mac = self.compute_mac(&keys.master)?;
        Ok(next)
    }

    /// Re-seal the master key under a new passphrase (new salt); data keys are unchanged.
    fn reseal(&mut self, keys: &Keys, new: &Passphrase) -> Result<()> {
        let salt: [u8; 16] = crypto::random_bytes();
        let kek = Sealer::new(&derive_kek(new, &salt, self.kdf.params)?)?;
        self.kdf.salt = B64.encode(salt);
        self.master = wrap(&kek, AAD_MASTER, &keys.master)?;
        self.mac = self.compute_mac(&keys.master)?;
        Ok(())
    }

    /// Write the file atomically: a temp file beside it, fsync, rename, fsync the folder.
    fn write(&self, path: &Path, create_new: bool) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|_| Error::Internal("keyring serialisation"))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let tmp = path.with_extension("json.tmp");
        {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(&tmp)
                .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
            f.write_all(text.as_bytes())
                .and_then(|_| f.write_all(b"\n"))
                .and_then(|_| f.sync_all())
                .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
        }
        if create_new && path.exists() {
            let _ = fs::remove_file(&tmp);
            return Err(Error::Keyring(format!(
                "a keyring already exists at {}; refusing to overwrite it",
                path.display()
            )));
        }
        fs::rename(&tmp, path).map_err(|e| Error::io(format!("replace {}", path.display()), e))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// `vaultgate init`: create a keyring, refusing to overwrite one.
pub fn init(path: &Path, pass: &Passphrase, params: KdfParams) -> Result<Keys> {
    if path.exists() {
        return Err(Error::Keyring(format!(
            "a keyring already exists at {}; refusing to overwrite it",
            path.display()
        )));
    }
    let (file, keys) = KeyringFile::create(pass, params)?;
    file.write(path, true)?;
    Ok(keys)
}

/// Open a keyring file with its passphrase.
pub fn open(path: &Path, pass: &Passphrase) -> Result<Keys> {
    KeyringFile::load(path)?.unseal(pass)
}

/// `vaultgate keys rotate`: add a data key version and make it active.
pub fn rotate(path: &Path, pass: &Passphrase) -> Result<(u32, Keys)> {
    let mut file = KeyringFile::load(path)?;
    let keys = file.unseal(pass)?;
    let v = file.rotate(&keys)?;
    file.write(path, false)?;
    Ok((v, file.unseal(pass)?))
}

/// `vaultgate keys passwd`: re-seal the master key under a new passphrase.
pub fn passwd(path: &Path, old: &Passphrase, new: &Passphrase) -> Result<()> {
    let mut file = KeyringFile::load(path)?;
    let keys = file.unseal(old)?;
    file.reseal(&keys, new)?;
    file.write(path, false)
}

#[cfg(test)]
mod tests;
