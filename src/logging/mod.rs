//! Process-wide logging with tracing-subscriber: text or JSON lines.
//!
//! Spans and events record route names, methods, statuses and latencies only —
//! never bodies, query strings or header values.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Deserialize;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::{Error, Result};

mod clock;
mod event;
mod sink;
mod text;

use clock::Clock;
use event::PlainFormat;
use sink::Sink;
pub use sink::{FLUSH_EVERY, flush_this_thread, hold_lines_on_this_thread};
pub use text::PlainFields;
use text::TextFields;

/// `[log]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter directive: `info`, `vaultgate=debug,hyper=warn`, …
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

/// The log line format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Whether the global subscriber writes fields as [`TextFields`] does (text, no
/// terminal), so that [`plain_line`] may write them itself.
static PLAIN_FIELDS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a line's fields may be put together by [`plain_line`] and logged as its
/// message: the global subscriber writes text without colours. (Not with JSON, which
/// keeps every field its own key, nor with colours, nor under a subscriber of a
/// test's own.)
pub fn fields_are_plain() -> bool {
    PLAIN_FIELDS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Put a line together, `message` then the fields `fill` writes, in a buffer of this
/// thread's, and hand it to `emit` (which logs it as its message). Use only when
/// [`fields_are_plain`]: the line then reads exactly as the same fields logged one by
/// one would.
pub fn plain_line(message: &str, fill: impl FnOnce(&mut PlainFields<'_>), emit: impl FnOnce(&str)) {
    LINE.with(|cell| {
        let mut buf = cell.take();
        fill(&mut PlainFields::new(&mut buf, message));
        emit(&buf);
        if buf.capacity() <= text::SCRATCH_KEPT {
            cell.set(buf);
        }
    });
}

thread_local! {
    /// The buffer [`plain_line`] puts a line together in.
    static LINE: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

/// The global subscriber's filter; set by [`init`], swapped by [`set_level`].
static FILTER: std::sync::OnceLock<Arc<ArcSwap<Targets>>> = std::sync::OnceLock::new();

/// The level names `log.level` takes.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Check a `log.level`: comma-separated directives, each a level name or
/// `target=level`. (A filter would take `information` as a target name and then
/// log nothing.)
pub fn check_level(level: &str) -> Result<()> {
    targets(level).map(|_| ())
}

/// The directives of a `log.level`, checked (see [`check_level`]); spaces around
/// them are dropped and levels read in any case.
fn targets(level: &str) -> Result<Targets> {
    let bad = |why: &str| Err(Error::Config(format!("log.level: {why}")));
    if level.trim().is_empty() {
        return bad("empty; use one of trace, debug, info, warn, error, off");
    }
    let mut directives = Vec::new();
    for directive in level.split(',').map(str::trim) {
        let (target, lvl) = match directive.rsplit_once('=') {
            Some((target, lvl)) => {
                let ok_target = !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-');
                if !ok_target {
                    return bad("a directive is `level` or `target=level`");
                }
                (Some(target), lvl.to_ascii_lowercase())
            }
            None => (None, directive.to_ascii_lowercase()),
        };
        if !LEVELS.contains(&lvl.as_str()) {
            return bad("not a level; use trace, debug, info, warn, error or off \
                 (optionally as target=level)");
        }
        directives.push(match target {
            Some(target) => format!("{target}={lvl}"),
            None => lvl,
        });
    }
    directives
        .join(",")
        .parse::<Targets>()
        .map_err(|e| Error::Config(format!("log.level: not a valid filter: {e}")))
}

/// The level filter: a default level and `target=level` directives, swapped whole
/// by [`set_level`]. Whether a span or event is logged is decided once per call
/// site (and again after a swap), so it takes no lock per span or event: the
/// `EnvFilter` this replaces took two `RwLock`s, shared by every thread, on each
/// span's enter and exit (once per poll of a request's future) when spans were on.
struct Levels(Arc<ArcSwap<Targets>>);

impl Levels {
    fn enables(&self, meta: &tracing::Metadata<'_>) -> bool {
        may_log(meta) && self.0.load().would_enable(meta.target(), meta.level())
    }
}

/// Whether a line or span may be logged at all, whatever `log.level` says: other
/// crates log at INFO at most. Their debug and trace lines print what they handle:
/// sled the keys it looks up (the leak guard asks the store whether a card-shaped
/// number in a request is one of its tokens, by that number), tokio-postgres its
/// statements' parameters, h2 and hyper frames and headers. vaultgate's own lines
/// never carry a value at any level.
fn may_log(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    *meta.level() <= tracing::Level::INFO
        || target == "vaultgate"
        || target.starts_with("vaultgate::")
}

impl<S: tracing::Subscriber> Layer<S> for Levels {
    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if self.enables(meta) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, meta: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        self.enables(meta)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Layer::<S>::max_level_hint(&**self.0.load())
    }
}

/// Install the global subscriber. `level` is a filter directive (`info`,
/// `vaultgate=debug,hyper=warn`); [`set_level`] changes it later.
pub fn init(format: LogFormat, level: &str) -> Result<()> {
    let levels = Arc::new(ArcSwap::from_pointee(targets(level)?));
    let filter = Levels(Arc::clone(&levels));
    // Colour codes only on a terminal: a file or a journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        // Colours only on a terminal; without, the prefix and the fields are written
        // directly.
        LogFormat::Text if ansi => registry
            .with(
                fmt::layer()
                    .with_ansi(true)
                    .with_timer(Clock)
                    .with_writer(Sink),
            )
            .try_init(),
        LogFormat::Text => {
            let installed = registry
                .with(
                    fmt::layer()
                        .with_ansi(false)
                        .event_format(PlainFormat::new(Clock))
                        .fmt_fields(TextFields)
                        .with_writer(Sink),
                )
                .try_init();
            if installed.is_ok() {
                PLAIN_FIELDS.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            installed
        }
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_ansi(ansi)
                    .with_timer(Clock)
                    .with_writer(Sink),
            )
            .try_init(),
    };
    installed.map_err(|_| Error::Internal("a global logger is already installed"))?;
    let _ = FILTER.set(levels);
    Ok(())
}

/// Change the level of the subscriber [`init`] installed (a no-op without one, as in
/// tests that install their own).
pub fn set_level(level: &str) -> Result<()> {
    let new = targets(level)?;
    if let Some(levels) = FILTER.get() {
        levels.store(Arc::new(new));
        // Every call site asks the filter again.
        tracing::callsite::rebuild_interest_cache();
    }
    Ok(())
}

/// Where a test's subscriber writes its lines.
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl Capture {
    /// The lines written so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[cfg(test)]
impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A subscriber that writes text lines as the global one does without a terminal
/// (but without the time) to `writer`: for tests that compare lines.
#[cfg(test)]
pub(crate) fn plain_text_subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry().with(
        fmt::layer()
            .with_ansi(false)
            .without_time()
            .fmt_fields(TextFields)
            .with_writer(writer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn levels_take_a_default_and_target_directives() {
        let t = targets("info").unwrap();
        assert!(t.would_enable("vaultgate::access", &Level::INFO));
        assert!(t.would_enable("hyper::proto", &Level::WARN));
        assert!(!t.would_enable("vaultgate::access", &Level::DEBUG));

        let t = targets(" vaultgate=DEBUG , hyper=warn").unwrap();
        assert!(t.would_enable("vaultgate::inbound", &Level::DEBUG));
        assert!(!t.would_enable("vaultgate::inbound", &Level::TRACE));
        assert!(t.would_enable("hyper::proto::h1", &Level::WARN));
        assert!(!t.would_enable("hyper::proto::h1", &Level::INFO));
        // No default: other targets are off.
        assert!(!t.would_enable("sled::pagecache", &Level::ERROR));

        let t = targets("warn,vaultgate::access=info").unwrap();
        assert!(t.would_enable("vaultgate::access", &Level::INFO));
        assert!(!t.would_enable("vaultgate::inbound", &Level::INFO));
        assert!(t.would_enable("sled", &Level::WARN));

        for bad in [
            "",
            "information",
            "vaultgate=loud",
            "a b=info",
            "x[span]=info",
        ] {
            assert!(check_level(bad).is_err(), "{bad}");
        }
    }
}
