//! Durable tokenize rate on sled against PostgreSQL, on one machine, in one run:
//! 1, 8 and 64 concurrent tasks, interleaved rounds, medians of three.
//!
//! `VAULTGATE_TEST_POSTGRES_URL=postgres://… cargo bench --bench store_backends`
//! (add `-- --quick` for a smoke run). Without the variable only sled is measured.
//! PostgreSQL runs in a fresh schema that is dropped afterwards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::card;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vaultgate::vault::keys::keyring::{self, KdfParams, Passphrase};
use vaultgate::vault::settings::SecretUrl;
use vaultgate::vault::{StoreKind, TokenizeOptions, Vault, VaultSettings};

async fn round(vault: &Arc<Vault>, tasks: usize, dur: Duration, next: &Arc<AtomicU64>) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (vault, done, next) = (vault.clone(), done.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            while start.elapsed() < dur {
                let n = next.fetch_add(1, Ordering::Relaxed);
                vault
                    .tokenize(&card(n), &TokenizeOptions::default())
                    .await
                    .unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dur = Duration::from_millis(if quick { 200 } else { 2000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pass = Passphrase::new("benchmark passphrase".into()).unwrap();
    let keyring_path = dir.path().join("keyring.json");
    keyring::init(&keyring_path, &pass, KdfParams::MINIMUM).unwrap();
    let base = VaultSettings {
        keyring: keyring_path.clone(),
        data: dir.path().join("data"),
        // The generated cards share first six and last four: no sweep detector here.
        sweep_threshold: 0,
        ..VaultSettings::default()
    };

    let mut backends: Vec<(&str, Arc<Vault>)> = Vec::new();
    let keys = keyring::open(&keyring_path, &pass).unwrap();
    backends.push(("sled", Arc::new(Vault::open(&base, keys).unwrap())));

    let pg = std::env::var("VAULTGATE_TEST_POSTGRES_URL").ok();
    let schema = format!("bench_{:016x}", rand::random::<u64>());
    let admin = pg.as_ref().map(|url| {
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .unwrap();
            client
        })
    });
    if let Some(url) = &pg {
        let sep = if url.contains('?') { '&' } else { '?' };
        let settings = VaultSettings {
            store: StoreKind::Postgres,
            postgres_url: Some(SecretUrl::new(format!(
                "{url}{sep}options=-c%20search_path%3D{schema}"
            ))),
            postgres_pool_size: 64,
            ..base.clone()
        };
        let keys = keyring::open(&keyring_path, &pass).unwrap();
        let vault = rt.block_on(Vault::open_async(&settings, keys)).unwrap();
        backends.push(("postgres", Arc::new(vault)));
    } else {
        println!("(VAULTGATE_TEST_POSTGRES_URL not set: sled only)");
    }

    println!("durable tokenize, new cards (tokens/s, median of 3 interleaved rounds of {dur:?})");
    println!(
        "{:<10} {:>10} {:>10} {:>10}",
        "store", "1 task", "8 tasks", "64 tasks"
    );
    let next = Arc::new(AtomicU64::new(0));
    let mut results = vec![vec![Vec::new(); 3]; backends.len()];
    for _ in 0..3 {
        for (ti, tasks) in [1, 8, 64].into_iter().enumerate() {
            for (bi, (_, vault)) in backends.iter().enumerate() {
                let r = rt.block_on(round(vault, tasks, dur, &next));
                results[bi][ti].push(r);
            }
        }
    }
    for (bi, (name, _)) in backends.iter().enumerate() {
        let row: Vec<String> = results[bi]
            .iter_mut()
            .map(|r| {
                r.sort_by(|a, b| a.partial_cmp(b).unwrap());
                format!("{:.0}", r[1])
            })
            .collect();
        println!("{:<10} {:>10} {:>10} {:>10}", name, row[0], row[1], row[2]);
    }
    if let Some(client) = admin {
        drop(backends);
        rt.block_on(async {
            client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
        });
    }
}
