//! `vaultgate audit verify`: walk the whole chain and name the first bad line.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::line::{self, GENESIS, LineError};
use crate::error::{Error, Result};

/// The first line that fails verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number in the file.
    pub line: u64,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The result of walking a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries that verified, up to the first bad line.
    pub entries: u64,
    /// The last good entry's sequence number (0 if none).
    pub last_seq: u64,
    /// The last good entry's hash (64 zeros if none).
    pub last_hash: String,
    /// The first bad line, if any.
    pub first_bad: Option<BadLine>,
}

impl VerifyReport {
    /// Whether every line verified.
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_bad {
            None => write!(
                f,
                "ok: {} entries, head seq {} hash {}",
                self.entries, self.last_seq, self.last_hash
            ),
            Some(bad) => write!(
                f,
                "BROKEN at line {}: {} ({} entries verified before it)",
                bad.line, bad.reason, self.entries
            ),
        }
    }
}

/// Verify the chain of the log at `path`. `Err` only for I/O errors; a broken chain
/// is an `Ok` report with `first_bad` set.
pub fn verify(path: impl AsRef<Path>) -> Result<VerifyReport> {
    let path = path.as_ref();
    let file = File::open(path)
        .map_err(|e| Error::io(format!("opening audit log {}", path.display()), e))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut report = VerifyReport {
        entries: 0,
        last_seq: 0,
        last_hash: line::to_hex(&GENESIS),
        first_bad: None,
    };
    let mut prev = GENESIS;
    let mut buf = Vec::new();
    let mut number: u64 = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io("reading the audit log", e))?;
        if n == 0 {
            break;
        }
        number += 1;
        let bad = |reason| {
            Some(BadLine {
                line: number,
                reason,
            })
        };
        let Some(text) = buf.strip_suffix(b"\n") else {
            report.first_bad = bad("truncated: the last line has no newline");
            break;
        };
        let checked = match line::check(text) {
            Ok(c) => c,
            Err(LineError::Malformed) => {
                report.first_bad = bad("not a valid audit entry");
                break;
            }
            Err(LineError::HashMismatch) => {
                report.first_bad = bad("edited: the hash does not match the line");
                break;
            }
        };
        if checked.seq != report.last_seq + 1 {
            report.first_bad = bad("out of sequence: a line was deleted, inserted or moved");
            break;
        }
        if checked.prev != prev {
            report.first_bad = bad("chain broken: prev is not the previous line's hash");
            break;
        }
        prev = checked.hash;
        report.entries += 1;
        report.last_seq = checked.seq;
    }
    report.last_hash = line::to_hex(&prev);
    Ok(report)
}
