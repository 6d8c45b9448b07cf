//! Stores written before the compact layouts (record format 2, 16-byte fingerprints,
//! packed digits) keep working: a token issued then is revealed, found again by value
//! and deleted.

use crate::vault_core::{pass, settings};
use vaultgate::sensitive::{DataClass, Sensitive};
use vaultgate::vault::keys::keyring::{self, KdfParams};
use vaultgate::vault::record::{Format, Header, Record};
use vaultgate::vault::{Space, TokenFormat, TokenizeOptions, Vault, VaultSettings, crypto};

const PAN: &str = "4242424242424242";
/// A token as the vault drew them before the change (first six, last four).
const OLD_TOKEN: &str = "4242425551234242";
/// A card tokenized by a release that wrote format 2 with the digits unpacked.
const UNPACKED_PAN: &str = "4111111111111111";
const UNPACKED_TOKEN: &str = "4111115559871111";

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
        packed: false,
    };
    let (nonce, ct) = sealer
        .seal(&header.aad(Format::V1, OLD_TOKEN), PAN.as_bytes())
        .unwrap();
    let record = header.encode_record(Format::V1, &nonce, &ct);
    assert_eq!(record.len(), 23 + 12 + 16 + 16);
    // Format 2 as written before the digits were packed: the UTF-8 digits sealed.
    let (nonce, ct) = sealer
        .seal(
            &header.aad(Format::V2, UNPACKED_TOKEN),
            UNPACKED_PAN.as_bytes(),
        )
        .unwrap();
    let unpacked = header.encode_record(Format::V2, &nonce, &ct);
    assert_eq!(unpacked.len(), 8 + 12 + 16 + 16);
    let vault = Vault::open(s, keys).unwrap();
    vault
        .store()
        .insert_fingerprinted(&legacy_fp, OLD_TOKEN, &record)
        .await
        .unwrap();
    vault
        .store()
        .insert(Space::Tokens, UNPACKED_TOKEN, &unpacked, None)
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
    // And from a format-2 record whose digits are not packed.
    let bytes = store
        .get(Space::Tokens, UNPACKED_TOKEN)
        .await
        .unwrap()
        .unwrap();
    assert!(!Record::parse(&bytes).unwrap().header.packed);
    let revealed = vault.detokenize(UNPACKED_TOKEN, None).await.unwrap();
    assert_eq!(revealed.value.expose(), UNPACKED_PAN);
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

    // Tokenized afresh: format 2, its 16 digits sealed in 8 bytes, under a 16-byte
    // fingerprint.
    let new = vault
        .tokenize(&pan, &TokenizeOptions::default())
        .await
        .unwrap();
    let bytes = store.get(Space::Tokens, &new).await.unwrap().unwrap();
    let rec = Record::parse(&bytes).unwrap();
    assert_eq!(rec.format, Format::V2);
    assert!(rec.header.packed);
    assert_eq!(bytes.len(), 8 + 12 + 8 + 16);
    assert_eq!(
        vault.detokenize(&new, None).await.unwrap().value.expose(),
        PAN
    );
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

/// A key rotation's rewrap seals an unpacked format-2 record again with its digits
/// packed, and the token still reveals its card.
#[tokio::test]
async fn a_rewrap_packs_the_digits_of_an_older_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path());
    write_old_store(&s).await;
    let (version, keys) = keyring::rotate(&s.keyring, &pass()).unwrap();
    let vault = Vault::open(&s, keys).unwrap();
    let report = vault.rewrap().await.unwrap();
    assert_eq!(report.rewrapped, 2);
    for (token, pan) in [(UNPACKED_TOKEN, UNPACKED_PAN), (OLD_TOKEN, PAN)] {
        let bytes = vault
            .store()
            .get(Space::Tokens, token)
            .await
            .unwrap()
            .unwrap();
        let rec = Record::parse(&bytes).unwrap();
        assert_eq!(rec.header.key_version, version);
        assert!(rec.header.packed, "{token}");
        assert_eq!(bytes.len(), 8 + 12 + 8 + 16, "{token}");
        assert_eq!(
            vault.detokenize(token, None).await.unwrap().value.expose(),
            pan
        );
    }
}
