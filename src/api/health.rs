//! `/healthz` (alive) and `/readyz` (ready to serve).

use http::{Response, StatusCode};

use crate::health::Readiness;
use crate::net::body::{Body, json};

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
