//! The embedded token store on sled, with a group-commit flusher.
//!
//! sled 0.34.7's `flush_async` deadlocks under concurrent callers (sled issue 1308),
//! so a [`GroupCommit`] thread calls the blocking `flush()` and wakes every waiter whose
//! writes that flush covered. Concurrent tokenizations therefore share fsyncs.
//!
//! A write is applied on the caller's thread, in memory: sled writes its log buffers
//! out on its own I/O threads, so a hung disk does not hold the caller (measured with
//! a frozen file system: pass-through traffic on the same shard answers throughout).
//! The wait for durability is bounded (`vault.flush_timeout_ms`), and while a flush
//! has been running for longer than that, writes are refused at once.

use std::ops::Bound;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};

use super::{FingerprintInsert, Inserted, Space, TokenStore, expiry_key, key_after};
use crate::commit::{FlushFigures, FlushObserver, GroupCommit};
use crate::error::{Error, Result};

/// The sled store: trees for tokens, fingerprints, volatile records and their expiry index.
pub struct SledStore {
    db: sled::Db,
    tokens: Tree,
    fingerprints: Tree,
    volatile: Tree,
    expiry: Tree,
    /// Group commit: `wrote()` after each write, `durable()` flushes them together.
    commit: GroupCommit,
    /// The store holds short fingerprints only ([`SHORT_FINGERPRINTS`]).
    short_fingerprints: bool,
    /// The longest a caller waits for durability (`vault.flush_timeout_ms`).
    flush_timeout: Duration,
}

/// A key in sled's default tree, set when the store's fingerprint index was empty
/// when this release (which writes short fingerprints only) opened it: no full-MAC
/// entry from an earlier release can be in it, so lookups ask one form, not two.
/// A store without it (made by an earlier release) is asked for both forms.
const SHORT_FINGERPRINTS: &[u8] = b"vaultgate/fingerprints-short-only";

impl SledStore {
    /// Open (or create) the store in `dir` with an explicit page cache size.
    ///
    /// sled's space knobs are left at their defaults, measured for issue #14 (bytes
    /// on disk per card token; bench/RESULTS.md, "Store size"): `Mode::LowSpace` is
    /// already the default and sled 0.34.7 never reads it; `use_compression` saved
    /// about 8 % for five times the CPU per write (and a zstd C build); a smaller
    /// `segment_size` saved 6-12 % but is a hidden, testing-only option in sled,
    /// moves values over a quarter segment into blob files, and slows writes. Both
    /// are fixed when a store is created: an existing store refuses to open with
    /// other values.
    pub fn open(dir: &Path, cache_capacity_bytes: u64) -> Result<Self> {
        if super::fjall::holds_fjall_store(dir) {
            return Err(Error::Config(format!(
                "{} holds a fjall store, not a sled one (vault.store = \"fjall\" opens it)",
                dir.display()
            )));
        }
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_capacity_bytes)
            .flush_every_ms(None)
            .open()
            .map_err(|e| {
                // sled 0.34 reports its lock file as taken with this message only.
                let in_use = matches!(&e, sled::Error::Io(io)
                    if io.to_string().starts_with("could not acquire lock"));
                super::open_failed(dir, in_use, &e)
            })?;
        let tokens = db.open_tree("tokens")?;
        let fingerprints = db.open_tree("fingerprints")?;
        let volatile = db.open_tree("volatile")?;
        let expiry = db.open_tree("volatile_expiry")?;
        let short_fingerprints = if db.contains_key(SHORT_FINGERPRINTS)? {
            true
        } else if fingerprints.is_empty() {
            db.insert(SHORT_FINGERPRINTS, &[])?;
            db.flush()?;
            true
        } else {
            false
        };
        let flusher_db = db.clone();
        // sled 0.34 makes its log writes durable with `sync_file_range`, which neither
        // flushes the disk's write cache nor the file's size; an `fdatasync` of the log
        // file after each group flush does both, so "durable" survives a power loss too.
        let log = std::fs::File::open(dir.join("db"))
            .map_err(|e| Error::io(format!("open {}/db for fdatasync", dir.display()), e))?;
        let commit = GroupCommit::start("vaultgate-flusher", move || {
            flusher_db.flush().map_err(|e| e.to_string())?;
            log.sync_data().map_err(|e| e.to_string())
        })?;
        Ok(SledStore {
            db,
            tokens,
            fingerprints,
            volatile,
            expiry,
            commit,
            short_fingerprints,
            flush_timeout: super::DEFAULT_FLUSH_TIMEOUT,
        })
    }

    /// Bound the wait for durability by `limit` (`vault.flush_timeout_ms`).
    pub fn with_flush_timeout(mut self, limit: Duration) -> Self {
        self.flush_timeout = limit;
        self
    }

    /// Refuse a write while a flush has been hung for longer than the bound: it could
    /// not be made durable, and it would only pile up in memory behind the flush.
    fn writable(&self) -> Result<()> {
        if self.commit.refuses_writes(self.flush_timeout) {
            Err(Error::StoreUnavailable)
        } else {
            Ok(())
        }
    }

    fn tree(&self, space: Space) -> &Tree {
        match space {
            Space::Tokens => &self.tokens,
            Space::Volatile => &self.volatile,
        }
    }

    /// Mark a write as applied; `durable()` covers it from now on.
    fn wrote(&self) {
        self.commit.wrote();
    }

    /// Size of the store's files on disk, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // Join the flusher so that its handle on the database is gone when this
        // returns: reopening the same directory right away must not find it locked.
        self.commit.stop();
        let _ = self.db.flush();
    }
}

fn tx_error(e: TransactionError<()>) -> Error {
    match e {
        TransactionError::Storage(e) => Error::from(e),
        TransactionError::Abort(()) => Error::Internal("store transaction aborted"),
    }
}

#[async_trait]
impl TokenStore for SledStore {
    async fn insert(
        &self,
        space: Space,
        key: &str,
        record: &[u8],
        expires: Option<u64>,
    ) -> Result<Inserted> {
        self.writable()?;
        let swapped =
            self.tree(space)
                .compare_and_swap(key, None as Option<&[u8]>, Some(record))?;
        if swapped.is_err() {
            return Ok(Inserted::Taken);
        }
        if let (Space::Volatile, Some(exp)) = (space, expires) {
            self.expiry.insert(expiry_key(exp, key), &[])?;
        }
        self.wrote();
        Ok(Inserted::New)
    }

    async fn insert_fingerprinted(
        &self,
        fingerprint: &[u8],
        key: &str,
        record: &[u8],
    ) -> Result<FingerprintInsert> {
        self.writable()?;
        // No sled transaction here: every sled transaction takes sled's global
        // concurrency-control write lock, which waits for any flush in progress (a
        // flush holds the read side through its fsync), so a transaction on the hot
        // path blocks a runtime worker for the rest of the fsync. Two compare-and-swaps
        // instead, record first: a crash between them leaves an orphan record that was
        // never handed out, never a fingerprint without its record.
        //
        // No lookup first: the vault has just looked the value up, and a value
        // tokenized in between loses the fingerprint's compare-and-swap below.
        if self
            .tokens
            .compare_and_swap(key, None as Option<&[u8]>, Some(record))?
            .is_err()
        {
            return Ok(FingerprintInsert::Taken);
        }
        // Number the record's write before the fingerprint makes it findable: anyone
        // who finds the token through the fingerprint then takes a durability ticket
        // that covers the record, and never forwards a token that is not on disk yet.
        self.wrote();
        match self.fingerprints.compare_and_swap(
            fingerprint,
            None as Option<&[u8]>,
            Some(key.as_bytes()),
        )? {
            Ok(()) => {
                // And number the fingerprint too: a flush that started before it was
                // applied must not count as covering it, or a crash could keep the
                // forwarded token's record but lose its fingerprint, and the same
                // card would get another token after the restart.
                self.wrote();
                Ok(FingerprintInsert::New)
            }
            Err(race) => {
                // The same value was tokenized concurrently and the other writer won:
                // drop our record (never handed out) and answer with theirs. Take a
                // write number after theirs was applied, so that a durability barrier
                // taken from now on covers their record too.
                let _ = self
                    .tokens
                    .compare_and_swap(key, Some(record), None as Option<&[u8]>)?;
                self.wrote();
                match race.current {
                    Some(existing) => Ok(FingerprintInsert::Existing(
                        String::from_utf8_lossy(&existing).into_owned(),
                    )),
                    // Removed again in between (a concurrent delete): try afresh.
                    None => Ok(FingerprintInsert::Taken),
                }
            }
        }
    }

    async fn fingerprint(&self, fingerprint: &[u8]) -> Result<Option<String>> {
        Ok(self
            .fingerprints
            .get(fingerprint)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    async fn get(&self, space: Space, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(space).get(key)?.map(|v| v.to_vec()))
    }

    async fn take(&self, space: Space, key: &str) -> Result<Option<Vec<u8>>> {
        self.writable()?;
        let old = self.tree(space).remove(key)?;
        if old.is_some() {
            self.wrote();
        }
        Ok(old.map(|v| v.to_vec()))
    }

    async fn remove(&self, space: Space, key: &str, fingerprint: Option<&[u8]>) -> Result<bool> {
        self.writable()?;
        let existed = (self.tree(space), &self.fingerprints)
            .transaction(|(tree, fps)| {
                let existed = tree.remove(key)?.is_some();
                if let Some(fp) = fingerprint {
                    // Only drop the mapping if it still points at this token.
                    if fps.get(fp)?.as_deref() == Some(key.as_bytes()) {
                        fps.remove(fp)?;
                    }
                }
                Ok::<_, ConflictableTransactionError<()>>(existed)
            })
            .map_err(tx_error)?;
        self.wrote();
        Ok(existed)
    }

    async fn replace(&self, space: Space, key: &str, old: &[u8], new: &[u8]) -> Result<bool> {
        self.writable()?;
        let swapped = self
            .tree(space)
            .compare_and_swap(key, Some(old), Some(new))?
            .is_ok();
        if swapped {
            self.wrote();
        }
        Ok(swapped)
    }

    async fn scan(
        &self,
        space: Space,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self
            .tree(space)
            .range::<Vec<u8>, _>((key_after(after), Bound::Unbounded))
            .take(limit)
        {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        Ok(out)
    }

    async fn scan_expired(&self, now: u64, limit: usize) -> Result<Vec<String>> {
        self.writable()?;
        let mut out = Vec::new();
        let end = (now.saturating_add(1)).to_be_bytes().to_vec();
        for item in self.expiry.range(..end).take(limit) {
            let (k, _) = item?;
            let key = k.get(8..).unwrap_or_default();
            out.push(String::from_utf8_lossy(key).into_owned());
            // The index entry goes with the sweep; the record is removed by the caller.
            self.expiry.remove(&k)?;
        }
        Ok(out)
    }

    async fn durable(&self) -> Result<()> {
        super::durable_within(&self.commit, self.flush_timeout).await
    }

    fn flushes(&self) -> u64 {
        self.commit.flushes()
    }

    fn flush_figures(&self) -> FlushFigures {
        self.commit.figures()
    }

    /// Not ready after a failed flush: the embedded store writes nothing more until
    /// it is opened again (a restart), though it still reads. Not ready either while
    /// a flush has been hung for longer than the bound; ready again once it returns.
    async fn ping(&self) -> Result<()> {
        if self.commit.healthy() && !self.commit.stalled(self.flush_timeout) {
            Ok(())
        } else {
            Err(Error::StoreUnavailable)
        }
    }

    fn observe_flushes(&self, observer: FlushObserver) {
        self.commit.observe_flushes(observer);
    }

    fn short_fingerprints_only(&self) -> bool {
        self.short_fingerprints
    }
}
