//! One audit line: its exact byte format, its hash, and its parser.
//!
//! A line is a JSON object with a fixed field order, followed by `\n`:
//!
//! ```text
//! {"seq":1,"time":"…Z","client":"checkout","action":"reveal","token":"tok_…",
//!  "class":"pan","outcome":"ok","origin":"10.0.0.7:51234","prev":"00…00","hash":"9f…"}
//! ```
//!
//! `hash` is the hex SHA-256 of the line's exact bytes up to the hash member, with the
//! object closed: `{"seq":…,"prev":"…"}`. Since the hash member is itself a function
//! of those bytes, `hash` commits to every byte of the line. `prev` is the previous
//! line's `hash` (64 zeros for the first line), so each line commits to the whole
//! history before it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Action;
use crate::sensitive::DataClass;

/// A SHA-256 digest.
pub(crate) type Digest32 = [u8; 32];

/// The `prev` of the first line.
pub(crate) const GENESIS: Digest32 = [0u8; 32];

/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_PREFIX: &[u8] = b",\"hash\":\"";
const HASH_SUFFIX: &[u8] = b"\"}";
const HASH_MEMBER_LEN: usize = HASH_PREFIX.len() + 64 + HASH_SUFFIX.len();

/// The fields of a line that the hash covers, in their on-disk order.
#[derive(Serialize)]
pub(crate) struct Body<'a> {
    pub seq: u64,
    pub time: &'a str,
    pub client: &'a str,
    pub action: Action,
    pub token: Option<&'a str>,
    pub class: Option<DataClass>,
    pub outcome: &'a str,
    pub origin: Option<&'a str>,
    pub prev: &'a str,
}

/// A line as read back by `verify` and by `AuditLog::open`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // every field is parsed so that a malformed entry is rejected
pub(crate) struct ParsedBody {
    pub seq: u64,
    pub time: String,
    pub client: String,
    pub action: Action,
    pub token: Option<String>,
    pub class: Option<DataClass>,
    pub outcome: String,
    pub origin: Option<String>,
    pub prev: String,
}

/// A line that passed its own checks (format and self-hash).
pub(crate) struct CheckedLine {
    pub seq: u64,
    pub prev: Digest32,
    pub hash: Digest32,
}

/// Why a single line is not a valid entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineError {
    /// Not of the form `{…,"hash":"<64 hex>"}` or not valid JSON for an entry.
    Malformed,
    /// The hash member does not match the line's bytes (an edited line).
    HashMismatch,
}

/// Append one complete line (with its `\n`) to `out`. Returns the line's hash.
pub(crate) fn encode(body: &Body<'_>, out: &mut Vec<u8>) -> serde_json::Result<Digest32> {
    let start = out.len();
    serde_json::to_writer(&mut *out, body)?;
    let digest: Digest32 = Sha256::digest(out.get(start..).unwrap_or_default()).into();
    // serde_json always closes an object with `}`: reopen it for the hash member.
    if out.last() == Some(&b'}') {
        out.pop();
    }
    out.extend_from_slice(HASH_PREFIX);
    push_hex(&digest, out);
    out.extend_from_slice(HASH_SUFFIX);
    out.push(b'\n');
    Ok(digest)
}

/// Check one line (without its `\n`): format, self-hash, and JSON shape.
pub(crate) fn check(line: &[u8]) -> Result<CheckedLine, LineError> {
    let split = line
        .len()
        .checked_sub(HASH_MEMBER_LEN)
        .ok_or(LineError::Malformed)?;
    let (head, member) = line.split_at_checked(split).ok_or(LineError::Malformed)?;
    let hex = member
        .strip_prefix(HASH_PREFIX)
        .and_then(|m| m.strip_suffix(HASH_SUFFIX))
        .ok_or(LineError::Malformed)?;
    let claimed = parse_hex(hex).ok_or(LineError::Malformed)?;

    let mut hasher = Sha256::new();
    hasher.update(head);
    hasher.update(b"}");
    let actual: Digest32 = hasher.finalize().into();
    if actual != claimed {
        return Err(LineError::HashMismatch);
    }

    let mut body = Vec::with_capacity(head.len() + 1);
    body.extend_from_slice(head);
    body.push(b'}');
    let parsed: ParsedBody = serde_json::from_slice(&body).map_err(|_| LineError::Malformed)?;
    let prev = parse_hex(parsed.prev.as_bytes()).ok_or(LineError::Malformed)?;
    Ok(CheckedLine {
        seq: parsed.seq,
        prev,
        hash: actual,
    })
}

/// Lowercase hex of a digest.
pub(crate) fn to_hex(digest: &Digest32) -> String {
    let mut out = Vec::with_capacity(64);
    push_hex(digest, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn push_hex(digest: &Digest32, out: &mut Vec<u8>) {
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
fn parse_hex(hex: &[u8]) -> Option<Digest32> {
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
