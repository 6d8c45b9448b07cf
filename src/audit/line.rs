//! One audit line: its exact byte format, its MAC and hash, and its parser.
//!
//! A line (format version 2) is a JSON object with a fixed field order, followed by
//! `\n`:
//!
//! ```text
//! {"v":2,"seq":1,"time":"…Z","client":"checkout","action":"reveal","token":"tok_…",
//!  "class":"pan","outcome":"ok","origin":"10.0.0.7:51234","prev":"00…00",
//!  "mac":"5c…","hash":"9f…"}
//! ```
//!
//! An aggregated entry (`auth_failure`) also has `"count":N` between `origin` and
//! `prev`.
//!
//! - `mac` is the hex HMAC-SHA256, under the audit key, of the label
//!   `vaultgate-audit/2 entry` and the line's bytes up to the mac member with the
//!   object closed: `{"v":2,…,"prev":"…"}`.
//! - `hash` is the hex SHA-256 of the bytes up to the hash member, object closed:
//!   `{"v":2,…,"prev":"…","mac":"…"}`. It commits to every byte of the line.
//! - `prev` is the previous line's `hash` (64 zeros for the first line), so each line
//!   commits to the whole history before it, and, through its MAC, so does the key.
//!
//! The hashes can be checked by anyone; the MACs only with the keyring. An editor
//! without the keyring can recompute every hash but not one MAC.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Action;
use super::key::{AuditKey, ENTRY_LABEL};
use crate::sensitive::DataClass;

/// A SHA-256 digest.
pub(crate) type Digest32 = [u8; 32];

/// The line format version written and read.
pub(crate) const VERSION: u8 = 2;

/// The `prev` of the first line.
pub(crate) const GENESIS: Digest32 = [0u8; 32];

/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_PREFIX: &[u8] = b",\"hash\":\"";
const HASH_SUFFIX: &[u8] = b"\"}";
const HASH_MEMBER_LEN: usize = HASH_PREFIX.len() + 64 + HASH_SUFFIX.len();
/// `,"mac":"` + 64 hex digits + `"`.
const MAC_PREFIX: &[u8] = b",\"mac\":\"";
const MAC_MEMBER_LEN: usize = MAC_PREFIX.len() + 64 + 1;

/// The fields of a line that the MAC covers, in their on-disk order.
#[derive(Serialize)]
pub(crate) struct Body<'a> {
    pub v: u8,
    pub seq: u64,
    pub time: &'a str,
    pub client: &'a str,
    pub action: Action,
    pub token: Option<&'a str>,
    pub class: Option<DataClass>,
    pub outcome: &'a str,
    pub origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    pub prev: &'a str,
}

/// A line as read back by `verify` and by `AuditLog::open`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // every field is parsed so that a malformed entry is rejected
pub(crate) struct ParsedBody {
    pub v: u8,
    pub seq: u64,
    pub time: String,
    pub client: String,
    pub action: Action,
    pub token: Option<String>,
    pub class: Option<DataClass>,
    pub outcome: String,
    pub origin: Option<String>,
    #[serde(default)]
    pub count: Option<u64>,
    pub prev: String,
}

/// A line that passed its own checks (format, self-hash and, with a key, MAC).
pub(crate) struct CheckedLine {
    pub seq: u64,
    pub prev: Digest32,
    pub hash: Digest32,
}

/// Why a single line is not a valid entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineError {
    /// Not of the form `{…,"mac":"<64 hex>","hash":"<64 hex>"}` or not valid JSON for
    /// an entry.
    Malformed,
    /// Another format version (version 1 lines had no MAC and are not read).
    Version,
    /// The hash member does not match the line's bytes (an edited line).
    HashMismatch,
    /// The MAC does not match: written without the keyring (a forged line).
    MacMismatch,
}

/// Append one complete line (with its `\n`) to `out`. Returns the line's hash.
pub(crate) fn encode(
    body: &Body<'_>,
    key: &AuditKey,
    out: &mut Vec<u8>,
) -> crate::error::Result<Digest32> {
    let start = out.len();
    serde_json::to_writer(&mut *out, body)
        .map_err(|_| crate::error::Error::Internal("encoding an audit line"))?;
    let mac = key.mac(ENTRY_LABEL, out.get(start..).unwrap_or_default())?;
    // serde_json always closes an object with `}`: reopen it for the mac member.
    reopen(out);
    out.extend_from_slice(MAC_PREFIX);
    push_hex(&mac, out);
    out.extend_from_slice(b"\"}");
    let digest: Digest32 = Sha256::digest(out.get(start..).unwrap_or_default()).into();
    reopen(out);
    out.extend_from_slice(HASH_PREFIX);
    push_hex(&digest, out);
    out.extend_from_slice(HASH_SUFFIX);
    out.push(b'\n');
    Ok(digest)
}

fn reopen(out: &mut Vec<u8>) {
    if out.last() == Some(&b'}') {
        out.pop();
    }
}

/// Check one line (without its `\n`): format, self-hash, MAC (when `key` is given),
/// and JSON shape.
pub(crate) fn check(line: &[u8], key: Option<&AuditKey>) -> Result<CheckedLine, LineError> {
    let (head, claimed) = split_member(line, HASH_MEMBER_LEN, HASH_PREFIX, HASH_SUFFIX)?;
    let mut hasher = Sha256::new();
    hasher.update(head);
    hasher.update(b"}");
    let actual: Digest32 = hasher.finalize().into();
    if actual != claimed {
        return Err(LineError::HashMismatch);
    }
    // `head` is `{…,"prev":"…","mac":"<64 hex>"`: close it the same way.
    let mut closed = Vec::with_capacity(head.len() + 2);
    closed.extend_from_slice(head);
    closed.push(b'}');
    let (body, mac) = split_member(&closed, MAC_MEMBER_LEN + 1, MAC_PREFIX, b"\"}")?;
    let mut body = body.to_vec();
    body.push(b'}');
    let parsed: ParsedBody =
        serde_json::from_slice(&body).map_err(|_| version_or_malformed(&body))?;
    if parsed.v != VERSION {
        return Err(LineError::Version);
    }
    if let Some(key) = key {
        let expected = key
            .mac(ENTRY_LABEL, &body)
            .map_err(|_| LineError::MacMismatch)?;
        if !constant_time_eq(&expected, &mac) {
            return Err(LineError::MacMismatch);
        }
    }
    let prev = parse_hex(parsed.prev.as_bytes()).ok_or(LineError::Malformed)?;
    Ok(CheckedLine {
        seq: parsed.seq,
        prev,
        hash: actual,
    })
}

/// A line that does not parse: `Version` when it is a JSON object without our `v`.
fn version_or_malformed(body: &[u8]) -> LineError {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) if v.get("v").and_then(serde_json::Value::as_u64) != Some(u64::from(VERSION)) => {
            LineError::Version
        }
        _ => LineError::Malformed,
    }
}

/// Split `line` into what comes before a fixed-length trailing member
/// (`prefix` + 64 hex + `suffix`, `len` bytes in all) and the member's digest.
pub(crate) fn split_member<'a>(
    line: &'a [u8],
    len: usize,
    prefix: &[u8],
    suffix: &[u8],
) -> Result<(&'a [u8], Digest32), LineError> {
    let split = line.len().checked_sub(len).ok_or(LineError::Malformed)?;
    let (head, member) = line.split_at_checked(split).ok_or(LineError::Malformed)?;
    let hex = member
        .strip_prefix(prefix)
        .and_then(|m| m.strip_suffix(suffix))
        .ok_or(LineError::Malformed)?;
    Ok((head, parse_hex(hex).ok_or(LineError::Malformed)?))
}

/// Compare two digests without an early exit.
pub(crate) fn constant_time_eq(a: &Digest32, b: &Digest32) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lowercase hex of a digest.
pub(crate) fn to_hex(digest: &Digest32) -> String {
    let mut out = Vec::with_capacity(64);
    push_hex(digest, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

pub(crate) fn push_hex(digest: &Digest32, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in digest {
        for nibble in [b >> 4, b & 0x0f] {
            if let Some(c) = HEX.get(usize::from(nibble)) {
                out.push(*c);
            }
        }
    }
}

/// Parse exactly 64 lowercase hex digits.
pub(crate) fn parse_hex(hex: &[u8]) -> Option<Digest32> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (nibble(*hi)?, nibble(*lo)?),
            _ => return None,
        };
        *byte = (hi << 4) | lo;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2025-03-01T12:34:56.789Z`.
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}
