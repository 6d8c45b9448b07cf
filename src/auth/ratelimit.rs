//! Per-client token buckets over tokens revealed.
//!
//! Each client's bucket holds one minute's worth (`rate_limit_per_minute`) and refills
//! continuously at that rate. A batch of `n` tokens takes `n` at once or is refused
//! whole. One short-held mutex over a map of buckets: a check is a few arithmetic
//! operations, so at the reveal API's ~1,000 requests/s it is never contended for long.
//! Buckets are keyed by client name, so they survive a config reload.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use super::client::Client;
use crate::error::{Error, Result};

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Reveal rate limits for every client.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// An empty limiter; buckets start full.
    pub fn new() -> Self {
        RateLimiter::default()
    }

    /// Take `n_tokens` from the client's bucket, or `RateLimited` with the seconds
    /// until the bucket will hold them.
    pub fn check(&self, client: &Client, n_tokens: usize) -> Result<()> {
        self.check_at(client, n_tokens, Instant::now())
    }

    /// [`RateLimiter::check`] at a given instant (tests pass their own clock).
    pub(super) fn check_at(&self, client: &Client, n_tokens: usize, now: Instant) -> Result<()> {
        let capacity = f64::from(client.rate_limit_per_minute());
        let per_second = capacity / 60.0;
        let want = n_tokens as f64;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = match buckets.get_mut(client.name()) {
            Some(b) => b,
            None => buckets.entry(client.name().to_owned()).or_insert(Bucket {
                tokens: capacity,
                last: now,
            }),
        };
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        if now > bucket.last {
            bucket.last = now;
        }
        if bucket.tokens >= want {
            bucket.tokens -= want;
            Ok(())
        } else {
            Err(Error::RateLimited {
                retry_after_secs: if want > capacity {
                    // Never passes: wait for a full bucket, then send smaller batches.
                    60
                } else {
                    retry_after(want - bucket.tokens, per_second)
                },
            })
        }
    }
}

/// Whole seconds until `missing` tokens have refilled at `per_second`: 1 to 60.
fn retry_after(missing: f64, per_second: f64) -> u64 {
    let secs = (missing / per_second).ceil();
    if secs.is_finite() && secs >= 1.0 {
        // At most 60 s: the bucket holds one minute's worth.
        secs.min(60.0) as u64
    } else {
        1
    }
}
