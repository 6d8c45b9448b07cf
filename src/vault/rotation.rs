//! The live key lifecycle: a running server picks up a rotated keyring without a
//! restart, agrees on the active version with every instance of a shared store, and
//! rewraps records online.
//!
//! The server does not keep the seal's credential. It keeps the master key, which
//! wraps every data key: a rotated keyring file is re-read, its MAC checked and its
//! new data keys unwrapped with the master key in memory ([`Keys::reload_from`]).
//! On a shared store (PostgreSQL) the active version is the one published in the
//! database, so that every instance switches together.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::*;
use keys::keyring::KeyringFile;

/// How often a server checks its keyring file, the shared active version and its
/// store (see `custody::spawn_watch`).
pub const WATCH_PERIOD: Duration = Duration::from_secs(1);
/// How long a rewrap on a shared store waits after publishing the active version,
/// so that every instance (which looks every [`WATCH_PERIOD`]) seals under it before
/// the pass starts.
pub const SHARED_SWITCH_GRACE: Duration = Duration::from_secs(3);
/// How long a rewrap waits before its closing pass, for requests that loaded the
/// old keys just before the switch.
const LATE_WRITES: Duration = Duration::from_millis(500);

/// What identifies one version of the keyring file: it is replaced by a rename, so
/// its inode changes at every write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FileStamp {
    modified: SystemTime,
    len: u64,
    inode: u64,
}

impl FileStamp {
    pub(super) fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(FileStamp {
            modified: meta.modified().ok()?,
            len: meta.len(),
            inode,
        })
    }
}

/// Rewrap progress: records rewrapped by this process, and records still under an
/// older version in the pass under way.
#[derive(Debug, Default)]
pub(super) struct RewrapProgress {
    done: AtomicU64,
    remaining: AtomicU64,
}

impl Vault {
    /// Pick up a rotated keyring: re-read the file if it changed (or if the shared
    /// active version is not the one in use) and swap the keys in. Returns whether the
    /// active version or the set of versions changed. Fails with
    /// [`Error::KeyUnavailable`] when the active version cannot be opened, and with a
    /// store error when a shared store cannot be asked.
    pub async fn refresh_keys(&self) -> Result<bool> {
        self.refresh(false).await
    }

    /// The active data key version in use.
    pub fn active_key_version(&self) -> u32 {
        self.keys.load().active_version()
    }

    /// Records rewrapped by this process so far.
    pub fn rewrapped_total(&self) -> u64 {
        self.rewrap.done.load(Ordering::Relaxed)
    }

    /// Records still under an older version in the rewrap under way (0 when idle).
    pub fn rewrap_remaining(&self) -> u64 {
        self.rewrap.remaining.load(Ordering::Relaxed)
    }

    /// `force`: read the file even if it looks unchanged (a record names a version
    /// not held here).
    async fn refresh(&self, force: bool) -> Result<bool> {
        let current = self.keys.load_full();
        let shared = if self.store.is_shared() {
            match self.store.shared_key_version().await {
                Ok(v) => v,
                // Reloading for a record's version: keep the active version as is.
                Err(_) if force => Some(current.active_version()),
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let mut stamp = self.reload.lock().await;
        let current = self.keys.load_full();
        let now = FileStamp::of(&self.keyring);
        let wants_file =
            force || now != *stamp || shared.is_some_and(|v| v != current.active_version());
        if !wants_file {
            return Ok(false);
        }
        let path = self.keyring.clone();
        let file = tokio::task::spawn_blocking(move || KeyringFile::load(&path))
            .await
            .map_err(|_| Error::Internal("the keyring reload task failed"))??;
        let mut keys = current.reload_from(&file)?;
        if let Some(v) = shared {
            keys = keys.with_active(v)?;
        }
        *stamp = now;
        let changed = keys.active_version() != current.active_version()
            || keys.versions().ne(current.versions());
        if changed {
            tracing::info!(
                active = keys.active_version(),
                "picked up the rotated keyring"
            );
            self.keys.store(Arc::new(keys));
        }
        Ok(changed)
    }

    /// The keys holding `version`: the current ones, else (a rotation this server has
    /// not seen yet) the keyring reloaded once; past that, 503 `key_unavailable`.
    pub(super) async fn keys_for(&self, version: u32) -> Result<Arc<Keys>> {
        let keys = self.keys.load_full();
        if keys.holds(version) {
            return Ok(keys);
        }
        let reloaded = self.refresh(true).await;
        let keys = self.keys.load_full();
        if keys.holds(version) {
            return Ok(keys);
        }
        // A version at or below the newest one held was never issued (versions only
        // grow, and old ones stay): the record itself is damaged, not the keyring late.
        if keys
            .versions()
            .max()
            .is_some_and(|newest| version <= newest)
        {
            return Err(Error::Integrity("a record names an unknown key version"));
        }
        tracing::error!(
            key_version = version,
            reload = reloaded.as_ref().err().map(Error::code).unwrap_or("ok"),
            "a record is sealed under a data key version this server does not hold"
        );
        Err(Error::KeyUnavailable)
    }

    /// Re-encrypt every record sealed under an older data key version, online. On a
    /// shared store the keyring file's active version is published first and every
    /// instance is given time to switch to it. Each record is replaced atomically (only
    /// if unchanged), so an interrupted pass is simply run again.
    pub async fn rewrap(&self) -> Result<RewrapReport> {
        if self.store.is_shared() {
            let path = self.keyring.clone();
            let file = tokio::task::spawn_blocking(move || KeyringFile::load(&path))
                .await
                .map_err(|_| Error::Internal("the keyring reload task failed"))??;
            self.store
                .set_shared_key_version(file.active_version())
                .await?;
            self.refresh(true).await?;
            tokio::time::sleep(SHARED_SWITCH_GRACE).await;
        } else {
            self.refresh(false).await?;
        }
        let keys = self.keys.load_full();
        let old = self.rewrap_pass(&keys, false).await?;
        self.rewrap
            .remaining
            .store(old.rewrapped, Ordering::Relaxed);
        let mut report = self.rewrap_pass(&keys, true).await?;
        tokio::time::sleep(LATE_WRITES).await;
        let late = self.rewrap_pass(&keys, true).await?;
        report.rewrapped += late.rewrapped;
        self.rewrap.remaining.store(0, Ordering::Relaxed);
        self.store.durable().await?;
        Ok(report)
    }

    /// One pass over the tokens. `write`: rewrap each record under an older version;
    /// else only count them (as `rewrapped`).
    async fn rewrap_pass(&self, keys: &Keys, write: bool) -> Result<RewrapReport> {
        let (active, sealer) = keys.active()?;
        let mut report = RewrapReport::default();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .scan(Space::Tokens, after.as_deref(), 512)
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (token, bytes) in &page {
                let rec = Record::parse(bytes)?;
                if rec.header.key_version == active {
                    report.current += 1;
                    continue;
                }
                if !write {
                    report.rewrapped += 1;
                    continue;
                }
                let old = keys.version(rec.header.key_version)?;
                let opened = old.open(&rec.aad(token), rec.nonce, rec.ciphertext)?;
                // Sealed again as it would be sealed now (packed or not).
                let value = record::open_value(&rec.header, opened)?;
                let sealed = SealedValue::of(self.record_format(), value.expose());
                let header = Header {
                    key_version: active,
                    packed: sealed.packed(),
                    ..rec.header
                };
                let (nonce, ct) =
                    sealer.seal(&header.aad(self.record_format(), token), sealed.bytes())?;
                let new = header.encode_record(self.record_format(), &nonce, &ct);
                if self
                    .store
                    .replace(Space::Tokens, token, bytes, &new)
                    .await?
                {
                    report.rewrapped += 1;
                    self.rewrap.done.fetch_add(1, Ordering::Relaxed);
                    let _ = self.rewrap.remaining.fetch_update(
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                        |r| r.checked_sub(1),
                    );
                }
            }
        }
        Ok(report)
    }
}
