//! Process-wide logging with tracing-subscriber: text or JSON lines.
//!
//! Spans and events record route names, methods, statuses and latencies only —
//! never bodies, query strings or header values.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::{Error, Result};

/// Install the global subscriber. `level` is a filter directive (`info`,
/// `vaultgate=debug,hyper=warn`).
pub fn init(format: LogFormat, level: &str) -> Result<()> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| Error::Config(format!("log.level: not a valid filter: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|_| Error::Internal("a global logger is already installed"))
}
