//! The writer: one append-mode file, a chain head, and a group-commit flusher thread.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::AuditEvent;
use super::line::{self, Body, Digest32, GENESIS};
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
    flusher: Option<JoinHandle<()>>,
}

struct Shared {
    path: PathBuf,
    options: AuditOptions,
    writer: Mutex<Writer>,
    queue: Mutex<Queue>,
    wake: Condvar,
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

/// Writers waiting for a sync of the file they wrote to.
#[derive(Default)]
struct Queue {
    waiters: Vec<(Arc<File>, Waiter)>,
    shutdown: bool,
}

enum Waiter {
    Async(oneshot::Sender<bool>),
    Blocking(mpsc::Sender<bool>),
}

impl Waiter {
    fn send(self, ok: bool) {
        // A waiter that gave up (a dropped request) does not care.
        let _ = match self {
            Waiter::Async(tx) => tx.send(ok).map_err(|_| ()),
            Waiter::Blocking(tx) => tx.send(ok).map_err(|_| ()),
        };
    }
}

enum Wait {
    Done,
    Async(oneshot::Receiver<bool>),
    Blocking(mpsc::Receiver<bool>),
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
            options,
            writer: Mutex::new(writer),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            reopen: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
        });
        let flusher = if options.fsync {
            let s = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name("audit-flusher".to_owned())
                .spawn(move || s.flush_loop())
                .map_err(|e| Error::io("starting the audit flusher thread", e))?;
            Some(handle)
        } else {
            None
        };
        Ok(AuditLog { shared, flusher })
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
        match self.shared.append(events, false)? {
            Wait::Done => Ok(()),
            Wait::Async(rx) => match rx.await {
                Ok(true) => Ok(()),
                _ => Err(Error::AuditUnavailable),
            },
            Wait::Blocking(_) => Err(Error::AuditUnavailable),
        }
    }

    /// [`AuditLog::record_batch`] for synchronous callers (CLI commands). Blocks the
    /// thread until the entries are synced: never call it from an async task.
    pub fn record_blocking(&self, events: &[AuditEvent]) -> Result<()> {
        match self.shared.append(events, true)? {
            Wait::Done => Ok(()),
            Wait::Blocking(rx) => match rx.recv() {
                Ok(true) => Ok(()),
                _ => Err(Error::AuditUnavailable),
            },
            Wait::Async(_) => Err(Error::AuditUnavailable),
        }
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

impl Drop for AuditLog {
    fn drop(&mut self) {
        lock(&self.shared.queue).shutdown = true;
        self.shared.wake.notify_all();
        if let Some(handle) = self.flusher.take() {
            let _ = handle.join();
        }
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
    /// Write the lines under the writer lock; queue for a sync if fsync is on.
    fn append(&self, events: &[AuditEvent], blocking: bool) -> Result<Wait> {
        if events.is_empty() {
            return Ok(Wait::Done);
        }
        let mut w = lock(&self.writer);
        if self.reopen.swap(false, Ordering::AcqRel) {
            w.file = None;
        }
        let file = w.ready(&self.path).map_err(|e| {
            tracing::error!(error = %e, "audit log is not writable");
            Error::AuditUnavailable
        })?;
        w.write(&file, events)?;

        if !self.options.fsync {
            return Ok(Wait::Done);
        }
        let (waiter, wait) = if blocking {
            let (tx, rx) = mpsc::channel();
            (Waiter::Blocking(tx), Wait::Blocking(rx))
        } else {
            let (tx, rx) = oneshot::channel();
            (Waiter::Async(tx), Wait::Async(rx))
        };
        // Queue while still holding the writer lock, so that the queue is in write order.
        lock(&self.queue).waiters.push((file, waiter));
        drop(w);
        self.wake.notify_one();
        Ok(wait)
    }

    /// The flusher thread: sync the file for everyone who wrote since the last sync.
    fn flush_loop(&self) {
        loop {
            let batch = {
                let mut q = lock(&self.queue);
                while q.waiters.is_empty() && !q.shutdown {
                    q = self
                        .wake
                        .wait(q)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if q.waiters.is_empty() {
                    return;
                }
                std::mem::take(&mut q.waiters)
            };
            // Usually one file; more only if the log was reopened in between.
            let mut synced: Vec<(Arc<File>, bool)> = Vec::new();
            for (file, waiter) in batch {
                let known = synced.iter().find(|(f, _)| Arc::ptr_eq(f, &file));
                let ok = match known {
                    Some((_, ok)) => *ok,
                    None => {
                        let ok = self.sync(&file);
                        synced.push((file, ok));
                        ok
                    }
                };
                waiter.send(ok);
            }
        }
    }

    fn sync(&self, file: &File) -> bool {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = file.sync_data() {
            tracing::error!(error = %e, "audit log sync failed");
            return false;
        }
        // Entries written to a file that was deleted under us are lost: refuse them
        // and open the path afresh on the next write.
        match file.metadata() {
            Ok(m) if m.nlink() > 0 || !m.is_file() => true,
            Ok(_) => {
                tracing::error!("audit log file was deleted; reopening");
                self.reopen.store(true, Ordering::Release);
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "audit log stat failed");
                false
            }
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
