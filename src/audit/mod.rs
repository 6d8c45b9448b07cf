//! The audit log: who did what to which token, when, and with what outcome — never a
//! value.
//!
//! The log is a file of JSON lines, appended to and never rewritten (the byte format,
//! version 2, is documented in `line.rs`). Each line carries a sequence number
//! (`seq`, from 1), the hash of the line before it (`prev`), a MAC under the **audit
//! key** (`mac`) and a SHA-256 of its own bytes (`hash`). The audit key is
//! HMAC-SHA256(master key, `vaultgate-audit/1`), so writing or re-chaining entries
//! needs the keyring: [`verify()`] with the key names the first line that was edited,
//! forged, deleted, inserted, reordered or cut short, even when every hash was
//! recomputed. Without the key (`audit verify --no-key`) only the hashes are checked,
//! and the report says so.
//!
//! Signed checkpoints (seq, head hash, time, MAC) go to `<log>.checkpoints` every
//! [`AuditOptions::checkpoint_every`] entries, before a reopen, and at clean shutdown
//! (see `checkpoint.rs`). [`verify()`] compares the log with them and reports a missing
//! tail: entries cut off the end after the last checkpoint cannot be seen, nor can the
//! deletion of both files; ship the checkpoints (also logged at `info` by
//! [`AuditLog::checkpoint`]) elsewhere if that matters.
//!
//! Version 1 lines (no `v`, no `mac`) are not read: verify an old log with the
//! vaultgate that wrote it, and move it aside before upgrading.
//!
//! # What an entry names
//!
//! A token string is written only when it can only be a token (an opaque `tok_`/
//! `cvv_` token holding no card-shaped number), or when it has the shape of one of this vault's tokens and the vault
//! found it (outcome `ok`). Anything else, a card number sent as a "token" included,
//! is written as `h:` and 16 hex digits of HMAC(audit key, string). Strings longer than
//! any token ([`crate::vault::token::MAX_TOKEN_LEN`]) are refused with 400 before they
//! get here.
//!
//! # Several writers
//!
//! `serve` instances and CLI commands append to the same file: each append holds an
//! exclusive `flock` on it and re-reads the head when the file grew under it. After
//! logrotate's rename, SIGHUP or SIGUSR1 makes the server reopen the path
//! ([`AuditLog::reopen`]); the new file starts a new chain.
//!
//! # Durability and batching
//!
//! One entry per token, so that an auditor can grep a token. [`AuditLog::record_batch`]
//! writes all the entries of one request in a single `write(2)` under one lock, and
//! returns only once a **group-commit `fdatasync`** covering them has completed: a
//! dedicated flusher thread syncs the file for everyone who wrote since its last sync.
//! At the reveal API's target (about 1,000 requests/s of 100 tokens) that is about
//! 1,000 writes and at most a few hundred fsyncs per second, whatever the concurrency.
//! If the write or the sync fails, the call returns [`Error::AuditUnavailable`] and the
//! caller must refuse the reveal (fail closed); the next call tries again. Entries that
//! reached the file before a failed sync stay in it: the log may over-report a refused
//! reveal, never under-report a served one.

mod checkpoint;
mod key;
mod line;
mod log;
mod verify;

#[cfg(test)]
mod tests;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::sensitive::DataClass;

pub use checkpoint::checkpoints_path;
pub use key::AuditKey;
pub use log::{AuditLog, AuditOptions, ChainHead, DEFAULT_CHECKPOINT_EVERY};
pub use verify::{BadLine, Checkpoints, MissingTail, VerifyReport, verify, verify_with};

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A value revealed in full.
    Reveal,
    /// A value revealed masked (last four only).
    RevealMasked,
    /// A value swapped for a token.
    Tokenize,
    /// A token deleted.
    Delete,
    /// A token's metadata read (class, last four, expiry).
    Metadata,
    /// A new data key version added.
    KeyRotate,
    /// Records re-wrapped under the current key version.
    KeyRewrap,
    /// The keyring passphrase changed.
    KeyPasswd,
    /// A new keyring created.
    KeyringInit,
    /// A credential was refused.
    AuthFailure,
    /// An unseal share (or other unseal credential) was submitted; never the share.
    UnsealAttempt,
    /// The vault was unsealed: its keys are in memory.
    Unseal,
    /// The vault was sealed: its keys were dropped from memory.
    Seal,
    /// The Shamir shares were split anew (`keys rekey`).
    KeyRekey,
    /// The master key was moved to another seal (`keys reseal`).
    KeyReseal,
    /// A request refused by the rate limiter.
    RateLimited,
}

impl Action {
    /// The stable name written to the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reveal => "reveal",
            Action::RevealMasked => "reveal_masked",
            Action::Tokenize => "tokenize",
            Action::Delete => "delete",
            Action::Metadata => "metadata",
            Action::KeyRotate => "key_rotate",
            Action::KeyRewrap => "key_rewrap",
            Action::KeyPasswd => "key_passwd",
            Action::KeyringInit => "keyring_init",
            Action::AuthFailure => "auth_failure",
            Action::UnsealAttempt => "unseal_attempt",
            Action::Unseal => "unseal",
            Action::Seal => "seal",
            Action::KeyRekey => "key_rekey",
            Action::KeyReseal => "key_reseal",
            Action::RateLimited => "rate_limited",
        }
    }
}

/// One audit entry before it is written. There is no field for a value.
///
/// `outcome` is a `&'static str` on purpose: `"ok"` or an [`Error::code`], so no
/// request data can end up in it.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// When it happened.
    pub time: SystemTime,
    /// The authenticated client name (or `"-"` when authentication failed).
    pub client: String,
    /// What was done.
    pub action: Action,
    /// The token concerned, if any.
    pub token: Option<String>,
    /// The data class concerned, if known.
    pub class: Option<DataClass>,
    /// `"ok"` or an error code such as `"forbidden"` or `"cvv_expired"`.
    pub outcome: &'static str,
    /// The peer address, if the event came over the network.
    pub origin: Option<String>,
    /// For an aggregated entry (`auth_failure`): how many events it stands for.
    pub count: Option<u64>,
}

impl AuditEvent {
    /// A successful event, now.
    pub fn new(client: impl Into<String>, action: Action) -> Self {
        AuditEvent {
            time: SystemTime::now(),
            client: client.into(),
            action,
            token: None,
            class: None,
            outcome: "ok",
            origin: None,
            count: None,
        }
    }

    /// The number of events an aggregated entry stands for.
    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }

    /// Name the token as submitted. The log writes it only if it is well-formed for a
    /// token of this vault (see the module docs); otherwise a keyed hash of it.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Name the data class.
    pub fn class(mut self, class: DataClass) -> Self {
        self.class = Some(class);
        self
    }

    /// Name the peer address.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Record a failure by its stable error code.
    pub fn failed(mut self, error: &Error) -> Self {
        self.outcome = error.code();
        self
    }

    /// Record the outcome of a result: `"ok"` or the error's code.
    pub fn outcome_of<T>(mut self, result: &crate::error::Result<T>) -> Self {
        self.outcome = match result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self
    }
}
