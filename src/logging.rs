//! Process-wide logging with tracing-subscriber: text or JSON lines.
//!
//! Spans and events record route names, methods, statuses and latencies only —
//! never bodies, query strings or header values.

use std::cell::RefCell;
use std::io::Write as _;
use std::time::Duration;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::{Error, Result};

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

/// Swaps the global subscriber's filter; set by [`init`].
type SetFilter = Box<dyn Fn(EnvFilter) -> bool + Send + Sync>;
static RELOAD: std::sync::OnceLock<SetFilter> = std::sync::OnceLock::new();

/// The level names `log.level` takes.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Check a `log.level`: comma-separated directives, each a level name or
/// `target=level`. (`EnvFilter` would take `information` as a target name and then
/// log nothing.)
pub fn check_level(level: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Config(format!("log.level: {why}")));
    if level.trim().is_empty() {
        return bad("empty; use one of trace, debug, info, warn, error, off");
    }
    for directive in level.split(',').map(str::trim) {
        let lvl = match directive.rsplit_once('=') {
            Some((target, lvl)) => {
                let ok_target = !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-');
                if !ok_target {
                    return bad("a directive is `level` or `target=level`");
                }
                lvl
            }
            None => directive,
        };
        if !LEVELS.contains(&lvl.to_ascii_lowercase().as_str()) {
            return bad("not a level; use trace, debug, info, warn, error or off \
                 (optionally as target=level)");
        }
    }
    EnvFilter::try_new(level)
        .map(|_| ())
        .map_err(|e| Error::Config(format!("log.level: not a valid filter: {e}")))
}

/// Install the global subscriber. `level` is a filter directive (`info`,
/// `vaultgate=debug,hyper=warn`); [`set_level`] changes it later.
pub fn init(format: LogFormat, level: &str) -> Result<()> {
    check_level(level)?;
    let filter = EnvFilter::try_new(level)
        .map_err(|e| Error::Config(format!("log.level: not a valid filter: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only on a terminal: a file or a journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(Sink);
    let installed = match format {
        LogFormat::Text => {
            let builder = builder.with_filter_reloading();
            let handle = builder.reload_handle();
            let _ = RELOAD.set(Box::new(move |f| handle.reload(f).is_ok()));
            builder.try_init()
        }
        LogFormat::Json => {
            let builder = builder.json().flatten_event(true).with_filter_reloading();
            let handle = builder.reload_handle();
            let _ = RELOAD.set(Box::new(move |f| handle.reload(f).is_ok()));
            builder.try_init()
        }
    };
    installed.map_err(|_| Error::Internal("a global logger is already installed"))
}

/// Change the level of the subscriber [`init`] installed (a no-op without one, as in
/// tests that install their own).
pub fn set_level(level: &str) -> Result<()> {
    check_level(level)?;
    let filter = EnvFilter::try_new(level)
        .map_err(|e| Error::Config(format!("log.level: not a valid filter: {e}")))?;
    match RELOAD.get() {
        Some(reload) if !reload(filter) => {
            Err(Error::Internal("the log filter could not be swapped"))
        }
        _ => Ok(()),
    }
}

// === Where lines go ===

/// How often a thread that holds lines back writes them (see [`hold_lines_on_this_thread`]).
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A thread's held lines are written once they reach this many bytes.
const FLUSH_AT: usize = 32 * 1024;

/// Log lines go to stderr. A thread that serves requests on its own (a proxy shard)
/// holds back lines below WARN (the access line of every request, say) and writes
/// them together: once they fill [`FLUSH_AT`] bytes, when its shard's timer calls
/// [`flush_this_thread`] (every [`FLUSH_EVERY`]), before a WARN or ERROR line of its
/// own, and when the thread ends. A busy shard then makes one `write` for dozens of
/// access lines instead of one per request, each under stderr's process-wide lock,
/// as nginx's `access_log … buffer= flush=` does. A crash loses at most the last
/// `FLUSH_EVERY` of such lines; a clean shutdown loses none.
#[derive(Clone, Copy, Debug)]
struct Sink;

/// One line's writer: held back or written now.
struct SinkWriter {
    /// The line's level lets it wait (below WARN).
    may_wait: bool,
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = SinkWriter;

    fn make_writer(&'a self) -> SinkWriter {
        SinkWriter { may_wait: false }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SinkWriter {
        SinkWriter {
            may_wait: *meta.level() > tracing::Level::WARN,
        }
    }
}

impl std::io::Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let held = HELD
            .try_with(|held| {
                let Ok(mut held) = held.try_borrow_mut() else {
                    return false;
                };
                if !held.on {
                    return false;
                }
                if !self.may_wait {
                    // Keep this thread's lines in order.
                    held.write_out();
                    return false;
                }
                held.bytes.extend_from_slice(buf);
                if held.bytes.len() >= FLUSH_AT {
                    held.write_out();
                }
                true
            })
            .unwrap_or(false);
        if held {
            Ok(buf.len())
        } else {
            std::io::stderr().write(buf)
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The lines a thread holds back; written out when the thread ends, too.
struct Held {
    on: bool,
    bytes: Vec<u8>,
}

impl Held {
    fn write_out(&mut self) {
        if !self.bytes.is_empty() {
            // Whole lines in one write, under the lock other writers take too.
            let _ = std::io::stderr().lock().write_all(&self.bytes);
            self.bytes.clear();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.write_out();
    }
}

thread_local! {
    static HELD: RefCell<Held> = const {
        RefCell::new(Held {
            on: false,
            bytes: Vec::new(),
        })
    };
}

/// Hold this thread's lines below WARN back (see [`Sink`]); its owner must call
/// [`flush_this_thread`] every [`FLUSH_EVERY`].
pub fn hold_lines_on_this_thread() {
    let _ = HELD.try_with(|held| {
        if let Ok(mut held) = held.try_borrow_mut() {
            held.on = true;
        }
    });
}

/// Write the lines this thread holds back.
pub fn flush_this_thread() {
    let _ = HELD.try_with(|held| {
        if let Ok(mut held) = held.try_borrow_mut() {
            held.write_out();
        }
    });
}
