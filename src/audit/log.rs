//! The writer: one append-mode file, a chain head, and a group-commit flusher thread
//! ([`GroupCommit`]) that syncs every file written since its last sync.
//!
//! Several processes may append to one log (`serve` instances, CLI commands): each
//! append holds an exclusive `flock` on the log file, and re-reads the chain head
//! from the file's tail when its length is not what this process last wrote.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::AuditEvent;
use super::checkpoint::{self, Checkpoint, checkpoints_path};
use super::key::AuditKey;
use super::line::{self, Body, Digest32, GENESIS, VERSION};
use crate::commit::{GroupCommit, NotDurable, Running};
use crate::error::{Error, Result};

/// How the log is written.
#[derive(Clone, Copy, Debug)]
pub struct AuditOptions {
    /// `fdatasync` (group-committed) before `record` returns. On by default; turn it
    /// off only for development, where losing the last entries in a crash is fine.
    pub fsync: bool,
    /// Write a signed checkpoint every this many entries (0: only on reopen and at
    /// clean shutdown).
    pub checkpoint_every: u64,
    /// The longest [`AuditLog::record_batch`] waits for the disk, the write and the
    /// sync each (`vault.flush_timeout_ms`): a hung disk refuses the operation with
    /// `audit_unavailable` instead of holding it.
    pub timeout: Duration,
}

/// The default checkpoint interval: a checkpoint line per 1,000 entries.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 1000;

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            fsync: true,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The last entry written: anchor it elsewhere to detect truncation of the tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// The last sequence number written (0 for an empty log).
    pub seq: u64,
    /// The hex hash of the last line (64 zeros for an empty log).
    pub hash: String,
}

/// An append-only, hash-chained audit log, shared by every task (wrap it in an `Arc`).
pub struct AuditLog {
    shared: Arc<Shared>,
    /// The flusher, with fsync on. Its `sync` holds `shared`; dropping it joins the
    /// thread.
    commit: Option<Arc<GroupCommit>>,
    /// [`AuditOptions::timeout`].
    timeout: Duration,
}

struct Shared {
    path: PathBuf,
    checkpoints: PathBuf,
    key: AuditKey,
    checkpoint_every: u64,
    writer: Mutex<Writer>,
    /// The files written to since the flusher's last sync, each once (by
    /// `Arc::ptr_eq`): usually one, two if the log was reopened in between.
    /// The checkpoint file is listed with `true`: it is synced but not counted.
    unsynced: Mutex<Vec<(Arc<File>, bool)>>,
    /// Set by the flusher when the file was unlinked under us.
    reopen: AtomicBool,
    /// fdatasync calls of the log file made, for metrics (fsyncs per request); the
    /// checkpoint file's (one per `checkpoint_every` entries) are not counted.
    syncs: AtomicU64,
    /// The oldest append still running, if any. An append that does not return is a
    /// hung disk.
    appending: Running,
}

struct Writer {
    file: Option<Arc<File>>,
    /// The checkpoint file, opened at the first checkpoint.
    checkpoints: Option<Arc<File>>,
    seq: u64,
    last: Digest32,
    /// The hash of this file's first entry, once known.
    chain: Option<Digest32>,
    /// The seq of the last checkpoint this process wrote.
    last_checkpoint: u64,
    /// The file length after the last complete write; a failed write is cut back here.
    good_len: u64,
    /// A failed write may have left a partial line after `good_len`.
    dirty: bool,
    /// Reused line buffer.
    buf: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// === impl AuditLog ===

impl AuditLog {
    /// Open (or create) the log at `path` with fsync on, continuing its chain.
    pub fn open(path: impl AsRef<Path>, key: AuditKey) -> Result<AuditLog> {
        AuditLog::open_with(path, key, AuditOptions::default())
    }

    /// Open (or create) the log with explicit options.
    ///
    /// The last line (and the one before it) must verify; otherwise the log is refused,
    /// since appending to a broken chain would hide the break. Run [`super::verify()`]
    /// for the full check. `key` must be the audit key of the keyring the log was
    /// written under.
    pub fn open_with(
        path: impl AsRef<Path>,
        key: AuditKey,
        options: AuditOptions,
    ) -> Result<AuditLog> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        let writer = Writer::open(&path, &key)?;
        let shared = Arc::new(Shared {
            checkpoints: checkpoints_path(&path),
            path,
            key,
            checkpoint_every: options.checkpoint_every,
            writer: Mutex::new(writer),
            unsynced: Mutex::new(Vec::new()),
            reopen: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
            appending: Running::default(),
        });
        let commit = if options.fsync {
            let s = Arc::clone(&shared);
            Some(Arc::new(GroupCommit::start("audit-flusher", move || {
                s.sync()
            })?))
        } else {
            None
        };
        Ok(AuditLog {
            shared,
            commit,
            timeout: options.timeout,
        })
    }

    /// Write one entry; returns once it is written (and synced, with fsync on).
    ///
    /// The only error is [`Error::AuditUnavailable`]: refuse the operation. The write
    /// runs on a blocking thread (a page-cache write of a few KiB under a short lock,
    /// which a frozen file system holds until it thaws: never on a runtime worker,
    /// where it stalled every task of the worker, health checks included); the sync is
    /// the flusher thread's. Each waits at most [`AuditOptions::timeout`].
    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        self.record_batch(std::slice::from_ref(&event)).await
    }

    /// Write the entries of one request in one write and one group commit.
    pub async fn record_batch(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if self.stalled() {
            self.gave_up();
            return Err(Error::AuditUnavailable);
        }
        let shared = Arc::clone(&self.shared);
        let commit = self.commit.clone();
        let events = events.to_vec();
        let task = tokio::task::spawn_blocking(move || {
            append(&shared, commit.as_deref(), &events).map(|c| c.is_some())
        });
        let wrote = match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(wrote)) => wrote?,
            Ok(Err(_)) => return Err(Error::Internal("an audit write task failed")),
            Err(_) => {
                self.gave_up();
                return Err(Error::AuditUnavailable);
            }
        };
        match (&self.commit, wrote) {
            (Some(commit), true) => commit
                .durable_within(self.timeout)
                .await
                .map_err(|_: NotDurable| Error::AuditUnavailable),
            _ => Ok(()),
        }
    }

    /// Whether the disk under the log is hung: an append or a sync has been running
    /// for longer than the timeout. New entries are refused at once meanwhile, and
    /// `/readyz` reports the audit log not writable.
    pub fn stalled(&self) -> bool {
        self.shared.appending.age() > self.timeout
            || self
                .commit
                .as_ref()
                .is_some_and(|c| c.stalled(self.timeout))
    }

    /// An entry was refused because the disk hung: logged once per stall (by the
    /// group commit, which also logs its end).
    fn gave_up(&self) {
        match &self.commit {
            Some(commit) => commit.gave_up(self.timeout),
            None => tracing::error!("an audit log write has not returned in time (a hung disk?)"),
        }
    }

    /// [`AuditLog::record_batch`] for synchronous callers (CLI commands). Blocks the
    /// thread until the entries are synced: never call it from an async task.
    pub fn record_blocking(&self, events: &[AuditEvent]) -> Result<()> {
        match append(&self.shared, self.commit.as_deref(), events)? {
            Some(commit) => commit
                .durable_blocking()
                .map_err(|_| Error::AuditUnavailable),
            None => Ok(()),
        }
    }

    /// Write a signed checkpoint of the current head to `<log>.checkpoints` and sync
    /// it (at clean shutdown, before a reopen, at the end of a CLI command). Nothing is
    /// written when the head was checkpointed already or the log is empty.
    pub fn checkpoint(&self) -> Result<()> {
        let shared = &*self.shared;
        let mut w = lock(&shared.writer);
        let Some(file) = w.file.clone() else {
            return Ok(());
        };
        let written = {
            let _locked = FileLock::acquire(&file)?;
            w.catch_up(&file, &shared.key)?;
            if w.seq == 0 || w.last_checkpoint == w.seq {
                return Ok(());
            }
            w.write_checkpoint(&file, shared)?
        };
        file.sync_data()
            .and_then(|()| written.sync_data())
            .map_err(|e| Error::io("syncing the audit checkpoint", e))?;
        tracing::info!(seq = w.seq, head = %line::to_hex(&w.last), "audit checkpoint");
        Ok(())
    }

    /// Close the file and open the path afresh: after logrotate renamed the file,
    /// entries go to a new file (a new chain) at the configured path. The file being
    /// closed gets a checkpoint first. Called on SIGHUP and SIGUSR1.
    pub fn reopen(&self) -> Result<()> {
        if let Err(e) = self.checkpoint() {
            tracing::warn!(error = %e, "no checkpoint for the audit file being closed");
        }
        let shared = &*self.shared;
        let mut w = lock(&shared.writer);
        let fresh = Writer::open(&shared.path, &shared.key)?;
        *w = Writer {
            buf: std::mem::take(&mut w.buf),
            ..fresh
        };
        tracing::info!(seq = w.seq, "audit log reopened");
        Ok(())
    }

    /// The last entry written, to anchor elsewhere.
    pub fn head(&self) -> ChainHead {
        let w = lock(&self.shared.writer);
        ChainHead {
            seq: w.seq,
            hash: line::to_hex(&w.last),
        }
    }

    /// How many fdatasync calls the flusher has made (for the fsyncs-per-request
    /// metric).
    pub fn sync_count(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// The file this log writes to.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

/// Write the lines under the writer lock and the file lock, and mark the write for
/// the flusher: returns the flusher to wait on, if fsync is on and there was
/// something to write.
fn append<'c>(
    shared: &Shared,
    commit: Option<&'c GroupCommit>,
    events: &[AuditEvent],
) -> Result<Option<&'c GroupCommit>> {
    if events.is_empty() {
        return Ok(None);
    }
    shared.appending.begin_unless_running();
    let _appended = AppendEnded(shared);
    let (file, checkpoints) = {
        let mut w = lock(&shared.writer);
        if shared.reopen.swap(false, Ordering::AcqRel) {
            w.file = None;
        }
        let file = w.ready(shared).map_err(|e| {
            tracing::error!(error = %e, "audit log is not writable");
            Error::AuditUnavailable
        })?;
        let checkpoints = {
            let _locked = FileLock::acquire(&file)?;
            w.catch_up(&file, &shared.key).map_err(|e| {
                tracing::error!(error = %e, "audit log head is not readable");
                Error::AuditUnavailable
            })?;
            let before = w.seq;
            w.write(&file, events, &shared.key)?;
            let every = shared.checkpoint_every;
            if every > 0 && w.seq / every != before / every {
                w.write_checkpoint(&file, shared)
                    .inspect_err(|e| tracing::error!(error = %e, "audit checkpoint failed"))
                    .ok()
            } else {
                None
            }
        };
        (file, checkpoints)
    };
    let Some(commit) = commit else {
        return Ok(None);
    };
    // List the file before taking the ticket: the flush that covers the ticket
    // then finds the file in the list (or a sync of it that started after our write).
    {
        let mut unsynced = lock(&shared.unsynced);
        let listed = std::iter::once((file, false)).chain(checkpoints.map(|c| (c, true)));
        for (f, is_checkpoints) in listed {
            if !unsynced.iter().any(|(u, _)| Arc::ptr_eq(u, &f)) {
                unsynced.push((f, is_checkpoints));
            }
        }
    }
    commit.wrote();
    Ok(Some(commit))
}

/// Clears [`Shared::appending`] when an append ends, however it ends.
struct AppendEnded<'a>(&'a Shared);

impl Drop for AppendEnded<'_> {
    fn drop(&mut self) {
        self.0.appending.end();
    }
}

// === impl Shared ===

impl Shared {
    /// The flusher's sync: every file written since the last sync. Err if any failed,
    /// which fails every write of this flush.
    fn sync(&self) -> std::result::Result<(), String> {
        let files = std::mem::take(&mut *lock(&self.unsynced));
        let errors: Vec<String> = files
            .iter()
            .filter_map(|(file, is_checkpoints)| {
                if *is_checkpoints {
                    file.sync_data()
                        .map_err(|e| format!("audit checkpoint sync failed: {e}"))
                        .err()
                } else {
                    self.sync_file(file).err()
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    fn sync_file(&self, file: &File) -> std::result::Result<(), String> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        file.sync_data()
            .map_err(|e| format!("audit log sync failed: {e}"))?;
        // Entries written to a file that was deleted under us are lost: refuse them
        // and open the path afresh on the next write.
        match file.metadata() {
            Ok(m) if m.nlink() > 0 || !m.is_file() => Ok(()),
            Ok(_) => {
                self.reopen.store(true, Ordering::Release);
                Err("audit log file was deleted; reopening".to_owned())
            }
            Err(e) => Err(format!("audit log stat failed: {e}")),
        }
    }
}

// === impl Writer ===

impl Writer {
    /// Open the file and read the chain head from its tail.
    fn open(path: &Path, key: &AuditKey) -> Result<Writer> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening audit log {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading audit log metadata", e))?
            .len();
        let (seq, last) = read_head(&mut file, len, key)?;
        Ok(Writer {
            file: Some(Arc::new(file)),
            checkpoints: None,
            seq,
            last,
            chain: None,
            last_checkpoint: 0,
            good_len: len,
            dirty: false,
            buf: Vec::new(),
        })
    }

    /// The file to write to, reopened if needed.
    fn ready(&mut self, shared: &Shared) -> Result<Arc<File>> {
        if let Some(f) = &self.file {
            return Ok(Arc::clone(f));
        }
        let fresh = Writer::open(&shared.path, &shared.key)?;
        *self = Writer {
            buf: std::mem::take(&mut self.buf),
            ..fresh
        };
        match &self.file {
            Some(f) => Ok(Arc::clone(f)),
            None => Err(Error::Internal("audit file missing after open")),
        }
    }

    /// Under the file lock: cut back a partial line of ours, and re-read the head if
    /// another process appended since our last write.
    fn catch_up(&mut self, file: &Arc<File>, key: &AuditKey) -> Result<()> {
        if self.dirty {
            file.set_len(self.good_len)
                .map_err(|e| Error::io("cutting back a partial audit line", e))?;
            self.dirty = false;
        }
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading audit log metadata", e))?
            .len();
        if len == self.good_len {
            return Ok(());
        }
        if len < self.good_len {
            tracing::error!("the audit log shrank under this process");
            self.chain = None;
        }
        let mut reader: &File = file;
        let (seq, last) = read_head(&mut reader, len, key)?;
        self.seq = seq;
        self.last = last;
        self.good_len = len;
        if seq == 0 {
            self.chain = None;
        }
        Ok(())
    }

    /// Format and write the lines; the chain head moves only if the write succeeds.
    fn write(&mut self, file: &File, events: &[AuditEvent], key: &AuditKey) -> Result<()> {
        self.buf.clear();
        let mut seq = self.seq;
        let mut last = self.last;
        let mut first = None;
        for event in events {
            seq += 1;
            let time = line::rfc3339(event.time);
            let prev = line::to_hex(&last);
            let token = event
                .token
                .as_deref()
                .map(|t| key.token_ref(t, event.outcome))
                .transpose()
                .map_err(|_| Error::AuditUnavailable)?;
            let body = Body {
                v: VERSION,
                seq,
                time: &time,
                client: &event.client,
                action: event.action,
                token: token.as_deref(),
                class: event.class,
                outcome: event.outcome,
                origin: event.origin.as_deref(),
                count: event.count,
                prev: &prev,
            };
            last = line::encode(&body, key, &mut self.buf).map_err(|_| Error::AuditUnavailable)?;
            if seq == 1 {
                first = Some(last);
            }
        }
        let mut out: &File = file;
        if let Err(e) = out.write_all(&self.buf) {
            tracing::error!(error = %e, "audit log write failed");
            self.dirty = true;
            if file.set_len(self.good_len).is_ok() {
                self.dirty = false;
            }
            return Err(Error::AuditUnavailable);
        }
        self.seq = seq;
        self.last = last;
        if first.is_some() {
            self.chain = first;
        }
        self.good_len += u64::try_from(self.buf.len()).unwrap_or(u64::MAX);
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Append a checkpoint of the current head (under the file lock). Returns the
    /// checkpoint file, for the caller to sync.
    fn write_checkpoint(&mut self, file: &File, shared: &Shared) -> Result<Arc<File>> {
        let chain = match self.chain {
            Some(c) => c,
            None => {
                let mut reader: &File = file;
                let c = read_first(&mut reader, &shared.key)?;
                self.chain = Some(c);
                c
            }
        };
        let out = match &self.checkpoints {
            Some(f) => Arc::clone(f),
            None => {
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&shared.checkpoints)
                    .map(Arc::new)
                    .map_err(|e| Error::io("opening the audit checkpoint file", e))?;
                self.checkpoints = Some(Arc::clone(&f));
                f
            }
        };
        let mut text = Vec::new();
        let cp = Checkpoint {
            chain,
            seq: self.seq,
            hash: self.last,
        };
        checkpoint::encode(&cp, &shared.key, &mut text)?;
        let mut w: &File = &out;
        w.write_all(&text)
            .map_err(|e| Error::io("writing the audit checkpoint", e))?;
        self.last_checkpoint = self.seq;
        Ok(out)
    }
}

/// An exclusive `flock` on the log file, released on drop: one appender at a time
/// across processes.
struct FileLock<'a>(&'a File);

impl<'a> FileLock<'a> {
    fn acquire(file: &'a File) -> Result<FileLock<'a>> {
        file.lock().map_err(|e| {
            tracing::error!(error = %e, "cannot lock the audit log");
            Error::AuditUnavailable
        })?;
        Ok(FileLock(file))
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// The hash of the file's first entry (which must verify).
fn read_first(file: &mut impl ReadSeek, key: &AuditKey) -> Result<Digest32> {
    const REFUSE: &str =
        "the audit log's first entry does not verify; run `vaultgate audit verify`";
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io("reading the audit log head", e))?;
    let mut first = Vec::new();
    std::io::BufReader::new(Read::by_ref(file).take(1 << 20))
        .read_until(b'\n', &mut first)
        .map_err(|e| Error::io("reading the audit log head", e))?;
    let text = first.strip_suffix(b"\n").ok_or(Error::Integrity(REFUSE))?;
    let checked = line::check(text, Some(key)).map_err(|_| Error::Integrity(REFUSE))?;
    if checked.seq != 1 || checked.prev != GENESIS {
        return Err(Error::Integrity(REFUSE));
    }
    Ok(checked.hash)
}

/// A file, or a shared reference to one.
trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

/// Read the last line (and the one before it) and check that they chain.
fn read_head(file: &mut impl ReadSeek, len: u64, key: &AuditKey) -> Result<(u64, Digest32)> {
    if len == 0 {
        return Ok((0, GENESIS));
    }
    const REFUSE: &str = "the audit log's last entry does not verify (edited, cut short, \
                          written under another keyring, or in the old unkeyed format); \
                          run `vaultgate audit verify`";
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))
            .map_err(|e| Error::io("reading the audit log tail", e))?;
        let mut tail = Vec::new();
        Read::by_ref(file)
            .take(len - start)
            .read_to_end(&mut tail)
            .map_err(|e| Error::io("reading the audit log tail", e))?;
        let body = tail.strip_suffix(b"\n").ok_or(Error::Integrity(REFUSE))?;
        let mut lines = body.rsplitn(3, |b| *b == b'\n');
        let last = lines.next();
        let before = lines.next();
        let complete = start == 0 || lines.next().is_some();
        if !complete {
            if window >= len {
                return Err(Error::Internal("audit tail window"));
            }
            window = window.saturating_mul(4);
            continue;
        }
        let last = line::check(last.unwrap_or_default(), Some(key))
            .map_err(|_| Error::Integrity(REFUSE))?;
        let (want_seq, want_prev) = match before {
            None => (1, GENESIS),
            Some(b) => {
                let b = line::check(b, Some(key)).map_err(|_| Error::Integrity(REFUSE))?;
                (b.seq + 1, b.hash)
            }
        };
        if last.seq != want_seq || last.prev != want_prev {
            return Err(Error::Integrity(REFUSE));
        }
        return Ok((last.seq, last.hash));
    }
}
