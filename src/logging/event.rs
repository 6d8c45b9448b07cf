//! The text format's line without colour: `time level spans: target: fields`.
//!
//! tracing-subscriber's full format writes each piece of a line's prefix through
//! `write!` and a colour style, which prints nothing without a terminal but still
//! costs a formatting pass each: about 1,000 instructions of an access line. Without a
//! terminal, this one writes the same text with plain writes. Records from the `log`
//! crate (whose target is read from their fields) and lines with colours go to the
//! default, as before.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The full format without colour, timed by `T`.
pub(super) struct PlainFormat<T> {
    timer: T,
    /// For what this one does not write itself.
    default: Format<Full, T>,
}

impl<T: FormatTime + Clone> PlainFormat<T> {
    pub(super) fn new(timer: T) -> PlainFormat<T> {
        let default = tracing_subscriber::fmt::format().with_timer(timer.clone());
        PlainFormat { timer, default }
    }
}

/// The level as the default writes it, padded to five characters.
fn level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

impl<S, N, T> FormatEvent<S, N> for PlainFormat<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        // A `log` record's target and level are in its fields (the default reads
        // them), and colours are the default's.
        if writer.has_ansi_escapes() || meta.fields().field("log.target").is_some() {
            return self.default.format_event(ctx, writer, event);
        }
        // As the default: a clock that fails does not lose the line.
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_char(' ')?;
        writer.write_str(level(meta.level()))?;
        writer.write_char(' ')?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::Capture;
    use crate::logging::text::TextFields;
    use tracing_subscriber::layer::SubscriberExt as _;

    /// A clock that always reads the same, so that two runs' lines compare.
    #[derive(Clone, Copy)]
    struct Fixed;

    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            w.write_str("2026-11-30T10:00:00.000001Z")
        }
    }

    /// A clock that fails.
    #[derive(Clone, Copy)]
    struct Broken;

    impl FormatTime for Broken {
        fn format_time(&self, _: &mut Writer<'_>) -> fmt::Result {
            Err(fmt::Error)
        }
    }

    fn lines<T: FormatTime + Clone + Send + Sync + 'static>(
        timer: T,
        ours: bool,
        f: impl FnOnce(),
    ) -> String {
        let out = Capture::default();
        let writer = out.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .fmt_fields(TextFields)
            .with_writer(move || writer.clone());
        if ours {
            let s =
                tracing_subscriber::registry().with(layer.event_format(PlainFormat::new(timer)));
            tracing::subscriber::with_default(s, f);
        } else {
            let s = tracing_subscriber::registry().with(layer.with_timer(timer));
            tracing::subscriber::with_default(s, f);
        }
        out.text()
    }

    fn emit() {
        tracing::trace!(a = 1u8, "trace");
        tracing::debug!("debug");
        tracing::info!(target: "vaultgate::access", message = "access request_id=\"r\"");
        let outer = tracing::info_span!("request", request_id = "abc", method = %"POST");
        let _o = outer.enter();
        tracing::warn!(status = 400u16, "refused");
        let empty = tracing::info_span!("empty");
        let _e = empty.enter();
        let inner = tracing::info_span!("inner", route = "pass");
        let _i = inner.enter();
        tracing::error!(error = "boom", "failed \x1b[31m");
    }

    #[test]
    fn writes_what_the_full_format_writes() {
        let ours = lines(Fixed, true, emit);
        assert_eq!(ours, lines(Fixed, false, emit));
        assert!(
            ours.contains(
                "2026-11-30T10:00:00.000001Z  WARN request{request_id=\"abc\" method=POST}: \
                 vaultgate::logging::event::tests: refused status=400\n"
            ),
            "{ours}"
        );
        assert!(
            ours.contains(
                "ERROR request{request_id=\"abc\" method=POST}:empty:inner{route=\"pass\"}: "
            ),
            "{ours}"
        );
        assert!(
            ours.contains(" INFO vaultgate::access: access request_id=\"r\"\n"),
            "{ours}"
        );
        assert!(ours.contains("TRACE ") && ours.contains("DEBUG "), "{ours}");
        assert_eq!(ours.lines().count(), 5, "{ours}");

        // A `log` record (sled logs through `log`): its target is read from its fields.
        let record = || {
            tracing_log::format_trace(
                &log::Record::builder()
                    .target("sled::pagecache")
                    .level(log::Level::Warn)
                    .args(format_args!("a sled warning"))
                    .build(),
            )
            .unwrap();
        };
        let ours = lines(Fixed, true, record);
        assert_eq!(ours, lines(Fixed, false, record));
        assert!(
            ours.ends_with(" WARN sled::pagecache: a sled warning\n"),
            "{ours}"
        );

        let broken = lines(Broken, true, emit);
        assert_eq!(broken, lines(Broken, false, emit));
        assert!(broken.starts_with("<unknown time> TRACE "), "{broken}");
    }
}
