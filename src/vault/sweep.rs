//! The sweep detector: a deterministic six-four token is an oracle for its card
//! number, unless tokenizing candidates is limited.
//!
//! A token like `411111xxxxxx1111` names its first six and last four; whoever holds it
//! can tokenize candidates sharing them until one gives the same token (issue 12: 90
//! calls, 37 s for a 16-digit PAN). So the vault counts, per (first six, last four)
//! bucket, the card numbers it sees for the first time in a window. Past
//! `sweep_threshold` new numbers in one window the bucket is *tripped*: until the
//! window ends, every deterministic tokenization in it is refused, numbers already
//! held included (answering those while refusing new ones would make the 429 itself
//! the oracle).
//!
//! Memory is bounded: at most [`MAX_BUCKETS`] buckets are tracked. When full, buckets
//! whose window has passed go first, then those holding a single number; if every
//! bucket is busy, a new bucket is not tracked (that number passes). A tracked
//! bucket, tripped or counting, is never dropped for room, so flooding other buckets
//! does not reset it. Counts are per process: with several instances behind a load
//! balancer, a sweep spread over N instances gets N times the threshold.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// The most buckets tracked at once (about 24 bytes each plus the map's overhead).
pub const MAX_BUCKETS: usize = 262_144;

struct Bucket {
    start: u64,
    count: u32,
}

/// Per-bucket counts of new card numbers.
pub struct SweepDetector {
    threshold: u32,
    window: u64,
    buckets: Mutex<HashMap<u64, Bucket>>,
    refusals: AtomicU64,
}

/// The bucket of a card number: its first six and last four digits as one number.
/// `None` for a value too short to have both (never a valid PAN).
pub fn bucket_of(pan: &str) -> Option<u64> {
    // Read in place: a copy of the digits would be one more to zeroize.
    let digits = || pan.bytes().filter(u8::is_ascii_digit);
    let n = digits().count();
    if n < 10 {
        return None;
    }
    Some(
        digits()
            .take(6)
            .chain(digits().skip(n - 4))
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')),
    )
}

impl SweepDetector {
    /// A detector allowing `threshold` new numbers per bucket per `window` seconds
    /// (`threshold == 0`: off).
    pub fn new(threshold: u32, window: u64) -> Self {
        SweepDetector {
            threshold,
            window: window.max(1),
            buckets: Mutex::new(HashMap::new()),
            refusals: AtomicU64::new(0),
        }
    }

    /// Tokenizations refused so far (the `vaultgate_sweep_refusals_total` metric).
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    fn refuse(&self, start: u64, now: u64) -> Error {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        // Never the bucket or the value: only that it happened.
        tracing::warn!(
            "tokenization refused: a sweep of card numbers sharing a first six and last four"
        );
        Error::TokenizationSweepDetected {
            retry_after_secs: start.saturating_add(self.window).saturating_sub(now).max(1),
        }
    }

    /// Before looking the value up: refuse any value in a tripped bucket.
    pub fn check(&self, bucket: u64, now: u64) -> Result<()> {
        if self.threshold == 0 {
            return Ok(());
        }
        let buckets = self
            .buckets
            .lock()
            .map_err(|_| Error::Internal("sweep detector lock"))?;
        match buckets.get(&bucket) {
            Some(b) if now < b.start.saturating_add(self.window) && b.count >= self.threshold => {
                let start = b.start;
                drop(buckets);
                Err(self.refuse(start, now))
            }
            _ => Ok(()),
        }
    }

    /// A value not held before is about to be tokenized: count it, or refuse it when
    /// its bucket has had `threshold` new values in this window.
    pub fn note_new(&self, bucket: u64, now: u64) -> Result<()> {
        if self.threshold == 0 {
            return Ok(());
        }
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| Error::Internal("sweep detector lock"))?;
        if let Some(b) = buckets.get_mut(&bucket) {
            if now >= b.start.saturating_add(self.window) {
                b.start = now;
                b.count = 0;
            }
            if b.count >= self.threshold {
                let start = b.start;
                drop(buckets);
                return Err(self.refuse(start, now));
            }
            b.count += 1;
            return Ok(());
        }
        if buckets.len() >= MAX_BUCKETS {
            let window = self.window;
            buckets.retain(|_, b| now < b.start.saturating_add(window));
            if buckets.len() >= MAX_BUCKETS {
                buckets.retain(|_, b| b.count > 1);
            }
            if buckets.len() >= MAX_BUCKETS {
                return Ok(());
            }
        }
        buckets.insert(
            bucket,
            Bucket {
                start: now,
                count: 1,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_trips_past_its_threshold_and_resets_after_its_window() {
        let d = SweepDetector::new(3, 600);
        let b = bucket_of("4111111111111111").unwrap();
        for _ in 0..3 {
            d.note_new(b, 1000).unwrap();
        }
        assert!(matches!(
            d.note_new(b, 1001),
            Err(Error::TokenizationSweepDetected {
                retry_after_secs: 599
            })
        ));
        assert!(d.check(b, 1002).is_err());
        // Another bucket is not affected.
        let other = bucket_of("4111111111112222").unwrap();
        d.check(other, 1002).unwrap();
        d.note_new(other, 1002).unwrap();
        // The window passes.
        d.check(b, 1600).unwrap();
        d.note_new(b, 1600).unwrap();
        assert_eq!(d.refusals(), 2);
    }

    #[test]
    fn buckets_are_first_six_and_last_four() {
        assert_eq!(bucket_of("4111 1122 3344 1234"), Some(4_111_111_234));
        assert_eq!(bucket_of("123"), None);
        let off = SweepDetector::new(0, 600);
        for _ in 0..100 {
            off.note_new(1, 0).unwrap();
        }
    }
}
