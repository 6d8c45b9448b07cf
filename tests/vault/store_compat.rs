//! Stores written before the compact layouts (record format 2, 16-byte fingerprints)
//! keep working: a token issued then is revealed, found again by value and deleted.

use crate::vault_core::{pass, settings};
use vaultgate::sensitive::{DataClass, Sensitive};
use vaultgate::vault::keys::keyring::{self, KdfParams};
use vaultgate::vault::record::{Format, Header, Record};
use vaultgate::vault::{Space, TokenFormat, TokenizeOptions, Vault, VaultSettings, crypto};

const PAN: &str = "4242424242424242";
/// A token as the vault drew them before the change (first six, last four).
const OLD_TOKEN: &str = "4242425551234242";

/// Write `OLD_TOKEN → PAN` the way the vault did before: a format-1 record and the
/// full 32-byte HMAC as the fingerprint key.
async fn write_old_store(s: &VaultSettings) -> Vec<u8> {
    let keys = keyring::init(&s.keyring, &pass(), KdfParams::MINIMUM).unwrap();
    let legacy_fp = crypto::hmac_sha256(
        keys.fingerprint_key(),
        &[
            b"vaultgate-fingerprint/1",
            DataClass::Pan.as_str().as_bytes(),
            TokenFormat::PanSixFour.as_str().as_bytes(),
            PAN.as_bytes(),
        ],
    )
    .unwrap()
    .to_vec();
    let (version, sealer) = keys.active().unwrap();
    let header = Header {
        class: DataClass::Pan,
        key_version: version,
        created: 1_700_000_000,
        expires: None,
        deterministic: true,
    };
    let (nonce, ct) = sealer
        .seal(&header.aad(Format::V1, OLD_TOKEN), PAN.as_bytes())
        .unwrap();
    let record = header.encode_record(Format::V1, &nonce, &ct);
    assert_eq!(record.len(), 23 + 12 + 16 + 16);
    let vault = Vault::open(s, keys).unwrap();
    vault
        .store()
        .insert_fingerprinted(&legacy_fp, OLD_TOKEN, &record)
        .await
        .unwrap();
    vault.flush().await.unwrap();
    drop(vault);
    // An earlier release left no mark that its index holds short forms only (this
    // one marks a store whose index was empty when it first opened it).
    let db = sled::open(&s.data).unwrap();
    assert!(
        db.remove("vaultgate/fingerprints-short-only")
            .unwrap()
            .is_some()
    );
    db.flush().unwrap();
    drop(db);
    legacy_fp
}

#[tokio::test]
async fn a_store_from_before_the_compact_layouts_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    let legacy_fp = write_old_store(&s).await;
    let vault = Vault::open(&s, keyring::open(&s.keyring, &pass()).unwrap()).unwrap();
    let store = vault.store();

    // Revealed after a restart, from its format-1 record.
    let bytes = store.get(Space::Tokens, OLD_TOKEN).await.unwrap().unwrap();
    assert_eq!(Record::parse(&bytes).unwrap().format, Format::V1);
    let revealed = vault.detokenize(OLD_TOKEN, None).await.unwrap();
    assert_eq!(revealed.value.expose(), PAN);
    let meta = vault.metadata(OLD_TOKEN, None).await.unwrap();
    assert_eq!(meta.created, 1_700_000_000);

    // Same value, same token: the lookup falls back to the full fingerprint.
    let pan = Sensitive::parse(DataClass::Pan, PAN).unwrap();
    let again = vault
        .tokenize(&pan, &TokenizeOptions::default())
        .await
        .unwrap();
    assert_eq!(again, OLD_TOKEN);
    assert!(vault.holds_value(DataClass::Pan, PAN).await.unwrap());

    // Delete removes the record and its old-form fingerprint.
    assert!(vault.delete(OLD_TOKEN, None).await.unwrap());
    assert_eq!(store.fingerprint(&legacy_fp).await.unwrap(), None);
    assert!(!vault.holds_value(DataClass::Pan, PAN).await.unwrap());

    // Tokenized afresh: format 2 under a 16-byte fingerprint.
    let new = vault
        .tokenize(&pan, &TokenizeOptions::default())
        .await
        .unwrap();
    let bytes = store.get(Space::Tokens, &new).await.unwrap().unwrap();
    let rec = Record::parse(&bytes).unwrap();
    assert_eq!(rec.format, Format::V2);
    assert_eq!(bytes.len(), 8 + 12 + 16 + 16);
    assert_eq!(
        store
            .fingerprint(&legacy_fp[..16])
            .await
            .unwrap()
            .as_deref(),
        Some(new.as_str())
    );
    assert_eq!(store.fingerprint(&legacy_fp).await.unwrap(), None);
    assert_eq!(
        vault
            .tokenize(&pan, &TokenizeOptions::default())
            .await
            .unwrap(),
        new
    );
}
