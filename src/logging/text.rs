//! The text format's fields without colour: `message key=value key=value`.
//!
//! tracing-subscriber's default field formatter wraps every field name and `=` in
//! a colour style, which prints nothing without a terminal but still costs a
//! formatting pass each: about a tenth of a proxied request's instructions at the
//! default level (an access line has sixteen fields). Without a terminal, this one
//! writes the same text directly. With a terminal, the default (with colours) is
//! used.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// Fields as `name=value` (values in their `Debug` form, as the default writes
/// them), separated by spaces; the message first, as it is, with terminal control
/// characters escaped.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TextFields;

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        // The fields are put together in a buffer of this thread's and written in one
        // go: each write through `Writer` is a call through `dyn fmt::Write`, and a
        // line has five or so per field. (A field's `Debug` that logs gets a buffer
        // of its own: the cell is empty while this one is out.)
        SCRATCH.with(|cell| {
            let mut buf = cell.take();
            buf.clear();
            let mut visitor = TextVisitor {
                buf: &mut buf,
                first: true,
                result: Ok(()),
            };
            fields.record(&mut visitor);
            let result = visitor.result.and_then(|()| writer.write_str(&buf));
            if buf.capacity() <= SCRATCH_KEPT {
                cell.set(buf);
            }
            result
        })
    }
}

thread_local! {
    /// The buffer [`TextFields`] puts a line's fields together in.
    static SCRATCH: std::cell::Cell<String> = const { std::cell::Cell::new(String::new()) };
}

/// The largest buffer kept for the next line (a line with a huge field does not
/// keep its memory).
pub(super) const SCRATCH_KEPT: usize = 4096;

struct TextVisitor<'b> {
    buf: &'b mut String,
    first: bool,
    result: fmt::Result,
}

impl TextVisitor<'_> {
    /// Whether to write `field`, with the space before it written.
    fn start(&mut self, field: &Field) -> bool {
        // A `log` record's metadata is in the line's prefix already.
        if self.result.is_err() || field.name().starts_with("log.") {
            return false;
        }
        if !self.first {
            self.buf.push(' ');
        }
        self.first = false;
        true
    }
}

/// An error's sources as a list: `[first, second]`.
struct Sources<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut next = Some(self.0);
        while let Some(e) = next {
            list.entry(&format_args!("{e}"));
            next = e.source();
        }
        list.finish()
    }
}

impl TextVisitor<'_> {
    /// Write `name=` for a field that is not the message; false if it is not to be
    /// written.
    fn name(&mut self, field: &Field) -> bool {
        if !self.start(field) {
            return false;
        }
        let name = field.name();
        self.buf.push_str(name.strip_prefix("r#").unwrap_or(name));
        self.buf.push('=');
        true
    }

    fn integer(&mut self, field: &Field, value: impl itoa::Integer) {
        if self.name(field) {
            self.buf.push_str(itoa::Buffer::new().format(value));
        }
    }
}

/// Whether `Debug` writes `s` as it is between quotes: printable ASCII but for `"`
/// and `\` (what an id, a route name or a template holds).
fn debug_is_plain(s: &str) -> bool {
    // No early exit: the loop then vectorises (a value is a few dozen bytes).
    s.bytes().fold(true, |plain, b| {
        plain & (b' '..=b'~').contains(&b) & (b != b'"') & (b != b'\\')
    })
}

/// Whether `s` is printable ASCII, which holds none of the characters a terminal acts
/// on (see [`Escaping`]).
fn printable_ascii(s: &str) -> bool {
    s.bytes()
        .fold(true, |plain, b| plain & (b' '..=b'~').contains(&b))
}

/// `name="value"` as the default writes a string field: between quotes as it is when
/// [`debug_is_plain`], else in its `Debug` form.
fn push_str_field(buf: &mut String, name: &str, value: &str) {
    buf.push_str(name);
    buf.push('=');
    if debug_is_plain(value) {
        buf.push('"');
        buf.push_str(value);
        buf.push('"');
    } else {
        // Writing to a `String` does not fail.
        let _ = write!(buf, "{value:?}");
    }
}

/// A line's message and fields, written here as [`TextFields`] writes them, for a
/// line logged often with fixed fields (the access line): one message argument
/// through tracing instead of a dispatch per field. See [`super::plain_line`].
pub struct PlainFields<'b> {
    buf: &'b mut String,
}

impl<'b> PlainFields<'b> {
    pub(super) fn new(buf: &'b mut String, message: &str) -> PlainFields<'b> {
        buf.clear();
        buf.push_str(message);
        PlainFields { buf }
    }

    /// A string field (as `Debug` writes it).
    pub fn str(&mut self, name: &str, value: &str) {
        self.buf.push(' ');
        push_str_field(self.buf, name, value);
    }

    /// A string field, left out when `None` (as tracing leaves out a `None`).
    pub fn opt_str(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(name, v);
        }
    }

    /// An integer field.
    pub fn int(&mut self, name: &str, value: impl itoa::Integer) {
        self.buf.push(' ');
        self.buf.push_str(name);
        self.buf.push('=');
        self.buf.push_str(itoa::Buffer::new().format(value));
    }

    /// An integer field, left out when `None`.
    pub fn opt_int(&mut self, name: &str, value: Option<impl itoa::Integer>) {
        if let Some(v) = value {
            self.int(name, v);
        }
    }
}

/// Numbers, booleans and plain strings are written directly, as their `Debug` form
/// reads; everything else through `Debug`.
impl Visit for TextVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !printable_ascii(value) {
                self.record_debug(field, &format_args!("{value}"));
            } else if self.start(field) {
                self.buf.push_str(value);
            }
        } else if self.start(field) {
            let name = field.name();
            push_str_field(self.buf, name.strip_prefix("r#").unwrap_or(name), value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.name(field) {
            self.buf.push_str(if value { "true" } else { "false" });
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // As the default writes it: the error, then its sources as a list, with the
        // characters a terminal acts on spelled out.
        if !self.start(field) {
            return;
        }
        let name = field.name().strip_prefix("r#").unwrap_or(field.name());
        self.result = write!(self.buf, "{name}=").and_then(|()| {
            let mut out = Escaping(&mut *self.buf);
            write!(out, "{value}")?;
            match value.source() {
                Some(source) => write!(out, " {name}.sources={}", Sources(source)),
                None => Ok(()),
            }
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.start(field) {
            return;
        }
        let name = field.name();
        self.result = if name == "message" {
            write!(Escaping(&mut *self.buf), "{value:?}")
        } else {
            self.buf.push_str(name.strip_prefix("r#").unwrap_or(name));
            self.buf.push('=');
            write!(self.buf, "{value:?}")
        };
    }
}

/// Writes through, with the characters a terminal acts on (escape sequences, bell,
/// C1 controls) spelled out, as the default formatter does for messages.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let acts = |c: char| {
            matches!(
                c,
                '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
            )
        };
        if printable_ascii(s) || !s.chars().any(acts) {
            return self.0.write_str(s);
        }
        for c in s.chars() {
            if acts(c) {
                write!(self.0, "\\x{:02x}", u32::from(c))?;
            } else {
                self.0.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_checks_read_every_byte_in_every_place() {
        let plain = |b: u8| (b' '..=b'~').contains(&b);
        for b in 0..=255u8 {
            for at in 0..19 {
                let mut text = vec![b'a'; 19];
                text[at] = b;
                let text = String::from_utf8_lossy(&text);
                let b = if b.is_ascii() { b } else { 0x80 };
                assert_eq!(printable_ascii(&text), plain(b), "{b:#x} at {at}");
                assert_eq!(
                    debug_is_plain(&text),
                    plain(b) && b != b'"' && b != b'\\',
                    "{b:#x} at {at}"
                );
            }
        }
        assert!(debug_is_plain("") && printable_ascii(""));
    }
    use crate::logging::Capture;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn lines(fields: bool, f: impl FnOnce()) -> String {
        let out = Capture::default();
        let writer = out.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone());
        if fields {
            let s = tracing_subscriber::registry().with(layer.fmt_fields(TextFields));
            tracing::subscriber::with_default(s, f);
        } else {
            let s = tracing_subscriber::registry().with(layer);
            tracing::subscriber::with_default(s, f);
        }
        out.text()
    }

    #[test]
    fn writes_what_the_default_writes_and_escapes_the_message() {
        let emit = || {
            let span = tracing::info_span!("request", request_id = "abc", method = %"POST");
            let _in = span.enter();
            span.record("route", tracing::field::display("pass"));
            let err = std::io::Error::other("boom");
            let wrapped = Outer(std::io::Error::other("inner \x1b cause"));
            tracing::info!(
                target: "vaultgate::access",
                status = 200u16,
                path = "/pass/*",
                quoted = "a \"b\" \\ c",
                tab = "a\tb",
                accent = "café",
                negative = -12i64,
                big = u64::MAX,
                flag = true,
                off = false,
                ratio = 0.5f64,
                absent = Option::<u64>::None,
                r#type = "card",
                latency_us = 12u64,
                error = &err as &(dyn std::error::Error + 'static),
                "access"
            );
            tracing::warn!("bell \x07 and escape \x1b[31m here");
            tracing::error!(
                error = &wrapped as &(dyn std::error::Error + 'static),
                "failed"
            );
        };
        let ours = lines(true, emit);
        let theirs = lines(false, emit);
        assert_eq!(ours, theirs);
        assert!(
            ours.contains(
                "INFO request{request_id=\"abc\" method=POST}: vaultgate::access: access \
                 status=200 path=\"/pass/*\" quoted=\"a \\\"b\\\" \\\\ c\" tab=\"a\\tb\""
            ) && ours.contains(
                "negative=-12 big=18446744073709551615 flag=true off=false ratio=0.5 \
                 type=\"card\" latency_us=12 error=boom"
            ),
            "{ours}"
        );
        assert!(
            ours.contains("bell \\x07 and escape \\x1b[31m here"),
            "{ours}"
        );
        assert!(
            ours.contains("failed error=outer error.sources=[inner \\x1b cause]"),
            "{ours}"
        );
    }
}
