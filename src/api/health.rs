//! `/healthz` (alive) and `/readyz` (ready to serve).

use std::sync::atomic::{AtomicBool, Ordering};

use http::{Response, StatusCode};

use crate::server::body::{Body, json};

/// What `/readyz` reports on. Every flag must be up, and the server must not be
/// draining, for the instance to be ready.
#[derive(Debug, Default)]
pub struct Readiness {
    store_open: AtomicBool,
    upstreams_built: AtomicBool,
    draining: AtomicBool,
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

    /// Shutdown started: report not ready so load balancers drain this instance.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether every condition holds.
    pub fn is_ready(&self) -> bool {
        self.store_open.load(Ordering::Acquire)
            && self.upstreams_built.load(Ordering::Acquire)
            && !self.draining.load(Ordering::Acquire)
    }
}

/// `GET /healthz`: 200 while the process runs.
pub fn healthz() -> Response<Body> {
    json(StatusCode::OK, r#"{"status":"ok"}"#)
}

/// `GET /readyz`: 200 when ready, 503 otherwise (starting up or draining).
pub fn readyz(readiness: &Readiness) -> Response<Body> {
    if readiness.is_ready() {
        json(StatusCode::OK, r#"{"status":"ready"}"#)
    } else {
        json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"not_ready"}"#)
    }
}
