//! The writer: one append-mode file, a chain head, and a group-commit flusher thread
//! ([`GroupCommit`]) that syncs every file written since its last sync.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::AuditEvent;
use super::line::{self, Body, Digest32, GENESIS};
use crate::commit::GroupCommit;
use crate::error::{Error, Result};

/// How the log is written.
#[derive(Clone, Copy, Debug)]
pub struct AuditOptions {
    /// `fdatasync` (group-committed) before `record` returns. On by default; turn it
    /// off only for development, where losing the last entries in a crash is fine.
    pub fsync: bool,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions { fsync: true }
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
    commit: Option<GroupCommit>,
}

struct Shared {
    path: PathBuf,
    writer: Mutex<Writer>,
    /// The files written to since the flusher's last sync, each once (by
    /// `Arc::ptr_eq`): usually one, two if the log was reopened in between.
    unsynced: Mutex<Vec<Arc<File>>>,
    /// Set by the flusher when the file was unlinked under us.
    reopen: AtomicBool,
    /// fdatasync calls made, for metrics (fsyncs per request).
    syncs: AtomicU64,
}

struct Writer {
    file: Option<Arc<File>>,
    seq: u64,
    last: Digest32,
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
    pub fn open(path: impl AsRef<Path>) -> Result<AuditLog> {
        AuditLog::open_with(path, AuditOptions::default())
    }

    /// Open (or create) the log with explicit options.
    ///
    /// The last line (and the one before it) must verify; otherwise the log is refused,
    /// since appending to a broken chain would hide the break. Run [`super::verify`]
    /// for the full check.
    pub fn open_with(path: impl AsRef<Path>, options: AuditOptions) -> Result<AuditLog> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        let writer = Writer::open(&path)?;
        let shared = Arc::new(Shared {
            path,
            writer: Mutex::new(writer),
            unsynced: Mutex::new(Vec::new()),
            reopen: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
        });
        let commit = if options.fsync {
            let s = Arc::clone(&shared);
            Some(GroupCommit::start("audit-flusher", move || s.sync())?)
        } else {
            None
        };
        Ok(AuditLog { shared, commit })
    }

    /// Write one entry; returns once it is written (and synced, with fsync on).
    ///
    /// The only error is [`Error::AuditUnavailable`]: refuse the operation. The write
    /// itself happens on the calling thread under a short lock (a page-cache write of
    /// a few KiB); only the sync is handed to the flusher thread.
    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        self.record_batch(std::slice::from_ref(&event)).await
    }

    /// Write the entries of one request in one write and one group commit.
    pub async fn record_batch(&self, events: &[AuditEvent]) -> Result<()> {
        match self.append(events)? {
            Some(commit) => commit.durable().await.map_err(|_| Error::AuditUnavailable),
            None => Ok(()),
        }
    }

    /// [`AuditLog::record_batch`] for synchronous callers (CLI commands). Blocks the
    /// thread until the entries are synced: never call it from an async task.
    pub fn record_blocking(&self, events: &[AuditEvent]) -> Result<()> {
        match self.append(events)? {
            Some(commit) => commit
                .durable_blocking()
                .map_err(|_| Error::AuditUnavailable),
            None => Ok(()),
        }
    }

    /// Write the lines under the writer lock and mark the write for the flusher:
    /// returns the flusher to wait on, if fsync is on and there was something to write.
    fn append(&self, events: &[AuditEvent]) -> Result<Option<&GroupCommit>> {
        if events.is_empty() {
            return Ok(None);
        }
        let file = {
            let mut w = lock(&self.shared.writer);
            if self.shared.reopen.swap(false, Ordering::AcqRel) {
                w.file = None;
            }
            let file = w.ready(&self.shared.path).map_err(|e| {
                tracing::error!(error = %e, "audit log is not writable");
                Error::AuditUnavailable
            })?;
            w.write(&file, events)?;
            file
        };
        let Some(commit) = &self.commit else {
            return Ok(None);
        };
        // List the file before taking the ticket: the flush that covers the ticket
        // then finds the file in the list (or a sync of it that started after our write).
        {
            let mut unsynced = lock(&self.shared.unsynced);
            if !unsynced.iter().any(|f| Arc::ptr_eq(f, &file)) {
                unsynced.push(file);
            }
        }
        commit.wrote();
        Ok(Some(commit))
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

// === impl Shared ===

impl Shared {
    /// The flusher's sync: every file written since the last sync. Err if any failed,
    /// which fails every write of this flush.
    fn sync(&self) -> std::result::Result<(), String> {
        let files = std::mem::take(&mut *lock(&self.unsynced));
        let errors: Vec<String> = files
            .iter()
            .filter_map(|file| self.sync_file(file).err())
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
    fn open(path: &Path) -> Result<Writer> {
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
        let (seq, last) = read_head(&mut file, len)?;
        Ok(Writer {
            file: Some(Arc::new(file)),
            seq,
            last,
            good_len: len,
            dirty: false,
            buf: Vec::new(),
        })
    }

    /// The file to write to: reopened if needed, cut back after a failed write.
    fn ready(&mut self, path: &Path) -> Result<Arc<File>> {
        let file = match &self.file {
            Some(f) => Arc::clone(f),
            None => {
                let fresh = Writer::open(path)?;
                *self = Writer {
                    buf: std::mem::take(&mut self.buf),
                    ..fresh
                };
                match &self.file {
                    Some(f) => Arc::clone(f),
                    None => return Err(Error::Internal("audit file missing after open")),
                }
            }
        };
        if self.dirty {
            file.set_len(self.good_len)
                .map_err(|e| Error::io("cutting back a partial audit line", e))?;
            self.dirty = false;
        }
        Ok(file)
    }

    /// Format and write the lines; the chain head moves only if the write succeeds.
    fn write(&mut self, file: &File, events: &[AuditEvent]) -> Result<()> {
        self.buf.clear();
        let mut seq = self.seq;
        let mut last = self.last;
        for event in events {
            seq += 1;
            let time = line::rfc3339(event.time);
            let prev = line::to_hex(&last);
            let body = Body {
                seq,
                time: &time,
                client: &event.client,
                action: event.action,
                token: event.token.as_deref(),
                class: event.class,
                outcome: event.outcome,
                origin: event.origin.as_deref(),
                prev: &prev,
            };
            last = line::encode(&body, &mut self.buf).map_err(|_| Error::AuditUnavailable)?;
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
        self.good_len += u64::try_from(self.buf.len()).unwrap_or(u64::MAX);
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        Ok(())
    }
}

/// Read the last line (and the one before it) and check that they chain.
fn read_head(file: &mut File, len: u64) -> Result<(u64, Digest32)> {
    if len == 0 {
        return Ok((0, GENESIS));
    }
    const REFUSE: &str = "the audit log's last entry does not verify; run `vaultgate audit verify`";
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
        let last = line::check(last.unwrap_or_default()).map_err(|_| Error::Integrity(REFUSE))?;
        let (want_seq, want_prev) = match before {
            None => (1, GENESIS),
            Some(b) => {
                let b = line::check(b).map_err(|_| Error::Integrity(REFUSE))?;
                (b.seq + 1, b.hash)
            }
        };
        if last.seq != want_seq || last.prev != want_prev {
            return Err(Error::Integrity(REFUSE));
        }
        return Ok((last.seq, last.hash));
    }
}
