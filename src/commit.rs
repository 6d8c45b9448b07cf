//! Group commit: one flusher thread makes many writers' writes durable with one sync.
//!
//! A writer applies its write (to sled, to a file), calls [`GroupCommit::wrote`], then
//! waits with [`GroupCommit::durable`]. The flusher thread runs the caller's `sync`
//! closure once for everyone who is waiting, so concurrent writers share fsyncs.
//!
//! The sync runs on a dedicated thread rather than in the waiters: sled 0.34.7's
//! `flush_async` deadlocks under concurrent callers (sled issue 1308), and a blocking
//! fsync must not hold a runtime worker.
//!
//! A sync can hang (a frozen file system, a hung NFS mount): [`GroupCommit::durable_within`]
//! bounds the wait, and [`GroupCommit::stalled`] tells callers that the flush in
//! progress has run past their bound, so that they refuse new writes instead of
//! piling them up behind it. The first wait that gives up logs the stall once; the
//! flusher logs when the sync returns.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::error::{Error, Result};

/// The longest a flush waits for more writers to join it (see [`run`]).
const GATHER_MAX: Duration = Duration::from_micros(500);

/// The pause after a failed sync, so that a broken disk is not retried in a busy loop.
const FAILURE_PAUSE: Duration = Duration::from_millis(50);

/// The sync covering a write failed (or the flusher stopped): the write may be lost.
/// Callers map it to their own error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the group commit flush failed")]
pub struct Failed;

/// Why a bounded wait for durability ended without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotDurable {
    /// The sync covering the write failed (or the flusher stopped).
    #[error("the group commit flush failed")]
    Failed,
    /// The sync did not return within the bound: the write may still become durable,
    /// or be lost; it must not be acted on.
    #[error("the group commit flush did not return in time")]
    TimedOut,
}

/// What the flusher reports for metrics ([`GroupCommit::figures`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushFigures {
    /// Flushes (calls of `sync`) made so far.
    pub flushes: u64,
    /// Callers that gave up on a flush that did not return in time, or were refused
    /// a write while it had not ([`GroupCommit::gave_up`]).
    pub timeouts: u64,
    /// How long the flush in progress has been running; zero when none is.
    pub pending: Duration,
}

/// When an operation that can hang on the disk (a sync, an append) began, readable
/// from any thread as its age: zero while none runs. Held as nanoseconds after
/// `epoch`, plus one so that zero means none.
#[derive(Debug)]
pub struct Running {
    started: AtomicU64,
    epoch: Instant,
}

impl Default for Running {
    fn default() -> Self {
        Running {
            started: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl Running {
    fn mark(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX - 1)
            + 1
    }

    /// An operation begins at `at`.
    pub fn begin(&self, at: Instant) {
        self.started.store(self.mark(at), Ordering::Release);
    }

    /// An operation begins now, unless an older one still runs (whose start is kept:
    /// a later one must not hide it).
    pub fn begin_unless_running(&self) {
        let _ = self.started.compare_exchange(
            0,
            self.mark(Instant::now()),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The operation ended.
    pub fn end(&self) {
        self.started.store(0, Ordering::Release);
    }

    /// How long the running operation has been running (zero when none is).
    pub fn age(&self) -> Duration {
        match self.started.load(Ordering::Acquire) {
            0 => Duration::ZERO,
            started => self
                .epoch
                .elapsed()
                .saturating_sub(Duration::from_nanos(started - 1)),
        }
    }
}

/// Called with the duration of each flush (each run of `sync`), from the flusher
/// thread: how long the disk takes to make a group durable, for metrics.
pub type FlushObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// A group-commit flusher: a thread that runs `sync` whenever somebody waits.
pub struct GroupCommit {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Flush progress, published by the flusher thread.
#[derive(Clone, Copy, Debug, Default)]
struct FlushState {
    /// Every write numbered at or below this is durable.
    done: u64,
    /// Every write numbered at or below this was in a failed flush.
    failed: u64,
}

/// What the waiters ask of the flusher.
#[derive(Default)]
struct Demand {
    /// The highest write number somebody waits for.
    wanted: u64,
    /// Waits asked for since the flusher last took a group: how many writers the
    /// next flush serves (one request that wrote a card and a CVV is one writer).
    askers: u64,
    /// Set on drop: the flusher returns.
    stop: bool,
}

struct Shared {
    name: String,
    /// Writes so far; a write takes its number after it has been applied.
    writes: AtomicU64,
    demand: Mutex<Demand>,
    /// To the flusher: `demand` changed.
    wake: Condvar,
    /// To blocking waiters (with `demand`'s lock): `state` moved.
    flushed: Condvar,
    /// For async waiters; also the source of truth for blocking ones.
    state: watch::Sender<FlushState>,
    flushes: AtomicU64,
    /// The sync in progress, if any.
    syncing: Running,
    /// Callers that gave up on a hung flush ([`GroupCommit::gave_up`]).
    timeouts: AtomicU64,
    /// A timed-out wait logged the stall; the flusher logs its end and clears it.
    stall_logged: AtomicBool,
    /// Told the duration of each flush ([`GroupCommit::observe_flushes`]).
    observer: Mutex<Option<FlushObserver>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GroupCommit {
    /// Start the flusher thread, named `name`. `sync` makes everything written so far
    /// durable; its error message is logged.
    pub fn start(
        name: &str,
        sync: impl FnMut() -> std::result::Result<(), String> + Send + 'static,
    ) -> Result<GroupCommit> {
        let (state, _) = watch::channel(FlushState::default());
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            writes: AtomicU64::new(0),
            demand: Mutex::new(Demand::default()),
            wake: Condvar::new(),
            flushed: Condvar::new(),
            state,
            flushes: AtomicU64::new(0),
            syncing: Running::default(),
            timeouts: AtomicU64::new(0),
            stall_logged: AtomicBool::new(false),
            observer: Mutex::new(None),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(&s, sync))
            .map_err(|e| Error::io(format!("starting the {name} thread"), e))?;
        Ok(GroupCommit {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Mark a write as applied (call it after the write); returns the write's ticket.
    /// Every [`GroupCommit::durable`] call from now on covers it.
    pub fn wrote(&self) -> u64 {
        self.shared.writes.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Wait until every write marked so far is durable.
    pub async fn durable(&self) -> std::result::Result<(), Failed> {
        let Some(ticket) = self.ask() else {
            return Ok(());
        };
        let mut rx = self.shared.state.subscribe();
        loop {
            if let Some(outcome) = outcome(*rx.borrow_and_update(), ticket) {
                return outcome;
            }
            rx.changed().await.map_err(|_| Failed)?;
        }
    }

    /// [`GroupCommit::durable`], giving up after `limit`: a sync that hangs (a frozen
    /// file system) answers [`NotDurable::TimedOut`] instead of holding the caller. The
    /// first wait to give up during a stall logs it.
    ///
    /// While the flush in progress has hung past `limit` already, a caller with
    /// something to wait for gives up at once rather than after another `limit`: a
    /// request for a card tokenized long ago waits for every write made so far, and
    /// would otherwise be held for the full bound each time.
    pub async fn durable_within(&self, limit: Duration) -> std::result::Result<(), NotDurable> {
        let ticket = self.shared.writes.load(Ordering::SeqCst);
        if self.shared.state.borrow().done < ticket && self.stalled(limit) {
            self.gave_up(limit);
            return Err(NotDurable::TimedOut);
        }
        match tokio::time::timeout(limit, self.durable()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Failed)) => Err(NotDurable::Failed),
            Err(_) => {
                self.gave_up(limit);
                Err(NotDurable::TimedOut)
            }
        }
    }

    /// Count a caller that gave up on the disk after `limit` (a wait for durability,
    /// or a write held behind a hung flush), and log the stall once: the flusher logs
    /// its end.
    pub fn gave_up(&self, limit: Duration) {
        self.shared.timeouts.fetch_add(1, Ordering::Relaxed);
        if !self.shared.stall_logged.swap(true, Ordering::AcqRel) {
            tracing::error!(
                flusher = %self.shared.name,
                limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
                "a flush to disk has not returned in time (a hung or frozen disk?): \
                 writes that need it are refused until it returns"
            );
        }
    }

    /// Whether a new write must be refused because the flush in progress has hung for
    /// longer than `limit` ([`GroupCommit::stalled`]); a refusal is counted as a
    /// caller that gave up.
    pub fn refuses_writes(&self, limit: Duration) -> bool {
        let stalled = self.stalled(limit);
        if stalled {
            self.gave_up(limit);
        }
        stalled
    }

    /// Whether the sync in progress has been running for longer than `limit`: the
    /// disk is hung, and a new write would only wait behind it.
    pub fn stalled(&self, limit: Duration) -> bool {
        self.pending() > limit
    }

    /// How long the sync in progress has been running (zero when none is).
    fn pending(&self) -> Duration {
        self.shared.syncing.age()
    }

    /// Flushes, timed-out waits and the age of the flush in progress, for metrics.
    pub fn figures(&self) -> FlushFigures {
        FlushFigures {
            flushes: self.flushes(),
            timeouts: self.shared.timeouts.load(Ordering::Relaxed),
            pending: self.pending(),
        }
    }

    /// [`GroupCommit::durable`] for synchronous callers (CLI commands). Blocks the
    /// thread: never call it from an async task.
    pub fn durable_blocking(&self) -> std::result::Result<(), Failed> {
        let Some(ticket) = self.ask() else {
            return Ok(());
        };
        // The state is read under `demand`'s lock and the flusher takes that lock
        // before notifying `flushed`, so a flush cannot end unseen between the two.
        let mut demand = lock(&self.shared.demand);
        loop {
            if let Some(outcome) = outcome(*self.shared.state.borrow(), ticket) {
                return outcome;
            }
            demand = self
                .shared
                .flushed
                .wait(demand)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Whether the last flush succeeded (or none has run): after a failed one (a full
    /// disk, an I/O error), until a later flush succeeds. sled and fjall stop writing
    /// after such a failure until they are opened again, so the store's readiness
    /// ping reports it ([`crate::vault::store::TokenStore::ping`]).
    pub fn healthy(&self) -> bool {
        let s = *self.shared.state.borrow();
        s.failed <= s.done
    }

    /// How many flushes (calls of `sync`) the flusher has made.
    pub fn flushes(&self) -> u64 {
        self.shared.flushes.load(Ordering::Relaxed)
    }

    /// Tell `observer` the duration of every flush from now on (it replaces the
    /// observer set before, if any).
    pub fn observe_flushes(&self, observer: FlushObserver) {
        *lock(&self.shared.observer) = Some(observer);
    }

    /// Stop the flusher thread and wait for it, so that whatever `sync` holds (a
    /// database handle, a file) is released when this returns. Also done on drop.
    pub fn stop(&self) {
        {
            let mut demand = lock(&self.shared.demand);
            demand.stop = true;
            self.shared.wake.notify_all();
        }
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Ask the flusher for everything written so far: the ticket to wait for, or
    /// `None` when it is durable already.
    fn ask(&self) -> Option<u64> {
        let ticket = self.shared.writes.load(Ordering::SeqCst);
        if self.shared.state.borrow().done >= ticket {
            return None;
        }
        {
            let mut demand = lock(&self.shared.demand);
            demand.wanted = demand.wanted.max(ticket);
            demand.askers += 1;
        }
        self.shared.wake.notify_one();
        Some(ticket)
    }
}

/// Whether `ticket` is settled in `state`: durable, failed, or not yet (`None`).
fn outcome(state: FlushState, ticket: u64) -> Option<std::result::Result<(), Failed>> {
    if state.done >= ticket {
        Some(Ok(()))
    } else if state.failed >= ticket {
        Some(Err(Failed))
    } else {
        None
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("name", &self.shared.name)
            .field("writes", &self.shared.writes.load(Ordering::Relaxed))
            .field("state", &*self.shared.state.borrow())
            .field("flushes", &self.flushes())
            .finish()
    }
}

/// Fails every write not yet durable when the flusher thread ends, however it ends
/// (a panicking `sync` included), so that no waiter waits forever.
struct FailOnExit<'a>(&'a Shared);

impl Drop for FailOnExit<'_> {
    fn drop(&mut self) {
        self.0.state.send_modify(|s| s.failed = u64::MAX);
        let _demand = lock(&self.0.demand);
        self.0.flushed.notify_all();
    }
}

/// The flusher thread.
fn run(c: &Shared, mut sync: impl FnMut() -> std::result::Result<(), String>) {
    let _fail_on_exit = FailOnExit(c);
    // How many writers the previous flush served.
    let mut last_batch: u64 = 0;
    loop {
        {
            let mut demand = lock(&c.demand);
            loop {
                if demand.stop {
                    return;
                }
                if demand.wanted > c.state.borrow().done {
                    break;
                }
                demand = c.wake.wait(demand).unwrap_or_else(PoisonError::into_inner);
            }
            // Adaptive gather: when the previous flush was shared by several writers,
            // the next group is usually still arriving (their requests were answered
            // one flush ago). Wait, at most GATHER_MAX, until as many writers wait as
            // the last flush served, so that groups do not split into a big and a
            // small flush. A lone writer (last_batch <= 1) is flushed at once: no
            // added latency at low concurrency. Writers, not writes: a lone request
            // that stored two records must not make the next lone one wait.
            if last_batch > 1 {
                let deadline = Instant::now() + GATHER_MAX;
                while demand.askers < last_batch {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    demand = c
                        .wake
                        .wait_timeout(demand, deadline.saturating_duration_since(now))
                        .map(|(d, _)| d)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
            }
            last_batch = std::mem::take(&mut demand.askers);
        }
        // Every write numbered up to `target` was applied before this sync starts.
        let target = c.writes.load(Ordering::SeqCst);
        let started = Instant::now();
        c.syncing.begin(started);
        let result = sync();
        c.syncing.end();
        let took = started.elapsed();
        if c.stall_logged.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                flusher = %c.name,
                took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                ok = result.is_ok(),
                "the disk answers again: a flush returned after callers gave up on the disk"
            );
        }
        c.flushes.fetch_add(1, Ordering::Relaxed);
        // Before the waiters are told (a few nanoseconds), so that a flush a caller
        // has waited for is observed by the time its wait ends.
        let observer = lock(&c.observer).clone();
        if let Some(observe) = observer {
            observe(took);
        }
        c.state.send_modify(|s| match &result {
            Ok(()) => s.done = s.done.max(target),
            Err(_) => s.failed = s.failed.max(target),
        });
        {
            let _demand = lock(&c.demand);
            c.flushed.notify_all();
        }
        if let Err(e) = result {
            tracing::error!(flusher = %c.name, error = %e, "group commit flush failed");
            std::thread::sleep(FAILURE_PAUSE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A sync that takes a little while, like an fsync, and counts its calls.
    fn slow_sync(calls: Arc<AtomicU64>) -> impl FnMut() -> std::result::Result<(), String> {
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_flushes() {
        let calls = Arc::new(AtomicU64::new(0));
        let commit =
            Arc::new(GroupCommit::start("test-flusher", slow_sync(calls.clone())).unwrap());
        const N: u64 = 64;
        let mut tasks = Vec::new();
        for _ in 0..N {
            let commit = Arc::clone(&commit);
            tasks.push(tokio::spawn(async move {
                commit.wrote();
                commit.durable().await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let flushes = commit.flushes();
        assert_eq!(flushes, calls.load(Ordering::SeqCst));
        assert!(
            (1..N).contains(&flushes),
            "{flushes} flushes for {N} writers"
        );
    }

    /// One writer at a time, alternating a request that stores two records with one
    /// that stores one. The gather waits for as many writers as the last flush
    /// served; when it counted writes, every one-record request after a two-record
    /// one waited GATHER_MAX (500 µs) for a second writer that was not coming.
    #[test]
    fn a_lone_writer_is_not_held_for_the_last_requests_record_count() {
        let commit = GroupCommit::start("test-flusher", || Ok(())).unwrap();
        let mut lone = Vec::new();
        for _ in 0..30 {
            commit.wrote();
            commit.wrote();
            commit.durable_blocking().unwrap();
            commit.wrote();
            let started = Instant::now();
            commit.durable_blocking().unwrap();
            lone.push(started.elapsed());
        }
        // The fastest of thirty: a loaded machine slows some, not all of them.
        let fastest = lone.iter().min().copied().unwrap_or_default();
        assert!(
            fastest < GATHER_MAX * 4 / 5,
            "a lone one-record writer waited {fastest:?} at best"
        );
    }

    #[tokio::test]
    async fn nothing_written_needs_no_flush() {
        let commit = GroupCommit::start("test-flusher", || Ok(())).unwrap();
        commit.durable().await.unwrap();
        commit.durable_blocking().unwrap();
        assert_eq!(commit.flushes(), 0);
        assert_eq!(commit.wrote(), 1);
        assert_eq!(commit.wrote(), 2);
        commit.durable().await.unwrap();
        // Already durable: no second flush.
        commit.durable().await.unwrap();
        assert_eq!(commit.flushes(), 1);
    }

    #[tokio::test]
    async fn the_observer_is_told_how_long_each_flush_took() {
        let calls = Arc::new(AtomicU64::new(0));
        let commit = GroupCommit::start("test-flusher", slow_sync(calls.clone())).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        commit.observe_flushes(Arc::new(move |d| lock(&s).push(d)));
        for _ in 0..3 {
            commit.wrote();
            commit.durable().await.unwrap();
        }
        let seen = lock(&seen).clone();
        assert_eq!(seen.len() as u64, commit.flushes());
        assert_eq!(seen.len(), 3, "one flush per lone writer");
        // `slow_sync` sleeps 2 ms.
        assert!(
            seen.iter().all(|d| *d >= Duration::from_millis(2)),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn a_failing_sync_fails_its_waiters() {
        let fail = Arc::new(AtomicBool::new(true));
        let f = Arc::clone(&fail);
        let commit = GroupCommit::start("test-flusher", move || {
            if f.load(Ordering::SeqCst) {
                Err("disk on fire".to_owned())
            } else {
                Ok(())
            }
        })
        .unwrap();
        assert!(commit.healthy(), "no flush yet");
        commit.wrote();
        assert_eq!(commit.durable().await, Err(Failed));
        assert!(!commit.healthy(), "the last flush failed");
        // A failed ticket stays failed until a later write is flushed.
        assert_eq!(commit.durable_blocking(), Err(Failed));
        fail.store(false, Ordering::SeqCst);
        commit.wrote();
        commit.durable().await.unwrap();
        commit.durable_blocking().unwrap();
        assert!(commit.healthy(), "a later flush succeeded");
    }

    /// A sync that hangs (a frozen disk): the bounded wait gives up, new writes are
    /// refused once the flush has hung past the bound, the figures show it, and all
    /// of it clears by itself when the sync returns.
    #[tokio::test]
    async fn a_hung_sync_times_out_and_clears_when_it_returns() {
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let commit = GroupCommit::start("test-flusher", move || {
            let _ = lock(&gate).recv();
            Ok(())
        })
        .unwrap();
        // Declared after `commit`, so dropped first: a failed assertion ends the hung
        // sync (its `recv` fails) instead of leaving `commit`'s drop waiting for it.
        let release = release;
        let limit = Duration::from_millis(100);
        let patience = || Instant::now() + Duration::from_secs(20);
        commit.wrote();
        let started = Instant::now();
        assert_eq!(
            commit.durable_within(limit).await,
            Err(NotDurable::TimedOut)
        );
        assert!(started.elapsed() >= limit);
        // The flusher thread may have reached its sync late on a loaded machine.
        let deadline = patience();
        while !commit.stalled(limit) {
            assert!(
                Instant::now() < deadline,
                "the hung flush never counted as stalled"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(commit.refuses_writes(limit));
        // A second wait gives up at once: the flush is known to hang.
        let again = Instant::now();
        assert_eq!(
            commit.durable_within(limit).await,
            Err(NotDurable::TimedOut)
        );
        assert!(again.elapsed() < limit, "{:?}", again.elapsed());
        let figures = commit.figures();
        assert_eq!(figures.timeouts, 3, "two waits and a refusal");
        assert!(figures.pending >= limit, "{figures:?}");
        assert!(commit.healthy(), "hung is not failed");
        // The hung flush returns: no longer stalled, and a new write is flushed.
        release.send(()).unwrap();
        let deadline = patience();
        while commit.stalled(limit) {
            assert!(
                Instant::now() < deadline,
                "the returned flush still counts as stalled"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!commit.refuses_writes(limit));
        assert_eq!(commit.figures().pending, Duration::ZERO);
        commit.wrote();
        release.send(()).unwrap();
        commit
            .durable_within(Duration::from_secs(20))
            .await
            .unwrap();
    }

    #[test]
    fn blocking_waiters_outside_a_runtime() {
        let calls = Arc::new(AtomicU64::new(0));
        let commit =
            Arc::new(GroupCommit::start("test-flusher", slow_sync(calls.clone())).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let commit = Arc::clone(&commit);
                std::thread::spawn(move || {
                    commit.wrote();
                    commit.durable_blocking()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        assert!(commit.flushes() >= 1);
    }

    #[test]
    fn a_panicking_sync_fails_waiters_instead_of_hanging() {
        let commit = GroupCommit::start("test-flusher", || panic!("sync panicked")).unwrap();
        commit.wrote();
        assert_eq!(commit.durable_blocking(), Err(Failed));
    }

    #[test]
    fn drop_joins_the_thread() {
        // The closure owns a value whose drop we can observe: once the GroupCommit is
        // dropped, the thread has ended and released it.
        struct Held(Arc<AtomicBool>);
        impl Drop for Held {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let released = Arc::new(AtomicBool::new(false));
        let held = Held(Arc::clone(&released));
        let commit = GroupCommit::start("test-flusher", move || {
            let _ = &held;
            Ok(())
        })
        .unwrap();
        commit.wrote();
        commit.durable_blocking().unwrap();
        assert!(!released.load(Ordering::SeqCst));
        drop(commit);
        assert!(released.load(Ordering::SeqCst));
    }
}
