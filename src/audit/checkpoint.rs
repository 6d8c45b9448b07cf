//! Signed checkpoints: the chain head, MACed, in a second file, so that cutting
//! entries off the end of the log is seen.
//!
//! `audit.log.checkpoints` (the log's path with `.checkpoints` appended) holds one
//! JSON line per checkpoint:
//!
//! ```text
//! {"v":2,"chain":"<hash of entry 1>","seq":1000,"hash":"<hash of entry 1000>",
//!  "time":"…Z","mac":"<64 hex>"}
//! ```
//!
//! `mac` is the HMAC-SHA256, under the audit key, of the label
//! `vaultgate-audit/2 checkpoint` and the bytes before the mac member with the object
//! closed. `chain` names the log a checkpoint belongs to (the hash of its first
//! entry), so that after logrotate's rename the new file's verification skips the old
//! file's checkpoints. A checkpoint is written every `checkpoint_every` entries, on
//! reopen (of the file being closed) and at clean shutdown.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::key::{AuditKey, CHECKPOINT_LABEL};
use super::line::{self, Digest32, LineError, VERSION};
use crate::error::{Error, Result};

/// The checkpoint file of the log at `log`: `<log>.checkpoints`.
pub fn checkpoints_path(log: &Path) -> PathBuf {
    let mut name = OsString::from(log.as_os_str());
    name.push(".checkpoints");
    PathBuf::from(name)
}

/// One checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// The hash of the chain's first entry.
    pub chain: Digest32,
    /// The sequence number of the entry checkpointed.
    pub seq: u64,
    /// That entry's hash.
    pub hash: Digest32,
}

#[derive(Serialize)]
struct Body<'a> {
    v: u8,
    chain: &'a str,
    seq: u64,
    hash: &'a str,
    time: &'a str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // parsed so that a malformed checkpoint is rejected
struct Parsed {
    v: u8,
    chain: String,
    seq: u64,
    hash: String,
    time: String,
}

/// `,"mac":"` + 64 hex digits + `"}`.
const MAC_PREFIX: &[u8] = b",\"mac\":\"";
const MAC_SUFFIX: &[u8] = b"\"}";
const MAC_MEMBER_LEN: usize = MAC_PREFIX.len() + 64 + MAC_SUFFIX.len();

/// Append one checkpoint line (with its `\n`) to `out`.
pub(crate) fn encode(cp: &Checkpoint, key: &AuditKey, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    let chain = line::to_hex(&cp.chain);
    let hash = line::to_hex(&cp.hash);
    let time = line::rfc3339(std::time::SystemTime::now());
    let body = Body {
        v: VERSION,
        chain: &chain,
        seq: cp.seq,
        hash: &hash,
        time: &time,
    };
    serde_json::to_writer(&mut *out, &body)
        .map_err(|_| Error::Internal("encoding an audit checkpoint"))?;
    let mac = key.mac(CHECKPOINT_LABEL, out.get(start..).unwrap_or_default())?;
    if out.last() == Some(&b'}') {
        out.pop();
    }
    out.extend_from_slice(MAC_PREFIX);
    line::push_hex(&mac, out);
    out.extend_from_slice(MAC_SUFFIX);
    out.push(b'\n');
    Ok(())
}

/// Parse one checkpoint line (without its `\n`), checking its MAC when `key` is given.
pub(crate) fn parse(
    text: &[u8],
    key: Option<&AuditKey>,
) -> std::result::Result<Checkpoint, LineError> {
    let (head, mac) = line::split_member(text, MAC_MEMBER_LEN, MAC_PREFIX, MAC_SUFFIX)?;
    let mut body = head.to_vec();
    body.push(b'}');
    let parsed: Parsed = serde_json::from_slice(&body).map_err(|_| LineError::Malformed)?;
    if parsed.v != VERSION {
        return Err(LineError::Version);
    }
    if let Some(key) = key {
        let expected = key
            .mac(CHECKPOINT_LABEL, &body)
            .map_err(|_| LineError::MacMismatch)?;
        if !line::constant_time_eq(&expected, &mac) {
            return Err(LineError::MacMismatch);
        }
    }
    Ok(Checkpoint {
        chain: line::parse_hex(parsed.chain.as_bytes()).ok_or(LineError::Malformed)?,
        seq: parsed.seq,
        hash: line::parse_hex(parsed.hash.as_bytes()).ok_or(LineError::Malformed)?,
    })
}

/// The checkpoints of a file, and the first line that failed (1-based, with why).
pub(crate) struct Checkpoints {
    pub good: Vec<Checkpoint>,
    pub first_bad: Option<(u64, LineError)>,
}

/// Read a checkpoint file; `None` when it does not exist.
pub(crate) fn read_all(path: &Path, key: Option<&AuditKey>) -> Result<Option<Checkpoints>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let mut out = Checkpoints {
        good: Vec::new(),
        first_bad: None,
    };
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut number: u64 = 0;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(64 * 1024)
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io("reading the audit checkpoints", e))?;
        if n == 0 {
            break;
        }
        number += 1;
        let parsed = buf
            .strip_suffix(b"\n")
            .ok_or(LineError::Malformed)
            .and_then(|text| parse(text, key));
        match parsed {
            Ok(cp) => out.good.push(cp),
            Err(e) => {
                out.first_bad.get_or_insert((number, e));
            }
        }
    }
    Ok(Some(out))
}
