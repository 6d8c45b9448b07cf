//! One conformance suite for the `TokenStore` trait and the vault over it, run
//! against sled and fjall (temp dirs) and PostgreSQL (a fresh schema per test, from
//! `VAULTGATE_TEST_POSTGRES_URL`; skipped with a message when it is not set).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use vaultgate::Error;
use vaultgate::sensitive::{DataClass, Sensitive};
use vaultgate::vault::keys::keyring::{self, KdfParams, Passphrase};
use vaultgate::vault::settings::SecretUrl;
use vaultgate::vault::store::{FingerprintInsert, Inserted};
use vaultgate::vault::{
    FjallStore, PgStore, SledStore, Space, StoreKind, TokenStore, TokenizeOptions, Vault,
    VaultSettings, now_secs,
};

const PASS: &str = "test passphrase, not a real one";
const ENV: &str = "VAULTGATE_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Sled,
    Fjall,
    Postgres,
}

/// A fresh store location: a temp dir (sled) or a fresh schema (PostgreSQL).
struct Fixture {
    settings: VaultSettings,
    _dir: tempfile::TempDir,
}

/// A URL whose connections use only `schema` (created here, empty).
async fn fresh_schema(url: &str) -> String {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to VAULTGATE_TEST_POSTGRES_URL");
    tokio::spawn(conn);
    let schema = format!("test_{:016x}", rand::random::<u64>());
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

impl Fixture {
    async fn new(backend: Backend) -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = VaultSettings {
            keyring: dir.path().join("keyring.json"),
            data: dir.path().join("data"),
            cache_capacity_mb: 8,
            cvv_durable: true,
            postgres_pool_size: 8,
            ..VaultSettings::default()
        };
        if backend == Backend::Fjall {
            settings.store = StoreKind::Fjall;
        }
        if backend == Backend::Postgres {
            let Ok(url) = std::env::var(ENV) else {
                eprintln!("skipped: {ENV} not set");
                return None;
            };
            settings.store = StoreKind::Postgres;
            settings.postgres_url = Some(SecretUrl::new(fresh_schema(&url).await));
        }
        keyring::init(&settings.keyring, &pass(), KdfParams::MINIMUM).unwrap();
        Some(Fixture {
            settings,
            _dir: dir,
        })
    }

    async fn store(&self) -> Arc<dyn TokenStore> {
        match self.settings.store {
            StoreKind::Sled => Arc::new(SledStore::open(&self.settings.data, 8 << 20).unwrap()),
            StoreKind::Fjall => Arc::new(FjallStore::open(&self.settings.data, 8 << 20).unwrap()),
            StoreKind::Postgres => Arc::new(PgStore::connect(&self.settings).await.unwrap()),
        }
    }

    async fn vault(&self) -> Vault {
        let keys = keyring::open(&self.settings.keyring, &pass()).unwrap();
        Vault::open_async(&self.settings, keys).await.unwrap()
    }
}

fn pass() -> Passphrase {
    Passphrase::new(PASS.to_owned()).unwrap()
}

fn pan(v: &str) -> Sensitive {
    Sensitive::parse(DataClass::Pan, v).unwrap()
}

fn cvv(v: &str) -> Sensitive {
    Sensitive::parse(DataClass::Cvv, v).unwrap()
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sled() {
                if let Some(f) = super::Fixture::new(super::Backend::Sled).await {
                    super::$name(f).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn fjall() {
                if let Some(f) = super::Fixture::new(super::Backend::Fjall).await {
                    super::$name(f).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(f) = super::Fixture::new(super::Backend::Postgres).await {
                    super::$name(f).await;
                }
            }
        }
    )*};
}

conformance!(
    insert_if_absent_race,
    fingerprint_race,
    fingerprint_forms,
    deterministic_tokenize_race,
    expiry,
    single_use_take,
    cvv_single_reveal_under_concurrency,
    scan_replace_remove,
    rewrap_after_rotation,
    restart_keeps_everything,
);

/// Many tasks insert the same key: exactly one wins and everyone reads the winner.
async fn insert_if_absent_race(f: Fixture) {
    let store = f.store().await;
    for space in [Space::Tokens, Space::Volatile] {
        let tasks: Vec<_> = (0..32u8)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let won = store
                        .insert(space, "race-key", &[i; 16], Some(now_secs() + 60))
                        .await
                        .unwrap();
                    (i, won)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (i, won) = t.await.unwrap();
            if won == Inserted::New {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "{space:?}: exactly one insert wins");
        let stored = store.get(space, "race-key").await.unwrap().unwrap();
        assert_eq!(stored, vec![winners[0]; 16]);
    }
}

/// Many tasks claim the same fingerprint under different keys: one record is
/// stored and every task is pointed at it.
async fn fingerprint_race(f: Fixture) {
    let store = f.store().await;
    let fp = [7u8; 32];
    let tasks: Vec<_> = (0..32u32)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let key = format!("fp-key-{i:02}");
                let out = store
                    .insert_fingerprinted(&fp, &key, key.as_bytes())
                    .await
                    .unwrap();
                (key, out)
            })
        })
        .collect();
    let mut new = Vec::new();
    let mut existing = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (key, FingerprintInsert::New) => new.push(key),
            (_, FingerprintInsert::Existing(k)) => existing.push(k),
            (_, FingerprintInsert::Taken) => panic!("no key collides here"),
        }
    }
    assert_eq!(new.len(), 1);
    assert_eq!(existing.len(), 31);
    assert!(existing.iter().all(|k| *k == new[0]));
    assert_eq!(
        store.fingerprint(&fp).await.unwrap().as_ref(),
        Some(&new[0])
    );
    let (rows, _) = (store.scan(Space::Tokens, None, 100).await.unwrap(), ());
    assert_eq!(rows.len(), 1, "only the winner's record is stored");
    // A taken key with a fresh fingerprint reports Taken and stores nothing.
    assert_eq!(
        store
            .insert_fingerprinted(&[8u8; 32], &new[0], b"other")
            .await
            .unwrap(),
        FingerprintInsert::Taken
    );
    assert_eq!(store.fingerprint(&[8u8; 32]).await.unwrap(), None);
}

/// A value's fingerprint can be stored whole or truncated: a lookup over several
/// forms answers with the first form asked for that is stored, in one call.
async fn fingerprint_forms(f: Fixture) {
    let store = f.store().await;
    let full = [9u8; 32];
    let short = &full[..16];
    let other = [10u8; 32];
    assert_eq!(store.fingerprint_any(&[short, &full]).await.unwrap(), None);
    store
        .insert_fingerprinted(&full, "form-full", b"r1")
        .await
        .unwrap();
    assert_eq!(
        store.fingerprint_any(&[short, &full]).await.unwrap(),
        Some("form-full".to_owned())
    );
    store
        .insert_fingerprinted(short, "form-short", b"r2")
        .await
        .unwrap();
    assert_eq!(
        store.fingerprint_any(&[short, &full]).await.unwrap(),
        Some("form-short".to_owned())
    );
    assert_eq!(
        store.fingerprint_any(&[&full, short]).await.unwrap(),
        Some("form-full".to_owned())
    );
    assert_eq!(
        store
            .fingerprint_any(&[&other[..16], &other])
            .await
            .unwrap(),
        None
    );
}

/// Two vaults over one store (two instances on PostgreSQL) tokenize the same new
/// card at the same moment: one token.
async fn deterministic_tokenize_race(f: Fixture) {
    let a = Arc::new(f.vault().await);
    let b = match f.settings.store {
        StoreKind::Postgres => Arc::new(f.vault().await),
        // An embedded store is one process's.
        StoreKind::Sled | StoreKind::Fjall => Arc::clone(&a),
    };
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let v = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            tokio::spawn(async move {
                v.tokenize(&pan("4242424242424242"), &TokenizeOptions::default())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "one card, one token: {tokens:?}");
    assert_eq!(
        b.detokenize(&tokens[0], None).await.unwrap().value.expose(),
        "4242424242424242"
    );
}

async fn expiry(f: Fixture) {
    let store = f.store().await;
    let now = now_secs();
    store
        .insert(Space::Volatile, "old-1", b"a", Some(now - 10))
        .await
        .unwrap();
    store
        .insert(Space::Volatile, "old-2", b"b", Some(now))
        .await
        .unwrap();
    store
        .insert(Space::Volatile, "young", b"c", Some(now + 3600))
        .await
        .unwrap();
    let mut expired = store.scan_expired(now, 100).await.unwrap();
    expired.sort();
    assert_eq!(expired, ["old-1", "old-2"]);
    for k in &expired {
        assert!(store.take(Space::Volatile, k).await.unwrap().is_some());
    }
    assert!(store.scan_expired(now, 100).await.unwrap().is_empty());
    assert_eq!(store.scan_expired(now + 3600, 1).await.unwrap(), ["young"]);
    drop(store);

    // Through the vault: an expired CVV is swept and reads as cvv_expired.
    let vault = loop {
        let keys = keyring::open(&f.settings.keyring, &pass()).unwrap();
        match Vault::open_async(&f.settings, keys).await {
            Ok(v) => break v,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    let token = vault
        .tokenize(&cvv("123"), &TokenizeOptions::default())
        .await
        .unwrap();
    assert!(vault.metadata(&token, None).await.is_ok());
    assert_eq!(vault.sweep().await.unwrap(), 0, "nothing has expired yet");
}

/// Many tasks take one record: exactly one gets it.
async fn single_use_take(f: Fixture) {
    let store = f.store().await;
    store
        .insert(Space::Volatile, "once", b"record", Some(now_secs() + 60))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.take(Space::Volatile, "once").await.unwrap() })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        if let Some(r) = t.await.unwrap() {
            got.push(r);
        }
    }
    assert_eq!(got, vec![b"record".to_vec()]);
}

/// A durable CVV revealed by many tasks (over two vaults on PostgreSQL): one reveal.
async fn cvv_single_reveal_under_concurrency(f: Fixture) {
    let a = Arc::new(f.vault().await);
    let b = match f.settings.store {
        StoreKind::Postgres => Arc::new(f.vault().await),
        StoreKind::Sled | StoreKind::Fjall => Arc::clone(&a),
    };
    let token = a
        .tokenize(&cvv("737"), &TokenizeOptions::default())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let v = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            let token = token.clone();
            tokio::spawn(async move {
                v.detokenize(&token, None)
                    .await
                    .map(|r| r.value.expose().to_owned())
            })
        })
        .collect();
    let mut ok = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(v) => ok.push(v),
            Err(Error::CvvExpired) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ok, ["737"]);
}

async fn scan_replace_remove(f: Fixture) {
    let store = f.store().await;
    for i in 0..25 {
        let k = format!("k{i:03}");
        store
            .insert(Space::Tokens, &k, k.as_bytes(), None)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .scan(Space::Tokens, after.as_deref(), 7)
            .await
            .unwrap();
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        seen.extend(page.into_iter().map(|(k, _)| k));
    }
    let want: Vec<String> = (0..25).map(|i| format!("k{i:03}")).collect();
    assert_eq!(seen, want);
    // Compare-and-swap.
    assert!(
        !store
            .replace(Space::Tokens, "k001", b"wrong", b"x")
            .await
            .unwrap()
    );
    assert!(
        store
            .replace(Space::Tokens, "k001", b"k001", b"x")
            .await
            .unwrap()
    );
    assert_eq!(
        store.get(Space::Tokens, "k001").await.unwrap().unwrap(),
        b"x"
    );
    assert!(
        !store
            .replace(Space::Tokens, "k001", b"k001", b"y")
            .await
            .unwrap()
    );
    // Remove with the fingerprint mapping.
    assert_eq!(
        store
            .insert_fingerprinted(b"fp", "fpk", b"r")
            .await
            .unwrap(),
        FingerprintInsert::New
    );
    assert!(
        store
            .remove(Space::Tokens, "fpk", Some(b"fp"))
            .await
            .unwrap()
    );
    assert_eq!(store.fingerprint(b"fp").await.unwrap(), None);
    assert!(
        !store
            .remove(Space::Tokens, "fpk", Some(b"fp"))
            .await
            .unwrap()
    );
    assert!(store.remove(Space::Tokens, "k002", None).await.unwrap());
    assert_eq!(store.get(Space::Tokens, "k002").await.unwrap(), None);
}

/// Rotate the data key, rewrap in pages (more than one page of 512), all reveal.
async fn rewrap_after_rotation(f: Fixture) {
    let vault = Arc::new(f.vault().await);
    let opts = TokenizeOptions {
        deterministic: Some(false),
        ..Default::default()
    };
    let mut tokens = Vec::new();
    for chunk in 0..6 {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let v = Arc::clone(&vault);
                let opts = opts.clone();
                tokio::spawn(async move { v.tokenize(&pan("5555555555554444"), &opts).await })
            })
            .collect();
        for t in tasks {
            tokens.push(t.await.unwrap().unwrap());
        }
        let _ = chunk;
    }
    drop(vault);
    keyring::rotate(&f.settings.keyring, &pass()).unwrap();
    let vault = f.vault().await;
    let report = vault.rewrap().await.unwrap();
    assert_eq!(report.rewrapped, 600);
    assert_eq!(report.current, 0);
    let again = vault.rewrap().await.unwrap();
    assert_eq!((again.rewrapped, again.current), (0, 600));
    for t in &tokens {
        assert_eq!(
            vault.detokenize(t, None).await.unwrap().value.expose(),
            "5555555555554444"
        );
    }
}

/// Drop the vault and open it again: tokens, fingerprints and durable CVVs remain.
async fn restart_keeps_everything(f: Fixture) {
    let vault = f.vault().await;
    let card = vault
        .tokenize(&pan("378282246310005"), &TokenizeOptions::default())
        .await
        .unwrap();
    let code = vault
        .tokenize(&cvv("1234"), &TokenizeOptions::default())
        .await
        .unwrap();
    vault.flush().await.unwrap();
    drop(vault);
    // sled's flusher thread lets go of the directory lock shortly after the drop.
    let vault = loop {
        let keys = keyring::open(&f.settings.keyring, &pass()).unwrap();
        match Vault::open_async(&f.settings, keys).await {
            Ok(v) => break v,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    assert_eq!(
        vault
            .tokenize(&pan("378282246310005"), &TokenizeOptions::default())
            .await
            .unwrap(),
        card,
        "the fingerprint survived"
    );
    assert_eq!(
        vault.detokenize(&card, None).await.unwrap().value.expose(),
        "378282246310005"
    );
    assert_eq!(
        vault.detokenize(&code, None).await.unwrap().value.expose(),
        "1234"
    );
    assert!(matches!(
        vault.detokenize(&code, None).await,
        Err(Error::CvvExpired)
    ));
}

/// PostgreSQL only: a CVV sealed by one instance opens on another, which fetches the
/// window key from the database; both instances agree on one key per window.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_cvv_window_keys_are_shared() {
    let Some(f) = Fixture::new(Backend::Postgres).await else {
        return;
    };
    let a = f.vault().await;
    let b = f.vault().await;
    let ta = a
        .tokenize(&cvv("321"), &TokenizeOptions::default())
        .await
        .unwrap();
    let tb = b
        .tokenize(&cvv("654"), &TokenizeOptions::default())
        .await
        .unwrap();
    assert_eq!(b.detokenize(&ta, None).await.unwrap().value.expose(), "321");
    assert_eq!(a.detokenize(&tb, None).await.unwrap().value.expose(), "654");
    // The window key is in the database; the sweeper keeps the current window's.
    let store = f.store().await;
    let epoch = now_secs() / f.settings.cvv_ttl_secs;
    assert!(store.cvv_key_get(epoch).await.unwrap().is_some());
    assert_eq!(
        store
            .cvv_keys_destroy_before(epoch.saturating_sub(1))
            .await
            .unwrap(),
        0
    );
    // Two candidates for a new window: the first one stays.
    let first = store.cvv_key_insert(epoch + 10, b"first").await.unwrap();
    let second = store.cvv_key_insert(epoch + 10, b"second").await.unwrap();
    assert_eq!(
        (first.as_slice(), second.as_slice()),
        (&b"first"[..], &b"first"[..])
    );
}

/// PostgreSQL only: a database that cannot be reached is `store_unavailable` (503).
#[tokio::test]
async fn postgres_unreachable_is_store_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let settings = VaultSettings {
        data: dir.path().join("data"),
        store: StoreKind::Postgres,
        // Port 9 (discard) on loopback: nothing listens there.
        postgres_url: Some(SecretUrl::new("postgres://vaultgate@127.0.0.1:9/none")),
        ..VaultSettings::default()
    };
    let err = PgStore::connect(&settings).await.unwrap_err();
    assert!(matches!(err, Error::StoreUnavailable), "{err}");
    assert_eq!(err.status(), 503);
    let store = PgStore::pool_only(&settings).unwrap();
    let err = store.get(Space::Tokens, "t").await.unwrap_err();
    assert!(matches!(err, Error::StoreUnavailable), "{err}");
}
