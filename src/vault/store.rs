//! The token store: single operations on opaque records. It knows nothing about
//! tokens' formats or cryptography; the vault façade composes these operations.
//!
//! The trait is async and shaped for both an embedded store (sled) and a shared SQL
//! database: every operation is one atomic step, and `durable()` is the barrier the
//! vault waits on before a token may leave the process.

use async_trait::async_trait;

use crate::error::Result;

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

    /// Up to `limit` volatile keys whose expiry is at or before `now`.
    async fn scan_expired(&self, now: u64, limit: usize) -> Result<Vec<String>>;

    /// Return once every write made before this call is durable on disk.
    async fn durable(&self) -> Result<()>;

    /// How many fsyncs (flushes) the store has made, for metrics.
    fn flushes(&self) -> u64 {
        0
    }
}
