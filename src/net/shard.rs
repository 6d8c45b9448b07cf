//! Thread-per-core: a listener split into shards, each an OS thread with its own
//! current-thread runtime and its own `SO_REUSEPORT` socket on the same address.
//!
//! The kernel spreads new connections over the shards' sockets; a connection then
//! lives on its shard: its requests, their upstream connections (one pool per shard,
//! see [`current`]) and every task they spawn run on that one thread. Nothing on the
//! request path hops to another thread or takes a lock another shard takes, except
//! what is shared by nature: the vault's store and its group commit.

use std::cell::Cell;
use std::num::NonZeroUsize;

use serde::Deserialize;

use crate::{Error, Result};

thread_local! {
    /// This thread's shard: 0 off any shard, `i + 1` on shard `i`.
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// The shard the calling thread serves: 0 off any shard (the shared runtime), `i + 1`
/// on shard `i`. Indexes per-shard state such as upstream pools.
pub fn current() -> usize {
    SHARD.with(Cell::get)
}

/// How many threads a listener runs on (`workers` in a listener block).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "WorkersRepr")]
pub enum Workers {
    /// The listener's default: `auto` for the proxy, `shared` for the others.
    #[default]
    Default,
    /// One shard per CPU this process may run on (its affinity mask and cgroup quota).
    Auto,
    /// On the process's shared multi-threaded runtime, with one accept loop.
    Shared,
    /// This many shards.
    Threads(NonZeroUsize),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WorkersRepr {
    Count(usize),
    Name(String),
}

impl TryFrom<WorkersRepr> for Workers {
    type Error = &'static str;

    fn try_from(repr: WorkersRepr) -> std::result::Result<Workers, &'static str> {
        const WHAT: &str = "must be \"auto\", \"shared\" or a number of threads (1 to 1024)";
        match repr {
            WorkersRepr::Name(name) => match name.as_str() {
                "auto" => Ok(Workers::Auto),
                "shared" => Ok(Workers::Shared),
                _ => Err(WHAT),
            },
            WorkersRepr::Count(n) if n <= 1024 => {
                NonZeroUsize::new(n).map(Workers::Threads).ok_or(WHAT)
            }
            WorkersRepr::Count(_) => Err(WHAT),
        }
    }
}

impl Workers {
    /// The number of shards, 0 for the shared runtime; `Default` resolves to `auto`
    /// when `auto_by_default`, else to `shared`.
    pub fn shards(self, auto_by_default: bool) -> usize {
        match self {
            Workers::Default if auto_by_default => cpus(),
            Workers::Default | Workers::Shared => 0,
            Workers::Auto => cpus(),
            Workers::Threads(n) => n.get(),
        }
    }
}

/// The CPUs this process may run on (at least 1).
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Run `serve` on a new thread named `name`, as shard `index`, on a current-thread
/// runtime; `done` fires once the runtime (and every task left on it) is gone.
pub fn start<F, Fut>(
    name: String,
    index: usize,
    serve: F,
    done: tokio::sync::oneshot::Sender<()>,
) -> Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    // Sockets and timers only: no signal or process driver to poll on every park (the
    // main runtime takes the signals).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .thread_name(name.clone())
        .build()
        .map_err(|e| Error::io(format!("start the runtime of {name}"), e))?;
    // Log where the thread that starts the shard logs (its scoped subscriber, if any).
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            SHARD.with(|s| s.set(index + 1));
            let _logging = tracing::dispatcher::set_default(&dispatch);
            // A shard's access lines are written in batches (see `logging::Sink`).
            crate::logging::hold_lines_on_this_thread();
            runtime.block_on(async {
                tokio::select! {
                    () = serve() => {}
                    () = flush_logs() => {}
                }
            });
            drop(runtime);
            crate::logging::flush_this_thread();
            let _ = done.send(());
        })
        .map_err(|e| Error::io(format!("start thread {name}"), e))?;
    Ok(())
}

/// Write the shard's held-back log lines every [`crate::logging::FLUSH_EVERY`].
async fn flush_logs() {
    let mut tick = tokio::time::interval(crate::logging::FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        crate::logging::flush_this_thread();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_value: &str) -> std::result::Result<Workers, String> {
        #[derive(Deserialize)]
        struct W {
            workers: Workers,
        }
        toml::from_str::<W>(&format!("workers = {toml_value}"))
            .map(|w| w.workers)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn workers_parse_names_and_counts() {
        assert_eq!(parse("\"auto\""), Ok(Workers::Auto));
        assert_eq!(parse("\"shared\""), Ok(Workers::Shared));
        assert_eq!(parse("3").map(|w| w.shards(true)), Ok(3));
        for bad in ["0", "\"many\"", "100000", "-1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_follows_the_listener() {
        assert!(Workers::Default.shards(true) >= 1);
        assert_eq!(Workers::Default.shards(false), 0);
        assert_eq!(Workers::Shared.shards(true), 0);
    }

    #[test]
    fn a_shard_knows_its_index() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        start(
            "shard-test".to_owned(),
            2,
            move || async move {
                let _ = seen_tx.send(current());
            },
            tx,
        )
        .unwrap();
        assert_eq!(seen_rx.recv().unwrap(), 3);
        assert!(rx.blocking_recv().is_ok());
        assert_eq!(current(), 0);
    }
}
