//! The token store: single operations on opaque records. It knows nothing about
//! tokens' formats or cryptography; the vault façade composes these operations.
//!
//! The trait is async and shaped for both an embedded store (sled) and a shared SQL
//! database (PostgreSQL): every operation is one atomic step, and `durable()` is the
//! barrier the vault waits on before a token may leave the process. An embedded
//! store batches its fsyncs behind that barrier; a database commits every operation
//! before it returns, so there `durable()` has nothing left to do.
//!
//! A store that several vaultgate instances share (`is_shared`) also keeps the CVV
//! window keys, so that a CVV sealed by one instance opens on another.

use async_trait::async_trait;

pub mod fjall;
pub mod postgres;
pub mod sled;

use crate::commit::{FlushFigures, GroupCommit, NotDurable};
use crate::error::{Error, Result};

/// The longest an embedded store's caller waits for durability unless told otherwise
/// (`vault.flush_timeout_ms`'s default).
pub const DEFAULT_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// An embedded store's durability barrier: wait for `commit` at most `limit`. A flush
/// that failed is a store error (the store writes nothing more until it is reopened);
/// one that did not return in time (a hung disk) is 503 `store_unavailable`, and the
/// caller forwards nothing.
async fn durable_within(commit: &GroupCommit, limit: std::time::Duration) -> Result<()> {
    commit.durable_within(limit).await.map_err(|e| match e {
        NotDurable::Failed => Error::Store("flushing the store to disk failed".into()),
        NotDurable::TimedOut => Error::StoreUnavailable,
    })
}

/// Why an embedded store at `dir` did not open. A store another process holds (its
/// lock file is taken) says so plainly; anything else, a permission or a damaged
/// file, is the store's own message.
fn open_failed(dir: &std::path::Path, in_use: bool, cause: &dyn std::fmt::Display) -> Error {
    if in_use {
        Error::Store(format!(
            "the store at {} is in use by another process (a running vaultgate, or a \
             vaultgate command such as `detokenize`); stop it, or give this one its own \
             vault.data",
            dir.display()
        ))
    } else {
        Error::Store(format!(
            "cannot open the store at {}: {cause}",
            dir.display()
        ))
    }
}

/// The lower bound of a scan that starts after `after` (an embedded store's range).
fn key_after(after: Option<&str>) -> std::ops::Bound<Vec<u8>> {
    match after {
        Some(k) => std::ops::Bound::Excluded(k.as_bytes().to_vec()),
        None => std::ops::Bound::Unbounded,
    }
}

/// A volatile record's key in an embedded store's expiry index: the expiry (big-endian
/// seconds, so that the index is in time order) and the record's key.
fn expiry_key(expires: u64, key: &str) -> Vec<u8> {
    let mut k = expires.to_be_bytes().to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

/// Which set of records an operation addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// Long-lived records: PANs, bank accounts, secrets.
    Tokens,
    /// Records with an expiry (CVVs in durable mode).
    Volatile,
}

/// The outcome of an insert.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The record was stored.
    New,
    /// The key is already taken (a token collision): draw another token.
    Taken,
}

/// The outcome of a fingerprinted insert.
#[derive(Debug, PartialEq, Eq)]
pub enum FingerprintInsert {
    /// The fingerprint was new; the record was stored under the key.
    New,
    /// The fingerprint already maps to this token; nothing was stored.
    Existing(String),
    /// The key is already taken by another value: draw another token.
    Taken,
}

/// Storage for encrypted token records.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Store a record unless the key exists. `expires` (unix seconds) indexes
    /// volatile records for [`TokenStore::scan_expired`].
    async fn insert(
        &self,
        space: Space,
        key: &str,
        record: &[u8],
        expires: Option<u64>,
    ) -> Result<Inserted>;

    /// Atomically: if `fingerprint` maps to a token, return it; otherwise store the
    /// record under `key` (unless taken) and map the fingerprint to it.
    async fn insert_fingerprinted(
        &self,
        fingerprint: &[u8],
        key: &str,
        record: &[u8],
    ) -> Result<FingerprintInsert>;

    /// The token a fingerprint maps to.
    async fn fingerprint(&self, fingerprint: &[u8]) -> Result<Option<String>>;

    /// The token a value maps to under the first of its fingerprint `forms` that is
    /// stored (the same MAC kept whole or truncated, the preferred form first). A
    /// store may answer all forms in one lookup; this default asks them in turn.
    async fn fingerprint_any(&self, forms: &[&[u8]]) -> Result<Option<String>> {
        for form in forms {
            if let Some(token) = self.fingerprint(form).await? {
                return Ok(Some(token));
            }
        }
        Ok(None)
    }

    /// A record.
    async fn get(&self, space: Space, key: &str) -> Result<Option<Vec<u8>>>;

    /// Remove and return a record in one atomic step, so that two callers can never
    /// both take it (single-use CVVs).
    async fn take(&self, space: Space, key: &str) -> Result<Option<Vec<u8>>>;

    /// Delete a record and, if given, its fingerprint mapping. True if it existed.
    async fn remove(&self, space: Space, key: &str, fingerprint: Option<&[u8]>) -> Result<bool>;

    /// Replace a record only if it still holds `old` (rewrap). True if replaced.
    async fn replace(&self, space: Space, key: &str, old: &[u8], new: &[u8]) -> Result<bool>;

    /// Up to `limit` records with keys after `after`, in key order.
    async fn scan(
        &self,
        space: Space,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>>;

    /// Up to `limit` volatile keys whose expiry is at or before `now`; the caller
    /// removes them with [`TokenStore::take`]. A store may drop its expiry index
    /// entries for the keys it returns (sled does), so a key is not promised twice.
    async fn scan_expired(&self, now: u64, limit: usize) -> Result<Vec<String>>;

    /// Return once every write made before this call is durable on disk.
    async fn durable(&self) -> Result<()>;

    /// How many fsyncs (flushes) the store has made, for metrics.
    fn flushes(&self) -> u64 {
        0
    }

    /// Flushes, flushes waited for in vain, and the age of the flush in progress (an
    /// embedded store's group commit), for metrics.
    fn flush_figures(&self) -> FlushFigures {
        FlushFigures {
            flushes: self.flushes(),
            ..FlushFigures::default()
        }
    }

    /// Tell `observer` how long each of the store's flushes takes (an embedded
    /// store's group commit; a database's commits are its own, so by default nothing).
    fn observe_flushes(&self, _observer: crate::commit::FlushObserver) {}

    /// Whether every fingerprint this store holds is in the short form: it was
    /// created by a release that writes no other, so a lookup need not ask for the
    /// full MAC as well.
    fn short_fingerprints_only(&self) -> bool {
        false
    }

    /// Whether other vaultgate instances use this store at the same time. A shared
    /// store keeps CVVs in its volatile space and the CVV window keys itself.
    fn is_shared(&self) -> bool {
        false
    }

    /// Store the wrapped key of a CVV window unless the window has one already;
    /// return the window's key either way (so every instance agrees on one key).
    async fn cvv_key_insert(&self, _epoch: u64, _wrapped: &[u8]) -> Result<Vec<u8>> {
        Err(Error::Internal("this store does not keep CVV window keys"))
    }

    /// The wrapped key of a CVV window.
    async fn cvv_key_get(&self, _epoch: u64) -> Result<Option<Vec<u8>>> {
        Err(Error::Internal("this store does not keep CVV window keys"))
    }

    /// A cheap round trip proving the store is reachable (`/readyz`); an embedded
    /// store is always reachable while open.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// The active data key version every instance of a shared store agreed on, if
    /// one was published ([`TokenStore::set_shared_key_version`]).
    async fn shared_key_version(&self) -> Result<Option<u32>> {
        Ok(None)
    }

    /// Publish the active data key version to every instance (it only goes up).
    async fn set_shared_key_version(&self, _version: u32) -> Result<()> {
        Err(Error::Internal("this store does not share a key version"))
    }

    /// Destroy the keys of every window before `epoch`; returns how many.
    async fn cvv_keys_destroy_before(&self, _epoch: u64) -> Result<u64> {
        Err(Error::Internal("this store does not keep CVV window keys"))
    }
}
