//! The connections a listener serves: which are idle and since when, so that idle
//! ones are closed after a timeout, and the oldest idle one makes room when the
//! listener is at `max_connections`.
//!
//! A connection is busy from the moment a request arrives until its response body is
//! done (or dropped); otherwise it is idle. Before its first request a connection gets
//! the header read timeout; between requests, the idle timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Every open connection of one listener.
#[derive(Debug)]
pub struct ConnTable {
    epoch: Instant,
    next_id: AtomicU64,
    slots: Mutex<HashMap<u64, Arc<ConnSlot>>>,
}

/// One open connection.
#[derive(Debug)]
pub struct ConnSlot {
    id: u64,
    epoch: Instant,
    /// Requests in flight (until their response bodies end).
    active: AtomicUsize,
    /// Whether a request was ever seen.
    served: AtomicBool,
    /// When it last became idle, in ms since `epoch`.
    idle_since_ms: AtomicU64,
    /// Chosen to make room; do not choose again.
    closing: AtomicBool,
    evict: Notify,
}

/// Removes its connection from the table when the connection task ends.
#[derive(Debug)]
pub struct Registered {
    table: Arc<ConnTable>,
    pub slot: Arc<ConnSlot>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut slots = match self.table.slots.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        slots.remove(&self.slot.id);
    }
}

impl ConnTable {
    pub fn new() -> Arc<ConnTable> {
        Arc::new(ConnTable {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            slots: Mutex::new(HashMap::new()),
        })
    }

    /// Track a new connection (idle since now).
    pub fn register(self: &Arc<Self>) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(ConnSlot {
            id,
            epoch: self.epoch,
            active: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(ms_since(self.epoch)),
            closing: AtomicBool::new(false),
            evict: Notify::new(),
        });
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        slots.insert(id, Arc::clone(&slot));
        Registered {
            table: Arc::clone(self),
            slot,
        }
    }

    /// Ask the connection that has been idle longest to close. `false` when every
    /// connection is busy (or already closing).
    pub fn evict_oldest_idle(&self) -> bool {
        let slots = match self.slots.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let oldest = slots
            .values()
            .filter(|s| s.active.load(Ordering::Acquire) == 0 && !s.closing.load(Ordering::Acquire))
            .min_by_key(|s| s.idle_since_ms.load(Ordering::Acquire));
        match oldest {
            Some(slot) => {
                slot.closing.store(true, Ordering::Release);
                slot.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

fn ms_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl ConnSlot {
    /// A request arrived; the connection is busy until the guard drops.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.served.store(true, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(self))
    }

    /// Resolves once the connection has been idle for its timeout: `first` before any
    /// request, `idle` after one.
    pub async fn idle_expired(&self, first: Duration, idle: Duration) {
        loop {
            let timeout = if self.served.load(Ordering::Relaxed) {
                idle
            } else {
                first
            };
            let wait = if self.active.load(Ordering::Acquire) > 0 {
                timeout
            } else {
                let since =
                    ms_since(self.epoch).saturating_sub(self.idle_since_ms.load(Ordering::Acquire));
                let since = Duration::from_millis(since);
                if since >= timeout {
                    return;
                }
                timeout - since
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Resolves when the listener chose this connection to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub struct Busy(Arc<ConnSlot>);

impl Drop for Busy {
    fn drop(&mut self) {
        let slot = &self.0;
        slot.idle_since_ms
            .store(ms_since(slot.epoch), Ordering::Release);
        slot.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection busy until it ends or is dropped.
pub type Tracked<B> = super::body::Hold<B, Busy>;
