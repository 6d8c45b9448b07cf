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

    /// Each check by name (`vaultgate_ready{check}`): whether it holds.
    pub fn checks(&self) -> [(&'static str, bool); 4] {
        [
            ("store", self.store_open.load(Ordering::Acquire)),
            ("upstreams", self.upstreams_built.load(Ordering::Acquire)),
            ("unsealed", !self.sealed.load(Ordering::Acquire)),
            ("not_draining", !self.draining.load(Ordering::Acquire)),
        ]
    }

    /// Whether every condition holds.
    pub fn is_ready(&self) -> bool {
        self.store_open.load(Ordering::Acquire)
            && self.upstreams_built.load(Ordering::Acquire)
            && !self.draining.load(Ordering::Acquire)
            && !self.sealed.load(Ordering::Acquire)
    }
}
