//! Volatile CVV records (PCI DSS 3.3.1: no CVV after authorization).
//!
//! By default CVV records live only in this process's memory, sealed under a key
//! that is drawn at start-up and never written anywhere: a restart drops them.
//! In durable mode they go to the store's volatile space, sealed under a key per
//! time window; the window keys live in `cvv-keys.json` in the data directory (or, on
//! a store shared by several instances, in the store itself) and are destroyed when
//! their window has passed, so that deletion is real even though sled's log (or a
//! database's WAL) may keep old bytes for a while.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Seek, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::keys::crypto::{NONCE_LEN, Sealer, SecretKey};
use super::store::TokenStore;
use crate::error::{Error, Result};

/// Memory-only CVV records: key → (expiry, record bytes), bounded in count and in
/// bytes so that a flood of CVVs cannot grow the process without limit.
pub struct MemoryCvv {
    sealer: Sealer,
    map: Mutex<CvvMap>,
    max_entries: usize,
    max_bytes: u64,
}

/// What one record costs in memory beyond its key and record bytes: the map's slot,
/// the `String` and `Vec` headers and allocator rounding, roughly.
const ENTRY_OVERHEAD: u64 = 96;

/// Volatile key → (expiry, record bytes), with the running byte count.
#[derive(Default)]
struct CvvMap {
    records: HashMap<String, (u64, Vec<u8>)>,
    bytes: u64,
}

fn entry_bytes(key: &str, record: &[u8]) -> u64 {
    u64::try_from(key.len().saturating_add(record.len()))
        .unwrap_or(u64::MAX)
        .saturating_add(ENTRY_OVERHEAD)
}

impl CvvMap {
    fn remove(&mut self, key: &str) -> Option<(u64, Vec<u8>)> {
        let (exp, record) = self.records.remove(key)?;
        self.bytes = self.bytes.saturating_sub(entry_bytes(key, &record));
        Some((exp, record))
    }

    fn sweep(&mut self, now: u64) -> usize {
        let before = self.records.len();
        let mut freed = 0u64;
        self.records.retain(|k, (exp, r)| {
            let keep = *exp > now;
            if !keep {
                freed = freed.saturating_add(entry_bytes(k, r));
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(freed);
        before - self.records.len()
    }
}

impl MemoryCvv {
    /// A fresh store under a key that exists only in this process, holding at most
    /// `max_entries` records and about `max_bytes` bytes.
    pub fn new(max_entries: usize, max_bytes: u64) -> Result<Self> {
        Ok(MemoryCvv {
            sealer: Sealer::new(&SecretKey::random())?,
            map: Mutex::new(CvvMap::default()),
            max_entries,
            max_bytes,
        })
    }

    /// The in-process sealing key.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, CvvMap>> {
        self.map
            .lock()
            .map_err(|_| Error::Internal("CVV map lock poisoned"))
    }

    /// Insert unless the key exists. True if inserted. When the store is full,
    /// expired records are dropped first; if it is still full, the insert is refused
    /// with [`Error::CvvStoreFull`].
    pub fn insert(&self, key: String, expires: u64, record: Vec<u8>) -> Result<bool> {
        let mut map = self.lock()?;
        if map.records.contains_key(&key) {
            return Ok(false);
        }
        let cost = entry_bytes(&key, &record);
        let fits = |m: &CvvMap| {
            m.records.len() < self.max_entries && m.bytes.saturating_add(cost) <= self.max_bytes
        };
        if !fits(&map) {
            map.sweep(super::now_secs());
            if !fits(&map) {
                return Err(Error::CvvStoreFull);
            }
        }
        map.records.insert(key, (expires, record));
        map.bytes = map.bytes.saturating_add(cost);
        Ok(true)
    }

    /// Remove and return a record.
    pub fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock()?.remove(key).map(|(_, r)| r))
    }

    /// Look at a record without consuming it.
    pub fn peek(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.lock()?.records.get(key).map(|(_, r)| r.clone()))
    }

    /// Drop expired records; returns how many.
    pub fn sweep(&self, now: u64) -> Result<usize> {
        Ok(self.lock()?.sweep(now))
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.lock().map(|m| m.records.len()).unwrap_or(0)
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many records the store may hold.
    pub fn capacity(&self) -> usize {
        self.max_entries
    }
}

#[derive(Serialize, Deserialize, Default)]
struct EpochFile {
    window_secs: u64,
    keys: BTreeMap<u64, EpochEntry>,
}

#[derive(Serialize, Deserialize)]
struct EpochEntry {
    nonce: String,
    ciphertext: String,
}

/// Where the CVV window keys are kept.
enum KeyHome {
    /// `cvv-keys.json` in the data directory (one instance on an embedded store).
    File(PathBuf),
    /// The shared store's `cvv_keys` space, so that every instance finds the key a
    /// CVV was sealed under.
    Store(Arc<dyn TokenStore>),
}

/// Short-lived keys for durable CVV records, one per time window.
pub struct EpochKeys {
    home: KeyHome,
    window: u64,
    master: Sealer,
    keys: Mutex<BTreeMap<u64, Arc<Sealer>>>,
}

fn epoch_aad(epoch: u64) -> Vec<u8> {
    format!("vaultgate cvv-epoch-key {epoch}").into_bytes()
}

/// A wrapped window key as stored in a shared store: nonce, then ciphertext.
fn wrap(master: &Sealer, epoch: u64, key: &SecretKey) -> Result<Vec<u8>> {
    let (nonce, ct) = master.seal(&epoch_aad(epoch), key.expose())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

fn unwrap_key(master: &Sealer, epoch: u64, wrapped: &[u8]) -> Result<Sealer> {
    if wrapped.len() < NONCE_LEN {
        return Err(Error::Integrity("CVV key"));
    }
    let (nonce, ct) = wrapped.split_at(NONCE_LEN);
    let raw = master.open(&epoch_aad(epoch), nonce, ct)?;
    Sealer::new(&SecretKey::from_slice(&raw)?)
}

impl EpochKeys {
    /// Load the window keys from `path`, unwrapping them with the master key.
    pub fn open(path: PathBuf, window: u64, master: &SecretKey) -> Result<Self> {
        let master = Sealer::new(master)?;
        let mut keys = BTreeMap::new();
        if path.exists() {
            let text = fs::read_to_string(&path)
                .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
            let file: EpochFile = serde_json::from_str(&text)
                .map_err(|_| Error::Integrity("the CVV key file is damaged"))?;
            for (epoch, e) in file.keys {
                let nonce = B64
                    .decode(&e.nonce)
                    .map_err(|_| Error::Integrity("CVV key"))?;
                let ct = B64
                    .decode(&e.ciphertext)
                    .map_err(|_| Error::Integrity("CVV key"))?;
                let raw = master.open(&epoch_aad(epoch), &nonce, &ct)?;
                keys.insert(epoch, Arc::new(Sealer::new(&SecretKey::from_slice(&raw)?)?));
            }
        }
        Ok(EpochKeys {
            home: KeyHome::File(path),
            window: window.max(1),
            master,
            keys: Mutex::new(keys),
        })
    }

    /// Window keys kept in a shared store; fetched (and cached) on first use.
    pub fn shared(store: Arc<dyn TokenStore>, window: u64, master: &SecretKey) -> Result<Self> {
        Ok(EpochKeys {
            home: KeyHome::Store(store),
            window: window.max(1),
            master: Sealer::new(master)?,
            keys: Mutex::new(BTreeMap::new()),
        })
    }

    /// The window a time falls in.
    pub fn epoch_of(&self, t: u64) -> u64 {
        t / self.window
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Sealer>>>> {
        self.keys
            .lock()
            .map_err(|_| Error::Internal("CVV key lock"))
    }

    /// The key of an epoch, creating (and persisting) it if `create` and it is missing.
    /// A missing key without `create` means the window has passed: `cvv_expired`.
    pub async fn sealer(&self, epoch: u64, create: bool) -> Result<Arc<Sealer>> {
        if let Some(s) = self.lock()?.get(&epoch) {
            return Ok(Arc::clone(s));
        }
        match &self.home {
            KeyHome::File(_) => {
                let mut keys = self.lock()?;
                #[allow(clippy::map_entry)] // the file must be written before the key is used
                if !keys.contains_key(&epoch) {
                    if !create {
                        return Err(Error::CvvExpired);
                    }
                    let key = SecretKey::random();
                    let (nonce, ct) = self.master.seal(&epoch_aad(epoch), key.expose())?;
                    let mut file = self.load_file()?;
                    file.keys.insert(
                        epoch,
                        EpochEntry {
                            nonce: B64.encode(nonce),
                            ciphertext: B64.encode(ct),
                        },
                    );
                    self.overwrite(&file)?;
                    keys.insert(epoch, Arc::new(Sealer::new(&key)?));
                }
                keys.get(&epoch).cloned().ok_or(Error::CvvExpired)
            }
            KeyHome::Store(store) => {
                let wrapped = match store.cvv_key_get(epoch).await? {
                    Some(w) => w,
                    None if create => {
                        // Insert-if-absent: an instance that loses the race adopts the
                        // winner's key, so every instance seals under one key per window.
                        let candidate = wrap(&self.master, epoch, &SecretKey::random())?;
                        store.cvv_key_insert(epoch, &candidate).await?
                    }
                    None => return Err(Error::CvvExpired),
                };
                let sealer = Arc::new(unwrap_key(&self.master, epoch, &wrapped)?);
                self.lock()?.insert(epoch, Arc::clone(&sealer));
                Ok(sealer)
            }
        }
    }

    /// Destroy every key whose window, plus one TTL, has passed. Returns how many.
    pub async fn destroy_expired(&self, now: u64) -> Result<usize> {
        // A record made in window e expires by (e + 2) * window at the latest.
        let keep_from = self.epoch_of(now).saturating_sub(1);
        let old: Vec<u64> = {
            let mut keys = self.lock()?;
            let old: Vec<u64> = keys.range(..keep_from).map(|(e, _)| *e).collect();
            for e in &old {
                keys.remove(e);
            }
            old
        };
        match &self.home {
            KeyHome::File(_) => {
                if old.is_empty() {
                    return Ok(0);
                }
                let mut file = self.load_file()?;
                for e in &old {
                    file.keys.remove(e);
                }
                self.overwrite(&file)?;
                Ok(old.len())
            }
            KeyHome::Store(store) => {
                let n = store.cvv_keys_destroy_before(keep_from).await?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    fn path(&self) -> Result<&std::path::Path> {
        match &self.home {
            KeyHome::File(p) => Ok(p),
            KeyHome::Store(_) => Err(Error::Internal("CVV keys are in the store")),
        }
    }

    fn load_file(&self) -> Result<EpochFile> {
        let path = self.path()?;
        if !path.exists() {
            return Ok(EpochFile {
                window_secs: self.window,
                keys: BTreeMap::new(),
            });
        }
        let text = fs::read_to_string(path)
            .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        serde_json::from_str(&text).map_err(|_| Error::Integrity("the CVV key file is damaged"))
    }

    /// Rewrite the file in place (same inode): zero the old bytes, then write the new.
    fn overwrite(&self, file: &EpochFile) -> Result<()> {
        let path = self.path()?;
        let ctx = || format!("write {}", path.display());
        let text = serde_json::to_vec(file).map_err(|_| Error::Internal("CVV key file"))?;
        let mut opts = fs::OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(path).map_err(|e| Error::io(ctx(), e))?;
        let old_len = f.metadata().map(|m| m.len()).unwrap_or(0) as usize;
        f.write_all(&vec![0u8; old_len])
            .and_then(|_| f.sync_data())
            .and_then(|_| f.rewind())
            .and_then(|_| f.set_len(0))
            .and_then(|_| f.write_all(&text))
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(ctx(), e))
    }
}
