//! Whether this instance is ready to serve: what `/readyz` reports.

use std::sync::atomic::{AtomicBool, Ordering};

/// What `/readyz` reports on. Every flag must be up, and the server must not be
/// draining, for the instance to be ready.
#[derive(Debug, Default)]
pub struct Readiness {
    store_open: AtomicBool,
    upstreams_built: AtomicBool,
    draining: AtomicBool,
    sealed: AtomicBool,
    /// The store did not answer the last ping (a database down).
    store_unreachable: AtomicBool,
    /// The keyring cannot open the active data key version.
    keys_unavailable: AtomicBool,
    /// The audit log cannot be written.
    audit_unwritable: AtomicBool,
}

impl Readiness {
    /// The vault's store is open (or closed again).
    pub fn set_store_open(&self, open: bool) {
        self.store_open.store(open, Ordering::Release);
    }

    /// The upstream clients are built.
    pub fn set_upstreams_built(&self, built: bool) {
        self.upstreams_built.store(built, Ordering::Release);
    }

    /// The vault's keys are out of memory (or back in).
    pub fn set_sealed(&self, sealed: bool) {
        self.sealed.store(sealed, Ordering::Release);
    }

    /// Shutdown started: report not ready so load balancers drain this instance.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// The last store ping failed (or succeeded again).
    pub fn set_store_reachable(&self, reachable: bool) {
        self.store_unreachable.store(!reachable, Ordering::Release);
    }

    /// The keyring could (or could not) open the active data key version.
    pub fn set_keys_available(&self, available: bool) {
        self.keys_unavailable.store(!available, Ordering::Release);
    }

    /// The audit log can (or cannot) be written.
    pub fn set_audit_writable(&self, writable: bool) {
        self.audit_unwritable.store(!writable, Ordering::Release);
    }

    /// Each check by name (`vaultgate_ready{check}`): whether it holds.
    pub fn checks(&self) -> [(&'static str, bool); 7] {
        [
            ("store", self.store_open.load(Ordering::Acquire)),
            (
                "store_reachable",
                !self.store_unreachable.load(Ordering::Acquire),
            ),
            ("keys", !self.keys_unavailable.load(Ordering::Acquire)),
            ("audit", !self.audit_unwritable.load(Ordering::Acquire)),
            ("upstreams", self.upstreams_built.load(Ordering::Acquire)),
            ("unsealed", !self.sealed.load(Ordering::Acquire)),
            ("not_draining", !self.draining.load(Ordering::Acquire)),
        ]
    }

    /// Whether every condition holds.
    pub fn is_ready(&self) -> bool {
        self.store_open.load(Ordering::Acquire)
            && !self.store_unreachable.load(Ordering::Acquire)
            && !self.keys_unavailable.load(Ordering::Acquire)
            && !self.audit_unwritable.load(Ordering::Acquire)
            && self.upstreams_built.load(Ordering::Acquire)
            && !self.draining.load(Ordering::Acquire)
            && !self.sealed.load(Ordering::Acquire)
    }
}
