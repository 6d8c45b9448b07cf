//! The `vaultgate` binary's vault commands, run as a user would run them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::binary::BIN;

fn vaultgate(dir: &Path, pass: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("VAULTGATE_PASSPHRASE", pass)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

const PASS: &str = "a test passphrase";
const FAST_KDF: [&str; 4] = ["--kdf-memory-kib", "19456", "--kdf-passes", "2"];

#[test]
fn init_tokenize_detokenize_rotate_rewrap_passwd() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut init = vec!["init"];
    init.extend(FAST_KDF);
    ok(&vaultgate(d, PASS, &init, ""));
    assert!(d.join("keys/keyring.json").exists());

    // init refuses to overwrite, and changes nothing.
    let before = std::fs::read(d.join("keys/keyring.json")).unwrap();
    let again = vaultgate(d, PASS, &init, "");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(d.join("keys/keyring.json")).unwrap(), before);

    let token = ok(&vaultgate(
        d,
        PASS,
        &["tokenize", "--class", "pan"],
        "4242424242424242\n",
    ));
    assert_eq!(token.len(), 16);
    assert!(token.starts_with("424242") && token.ends_with("4242") && token != "4242424242424242");
    let same = ok(&vaultgate(
        d,
        PASS,
        &["tokenize", "--class", "pan"],
        "4242424242424242",
    ));
    assert_eq!(same, token, "deterministic across processes");
    let opaque = ok(&vaultgate(
        d,
        PASS,
        &["tokenize", "--class", "bank_account", "--format", "opaque"],
        "9900000002",
    ));
    assert!(opaque.starts_with("tok_"));
    assert_eq!(
        ok(&vaultgate(d, PASS, &["detokenize", &token], "")),
        "4242424242424242"
    );

    // A wrong passphrase: a clear error and a non-zero exit.
    let wrong = vaultgate(d, "not the passphrase", &["detokenize", &token], "");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));
    assert!(!String::from_utf8_lossy(&wrong.stderr).contains("4242424242424242"));

    // A bad value is refused without echoing it.
    let bad = vaultgate(d, PASS, &["tokenize", "--class", "pan"], "4242-not-a-card");
    assert!(!bad.status.success());
    assert!(!String::from_utf8_lossy(&bad.stderr).contains("not-a-card"));

    ok(&vaultgate(d, PASS, &["keys", "rotate"], ""));
    let rewrap = vaultgate(d, PASS, &["keys", "rewrap"], "");
    ok(&rewrap);
    assert!(String::from_utf8_lossy(&rewrap.stderr).contains("rewrapped 2 records"));
    assert_eq!(
        ok(&vaultgate(d, PASS, &["detokenize", &opaque], "")),
        "9900000002"
    );

    let newpass = d.join("newpass");
    std::fs::write(&newpass, "another test passphrase\n").unwrap();
    ok(&vaultgate(
        d,
        PASS,
        &[
            "keys",
            "passwd",
            "--new-passphrase-file",
            newpass.to_str().unwrap(),
        ],
        "",
    ));
    assert!(
        !vaultgate(d, PASS, &["detokenize", &token], "")
            .status
            .success()
    );
    let via_file = vaultgate(
        d,
        "ignored when a file is given",
        &[
            "--passphrase-file",
            newpass.to_str().unwrap(),
            "detokenize",
            &token,
        ],
        "",
    );
    assert_eq!(ok(&via_file), "4242424242424242");
}

#[test]
fn a_damaged_keyring_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut init = vec!["init"];
    init.extend(FAST_KDF);
    ok(&vaultgate(d, PASS, &init, ""));
    let path = d.join("keys/keyring.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 3]).unwrap();
    let out = vaultgate(d, PASS, &["tokenize", "--class", "pan"], "4242424242424242");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keyring"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        &text[..text.len() / 3]
    );
}
