//! In-process vault rates: tokenize with durable writes (group commit) and without,
//! and detokenize, on 1, 8 and 64 concurrent tasks.
//!
//! `cargo bench --bench vault` (add `-- --quick` for a short smoke run, `-- --cpu-only`
//! for the CPU per new token alone, e.g. under `valgrind --tool=callgrind
//! --toggle-collect='*cpu_per_new_token*'` to count instructions; `-- --store fjall`
//! for the opt-in fjall store). Every run uses a real store (sled by default) in a
//! temp dir and a real keyring; each figure is the median of three rounds.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

// The binary's allocator, so that the CPU per token is the binary's.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod common;
use common::card;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vaultgate::vault::keys::keyring::{self, KdfParams, Passphrase};
use vaultgate::vault::{TokenizeOptions, Vault, VaultSettings};

#[derive(Clone, Copy)]
enum Op {
    Durable,
    NoSync,
    Reveal,
}

async fn round(
    vault: &Arc<Vault>,
    op: Op,
    tasks: usize,
    dur: Duration,
    tokens: &Arc<Vec<String>>,
    next: &Arc<AtomicU64>,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (vault, done, tokens, next) =
            (vault.clone(), done.clone(), tokens.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            let mut i = t;
            while start.elapsed() < dur {
                match op {
                    Op::Durable => {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        vault
                            .tokenize(&card(n), &TokenizeOptions::default())
                            .await
                            .unwrap();
                    }
                    Op::NoSync => {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        vault
                            .tokenize_unsynced(&card(n), &TokenizeOptions::default())
                            .await
                            .unwrap();
                    }
                    Op::Reveal => {
                        let tok = &tokens[i % tokens.len()];
                        vault.detokenize(tok, None).await.unwrap();
                        i += 7;
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// CPU time of the whole process so far (user + system, every thread), from
/// `/proc/self/stat` (in clock ticks of 10 ms).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with the last ')'): utime is the
    // 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// New tokens with no durability wait, one task on a current-thread runtime: CPU
/// time of the whole process (sled's own threads included) per token.
fn cpu_per_new_token(vault: &Arc<Vault>, next: &Arc<AtomicU64>, dur: Duration) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cpu0 = process_cpu();
    let n0 = next.load(Ordering::Relaxed);
    let tokens = Arc::new(Vec::new());
    let rate = rt.block_on(round(vault, Op::NoSync, 1, dur, &tokens, next));
    let cpu = process_cpu() - cpu0;
    let n = next.load(Ordering::Relaxed) - n0;
    (cpu.as_secs_f64() * 1e6 / n.max(1) as f64, rate)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let cpu_only = std::env::args().any(|a| a == "--cpu-only");
    let store = common::store_arg();
    let dur = Duration::from_millis(if quick { 200 } else { 2000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = VaultSettings {
        keyring: dir.path().join("keyring.json"),
        data: dir.path().join("data"),
        // The generated cards share first six and last four: no sweep detector here.
        sweep_threshold: 0,
        store,
        ..VaultSettings::default()
    };
    println!("store: {store:?}");
    let pass = Passphrase::new("benchmark passphrase".into()).unwrap();
    let keys = keyring::init(&settings.keyring, &pass, KdfParams::MINIMUM).unwrap();
    let vault = Arc::new(Vault::open(&settings, keys).unwrap());
    let next = Arc::new(AtomicU64::new(0));
    let tokens: Arc<Vec<String>> = Arc::new(rt.block_on(async {
        let mut v = Vec::new();
        for n in 0..2000 {
            v.push(
                vault
                    .tokenize(&card(10_000_000 + n), &TokenizeOptions::default())
                    .await
                    .unwrap(),
            );
        }
        v
    }));
    if cpu_only {
        print_cpu_per_new_token(&vault, &next, dur * 3);
        return;
    }
    println!("vault in-process rates (ops/s, median of 3 rounds of {dur:?}; sled in a temp dir)");
    println!(
        "{:<28} {:>12} {:>12} {:>12}",
        "operation", "1 task", "8 tasks", "64 tasks"
    );
    for (name, op) in [
        ("tokenize, durable (group commit)", Op::Durable),
        ("tokenize, no durability wait", Op::NoSync),
        ("detokenize", Op::Reveal),
    ] {
        let mut row = Vec::new();
        for tasks in [1, 8, 64] {
            let flushes_before = vault.store().flushes();
            let n_before = next.load(Ordering::Relaxed);
            let mut r: Vec<f64> = (0..3)
                .map(|_| rt.block_on(round(&vault, op, tasks, dur, &tokens, &next)))
                .collect();
            r.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let writes = next.load(Ordering::Relaxed) - n_before;
            let flushes = vault.store().flushes() - flushes_before;
            let per = if writes > 0 {
                format!(" ({:.3} fsync/op)", flushes as f64 / writes as f64)
            } else {
                String::new()
            };
            row.push(format!("{:.0}{per}", r[1]));
        }
        println!("{:<28} {:>12} {:>12} {:>12}", name, row[0], row[1], row[2]);
    }
    print_cpu_per_new_token(&vault, &next, dur * 3);
}

fn print_cpu_per_new_token(vault: &Arc<Vault>, next: &Arc<AtomicU64>, dur: Duration) {
    let n0 = next.load(Ordering::Relaxed);
    let (us, rate) = cpu_per_new_token(vault, next, dur);
    let n = next.load(Ordering::Relaxed) - n0;
    println!(
        "one core, new token, no durability wait: {us:.1} µs CPU per token \
         (process CPU, the store's threads included; {rate:.0} tokens/s on one task, {n} tokens)"
    );
}
