//! Store size on disk after N distinct card tokens (default 1,000,000), against the
//! logical data.
//!
//! `cargo bench --bench store_size` (or `-- --tokens 100000` for a shorter run;
//! `-- --store fjall` for the opt-in fjall store instead of sled).
//! `bench/run.sh --store-size` runs it after the HTTP benchmark.
//!
//! Logical data: per token, the 16-byte PAN plus its token (16 characters for the
//! default `pan_six_four` format), i.e. what a plain `token → PAN` table would hold
//! with no encryption, no index and no fingerprint. On disk: the allocated blocks of
//! every file under the store's directory (`du`), after a final flush, and again
//! after reopening the store (sled may compact segments while it runs; fjall keeps
//! its current journal beside its tables). For fjall the journal is shown apart: it
//! does not grow with the store (fjall rotates it past 64 MB and drops a journal once
//! the memory tables it covers are written out), the tables do.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::card;

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use vaultgate::vault::keys::keyring::{self, KdfParams, Passphrase};
use vaultgate::vault::{TokenizeOptions, Vault, VaultSettings};

/// Allocated and apparent bytes of files.
#[derive(Clone, Copy, Default)]
struct Usage {
    alloc: u64,
    apparent: u64,
}

/// The usage of every file under `dir`, and of fjall's journal files (`*.jnl` at the
/// top) among them: a journal is bounded by fjall (it is dropped once the memory
/// tables it covers are written out), while the tables grow with the tokens.
fn du(dir: &Path) -> (Usage, Usage) {
    let mut all = Usage::default();
    let mut journal = Usage::default();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            let (a, j) = du(&entry.path());
            all.alloc += a.alloc;
            all.apparent += a.apparent;
            journal.alloc += j.alloc;
            journal.apparent += j.apparent;
        } else {
            let (alloc, apparent) = (meta.blocks() * 512, meta.len());
            all.alloc += alloc;
            all.apparent += apparent;
            if entry.file_name().to_string_lossy().ends_with(".jnl") {
                journal.alloc += alloc;
                journal.apparent += apparent;
            }
        }
    }
    (all, journal)
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn main() {
    let arg = |name: &str| {
        let mut args = std::env::args().skip_while(|a| a != name);
        args.next().and(args.next())
    };
    let total: u64 = arg("--tokens").map_or(1_000_000, |n| n.parse().unwrap());
    let store = common::store_arg();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = VaultSettings {
        keyring: dir.path().join("keyring.json"),
        data: dir.path().join("data"),
        // A million cards on one BIN put about a hundred new numbers into each
        // first-six/last-four bucket, which the sweep detector rightly refuses; this
        // measures the store, so it is off.
        sweep_threshold: 0,
        store,
        ..VaultSettings::default()
    };
    let pass = Passphrase::new("benchmark passphrase".into()).unwrap();
    keyring::init(&settings.keyring, &pass, KdfParams::MINIMUM).unwrap();
    let open = || {
        // The store's flusher thread holds the sled lock for a moment after a drop.
        for _ in 0..100 {
            let keys = keyring::open(&settings.keyring, &pass).unwrap();
            match Vault::open(&settings, keys) {
                Ok(v) => return Arc::new(v),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
        panic!("the store did not reopen within 5 s");
    };
    let vault = open();

    let start = Instant::now();
    let mut token_bytes = 0u64;
    const BATCH: u64 = 1000;
    const TASKS: u64 = 4;
    rt.block_on(async {
        let mut next = 0u64;
        while next < total {
            let mut handles = Vec::new();
            for _ in 0..TASKS {
                if next >= total {
                    break;
                }
                let end = (next + BATCH).min(total);
                let items: Vec<_> = (next..end)
                    .map(|n| (card(n), TokenizeOptions::default()))
                    .collect();
                next = end;
                let vault = Arc::clone(&vault);
                handles.push(tokio::spawn(
                    async move { vault.tokenize_batch(&items).await },
                ));
            }
            for h in handles {
                let tokens = h.await.unwrap().unwrap();
                token_bytes += tokens.iter().map(|t| t.len() as u64).sum::<u64>();
            }
        }
        vault.flush().await.unwrap();
    });
    let secs = start.elapsed().as_secs_f64();
    let logical = total * 16 + token_bytes;
    let after_flush = du(&settings.data);
    drop(vault);
    // Reopen: what a restarted process finds.
    let vault = open();
    rt.block_on(vault.flush()).unwrap();
    drop(vault);
    let after_reopen = du(&settings.data);

    println!(
        "store size ({store:?}) after {total} distinct card tokens ({:.0} tokens/s, batches of {BATCH}, {TASKS} tasks)",
        total as f64 / secs
    );
    println!(
        "  logical data (PAN 16 B + token {:.1} B avg): {:.1} MiB",
        token_bytes as f64 / total as f64,
        mib(logical)
    );
    let report = |when: &str, (all, journal): (Usage, Usage)| {
        println!(
            "  on disk, {when} {:.1} MiB allocated ({:.2}x logical, {:.0} B/token), {:.1} MiB apparent",
            mib(all.alloc),
            all.alloc as f64 / logical as f64,
            all.alloc as f64 / total as f64,
            mib(all.apparent)
        );
        if journal.alloc > 0 {
            let tables = all.alloc - journal.alloc;
            println!(
                "    of which the journal (*.jnl, bounded by fjall): {:.1} MiB; the rest (tables): {:.1} MiB, {:.2}x logical, {:.0} B/token",
                mib(journal.alloc),
                mib(tables),
                tables as f64 / logical as f64,
                tables as f64 / total as f64
            );
        }
    };
    report("after the last flush:", after_flush);
    report("after reopening:     ", after_reopen);
}
