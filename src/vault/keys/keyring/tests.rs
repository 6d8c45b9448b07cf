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
