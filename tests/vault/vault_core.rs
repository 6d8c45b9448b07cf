//! The vault core against real sled in a temp dir and a real keyring file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vaultgate::Error;
use vaultgate::sensitive::luhn;
use vaultgate::sensitive::{DataClass, Sensitive};
use vaultgate::vault::keys::keyring::{self, KdfParams, Passphrase};
use vaultgate::vault::record::Record;
use vaultgate::vault::{Space, StoreKind, TokenFormat, TokenizeOptions, Vault, VaultSettings};

const PASS: &str = "test passphrase, not a real one";

pub(crate) fn settings(dir: &Path) -> VaultSettings {
    VaultSettings {
        keyring: dir.join("keyring.json"),
        data: dir.join("data"),
        cache_capacity_mb: 8,
        ..VaultSettings::default()
    }
}

pub(crate) fn pass() -> Passphrase {
    Passphrase::new(PASS.to_owned()).unwrap()
}

fn new_vault(dir: &Path) -> Vault {
    let s = settings(dir);
    let keys = keyring::init(&s.keyring, &pass(), KdfParams::MINIMUM).unwrap();
    Vault::open(&s, keys).unwrap()
}

fn reopen(s: &VaultSettings) -> Vault {
    Vault::open(s, keyring::open(&s.keyring, &pass()).unwrap()).unwrap()
}

fn value(class: DataClass, v: &str) -> Sensitive {
    Sensitive::parse(class, v).unwrap()
}

fn fmt(f: TokenFormat) -> TokenizeOptions {
    TokenizeOptions {
        format: Some(f),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_class_and_format_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let vault = new_vault(dir.path());
    let cases: &[(DataClass, &str, TokenFormat)] = &[
        (DataClass::Pan, "4242424242424242", TokenFormat::PanSixFour),
        (DataClass::Pan, "378282246310005", TokenFormat::PanNonLuhn),
        (DataClass::Pan, "4111111111111111", TokenFormat::Opaque),
        (
            DataClass::BankAccount,
            "12345678901236491",
            TokenFormat::Digits,
        ),
        (
            DataClass::BankAccount,
            "DE89370400440532013000",
            TokenFormat::Digits,
        ),
        (DataClass::BankAccount, "9900000002", TokenFormat::Opaque),
        (
            DataClass::Secret,
            "s3cr3t-api-password",
            TokenFormat::Opaque,
        ),
        (DataClass::Cvv, "218", TokenFormat::Opaque),
    ];
    for (class, v, f) in cases {
        let token = vault.tokenize(&value(*class, v), &fmt(*f)).await.unwrap();
        assert_ne!(&token, v);
        let revealed = vault.detokenize(&token, None).await.unwrap();
        assert_eq!(revealed.class, *class);
        assert_eq!(revealed.value.expose(), *v);
        match f {
            TokenFormat::PanSixFour => assert!(luhn::is_valid(&token) && token.len() == v.len()),
            TokenFormat::PanNonLuhn => assert!(!luhn::is_valid(&token)),
            TokenFormat::Opaque => assert!(token.starts_with("tok_") || token.starts_with("cvv_")),
            TokenFormat::Digits => assert_eq!(token.len(), v.len()),
        }
    }
    // A same-length CVV token with its card token as scope.
    let card = vault
        .tokenize(
            &value(DataClass::Pan, "4242424242424242"),
            &Default::default(),
        )
        .await
        .unwrap();
    let scoped = TokenizeOptions {
        scope: Some(card.clone()),
        ..Default::default()
    };
    let cvv = vault
        .tokenize(&value(DataClass::Cvv, "123"), &scoped)
        .await
        .unwrap();
    assert_eq!(cvv.len(), 3);
    assert_ne!(cvv, "123");
    assert_eq!(
        vault
            .detokenize(&cvv, Some(&card))
            .await
            .unwrap()
            .value
            .expose(),
        "123"
    );
}

#[tokio::test]
async fn deterministic_tokens_hold_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(new_vault(dir.path()));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let v = Arc::clone(&vault);
        tasks.push(tokio::spawn(async move {
            v.tokenize(
                &value(DataClass::Pan, "5555555555554444"),
                &Default::default(),
            )
            .await
            .unwrap()
        }));
    }
    let mut tokens = HashSet::new();
    for t in tasks {
        tokens.insert(t.await.unwrap());
    }
    assert_eq!(
        tokens.len(),
        1,
        "64 concurrent tokenizations of one card give one token"
    );
    assert_eq!(vault.issued(DataClass::Pan), 1);

    // Formats differ, so tokens differ; turning determinism off gives fresh tokens.
    let a = vault
        .tokenize(
            &value(DataClass::Pan, "5555555555554444"),
            &fmt(TokenFormat::Opaque),
        )
        .await
        .unwrap();
    assert!(!tokens.contains(&a));
    let off = TokenizeOptions {
        deterministic: Some(false),
        ..Default::default()
    };
    let x = vault
        .tokenize(&value(DataClass::Pan, "5555555555554444"), &off)
        .await
        .unwrap();
    let y = vault
        .tokenize(&value(DataClass::Pan, "5555555555554444"), &off)
        .await
        .unwrap();
    assert_ne!(x, y);
    // CVVs are never deterministic.
    let c1 = vault
        .tokenize(&value(DataClass::Cvv, "999"), &Default::default())
        .await
        .unwrap();
    let c2 = vault
        .tokenize(&value(DataClass::Cvv, "999"), &Default::default())
        .await
        .unwrap();
    assert_ne!(c1, c2);
}

/// The same cards tokenized at once from several runtime threads (real races on the
/// store, not just interleavings): one token per card, each reveals its card, and the
/// losers' records are not counted as issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deterministic_tokens_hold_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(new_vault(dir.path()));
    let cards = [
        "4242424242424242",
        "378282246310005",
        "4111111111111111",
        "5555555555554444",
        "4000056655665556",
    ];
    let mut tasks = Vec::new();
    for _ in 0..16 {
        for card in cards {
            let v = Arc::clone(&vault);
            tasks.push(tokio::spawn(async move {
                let token = v
                    .tokenize(&value(DataClass::Pan, card), &Default::default())
                    .await
                    .unwrap();
                (card, token)
            }));
        }
    }
    let mut by_card: std::collections::HashMap<&str, HashSet<String>> = Default::default();
    for t in tasks {
        let (card, token) = t.await.unwrap();
        by_card.entry(card).or_default().insert(token);
    }
    for card in cards {
        let tokens = &by_card[card];
        assert_eq!(tokens.len(), 1, "one token per card");
        let token = tokens.iter().next().unwrap();
        let revealed = vault.detokenize(token, None).await.unwrap();
        assert_eq!(revealed.value.expose(), card);
    }
    assert_eq!(vault.issued(DataClass::Pan), 5);
}

#[tokio::test]
async fn cvv_is_single_use_and_expires() {
    let dir = tempfile::tempdir().unwrap();
    let s = VaultSettings {
        cvv_ttl_secs: 2,
        ..settings(dir.path())
    };
    let keys = keyring::init(&s.keyring, &pass(), KdfParams::MINIMUM).unwrap();
    let vault = Vault::open(&s, keys).unwrap();
    let t = vault
        .tokenize(&value(DataClass::Cvv, "737"), &Default::default())
        .await
        .unwrap();
    assert_eq!(
        vault.detokenize(&t, None).await.unwrap().value.expose(),
        "737"
    );
    assert!(matches!(
        vault.detokenize(&t, None).await,
        Err(Error::CvvExpired)
    ));

    let late = vault
        .tokenize(&value(DataClass::Cvv, "737"), &Default::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let err = vault.detokenize(&late, None).await.err().unwrap();
    assert!(matches!(err, Error::CvvExpired));
    assert_eq!(err.code(), "cvv_expired");

    // Memory-only by default: a restart drops CVVs, and the reveal says so.
    let kept = vault
        .tokenize(&value(DataClass::Cvv, "4321"), &Default::default())
        .await
        .unwrap();
    drop(vault);
    let vault = reopen(&s);
    assert!(matches!(
        vault.detokenize(&kept, None).await,
        Err(Error::CvvExpired)
    ));
}

#[tokio::test]
async fn durable_cvvs_survive_a_restart_and_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let s = VaultSettings {
        cvv_durable: true,
        // Long enough that a reopen (an argon2 unseal) on a loaded 2-core machine
        // still finds the CVV alive.
        cvv_ttl_secs: 15,
        ..settings(dir.path())
    };
    let keys = keyring::init(&s.keyring, &pass(), KdfParams::MINIMUM).unwrap();
    let vault = Vault::open(&s, keys).unwrap();
    let t = vault
        .tokenize(&value(DataClass::Cvv, "218"), &Default::default())
        .await
        .unwrap();
    let gone = vault
        .tokenize(&value(DataClass::Cvv, "219"), &Default::default())
        .await
        .unwrap();
    drop(vault);
    let vault = reopen(&s);
    assert_eq!(
        vault.detokenize(&t, None).await.unwrap().value.expose(),
        "218"
    );
    assert!(matches!(
        vault.detokenize(&t, None).await,
        Err(Error::CvvExpired)
    ));
    tokio::time::sleep(Duration::from_millis(31_000)).await;
    assert!(vault.sweep().await.unwrap() >= 1);
    assert!(matches!(
        vault.detokenize(&gone, None).await,
        Err(Error::CvvExpired)
    ));
    assert!(
        vault
            .store()
            .scan(Space::Volatile, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let keyfile = std::fs::read_to_string(s.data.join("cvv-keys.json")).unwrap();
    assert!(
        !keyfile.contains("nonce"),
        "the window keys are destroyed: {keyfile}"
    );
}

#[tokio::test]
async fn a_flipped_byte_is_an_integrity_error_and_swapped_records_fail() {
    let dir = tempfile::tempdir().unwrap();
    let vault = new_vault(dir.path());
    let a = vault
        .tokenize(
            &value(DataClass::Pan, "4242424242424242"),
            &Default::default(),
        )
        .await
        .unwrap();
    let b = vault
        .tokenize(
            &value(DataClass::Pan, "4111111111111111"),
            &Default::default(),
        )
        .await
        .unwrap();
    let store = vault.store();
    let ra = store.get(Space::Tokens, &a).await.unwrap().unwrap();
    let rb = store.get(Space::Tokens, &b).await.unwrap().unwrap();

    for i in [0, 5, 22, 30, ra.len() - 1] {
        let mut bad = ra.clone();
        bad[i] ^= 0x01;
        assert!(store.replace(Space::Tokens, &a, &ra, &bad).await.unwrap());
        let err = vault
            .detokenize(&a, None)
            .await
            .err()
            .expect("a flipped byte must not open");
        assert!(matches!(err, Error::Integrity(_)), "byte {i}: {err}");
        assert!(store.replace(Space::Tokens, &a, &bad, &ra).await.unwrap());
    }

    assert!(store.replace(Space::Tokens, &a, &ra, &rb).await.unwrap());
    assert!(store.replace(Space::Tokens, &b, &rb, &ra).await.unwrap());
    assert!(matches!(
        vault.detokenize(&a, None).await,
        Err(Error::Integrity(_))
    ));
    assert!(matches!(
        vault.detokenize(&b, None).await,
        Err(Error::Integrity(_))
    ));
}

#[tokio::test]
async fn rotate_then_rewrap_keeps_every_token_and_leaves_no_old_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    let vault = new_vault(dir.path());
    let cards = [
        "4242424242424242",
        "378282246310005",
        "4111111111111111",
        "5555555555554444",
    ];
    let mut tokens = Vec::new();
    for c in cards {
        tokens.push(
            vault
                .tokenize(&value(DataClass::Pan, c), &Default::default())
                .await
                .unwrap(),
        );
    }
    drop(vault);
    let (v2, keys) = keyring::rotate(&s.keyring, &pass()).unwrap();
    assert_eq!(v2, 2);
    let vault = Vault::open(&s, keys).unwrap();
    // A new token is sealed under version 2 straight away.
    let fresh = vault
        .tokenize(
            &value(DataClass::Secret, "hunter2-hunter2"),
            &Default::default(),
        )
        .await
        .unwrap();
    let report = vault.rewrap().await.unwrap();
    assert_eq!(report.rewrapped, 4);
    assert_eq!(report.current, 1);
    assert_eq!(
        vault.rewrap().await.unwrap().rewrapped,
        0,
        "a rerun finds nothing left"
    );
    for (t, c) in tokens.iter().zip(cards) {
        assert_eq!(vault.detokenize(t, None).await.unwrap().value.expose(), c);
    }
    assert_eq!(
        vault.detokenize(&fresh, None).await.unwrap().value.expose(),
        "hunter2-hunter2"
    );
    for (_, bytes) in vault.store().scan(Space::Tokens, None, 100).await.unwrap() {
        assert_eq!(Record::parse(&bytes).unwrap().header.key_version, 2);
    }
    // Determinism survives rotation: the fingerprint key did not change.
    let again = vault
        .tokenize(&value(DataClass::Pan, cards[0]), &Default::default())
        .await
        .unwrap();
    assert_eq!(again, tokens[0]);
}

#[tokio::test]
async fn reopening_keeps_every_token_and_delete_forgets() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    let vault = new_vault(dir.path());
    let mut tokens = Vec::new();
    for i in 0..200u64 {
        // Distinct Luhn-valid 16-digit numbers on the 424242 test prefix.
        let body = format!("424242{:09}", i);
        let card = format!("{body}{}", luhn::check_digit(&body));
        let t = vault
            .tokenize(&value(DataClass::Pan, &card), &Default::default())
            .await
            .unwrap();
        tokens.push((t, card));
    }
    drop(vault);
    let vault = reopen(&s);
    for (t, c) in &tokens {
        assert_eq!(vault.detokenize(t, None).await.unwrap().value.expose(), c);
    }
    let (t0, c0) = &tokens[0];
    let meta = vault.metadata(t0, None).await.unwrap();
    assert_eq!(meta.class, DataClass::Pan);
    assert_eq!(meta.last4.as_deref(), Some(&c0[12..]));
    assert!(vault.delete(t0, None).await.unwrap());
    assert!(matches!(
        vault.detokenize(t0, None).await,
        Err(Error::TokenNotFound)
    ));
    let replacement = vault
        .tokenize(&value(DataClass::Pan, c0), &Default::default())
        .await
        .unwrap();
    assert_ne!(
        &replacement, t0,
        "a deleted token's fingerprint is forgotten"
    );
}

#[tokio::test]
async fn a_full_token_space_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // Issue 12: a scope holds at most `cvv_per_scope` live CVVs (default 8) and must be
    // a token of this vault; to fill a space, allow them all and scope by a card token.
    let s = VaultSettings {
        cvv_per_scope: 1000,
        ..settings(dir.path())
    };
    let keys = keyring::init(&s.keyring, &pass(), KdfParams::MINIMUM).unwrap();
    let vault = Vault::open(&s, keys).unwrap();
    let card = vault
        .tokenize(
            &value(DataClass::Pan, "4242424242424242"),
            &Default::default(),
        )
        .await
        .unwrap();
    let scope = TokenizeOptions {
        scope: Some(card),
        ..Default::default()
    };
    // 3 digits: 999 tokens other than the value itself.
    let mut seen = HashSet::new();
    for _ in 0..999 {
        let t = vault
            .tokenize(&value(DataClass::Cvv, "123"), &scope)
            .await
            .unwrap();
        assert!(seen.insert(t));
    }
    let err = vault
        .tokenize(&value(DataClass::Cvv, "123"), &scope)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::TokenSpaceExhausted("cvv")));
}

#[tokio::test]
async fn a_scope_keeps_its_newest_cvvs_and_never_fills() {
    let dir = tempfile::tempdir().unwrap();
    let vault = new_vault(dir.path());
    let card = vault
        .tokenize(
            &value(DataClass::Pan, "4242424242424242"),
            &Default::default(),
        )
        .await
        .unwrap();
    let scope = TokenizeOptions {
        scope: Some(card.clone()),
        ..Default::default()
    };
    let mut tokens = Vec::new();
    for _ in 0..1500 {
        tokens.push(
            vault
                .tokenize(&value(DataClass::Cvv, "123"), &scope)
                .await
                .unwrap(),
        );
    }
    // The newest eight reveal; the oldest were evicted.
    let newest = &tokens[tokens.len() - 8..];
    for t in newest {
        assert_eq!(
            vault
                .detokenize(t, Some(&card))
                .await
                .unwrap()
                .value
                .expose(),
            "123"
        );
    }
    if !newest.contains(&tokens[0]) {
        assert!(vault.detokenize(&tokens[0], Some(&card)).await.is_err());
    }
    // A scope that is not a token of this vault: refused, nothing stored.
    let bad = TokenizeOptions {
        scope: Some("4111111111111111".into()),
        ..Default::default()
    };
    let err = vault
        .tokenize(&value(DataClass::Cvv, "123"), &bad)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidScope), "{err}");
}

/// Issue every token of a small space once, then expect exhaustion.
async fn fill_space(vault: &Vault, class: DataClass, v: &str, opts: &TokenizeOptions, size: usize) {
    let mut seen = HashSet::new();
    for i in 0..size {
        let t = vault
            .tokenize(&value(class, v), opts)
            .await
            .unwrap_or_else(|e| panic!("token {i} of {size}: {e}"));
        assert_ne!(t, v);
        assert!(seen.insert(t), "token {i} issued twice");
    }
    let err = vault.tokenize(&value(class, v), opts).await.err().unwrap();
    assert!(matches!(err, Error::TokenSpaceExhausted(_)), "{err}");
}

#[tokio::test]
async fn a_luhn_token_space_is_used_up_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let vault = new_vault(dir.path());
    // 13 digits: six kept, four kept, two random and a check digit: 100 Luhn-valid
    // numbers, 99 besides the card itself.
    let card = "4222222222222";
    assert!(luhn::is_valid(card));
    let luhn_opts = TokenizeOptions {
        format: Some(TokenFormat::PanSixFour),
        deterministic: Some(false),
        ..Default::default()
    };
    fill_space(&vault, DataClass::Pan, card, &luhn_opts, 99).await;
    // The same head and tail, Luhn-invalid: 900 numbers.
    let non_luhn = TokenizeOptions {
        format: Some(TokenFormat::PanNonLuhn),
        deterministic: Some(false),
        ..Default::default()
    };
    fill_space(&vault, DataClass::Pan, card, &non_luhn, 900).await;
    // Plain digits: a four-digit account number (the shortest one accepted) has
    // 9,999 others.
    let digits = TokenizeOptions {
        format: Some(TokenFormat::Digits),
        deterministic: Some(false),
        ..Default::default()
    };
    fill_space(&vault, DataClass::BankAccount, "1234", &digits, 9_999).await;
}

/// The shortest byte string a scan of the store's files looks for. A shorter one turns
/// up by chance among the ciphertexts, nonces and MACs the files are full of: the
/// packed digits of a 4-digit CVV are 2 bytes, which one file in a few hundred holds
/// somewhere (it failed CI once). 4 bytes is about one chance in 4,000 per MiB.
const MIN_NEEDLE: usize = 4;

/// Every encoding a value could leak in, at least [`MIN_NEEDLE`] bytes long.
fn encodings(v: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let utf16le: Vec<u8> = v.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let utf16be: Vec<u8> = v.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    let bcd: Vec<u8> = v
        .as_bytes()
        .chunks(2)
        .map(|c| ((c[0] & 0x0f) << 4) | c.get(1).map(|d| d & 0x0f).unwrap_or(0xf))
        .collect();
    vec![
        v.as_bytes().to_vec(),
        utf16le,
        utf16be,
        base64::engine::general_purpose::STANDARD
            .encode(v)
            .into_bytes(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(v)
            .into_bytes(),
        v.bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes(),
        bcd,
    ]
    .into_iter()
    .filter(|n| n.len() >= MIN_NEEDLE)
    .collect()
}

fn scan_dir(dir: &Path, needles: &[Vec<u8>]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in crate::common::files_under(dir) {
        let bytes = std::fs::read(&entry).unwrap();
        for n in needles {
            // memmem: fjall preallocates its journal (tens of MiB, mostly zeros), which
            // a byte-by-byte comparison in a debug build takes minutes to read.
            if memchr::memmem::find(&bytes, n).is_some() {
                hits.push(entry.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test]
async fn no_value_is_on_disk_in_any_encoding() {
    no_value_on_disk(StoreKind::Sled).await;
}

#[tokio::test]
async fn no_value_is_on_disk_in_any_encoding_on_fjall() {
    no_value_on_disk(StoreKind::Fjall).await;
}

async fn no_value_on_disk(store: StoreKind) {
    let dir = tempfile::tempdir().unwrap();
    let s = VaultSettings {
        cvv_durable: true,
        store,
        ..settings(dir.path())
    };
    let keys = keyring::init(&s.keyring, &pass(), KdfParams::MINIMUM).unwrap();
    let vault = Vault::open(&s, keys).unwrap();
    let values = [
        (DataClass::Pan, "4242424242424242"),
        (DataClass::Pan, "378282246310005"),
        (DataClass::BankAccount, "DE89370400440532013000"),
        (DataClass::BankAccount, "12345678901236491"),
        (DataClass::Cvv, "7319"),
    ];
    for (c, v) in values {
        vault
            .tokenize(&value(c, v), &Default::default())
            .await
            .unwrap();
    }
    vault.flush().await.unwrap();
    drop(vault);
    let needles: Vec<Vec<u8>> = values.iter().flat_map(|(_, v)| encodings(v)).collect();
    let hits = scan_dir(dir.path(), &needles);
    assert!(hits.is_empty(), "plaintext found in {hits:?}");
    // The scan finds what it looks for: a file with a value in it is caught.
    std::fs::write(dir.path().join("canary"), b"xx4242424242424242xx").unwrap();
    assert_eq!(scan_dir(dir.path(), &needles).len(), 1);
}
