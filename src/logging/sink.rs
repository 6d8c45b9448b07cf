//! Where log lines go: stderr, with a proxy worker's lines below WARN held back and
//! written in batches.

use std::cell::RefCell;
use std::io::Write as _;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

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
pub(super) struct Sink;

/// One line's writer: held back or written now.
pub(super) struct SinkWriter {
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
