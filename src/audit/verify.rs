//! `vaultgate audit verify`: walk the whole chain, check every MAC, and compare the
//! log with its signed checkpoints; name the first bad line and any missing tail.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::checkpoint::{self, checkpoints_path};
use super::key::AuditKey;
use super::line::{self, Digest32, GENESIS, LineError};
use crate::error::{Error, Result};

/// The first line that fails verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number in the file.
    pub line: u64,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Entries missing at the end of the log: a checkpoint names an entry past its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingTail {
    /// The seq of the last checkpoint of this log.
    pub checkpoint_seq: u64,
    /// The last entry the log holds (0 if none).
    pub log_seq: u64,
}

/// What was checked about the checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checkpoints {
    /// No checkpoint file: cutting the tail cannot be seen.
    NoFile,
    /// The file was read; `matched` checkpoints belong to this log.
    Read {
        /// Checkpoints of this log's chain.
        matched: u64,
        /// The last one's seq (0 if none).
        last_seq: u64,
        /// The first checkpoint line that is malformed or forged.
        first_bad: Option<BadLine>,
    },
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
    /// Entries cut off the end, seen against the last checkpoint.
    pub missing_tail: Option<MissingTail>,
    /// What the checkpoint file said.
    pub checkpoints: Checkpoints,
    /// Whether MACs were checked (with the keyring) or hashes only.
    pub keyed: bool,
}

impl VerifyReport {
    /// Whether every line verified, no tail is missing and every checkpoint is
    /// genuine.
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
            && self.missing_tail.is_none()
            && !matches!(
                self.checkpoints,
                Checkpoints::Read {
                    first_bad: Some(_),
                    ..
                }
            )
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_bad {
            None => write!(
                f,
                "ok: {} entries, head seq {} hash {}",
                self.entries, self.last_seq, self.last_hash
            )?,
            Some(bad) => write!(
                f,
                "BROKEN at line {}: {} ({} entries verified before it)",
                bad.line, bad.reason, self.entries
            )?,
        }
        if let Some(m) = &self.missing_tail {
            write!(
                f,
                "\nBROKEN: missing tail: the last checkpoint names seq {} but the log \
                 verifies only to seq {}",
                m.checkpoint_seq, m.log_seq
            )?;
        }
        match &self.checkpoints {
            Checkpoints::NoFile => write!(
                f,
                "\nwarning: no checkpoint file; entries cut off the end cannot be seen"
            )?,
            Checkpoints::Read {
                matched,
                last_seq,
                first_bad,
            } => {
                write!(
                    f,
                    "\ncheckpoints: {matched} for this log, the last at seq {last_seq}"
                )?;
                if let Some(bad) = first_bad {
                    write!(
                        f,
                        "\nBROKEN checkpoint at line {}: {}",
                        bad.line, bad.reason
                    )?;
                }
            }
        }
        if !self.keyed {
            write!(
                f,
                "\nwarning: hashes only (--no-key): MACs were not checked, so a forger who \
                 recomputed every hash would pass"
            )?;
        }
        Ok(())
    }
}

fn reason(e: LineError) -> &'static str {
    match e {
        LineError::Malformed => "not a valid audit entry",
        LineError::Version => "not a version 2 entry (version 1 logs are not read)",
        LineError::HashMismatch => "edited: the hash does not match the line",
        LineError::MacMismatch => "forged: the MAC does not match (or another keyring)",
    }
}

/// Verify the log at `path` against `<path>.checkpoints`. With `key`, every MAC is
/// checked; without, hashes only. `Err` only for I/O errors; a broken chain is an `Ok`
/// report with `first_bad` or `missing_tail` set.
pub fn verify(path: impl AsRef<Path>, key: Option<&AuditKey>) -> Result<VerifyReport> {
    let path = path.as_ref();
    verify_with(path, &checkpoints_path(path), key)
}

/// [`verify`] with the checkpoint file named (for a rotated log, whose checkpoints
/// are in the live log's checkpoint file).
pub fn verify_with(
    path: &Path,
    checkpoints: &Path,
    key: Option<&AuditKey>,
) -> Result<VerifyReport> {
    let file = File::open(path)
        .map_err(|e| Error::io(format!("opening audit log {}", path.display()), e))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let read = checkpoint::read_all(checkpoints, key)?;
    let mut report = VerifyReport {
        entries: 0,
        last_seq: 0,
        last_hash: line::to_hex(&GENESIS),
        first_bad: None,
        missing_tail: None,
        checkpoints: Checkpoints::NoFile,
        keyed: key.is_some(),
    };
    // The checkpoints of this log's chain (known once its first line is read).
    let mut marks: BTreeMap<u64, Digest32> = BTreeMap::new();
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
        let checked = match line::check(text, key) {
            Ok(c) => c,
            Err(e) => {
                report.first_bad = bad(reason(e));
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
        if checked.seq == 1
            && let Some(read) = &read
        {
            marks = read
                .good
                .iter()
                .filter(|cp| cp.chain == checked.hash)
                .map(|cp| (cp.seq, cp.hash))
                .collect();
        }
        if marks.get(&checked.seq).is_some_and(|h| *h != checked.hash) {
            report.first_bad = bad("differs from the signed checkpoint of this entry");
            break;
        }
        prev = checked.hash;
        report.entries += 1;
        report.last_seq = checked.seq;
    }
    report.last_hash = line::to_hex(&prev);
    if let Some(read) = read {
        let last_seq = marks.keys().next_back().copied().unwrap_or(0);
        if last_seq > report.last_seq {
            report.missing_tail = Some(MissingTail {
                checkpoint_seq: last_seq,
                log_seq: report.last_seq,
            });
        }
        report.checkpoints = Checkpoints::Read {
            matched: u64::try_from(marks.len()).unwrap_or(u64::MAX),
            last_seq,
            first_bad: read.first_bad.map(|(line, e)| BadLine {
                line,
                reason: reason(e),
            }),
        };
    }
    Ok(report)
}
