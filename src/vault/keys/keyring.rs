//! The keyring file: a master key held by a seal (a passphrase, Shamir shares or an
//! HSM: see [`super::seal`]), and the data and fingerprint keys wrapped by the master
//! key. The format is documented in `keys/README.md`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::crypto::{self, Sealer, SecretKey};
use super::seal::passphrase::Kdf;
use super::seal::{self, NewSeal, PassphraseSeal, SealFile, ShareText, Unlock, Wrapped};
use crate::error::{Error, Result};

pub use super::seal::{KdfParams, Passphrase};

/// The format tag written into every keyring file: the seal is a `seal` object.
pub const FORMAT: &str = "vaultgate-keyring/2";
/// The first format: always a passphrase seal, as top-level `kdf` and `master`. Still
/// read; rewritten as `vaultgate-keyring/2` by the next operation that writes the file.
pub const FORMAT_V1: &str = "vaultgate-keyring/1";

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
    /// `vaultgate-keyring/1` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kdf: Option<Kdf>,
    /// `vaultgate-keyring/1` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    master: Option<Wrapped>,
    /// `vaultgate-keyring/2`: how the master key is sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seal: Option<SealFile>,
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

    /// The active data key version.
    pub fn active_version(&self) -> u32 {
        self.active
    }

    /// Whether this keyring holds a data key version.
    pub fn holds(&self, version: u32) -> bool {
        self.data.contains_key(&version)
    }

    /// The keys of a keyring file that was rotated since these were opened, without
    /// its seal's credential: the file's MAC is checked and its data keys unwrapped
    /// with the master key held here (a rotation never changes the master key). A
    /// file of another keyring fails its MAC.
    pub fn reload_from(&self, file: &KeyringFile) -> Result<Keys> {
        let keys = file.keys_under(SecretKey::from_slice(self.master.expose())?)?;
        // Versions are never removed; a file that lost one is not this keyring's newer self.
        if self.data.keys().any(|v| !keys.data.contains_key(v)) {
            return Err(Error::Keyring(
                "the reloaded keyring lacks a data key version held before".into(),
            ));
        }
        Ok(keys)
    }

    /// These keys with another active version (the one every instance on a shared
    /// store agreed on). Fails if the version is not held.
    pub fn with_active(mut self, version: u32) -> Result<Keys> {
        if !self.data.contains_key(&version) {
            return Err(Error::KeyUnavailable);
        }
        self.active = version;
        Ok(self)
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

const AAD_FINGERPRINT: &[u8] = b"vaultgate-keyring/1 fingerprint-key";
const MAC_LABEL: &[u8] = b"vaultgate-keyring/1 mac";
const AUDIT_LABEL: &[u8] = b"vaultgate-audit/1";

fn data_key_aad(version: u32) -> Vec<u8> {
    format!("vaultgate-keyring/1 data-key {version}").into_bytes()
}

use seal::{unwrap_key, wrap};

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl KeyringFile {
    /// A new keyring: fresh master, fingerprint and first data key, under `new`.
    fn create(new: &NewSeal<'_>) -> Result<(KeyringFile, Keys, Vec<ShareText>)> {
        let master = SecretKey::random();
        let fingerprint = SecretKey::random();
        let data_key = SecretKey::random();
        let ms = Sealer::new(&master)?;
        let (sealed, shares) = seal::seal(new, &master)?;
        let mut file = KeyringFile {
            format: FORMAT.to_owned(),
            kdf: None,
            master: None,
            seal: Some(sealed),
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
            shares,
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
        match (file.format.as_str(), &file.kdf, &file.master, &file.seal) {
            (FORMAT_V1, Some(kdf), Some(_), None) => kdf.check_algorithm()?,
            (FORMAT, None, None, Some(_)) => {}
            (FORMAT_V1 | FORMAT, ..) => {
                return Err(Error::Keyring(
                    "the keyring file's seal fields do not fit its format".into(),
                ));
            }
            _ => return Err(Error::Keyring("unknown keyring format".into())),
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

    /// The seal of this keyring (a `vaultgate-keyring/1` file's is a passphrase seal).
    pub fn seal(&self) -> Result<SealFile> {
        match (&self.seal, &self.kdf, &self.master) {
            (Some(s), ..) => Ok(s.clone()),
            (None, Some(kdf), Some(master)) => Ok(SealFile::Passphrase(PassphraseSeal {
                kdf: kdf.clone(),
                master: master.clone(),
            })),
            _ => Err(Error::Keyring("the keyring file has no seal".into())),
        }
    }

    /// The argon2 parameters of this keyring, if it is sealed by a passphrase.
    pub fn kdf_params(&self) -> Option<KdfParams> {
        match self.seal().ok()? {
            SealFile::Passphrase(p) => Some(p.kdf.params()),
            _ => None,
        }
    }

    /// The active data key version.
    pub fn active_version(&self) -> u32 {
        self.active_version
    }

    /// Open the master key with the passphrase, check the file's MAC and unwrap every key.
    pub fn unseal(&self, pass: &Passphrase) -> Result<Keys> {
        self.unseal_with(&Unlock::Passphrase(pass))
    }

    /// Open the master key with any seal's credential, check the file's MAC and unwrap
    /// every key.
    pub fn unseal_with(&self, unlock: &Unlock<'_>) -> Result<Keys> {
        let master = self.seal()?.open(unlock)?;
        self.keys_under(master)
    }

    /// Check the MAC with an opened master key and unwrap the other keys.
    fn keys_under(&self, master: SecretKey) -> Result<Keys> {
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
        self.upgrade()?;
        self.mac = self.compute_mac(&keys.master)?;
        Ok(next)
    }

    /// Replace the seal (written as `vaultgate-keyring/2`); data keys are unchanged.
    fn set_seal(&mut self, keys: &Keys, sealed: SealFile) -> Result<()> {
        self.format = FORMAT.to_owned();
        self.kdf = None;
        self.master = None;
        self.seal = Some(sealed);
        self.mac = self.compute_mac(&keys.master)?;
        Ok(())
    }

    /// Move a `vaultgate-keyring/1` file's seal into a `seal` object.
    fn upgrade(&mut self) -> Result<()> {
        if self.seal.is_none() {
            let sealed = self.seal()?;
            self.format = FORMAT.to_owned();
            self.kdf = None;
            self.master = None;
            self.seal = Some(sealed);
        }
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

/// `vaultgate init`: create a passphrase-sealed keyring, refusing to overwrite one.
pub fn init(path: &Path, pass: &Passphrase, params: KdfParams) -> Result<Keys> {
    init_sealed(path, &NewSeal::Passphrase { pass, params }).map(|(keys, _)| keys)
}

/// `vaultgate init --seal …`: create a keyring under any seal, refusing to overwrite
/// one. Returns the keys and, for Shamir, the shares (to print once).
pub fn init_sealed(path: &Path, new: &NewSeal<'_>) -> Result<(Keys, Vec<ShareText>)> {
    if path.exists() {
        return Err(Error::Keyring(format!(
            "a keyring already exists at {}; refusing to overwrite it",
            path.display()
        )));
    }
    let (file, keys, shares) = KeyringFile::create(new)?;
    file.write(path, true)?;
    Ok((keys, shares))
}

/// Open a keyring file with its passphrase.
pub fn open(path: &Path, pass: &Passphrase) -> Result<Keys> {
    KeyringFile::load(path)?.unseal(pass)
}

/// Open a keyring file with its seal's credential.
pub fn open_with(path: &Path, unlock: &Unlock<'_>) -> Result<Keys> {
    KeyringFile::load(path)?.unseal_with(unlock)
}

/// `vaultgate keys rotate`: add a data key version and make it active.
pub fn rotate(path: &Path, pass: &Passphrase) -> Result<(u32, Keys)> {
    rotate_with(path, &Unlock::Passphrase(pass))
}

/// [`rotate`] under any seal.
pub fn rotate_with(path: &Path, unlock: &Unlock<'_>) -> Result<(u32, Keys)> {
    let mut file = KeyringFile::load(path)?;
    let keys = file.unseal_with(unlock)?;
    let v = file.rotate(&keys)?;
    file.write(path, false)?;
    Ok((
        v,
        KeyringFile::load(path)?.keys_under(SecretKey::from_slice(keys.master.expose())?)?,
    ))
}

/// `vaultgate keys passwd`: re-seal the master key under a new passphrase.
pub fn passwd(path: &Path, old: &Passphrase, new: &Passphrase) -> Result<()> {
    let file = KeyringFile::load(path)?;
    let params = file.kdf_params().ok_or_else(|| {
        Error::Keyring("the keyring is not sealed by a passphrase; use `keys reseal`".into())
    })?;
    reseal(
        path,
        &Unlock::Passphrase(old),
        &NewSeal::Passphrase { pass: new, params },
    )
    .map(|_| ())
}

/// `vaultgate keys reseal`: open the master key with the current seal and seal it
/// under `new`; data keys and records are unchanged. Returns new shares for Shamir.
pub fn reseal(path: &Path, old: &Unlock<'_>, new: &NewSeal<'_>) -> Result<Vec<ShareText>> {
    let mut file = KeyringFile::load(path)?;
    let keys = file.unseal_with(old)?;
    let (sealed, shares) = seal::seal(new, &keys.master)?;
    file.set_seal(&keys, sealed)?;
    file.write(path, false)?;
    Ok(shares)
}

/// `vaultgate keys rekey`: with a quorum of the current shares, split the master key's
/// seal anew into `shares` shares of which `threshold` open it. The old shares stop
/// working (the split's generation goes up).
pub fn rekey(
    path: &Path,
    old: &[seal::Share],
    shares: u8,
    threshold: u8,
) -> Result<Vec<ShareText>> {
    let mut file = KeyringFile::load(path)?;
    let SealFile::Shamir(current) = file.seal()? else {
        return Err(Error::Keyring(
            "the keyring is not sealed by Shamir shares; use `keys reseal --to shamir`".into(),
        ));
    };
    let keys = file.unseal_with(&Unlock::Shares(old))?;
    let (next, texts) = current.resplit(shares, threshold, &keys.master)?;
    file.set_seal(&keys, SealFile::Shamir(next))?;
    file.write(path, false)?;
    Ok(texts)
}

#[cfg(test)]
mod tests;
