//! The lines' timestamps: `2026-11-29T12:00:01.123456Z`, UTC, to the microsecond.
//!
//! The same text tracing-subscriber's default timer writes. That one turns the clock
//! into a calendar date and formats seven numbers per line; this one does so once a
//! second per thread and then writes the microseconds only (a tenth of an access
//! line's cost went into its timestamp).

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// `YYYY-MM-DDTHH:MM:SS`.
const PREFIX: usize = 19;

thread_local! {
    /// The second last written on this thread, and its text.
    static SECOND: Cell<(u64, [u8; PREFIX])> = const { Cell::new((u64::MAX, [0; PREFIX])) };
}

/// The timer of every log line.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Clock;

impl FormatTime for Clock {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write_time(w, SystemTime::now())
    }
}

fn write_time(w: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut prefix) = SECOND.get();
    if cached != secs {
        prefix = date_time(secs);
        SECOND.set((secs, prefix));
    }
    w.write_str(std::str::from_utf8(&prefix).unwrap_or("0000-00-00T00:00:00"))?;
    let mut frac = *b".000000Z";
    let mut micros = since.subsec_micros();
    for digit in frac.iter_mut().skip(1).take(6).rev() {
        *digit = b'0' + u8::try_from(micros % 10).unwrap_or(0);
        micros /= 10;
    }
    w.write_str(std::str::from_utf8(&frac).unwrap_or(".000000Z"))
}

/// `secs` after the epoch as `YYYY-MM-DDTHH:MM:SS` (UTC; years past 9999 clamp).
fn date_time(secs: u64) -> [u8; PREFIX] {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut text = String::with_capacity(PREFIX);
    let _ = write!(
        text,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year().clamp(0, 9999),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let mut out = [b'0'; PREFIX];
    if text.len() == PREFIX {
        out.copy_from_slice(text.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ours(t: SystemTime) -> String {
        let mut s = String::new();
        write_time(&mut s, t).unwrap();
        s
    }

    fn theirs() -> String {
        let mut s = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut Writer::new(&mut s))
            .unwrap();
        s
    }

    #[test]
    fn writes_the_default_timers_text() {
        // Read between two of the default timer's readings: the same shape, and in
        // order (these strings sort as the times do).
        for _ in 0..1000 {
            let before = theirs();
            let now = ours(SystemTime::now());
            let after = theirs();
            assert_eq!(now.len(), before.len(), "{now} / {before}");
            assert!(before <= now && now <= after, "{before} {now} {after}");
        }
        let at = |s: u64, us: u64| ours(UNIX_EPOCH + Duration::from_micros(s * 1_000_000 + us));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_796_040_000, 999_999), "2026-11-30T12:00:00.999999Z");
        // The cache is per second: the next second is written anew.
        assert_eq!(at(1_796_040_001, 0), "2026-11-30T12:00:01.000000Z");
    }
}
