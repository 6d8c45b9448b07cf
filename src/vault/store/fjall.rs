//! The embedded token store on fjall (an LSM tree with a write-ahead journal), with
//! the same group-commit flusher as sled's.
//!
//! Opt-in (`vault.store = "fjall"`); sled stays the default. What it changes, measured
//! for issue #14 (bench/RESULTS.md): a durable write is one append to a preallocated
//! journal and one `fdatasync` (sled makes two disk round trips: `sync_file_range`,
//! then the group commit's `fdatasync`), a new token costs about half the CPU, and the
//! files hold little more than the keys and records once the journal is flushed.
//!
//! Every write is one fjall write transaction, so each compare-and-swap is atomic and
//! a record and its fingerprint are stored together or not at all. The transaction
//! lock is shared by every thread and held for the in-memory work of one write (a few
//! microseconds): the journal is buffered in memory (`manual_journal_persist`) until
//! the group commit writes it out.
//!
//! The group commit does not call fjall's `persist(SyncData)`: that holds the
//! journal's lock through the `fdatasync`, so every write (on a runtime worker) would
//! wait for the disk, and concurrent writers could not share a flush (measured:
//! 11,000 tokens/s at 32 writers against 28,000-33,000 this way). It writes the
//! journal's buffer out under the lock (`persist(Buffer)`), then runs `fdatasync` on
//! the newest journal file outside it. That file holds everything the buffer held: a
//! journal that fjall retires in between was synced whole by fjall when it made the
//! next one (`SyncAll`, and the directory too). The flusher keeps that file open and
//! follows fjall's rotations by its numbering (one `stat` per flush). No journal file
//! found is an error, so a change in fjall's file layout fails the store's start
//! instead of leaving writes unsynced.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use fjall::{
    AbstractTree, KeyspaceCreateOptions, PersistMode, Readable, SingleWriterTxDatabase,
    SingleWriterTxKeyspace,
};

use super::{FingerprintInsert, Inserted, Space, TokenStore, expiry_key, key_after};
use crate::commit::{FlushFigures, FlushObserver, GroupCommit};
use crate::error::{Error, Result};

/// fjall's journal files: `<number>.jnl` in the store directory.
const JOURNAL_SUFFIX: &str = ".jnl";

/// The least fjall accepts, and what keeps a store small: the journal is flushed into
/// the trees and dropped once it reaches this (fjall's default is 512 MiB).
const MAX_JOURNALING_BYTES: u64 = 64 * 1024 * 1024;

/// The memory table of each keyspace is written out as a table once it holds this
/// much (fjall's default is 64 MiB). Measured with `cargo bench --bench store_size --
/// --store fjall` over 1M tokens: the process peaked at 136-138 MiB against 386 MiB with
/// the default, at 80,000-90,000 tokens/s against 77,000 (fewer, smaller sorts), with
/// the store no larger. 8 MiB saved 20 MiB more but made the tables larger. fjall
/// keeps a keyspace's size from its creation: a store made before keeps 64 MiB.
const MAX_MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;

/// The most a write made on the caller's thread may leave in fjall's journal buffer,
/// counting every write since the flusher last wrote the buffer out. fjall buffers its
/// journal in 8 KiB (`JOURNAL_BUFFER_BYTES` in fjall 3.1.13); a write that would
/// overflow it writes the buffer to the file itself, and that write can hang on the
/// disk. This leaves a quarter of the buffer for the estimate's error.
const INLINE_BUFFER_BYTES: u64 = 6 * 1024;

/// fjall's journal framing, over-counted: a batch's start and end markers, and each
/// item's header (keyspace, type, compression, lengths).
const JOURNAL_BATCH_BYTES: u64 = 64;
const JOURNAL_ITEM_BYTES: u64 = 32;

/// fjall stalls a write while a keyspace has this many level-0 runs (and halts it at
/// 30): a write then sleeps, so it is not made on the caller's thread.
const L0_RUNS_STALL: usize = 20;

/// The fjall store: keyspaces for tokens, fingerprints, volatile records and their
/// expiry index.
///
/// # Where a write runs
///
/// A write commits under fjall's journal lock, and whoever holds that lock across a
/// disk write holds every writer behind it: a frozen file system holds such a write
/// until it thaws, and on a proxy shard's thread that stalls every request of the
/// shard, pass-through and health checks included (measured: the whole 20 s of a
/// freeze). So a write runs on the caller's thread only when nothing it waits for can
/// be doing I/O, and on one of tokio's blocking threads otherwise. The hop costs two
/// thread wake-ups: with every write on a blocking thread, a new token took 21-24 µs
/// of CPU in process (`cargo bench --bench vault -- --cpu-only --store fjall`, a
/// 2-core VM), 13 µs with this.
///
/// What holds the journal lock across I/O, and how a write steers clear of it:
/// - the flusher, writing the journal's buffer out: it does so holding the journal's
///   door ([`Door`]), which a write on the caller's thread only ever `try_lock`s;
/// - the write itself, when it overflows fjall's 8 KiB journal buffer: the door
///   counts what was buffered since the flusher emptied it, and a write that could
///   overflow it goes to a blocking thread ([`INLINE_BUFFER_BYTES`]);
/// - fjall's flush worker, which syncs the journal before it writes a sealed memtable
///   out; and fjall's write stalls, which sleep: a write goes to a blocking thread
///   while any keyspace has a sealed memtable or a stalling number of level-0 runs.
///   The check and the write are microseconds apart; fjall sealing a memtable in
///   between is the one way left for a write on the caller's thread to wait for the
///   disk (for one journal sync, or for a freeze that begins in that window).
///
/// Reads take no journal lock and stay on the caller's thread.
pub struct FjallStore {
    inner: Arc<Inner>,
    /// The longest a caller waits for a write or for durability
    /// (`vault.flush_timeout_ms`).
    flush_timeout: Duration,
}

struct Inner {
    db: SingleWriterTxDatabase,
    tokens: SingleWriterTxKeyspace,
    fingerprints: SingleWriterTxKeyspace,
    volatile: SingleWriterTxKeyspace,
    expiry: SingleWriterTxKeyspace,
    /// Group commit: `wrote()` after each write, `durable()` syncs them together.
    commit: GroupCommit,
    /// Held by every write and by the flusher while it writes the journal's buffer
    /// out (see [`FjallStore`]).
    door: Arc<Door>,
}

/// The journal's door: whoever holds it may write to fjall's journal buffer. It
/// holds an estimate of the bytes buffered since the flusher last wrote the buffer
/// out, over-counted, so that a write on the caller's thread never makes fjall write
/// its buffer to the file.
#[derive(Default)]
struct Door {
    buffer: Mutex<Buffer>,
}

/// What the door knows of fjall's journal buffer.
#[derive(Default)]
struct Buffer {
    /// Bytes written to it since the flusher last wrote it out (over-counted).
    bytes: u64,
    /// A write-out was started (see [`Buffer::wrote`]).
    write_out_asked: bool,
}

impl Door {
    /// Wait for the door (the flusher and writes on blocking threads).
    fn enter(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The door, if it is free and `bytes` more fit in the journal buffer.
    fn enter_if_room(&self, bytes: u64) -> Option<MutexGuard<'_, Buffer>> {
        let held = match self.buffer.try_lock() {
            Ok(held) => held,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        (held.bytes.saturating_add(bytes) <= INLINE_BUFFER_BYTES).then_some(held)
    }
}

impl Buffer {
    /// Count a write of `bytes`. Returns whether the buffer should now be written out
    /// ([`Inner::write_out`]): once it is half full, so that the writes that follow
    /// find room before it is full. Writers that wait for durability mostly have it
    /// written out by their flush first; these are the ones that do not (a CVV held
    /// in memory only, `vault.cvv`; the in-process benchmark), and bursts.
    fn wrote(&mut self, bytes: u64) -> bool {
        self.bytes = self.bytes.saturating_add(bytes);
        let ask = self.bytes > INLINE_BUFFER_BYTES / 2 && !self.write_out_asked;
        self.write_out_asked |= ask;
        ask
    }

    /// The buffer was written out.
    fn written_out(&mut self) {
        *self = Buffer::default();
    }
}

/// What a write puts in fjall's journal, over-counted: `items` keys and values of
/// `bytes` in all.
fn journal_bytes(items: u64, bytes: usize) -> u64 {
    JOURNAL_BATCH_BYTES + items * JOURNAL_ITEM_BYTES + bytes as u64
}

fn store_error(e: fjall::Error) -> Error {
    Error::Store(format!("fjall: {e}"))
}

impl FjallStore {
    /// Open (or create) the store in `dir`, with a block cache of `cache_bytes`.
    /// A directory that holds a sled store is refused: the two cannot read each other.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self> {
        if holds_sled_store(dir) {
            return Err(Error::Config(format!(
                "{} holds a sled store, not a fjall one (vault.store = \"sled\" opens it)",
                dir.display()
            )));
        }
        let db = SingleWriterTxDatabase::builder(dir)
            .cache_size(cache_bytes)
            .manual_journal_persist(true)
            .max_journaling_size(MAX_JOURNALING_BYTES)
            .open()
            .map_err(|e| super::open_failed(dir, matches!(e, fjall::Error::Locked), &e))?;
        let keyspace = |name: &str| {
            db.keyspace(name, || {
                KeyspaceCreateOptions::default().max_memtable_size(MAX_MEMTABLE_BYTES)
            })
            .map_err(store_error)
        };
        let tokens = keyspace("tokens")?;
        let fingerprints = keyspace("fingerprints")?;
        let volatile = keyspace("volatile")?;
        let expiry = keyspace("volatile_expiry")?;
        let flusher_db = db.clone();
        let door = Arc::new(Door::default());
        let flusher_door = Arc::clone(&door);
        let mut journal = Journal::newest(dir).map_err(Error::Store)?;
        let commit = GroupCommit::start("vaultgate-flusher", move || {
            {
                let mut buffer = flusher_door.enter();
                flusher_db
                    .persist(PersistMode::Buffer)
                    .map_err(|e| e.to_string())?;
                buffer.written_out();
            }
            journal.follow()?;
            journal.sync()
        })?;
        Ok(FjallStore {
            inner: Arc::new(Inner {
                db,
                tokens,
                fingerprints,
                volatile,
                expiry,
                commit,
                door,
            }),
            flush_timeout: super::DEFAULT_FLUSH_TIMEOUT,
        })
    }

    /// Bound the wait for a write and for durability by `limit`
    /// (`vault.flush_timeout_ms`).
    pub fn with_flush_timeout(mut self, limit: Duration) -> Self {
        self.flush_timeout = limit;
        self
    }

    /// Run the write `op`, which puts at most `bytes` in the journal (see
    /// [`journal_bytes`]; `None`: unknown), on the caller's thread when nothing it
    /// waits for can be doing I/O, and on a blocking thread otherwise, waiting at most
    /// the flush timeout (see [`FjallStore`]). A write is refused at once while a
    /// flush has been hung for longer than that (it would wait for the journal lock
    /// the flush holds). A write that times out may still be applied later: its token
    /// was never handed out, like an orphan record after a crash, and it is numbered
    /// for the group commit when it is applied.
    async fn write<T: Send + 'static>(
        &self,
        bytes: Option<u64>,
        op: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.inner.commit.refuses_writes(self.flush_timeout) {
            return Err(Error::StoreUnavailable);
        }
        if let Some(bytes) = bytes
            && self.inner.fjall_is_quiet()
            && let Some(mut buffer) = self.inner.door.enter_if_room(bytes)
        {
            let done = op(&self.inner);
            if buffer.wrote(bytes) {
                drop(buffer);
                let inner = Arc::clone(&self.inner);
                // Not waited for: the next writes find room once it is done.
                drop(tokio::task::spawn_blocking(move || inner.write_out()));
            }
            return done;
        }
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || {
            let mut buffer = inner.door.enter();
            let done = op(&inner);
            if buffer.wrote(bytes.unwrap_or(u64::MAX)) {
                inner.write_out_held(&mut buffer);
            }
            done
        });
        match tokio::time::timeout(self.flush_timeout, task).await {
            Ok(Ok(done)) => done,
            Ok(Err(_)) => Err(Error::Internal("a store write task failed")),
            Err(_) => {
                self.inner.commit.gave_up(self.flush_timeout);
                Err(Error::StoreUnavailable)
            }
        }
    }
}

impl Inner {
    fn keyspace(&self, space: Space) -> &SingleWriterTxKeyspace {
        match space {
            Space::Tokens => &self.tokens,
            Space::Volatile => &self.volatile,
        }
    }

    /// Mark a write as applied; `durable()` covers it from now on.
    fn wrote(&self) {
        self.commit.wrote();
    }

    /// Write fjall's journal buffer out to the file (no sync: the group commit syncs),
    /// so that writes on the callers' threads find room in it again. On a blocking
    /// thread only: the write can hang on the disk.
    fn write_out(&self) {
        let mut buffer = self.door.enter();
        self.write_out_held(&mut buffer);
    }

    /// [`Inner::write_out`] with the door held. A failure is left to the flusher,
    /// which meets it at its next write-out (fjall refuses everything after it) and
    /// reports it.
    fn write_out_held(&self, buffer: &mut Buffer) {
        if self.db.persist(PersistMode::Buffer).is_ok() {
            buffer.written_out();
        }
    }

    /// Whether fjall's own workers are clear of the journal lock and no write would
    /// stall: no keyspace has a sealed memtable waiting to be written out (fjall syncs
    /// the journal, under its lock, before it writes one) or a stalling number of
    /// level-0 runs.
    fn fjall_is_quiet(&self) -> bool {
        [
            &self.tokens,
            &self.fingerprints,
            &self.volatile,
            &self.expiry,
        ]
        .iter()
        .all(|ks| {
            let tree = &ks.inner().tree;
            tree.sealed_memtable_count() == 0 && tree.l0_run_count() < L0_RUNS_STALL
        })
    }
}

impl Drop for FjallStore {
    fn drop(&mut self) {
        // Join the flusher so that its handle on the database is gone when this
        // returns (fjall persists the journal as the last handle drops).
        self.inner.commit.stop();
        let _ = self.inner.db.persist(PersistMode::SyncAll);
    }
}

/// Whether `dir` holds a sled store (its `conf` and `db` files).
fn holds_sled_store(dir: &Path) -> bool {
    dir.join("conf").is_file() && dir.join("db").is_file()
}

/// Whether `dir` holds a fjall store (its `version` marker and `keyspaces` folder).
pub(super) fn holds_fjall_store(dir: &Path) -> bool {
    dir.join("version").is_file() && dir.join("keyspaces").is_dir()
}

/// The journal file fjall writes to, kept open between flushes.
///
/// fjall numbers its journals and rotates from `<n>.jnl` to `<n + 1>.jnl` (after
/// syncing `<n>` whole), so the flusher follows it with one `stat` per flush for the
/// next number instead of listing the directory.
struct Journal {
    dir: PathBuf,
    number: u64,
    file: std::fs::File,
}

impl Journal {
    /// The highest-numbered journal in `dir`.
    fn newest(dir: &Path) -> std::result::Result<Journal, String> {
        let number = newest_journal(dir)?;
        let file = open_journal(dir, number)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            number,
            file,
        })
    }

    /// Move on to the newest journal, if fjall has rotated since the last flush.
    /// Called after the buffer was written out: whatever it held is in the newest
    /// journal, or in one fjall synced whole when it moved on.
    fn follow(&mut self) -> std::result::Result<(), String> {
        let mut newest = self.number;
        loop {
            let next = newest.saturating_add(1);
            let path = journal_path(&self.dir, next);
            match path.try_exists() {
                Ok(true) => newest = next,
                Ok(false) => break,
                Err(e) => return Err(format!("stat {}: {e}", path.display())),
            }
        }
        if newest != self.number {
            // Opened before anything is replaced: a failed open leaves this journal as
            // it was, and the next flush tries again.
            self.file = open_journal(&self.dir, newest)?;
            self.number = newest;
        }
        Ok(())
    }

    fn sync(&self) -> std::result::Result<(), String> {
        self.file.sync_data().map_err(|e| {
            format!(
                "fdatasync {}: {e}",
                journal_path(&self.dir, self.number).display()
            )
        })
    }
}

fn journal_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number}{JOURNAL_SUFFIX}"))
}

fn open_journal(dir: &Path, number: u64) -> std::result::Result<std::fs::File, String> {
    let path = journal_path(dir, number);
    std::fs::File::open(&path).map_err(|e| format!("open {}: {e}", path.display()))
}

/// The number of the journal fjall writes to now: the highest-numbered `*.jnl` in
/// `dir`.
fn newest_journal(dir: &Path) -> std::result::Result<u64, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("read {}: {e}", dir.display()))?;
    entries
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(JOURNAL_SUFFIX)?
                .parse::<u64>()
                .ok()
        })
        .max()
        .ok_or_else(|| format!("no journal file in {}", dir.display()))
}

/// The writes, run on a blocking thread ([`FjallStore::write`]).
impl Inner {
    fn insert(
        &self,
        space: Space,
        key: &str,
        record: &[u8],
        expires: Option<u64>,
    ) -> Result<Inserted> {
        let ks = self.keyspace(space);
        let mut tx = self.db.write_tx();
        if tx.contains_key(ks, key).map_err(store_error)? {
            return Ok(Inserted::Taken);
        }
        tx.insert(ks, key, record);
        if let (Space::Volatile, Some(exp)) = (space, expires) {
            tx.insert(&self.expiry, expiry_key(exp, key), []);
        }
        tx.commit().map_err(store_error)?;
        self.wrote();
        Ok(Inserted::New)
    }

    fn insert_fingerprinted(
        &self,
        fingerprint: &[u8],
        key: &str,
        record: &[u8],
    ) -> Result<FingerprintInsert> {
        // One transaction: the record and its fingerprint are stored together or not
        // at all, and a value tokenized concurrently finds the winner's token.
        let mut tx = self.db.write_tx();
        if let Some(existing) = tx
            .get(&self.fingerprints, fingerprint)
            .map_err(store_error)?
        {
            return Ok(FingerprintInsert::Existing(
                String::from_utf8_lossy(&existing).into_owned(),
            ));
        }
        if tx.contains_key(&self.tokens, key).map_err(store_error)? {
            return Ok(FingerprintInsert::Taken);
        }
        tx.insert(&self.tokens, key, record);
        tx.insert(&self.fingerprints, fingerprint, key);
        tx.commit().map_err(store_error)?;
        self.wrote();
        Ok(FingerprintInsert::New)
    }

    fn take(&self, space: Space, key: &str) -> Result<Option<Vec<u8>>> {
        let ks = self.keyspace(space);
        let mut tx = self.db.write_tx();
        let old = tx.get(ks, key).map_err(store_error)?;
        if old.is_some() {
            tx.remove(ks, key);
            tx.commit().map_err(store_error)?;
            self.wrote();
        }
        Ok(old.map(|v| v.to_vec()))
    }

    fn remove(&self, space: Space, key: &str, fingerprint: Option<&[u8]>) -> Result<bool> {
        let ks = self.keyspace(space);
        let mut tx = self.db.write_tx();
        let existed = tx.contains_key(ks, key).map_err(store_error)?;
        tx.remove(ks, key);
        if let Some(fp) = fingerprint {
            // Only drop the mapping if it still points at this token.
            if tx
                .get(&self.fingerprints, fp)
                .map_err(store_error)?
                .as_deref()
                == Some(key.as_bytes())
            {
                tx.remove(&self.fingerprints, fp);
            }
        }
        tx.commit().map_err(store_error)?;
        self.wrote();
        Ok(existed)
    }

    fn replace(&self, space: Space, key: &str, old: &[u8], new: &[u8]) -> Result<bool> {
        let ks = self.keyspace(space);
        let mut tx = self.db.write_tx();
        if tx.get(ks, key).map_err(store_error)?.as_deref() != Some(old) {
            return Ok(false);
        }
        tx.insert(ks, key, new);
        tx.commit().map_err(store_error)?;
        self.wrote();
        Ok(true)
    }

    fn scan_expired(&self, now: u64, limit: usize) -> Result<Vec<String>> {
        let end = now.saturating_add(1).to_be_bytes().to_vec();
        let mut found = Vec::new();
        for item in self.expiry.inner().range(..end).take(limit) {
            found.push(item.key().map_err(store_error)?);
        }
        if found.is_empty() {
            return Ok(Vec::new());
        }
        // The index entries go with the sweep; the records are removed by the caller.
        let mut tx = self.db.write_tx();
        for k in &found {
            tx.remove(&self.expiry, k.clone());
        }
        tx.commit().map_err(store_error)?;
        self.wrote();
        Ok(found
            .iter()
            .map(|k| String::from_utf8_lossy(k.get(8..).unwrap_or_default()).into_owned())
            .collect())
    }
}

#[async_trait]
impl TokenStore for FjallStore {
    async fn insert(
        &self,
        space: Space,
        key: &str,
        record: &[u8],
        expires: Option<u64>,
    ) -> Result<Inserted> {
        let bytes = match expires {
            Some(_) => journal_bytes(2, 2 * key.len() + 8 + record.len()),
            None => journal_bytes(1, key.len() + record.len()),
        };
        let (key, record) = (key.to_owned(), record.to_vec());
        self.write(Some(bytes), move |s| {
            s.insert(space, &key, &record, expires)
        })
        .await
    }

    async fn insert_fingerprinted(
        &self,
        fingerprint: &[u8],
        key: &str,
        record: &[u8],
    ) -> Result<FingerprintInsert> {
        let bytes = journal_bytes(2, fingerprint.len() + 2 * key.len() + record.len());
        let (fingerprint, key, record) = (fingerprint.to_vec(), key.to_owned(), record.to_vec());
        self.write(Some(bytes), move |s| {
            s.insert_fingerprinted(&fingerprint, &key, &record)
        })
        .await
    }

    async fn fingerprint(&self, fingerprint: &[u8]) -> Result<Option<String>> {
        Ok(self
            .inner
            .fingerprints
            .get(fingerprint)
            .map_err(store_error)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    async fn get(&self, space: Space, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .inner
            .keyspace(space)
            .get(key)
            .map_err(store_error)?
            .map(|v| v.to_vec()))
    }

    async fn take(&self, space: Space, key: &str) -> Result<Option<Vec<u8>>> {
        let key = key.to_owned();
        let bytes = journal_bytes(1, key.len());
        self.write(Some(bytes), move |s| s.take(space, &key)).await
    }

    async fn remove(&self, space: Space, key: &str, fingerprint: Option<&[u8]>) -> Result<bool> {
        let bytes = journal_bytes(2, key.len() + fingerprint.map_or(0, <[u8]>::len));
        let (key, fingerprint) = (key.to_owned(), fingerprint.map(<[u8]>::to_vec));
        self.write(Some(bytes), move |s| {
            s.remove(space, &key, fingerprint.as_deref())
        })
        .await
    }

    async fn replace(&self, space: Space, key: &str, old: &[u8], new: &[u8]) -> Result<bool> {
        let bytes = journal_bytes(1, key.len() + new.len());
        let (key, old, new) = (key.to_owned(), old.to_vec(), new.to_vec());
        self.write(Some(bytes), move |s| s.replace(space, &key, &old, &new))
            .await
    }

    async fn scan(
        &self,
        space: Space,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self
            .inner
            .keyspace(space)
            .inner()
            .range::<Vec<u8>, _>((key_after(after), Bound::Unbounded))
            .take(limit)
        {
            let (k, v) = item.into_inner().map_err(store_error)?;
            out.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        Ok(out)
    }

    async fn scan_expired(&self, now: u64, limit: usize) -> Result<Vec<String>> {
        // Any number of index entries: always on a blocking thread.
        self.write(None, move |s| s.scan_expired(now, limit)).await
    }

    async fn durable(&self) -> Result<()> {
        super::durable_within(&self.inner.commit, self.flush_timeout).await
    }

    fn flushes(&self) -> u64 {
        self.inner.commit.flushes()
    }

    fn flush_figures(&self) -> FlushFigures {
        self.inner.commit.figures()
    }

    /// Not ready after a failed flush: the embedded store writes nothing more until
    /// it is opened again (a restart), though it still reads. Not ready either while
    /// a flush has been hung for longer than the bound; ready again once it returns.
    async fn ping(&self) -> Result<()> {
        let commit = &self.inner.commit;
        if commit.healthy() && !commit.stalled(self.flush_timeout) {
            Ok(())
        } else {
            Err(Error::StoreUnavailable)
        }
    }

    fn observe_flushes(&self, observer: FlushObserver) {
        self.inner.commit.observe_flushes(observer);
    }

    fn short_fingerprints_only(&self) -> bool {
        // Made by a release that writes short fingerprints only.
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_journal_is_the_highest_number() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            newest_journal(dir.path()).is_err(),
            "no journal is an error"
        );
        for name in ["9.jnl", "10.jnl", "2.jnl", "11.txt", "x.jnl"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(newest_journal(dir.path()).unwrap(), 10);
    }

    #[test]
    fn the_flusher_follows_the_journal_as_fjall_rotates_it() {
        let dir = tempfile::tempdir().unwrap();
        let touch = |n: u64| std::fs::write(journal_path(dir.path(), n), b"").unwrap();
        touch(3);
        let mut journal = Journal::newest(dir.path()).unwrap();
        assert_eq!(journal.number, 3);
        journal.follow().unwrap();
        assert_eq!(journal.number, 3, "no rotation: the same journal");
        // Two rotations between flushes: the flusher syncs the newest.
        touch(4);
        touch(5);
        journal.follow().unwrap();
        assert_eq!(journal.number, 5);
        journal.sync().unwrap();
        // fjall deletes the journals it no longer needs; the open one stays usable.
        std::fs::remove_file(journal_path(dir.path(), 3)).unwrap();
        journal.follow().unwrap();
        assert_eq!(journal.number, 5);
    }

    #[tokio::test]
    async fn fjall_rotates_its_journal_to_the_next_number() {
        // What `Journal::follow` relies on, checked on the pinned fjall: once the
        // journal passes 64 MB, fjall moves from `0.jnl` to `1.jnl`, and a write made
        // after that is made durable through the new journal.
        let dir = tempfile::tempdir().unwrap();
        let store = FjallStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(newest_journal(dir.path()).unwrap(), 0);
        let big = vec![7u8; 1 << 20];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut n = 0u32;
        while newest_journal(dir.path()).unwrap() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "fjall did not rotate its journal after {n} MiB"
            );
            store
                .insert(Space::Tokens, &format!("k{n:05}"), &big, None)
                .await
                .unwrap();
            store.durable().await.unwrap();
            n += 1;
            if n > 80 {
                // Past the memtable's size: wait for fjall's flush to rotate.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        assert_eq!(newest_journal(dir.path()).unwrap(), 1);
        store
            .insert(Space::Tokens, "after", b"record", None)
            .await
            .unwrap();
        store.durable().await.unwrap();
        assert_eq!(
            store.get(Space::Tokens, "after").await.unwrap().as_deref(),
            Some(&b"record"[..])
        );
    }

    #[test]
    fn a_sled_store_and_a_fjall_store_refuse_each_others_directory() {
        let sled_dir = tempfile::tempdir().unwrap();
        drop(super::super::sled::SledStore::open(sled_dir.path(), 1 << 20).unwrap());
        let e = FjallStore::open(sled_dir.path(), 1 << 20).err().unwrap();
        assert!(e.to_string().contains("holds a sled store"), "{e}");

        let fjall_dir = tempfile::tempdir().unwrap();
        drop(FjallStore::open(fjall_dir.path(), 1 << 20).unwrap());
        let e = super::super::sled::SledStore::open(fjall_dir.path(), 1 << 20)
            .err()
            .unwrap();
        assert!(e.to_string().contains("holds a fjall store"), "{e}");
    }

    /// A store another process holds is named as in use, in words, not as the lock
    /// call's debug form; the holder (here this process) keeps it.
    #[test]
    fn a_store_held_elsewhere_is_refused_as_in_use() {
        use super::super::sled::SledStore;
        let dir = tempfile::tempdir().unwrap();
        let held = FjallStore::open(dir.path(), 1 << 20).unwrap();
        let e = FjallStore::open(dir.path(), 1 << 20)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is in use by another process"), "{e}");
        drop(held);
        drop(FjallStore::open(dir.path(), 1 << 20).unwrap());

        let dir = tempfile::tempdir().unwrap();
        let held = SledStore::open(dir.path(), 1 << 20).unwrap();
        let e = SledStore::open(dir.path(), 1 << 20)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is in use by another process"), "{e}");
        assert!(!e.contains("Os {"), "{e}");
        drop(held);
    }

    /// The journal buffer's count over-counts what fjall writes: otherwise a write on
    /// a caller's thread could overflow fjall's buffer and write to the disk itself.
    /// Checked on the pinned fjall by the end of the data in its (zero-filled,
    /// preallocated) journal, for each kind of write the store makes.
    #[tokio::test]
    async fn the_journal_estimate_covers_what_fjall_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = FjallStore::open(dir.path(), 1 << 20).unwrap();
        let written = || {
            let path = journal_path(dir.path(), newest_journal(dir.path()).unwrap());
            let bytes = std::fs::read(path).unwrap();
            bytes.iter().rposition(|b| *b != 0).map_or(0, |end| end + 1) as u64
        };
        store.durable().await.unwrap();
        let start = written();
        let mut estimate = 0;
        for n in 0..50usize {
            let key = format!("tok_{n:0>width$}", width = n % 20);
            let record = vec![0xA5; 40 + n * 7];
            let fingerprint = [n as u8 | 1; 16];
            estimate += journal_bytes(2, fingerprint.len() + 2 * key.len() + record.len());
            store
                .insert_fingerprinted(&fingerprint, &key, &record)
                .await
                .unwrap();
            estimate += journal_bytes(2, 2 * key.len() + 8 + record.len());
            store
                .insert(Space::Volatile, &key, &record, Some(1_000 + n as u64))
                .await
                .unwrap();
            estimate += journal_bytes(1, key.len() + record.len());
            store
                .replace(Space::Volatile, &key, &record, &record)
                .await
                .unwrap();
            estimate += journal_bytes(1, key.len());
            store.take(Space::Volatile, &key).await.unwrap();
            estimate += journal_bytes(2, key.len() + fingerprint.len());
            store
                .remove(Space::Tokens, &key, Some(&fingerprint))
                .await
                .unwrap();
        }
        store.durable().await.unwrap();
        let actual = written() - start;
        assert!(actual > 0, "nothing was journaled");
        assert!(
            actual <= estimate,
            "fjall wrote {actual} bytes, the estimate was {estimate}"
        );
    }

    #[test]
    fn a_store_journals_where_the_flusher_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let store = FjallStore::open(dir.path(), 1 << 20).unwrap();
        // What the group commit syncs exists as soon as the store is open: fjall's
        // file layout is what this module relies on.
        assert!(newest_journal(dir.path()).is_ok());
        drop(store);
    }
}
