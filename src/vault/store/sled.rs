//! The embedded token store on sled, with a group-commit flusher.
//!
//! sled 0.34.7's `flush_async` deadlocks under concurrent callers (sled issue 1308),
//! so one dedicated thread calls the blocking `flush()` and wakes every waiter whose
//! writes that flush covered. Concurrent tokenizations therefore share fsyncs.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};
use tokio::sync::watch;

use super::{FingerprintInsert, Inserted, Space, TokenStore};
use crate::error::{Error, Result};

/// The sled store: trees for tokens, fingerprints, volatile records and their expiry index.
pub struct SledStore {
    db: sled::Db,
    tokens: Tree,
    fingerprints: Tree,
    volatile: Tree,
    expiry: Tree,
    commit: Arc<GroupCommit>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

/// Flush progress, published by the flusher thread.
#[derive(Clone, Copy, Default)]
struct FlushState {
    /// Every write numbered at or below this is durable.
    done: u64,
    /// Every write numbered at or below this was in a failed flush.
    failed: u64,
}

struct GroupCommit {
    /// Writes so far; a write takes its number after it has been applied.
    writes: AtomicU64,
    /// The highest write number somebody waits for.
    wanted: Mutex<u64>,
    wake: Condvar,
    state: watch::Sender<FlushState>,
    flushes: AtomicU64,
    stop: Mutex<bool>,
}

impl SledStore {
    /// Open (or create) the store in `dir` with an explicit page cache size.
    pub fn open(dir: &Path, cache_capacity_bytes: u64) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_capacity_bytes)
            .flush_every_ms(None)
            .open()
            .map_err(|e| {
                Error::Store(format!(
                    "cannot open the store at {} (is another vaultgate using it?): {e}",
                    dir.display()
                ))
            })?;
        let tokens = db.open_tree("tokens")?;
        let fingerprints = db.open_tree("fingerprints")?;
        let volatile = db.open_tree("volatile")?;
        let expiry = db.open_tree("volatile_expiry")?;
        let (state, _) = watch::channel(FlushState::default());
        let commit = Arc::new(GroupCommit {
            writes: AtomicU64::new(0),
            wanted: Mutex::new(0),
            wake: Condvar::new(),
            state,
            flushes: AtomicU64::new(0),
            stop: Mutex::new(false),
        });
        let flusher_db = db.clone();
        let flusher_commit = Arc::clone(&commit);
        // sled 0.34 makes its log writes durable with `sync_file_range`, which neither
        // flushes the disk's write cache nor the file's size; an `fdatasync` of the log
        // file after each group flush does both, so "durable" survives a power loss too.
        let log = std::fs::File::open(dir.join("db"))
            .map_err(|e| Error::io(format!("open {}/db for fdatasync", dir.display()), e))?;
        let flusher = std::thread::Builder::new()
            .name("vaultgate-flusher".into())
            .spawn(move || flusher(flusher_db, log, flusher_commit))
            .map_err(|e| Error::io("start the store flusher thread", e))?;
        Ok(SledStore {
            db,
            tokens,
            fingerprints,
            volatile,
            expiry,
            commit,
            flusher: Some(flusher),
        })
    }

    fn tree(&self, space: Space) -> &Tree {
        match space {
            Space::Tokens => &self.tokens,
            Space::Volatile => &self.volatile,
        }
    }

    /// Mark a write as applied; `durable()` covers it from now on.
    fn wrote(&self) {
        self.commit.writes.fetch_add(1, Ordering::SeqCst);
    }

    /// Size of the store's files on disk, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        {
            // Set `stop` under the flusher's own lock so that the wake-up cannot fall
            // between its check and its wait.
            let _wanted = self.commit.wanted.lock();
            if let Ok(mut stop) = self.commit.stop.lock() {
                *stop = true;
            }
            self.commit.wake.notify_all();
        }
        // Join the flusher so that its handle on the database is gone when this
        // returns: reopening the same directory right away must not find it locked.
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        let _ = self.db.flush();
    }
}

/// The longest a flush waits for more writers to join it (see [`flusher`]).
const GATHER_MAX: Duration = Duration::from_micros(500);

fn flusher(db: sled::Db, log: std::fs::File, c: Arc<GroupCommit>) {
    // How many writes the previous flush covered.
    let mut last_batch: u64 = 0;
    loop {
        {
            let Ok(mut wanted) = c.wanted.lock() else {
                return;
            };
            loop {
                if c.stop.lock().map(|s| *s).unwrap_or(true) {
                    return;
                }
                if *wanted > c.state.borrow().done {
                    break;
                }
                wanted = match c.wake.wait(wanted) {
                    Ok(w) => w,
                    Err(_) => return,
                };
            }
            // Adaptive gather: when the previous flush was shared by several writers,
            // the next group is usually still arriving (their requests were answered
            // one flush ago). Wait, at most GATHER_MAX, until as many writes wait as
            // the last flush covered, so that groups do not split into a big and a
            // small flush. A lone writer (last_batch <= 1) is flushed at once: no
            // added latency at low concurrency.
            if last_batch > 1 {
                let deadline = Instant::now() + GATHER_MAX;
                let done = c.state.borrow().done;
                while wanted.saturating_sub(done) < last_batch {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    wanted = match c
                        .wake
                        .wait_timeout(wanted, deadline.saturating_duration_since(now))
                    {
                        Ok((w, _)) => w,
                        Err(_) => return,
                    };
                }
            }
        }
        // Every write numbered up to `target` was applied before this flush starts.
        let target = c.writes.load(Ordering::SeqCst);
        last_batch = target.saturating_sub(c.state.borrow().done);
        let result = db
            .flush()
            .map_err(|e| e.to_string())
            .and_then(|_| log.sync_data().map_err(|e| e.to_string()));
        c.flushes.fetch_add(1, Ordering::Relaxed);
        c.state.send_modify(|s| match &result {
            Ok(_) => s.done = s.done.max(target),
            Err(_) => s.failed = s.failed.max(target),
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "store flush failed");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

fn key_after(after: Option<&str>) -> Bound<Vec<u8>> {
    match after {
        Some(k) => Bound::Excluded(k.as_bytes().to_vec()),
        None => Bound::Unbounded,
    }
}

fn expiry_key(expires: u64, key: &str) -> Vec<u8> {
    let mut k = expires.to_be_bytes().to_vec();
    k.extend_from_slice(key.as_bytes());
    k
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
        // No sled transaction here: every sled transaction takes sled's global
        // concurrency-control write lock, which waits for any flush in progress (a
        // flush holds the read side through its fsync), so a transaction on the hot
        // path blocks a runtime worker for the rest of the fsync. Two compare-and-swaps
        // instead, record first: a crash between them leaves an orphan record that was
        // never handed out, never a fingerprint without its record.
        if let Some(existing) = self.fingerprints.get(fingerprint)? {
            return Ok(FingerprintInsert::Existing(
                String::from_utf8_lossy(&existing).into_owned(),
            ));
        }
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
            Ok(()) => Ok(FingerprintInsert::New),
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
        let old = self.tree(space).remove(key)?;
        if old.is_some() {
            self.wrote();
        }
        Ok(old.map(|v| v.to_vec()))
    }

    async fn remove(&self, space: Space, key: &str, fingerprint: Option<&[u8]>) -> Result<bool> {
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
        let ticket = self.commit.writes.load(Ordering::SeqCst);
        let mut rx = self.commit.state.subscribe();
        if rx.borrow().done >= ticket {
            return Ok(());
        }
        {
            let mut wanted = self
                .commit
                .wanted
                .lock()
                .map_err(|_| Error::Internal("flusher lock poisoned"))?;
            *wanted = (*wanted).max(ticket);
        }
        self.commit.wake.notify_one();
        loop {
            {
                let s = *rx.borrow_and_update();
                if s.done >= ticket {
                    return Ok(());
                }
                if s.failed >= ticket {
                    return Err(Error::Store("flushing the store to disk failed".into()));
                }
            }
            rx.changed()
                .await
                .map_err(|_| Error::Store("the store flusher stopped".into()))?;
        }
    }

    fn flushes(&self) -> u64 {
        self.commit.flushes.load(Ordering::Relaxed)
    }
}
