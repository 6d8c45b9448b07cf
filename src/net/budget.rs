//! The process's budget for request bodies held in memory whole.
//!
//! A rules route reads its body whole before it sanitizes it (as does a guarded
//! pass-through body with a content coding), under `limits.max_body_bytes` per
//! request. That bounds a request, not the process: one HTTP/2 connection carries
//! up to `h2_max_concurrent_streams` such bodies at once, each dripped as slowly as
//! `body_read_timeout_ms` allows, and `max_connections` connections can do the same.
//! So every byte such a read holds counts against one budget
//! (`limits.max_buffered_body_bytes`); the read that would take it over is refused
//! (503 `overloaded`, `Retry-After`, nothing forwarded) and the process stays up,
//! where without it the kernel's OOM killer ends every request at once.
//!
//! A body counts its `Content-Length` before it is read (a chunked one, its pieces
//! as they arrive), and stays counted until the forwarded body has been sent on or
//! dropped. The sanitized copy
//! of a body (about the same size) is not counted twice: the budget bounds what
//! clients make the process hold, a fixed factor below what it allocates.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Error, Result};

/// Bytes held by all whole-body reads, and how many may be.
#[derive(Debug)]
pub struct BodyBudget {
    held: AtomicUsize,
    limit: AtomicUsize,
}

impl BodyBudget {
    pub fn new(limit: usize) -> Arc<BodyBudget> {
        Arc::new(BodyBudget {
            held: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
        })
    }

    /// A reload's new limit; bytes already held stay held.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// The bytes held now (for `vaultgate_buffered_body_bytes`).
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The limit now.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// An empty lease for one body, grown as its bytes arrive.
    pub fn lease(self: &Arc<Self>) -> Lease {
        Lease {
            budget: Arc::clone(self),
            bytes: 0,
        }
    }
}

/// The bytes one body holds against its [`BodyBudget`], given back when dropped.
#[derive(Debug)]
pub struct Lease {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl Lease {
    /// Count `n` more bytes, or refuse them with [`Error::BodyMemoryFull`] if the
    /// budget has no room (this lease keeps what it held).
    pub fn take(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let limit = self.budget.limit.load(Ordering::Relaxed);
        let before = self.budget.held.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > limit {
            self.budget.held.fetch_sub(n, Ordering::Relaxed);
            return Err(Error::BodyMemoryFull);
        }
        self.bytes += n;
        Ok(())
    }

    /// The bytes this lease holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_refused_past_the_limit_and_gives_back_what_it_held() {
        let budget = BodyBudget::new(100);
        let mut a = budget.lease();
        a.take(60).unwrap();
        let mut b = budget.lease();
        assert!(matches!(b.take(41), Err(Error::BodyMemoryFull)));
        assert_eq!(budget.held(), 60, "a refused take holds nothing");
        b.take(40).unwrap();
        assert_eq!(budget.held(), 100);
        drop(a);
        assert_eq!(budget.held(), 40);
        b.take(60).unwrap();
        drop(b);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn a_lower_limit_refuses_new_bytes_and_keeps_the_old() {
        let budget = BodyBudget::new(100);
        let mut a = budget.lease();
        a.take(80).unwrap();
        budget.set_limit(50);
        assert!(a.take(1).is_err());
        assert_eq!(a.bytes(), 80);
        drop(a);
        budget.lease().take(50).unwrap();
    }
}
