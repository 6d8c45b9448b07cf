//! Process-wide logging with tracing-subscriber: text or JSON lines.
//!
//! Spans and events record route names, methods, statuses and latencies only —
//! never bodies, query strings or header values.

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

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
        .with_writer(std::io::stderr);
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
