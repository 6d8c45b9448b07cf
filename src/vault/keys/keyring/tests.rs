use super::*;

fn pass(s: &str) -> Passphrase {
    Passphrase::new(s.to_owned()).unwrap()
}

#[test]
fn init_open_rotate_passwd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let p = pass("correct horse battery");
    init(&path, &p, KdfParams::MINIMUM).unwrap();
    assert!(matches!(
        init(&path, &p, KdfParams::MINIMUM),
        Err(Error::Keyring(_))
    ));
    let keys = open(&path, &p).unwrap();
    assert_eq!(keys.active().unwrap().0, 1);
    let before = fs::read(&path).unwrap();
    assert!(open(&path, &pass("wrong passphrase")).is_err());
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "a failed open changes nothing"
    );

    let (v, keys) = rotate(&path, &p).unwrap();
    assert_eq!(v, 2);
    assert_eq!(keys.versions().collect::<Vec<_>>(), vec![1, 2]);

    passwd(&path, &p, &pass("new passphrase!")).unwrap();
    assert!(open(&path, &p).is_err());
    assert_eq!(
        open(&path, &pass("new passphrase!"))
            .unwrap()
            .active()
            .unwrap()
            .0,
        2
    );
}

#[test]
fn truncated_or_edited_files_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    let p = pass("correct horse battery");
    init(&path, &p, KdfParams::MINIMUM).unwrap();
    let text = fs::read_to_string(&path).unwrap();

    assert!(KeyringFile::parse(&text[..text.len() / 2]).is_err());

    let edited = text.replace("\"active_version\": 1", "\"active_version\": 2");
    assert_ne!(edited, text);
    let f = KeyringFile::parse(&edited).unwrap();
    assert!(f.unseal(&p).is_err());

    let mut file = KeyringFile::parse(&text).unwrap();
    file.data_keys[0].created += 1;
    assert!(file.unseal(&p).is_err(), "MAC covers every field");
}

/// A keyring written by vaultgate before seals existed (`vaultgate-keyring/1`).
const V1: &str = include_str!("v1.json");

#[test]
fn v1_keyrings_still_open_and_are_upgraded_on_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    fs::write(&path, V1).unwrap();
    let p = pass("correct horse battery");
    let before = open(&path, &p).unwrap();
    assert_eq!(
        KeyringFile::load(&path).unwrap().kdf_params(),
        Some(KdfParams::MINIMUM)
    );

    let (v, _) = rotate(&path, &p).unwrap();
    assert_eq!(v, 2);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"vaultgate-keyring/2\""), "{text}");
    assert!(text.contains("\"kind\": \"passphrase\""), "{text}");
    let after = open(&path, &p).unwrap();
    assert_eq!(after.master().expose(), before.master().expose());
}

#[test]
fn reseal_moves_between_seals_and_keeps_the_keys() {
    use crate::vault::keys::seal::{NewSeal, Share, Unlock};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    let p = pass("correct horse battery");
    let keys = init(&path, &p, KdfParams::MINIMUM).unwrap();
    let texts = reseal(
        &path,
        &Unlock::Passphrase(&p),
        &NewSeal::Shamir {
            shares: 3,
            threshold: 2,
        },
    )
    .unwrap();
    assert!(open(&path, &p).is_err());
    let shares: Vec<Share> = texts
        .iter()
        .map(|t| Share::parse(t.expose()).unwrap())
        .collect();
    let opened = open_with(&path, &Unlock::Shares(&shares[1..])).unwrap();
    assert_eq!(opened.master().expose(), keys.master().expose());

    let new = rekey(&path, &shares[..2], 4, 3).unwrap();
    assert_eq!(new.len(), 4);
    assert!(open_with(&path, &Unlock::Shares(&shares)).is_err());
    let new: Vec<Share> = new
        .iter()
        .map(|t| Share::parse(t.expose()).unwrap())
        .collect();
    let (_, rotated) = rotate_with(&path, &Unlock::Shares(&new[1..])).unwrap();
    assert_eq!(rotated.master().expose(), keys.master().expose());
}

#[test]
fn a_running_server_reloads_a_rotated_keyring_with_its_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let p = pass("reload passphrase");
    let held = init(&path, &p, KdfParams::MINIMUM).unwrap();
    let (v, _) = rotate(&path, &p).unwrap();
    assert_eq!(v, 2);
    // No passphrase: the held master key checks the MAC and unwraps version 2.
    let reloaded = held
        .reload_from(&KeyringFile::load(&path).unwrap())
        .unwrap();
    assert_eq!(reloaded.active_version(), 2);
    assert!(reloaded.holds(1) && reloaded.holds(2));
    // The shared version may hold the active one back; a version not held fails.
    let back = reloaded.with_active(1).unwrap();
    assert_eq!(back.active_version(), 1);
    assert!(matches!(back.with_active(3), Err(Error::KeyUnavailable)));
    // Another keyring's file fails the MAC under this master key.
    let other = dir.path().join("other.json");
    init(&other, &p, KdfParams::MINIMUM).unwrap();
    assert!(
        held.reload_from(&KeyringFile::load(&other).unwrap())
            .is_err()
    );
}
