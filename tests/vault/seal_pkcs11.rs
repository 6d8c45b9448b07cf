//! PKCS#11 seals against a real SoftHSM2 token (each test its own token directory,
//! through `SOFTHSM2_CONF` on the child processes only), and moving between seals.

use std::path::{Path, PathBuf};

use crate::seal_support::{Node, counting_upstream, share_files, stderr};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "123456";
const PANS: [&str; 2] = ["4111111111111111", "378282246310005"];

/// A SoftHSM2 configuration with one initialised token, in a temp dir.
struct SoftHsm {
    _dir: tempfile::TempDir,
    conf: PathBuf,
}

impl SoftHsm {
    /// `None` (with the reason printed) only when the module is not installed.
    fn new(label: Option<&str>) -> Option<SoftHsm> {
        if !Path::new(MODULE).is_file() {
            eprintln!("skipped: {MODULE} is absent (apt-get install softhsm2)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        if let Some(label) = label {
            let out = std::process::Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", label])
                .args(["--pin", PIN, "--so-pin", "65432100"])
                .env("SOFTHSM2_CONF", &conf)
                .output()
                .expect("softhsm2-util (package softhsm2) must be installed with the module");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Some(SoftHsm { _dir: dir, conf })
    }

    fn env<'a>(&'a self, pin: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("SOFTHSM2_CONF", self.conf.to_str().unwrap()),
            ("VAULTGATE_HSM_PIN", pin),
            ("VAULTGATE_HSM_MODULE", MODULE),
        ]
    }
}

fn seal_toml(module: &str) -> String {
    format!(
        "kind = \"pkcs11\"\nmodule = \"{module}\"\ntoken_label = \"vg\"\nkey_label = \"vg-master\""
    )
}

fn init(node: &Node) {
    node.ok(
        &[
            "init",
            "--seal",
            "pkcs11",
            "--hsm-token",
            "vg",
            "--hsm-key-label",
            "vg-master",
        ],
        "",
    );
}

#[test]
fn pkcs11_init_serve_tokenize_restart_reveal() {
    let Some(hsm) = SoftHsm::new(Some("vg")) else {
        return;
    };
    let node = Node::new(&hsm.env(PIN));
    init(&node);
    let text = std::fs::read_to_string(node.path("keyring.json")).unwrap();
    assert!(text.contains("\"kind\": \"pkcs11\"") && text.contains("CKM_AES_GCM"));

    // The wrapping key, read back through the module: sensitive, never extractable.
    let info = node.ok(&["keys", "seal-info"], "");
    assert!(info.contains("extractable: false"), "{info}");
    assert!(info.contains("never extractable: true"), "{info}");
    assert!(info.contains("sensitive: true"), "{info}");

    let (upstream, _) = counting_upstream();
    node.write_config(&seal_toml(MODULE), upstream);
    let server = node.serve(&[]);
    assert_eq!(node.ready(), 200);
    let tokens = node.tokenize(&PANS);
    server.stop();
    let server = node.serve(&[]);
    assert_eq!(
        node.reveal(&tokens),
        (200, PANS.map(str::to_owned).to_vec())
    );
    server.stop();

    // Rotate works as with a passphrase.
    node.ok(&["keys", "rotate"], "");
    let server = node.serve(&[]);
    assert_eq!(node.reveal(&tokens).1, PANS);
    drop(server);
}

#[test]
fn wrong_pin_and_missing_module_are_named() {
    let Some(hsm) = SoftHsm::new(Some("vg")) else {
        return;
    };
    let node = Node::new(&hsm.env(PIN));
    init(&node);
    let (upstream, _) = counting_upstream();

    let wrong = Node {
        env: hsm
            .env("999999")
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..node
    };
    wrong.write_config(&seal_toml(MODULE), upstream);
    let out = wrong.run(&["serve", "--config", "vaultgate.toml"], "");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("wrong PIN"), "{err}");
    assert!(
        !err.contains("999999"),
        "the PIN is never in a message: {err}"
    );
    let err = wrong.fails(&["keys", "seal-info"], "");
    assert!(err.contains("wrong PIN"), "{err}");

    wrong.write_config(&seal_toml("/nonexistent/libpkcs11.so"), upstream);
    let err = wrong.fails(&["serve", "--config", "vaultgate.toml"], "");
    assert!(err.contains("cannot load the PKCS#11 module"), "{err}");
}

#[test]
fn the_keyring_and_store_without_the_token_cannot_unseal() {
    let Some(hsm) = SoftHsm::new(Some("vg")) else {
        return;
    };
    let node = Node::new(&hsm.env(PIN));
    init(&node);
    let (upstream, _) = counting_upstream();
    node.write_config(&seal_toml(MODULE), upstream);
    let server = node.serve(&[]);
    let tokens = node.tokenize(&PANS[..1]);
    server.stop();

    // The same files on a host whose module has no such token.
    let Some(empty) = SoftHsm::new(None) else {
        return;
    };
    let elsewhere = Node {
        env: empty
            .env(PIN)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..node
    };
    let err = elsewhere.fails(&["serve", "--config", "vaultgate.toml"], "");
    assert!(err.contains("no token labelled `vg`"), "{err}");
    let err = elsewhere.fails(&["detokenize", &tokens[0]], "");
    assert!(err.contains("no token"), "{err}");

    // A token with the same label and PIN but not the key.
    let Some(other) = SoftHsm::new(Some("vg")) else {
        return;
    };
    let impostor = Node {
        env: other
            .env(PIN)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..elsewhere
    };
    let err = impostor.fails(&["detokenize", &tokens[0]], "");
    assert!(err.contains("no key labelled `vg-master`"), "{err}");
}

#[test]
fn reseal_passphrase_shamir_pkcs11_passphrase_keeps_every_token() {
    let Some(hsm) = SoftHsm::new(Some("vg")) else {
        return;
    };
    let mut env = hsm.env(PIN);
    env.push(("VAULTGATE_PASSPHRASE", "first passphrase"));
    env.push(("VAULTGATE_NEW_PASSPHRASE", "second passphrase"));
    let node = Node::new(&env);
    node.ok(
        &["init", "--kdf-memory-kib", "19456", "--kdf-passes", "2"],
        "",
    );
    let tokens: Vec<String> = PANS
        .iter()
        .map(|p| {
            node.ok(&["tokenize", "--class", "pan"], p)
                .trim()
                .to_owned()
        })
        .collect();
    let reveal = |extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend(["detokenize", "--batch"]);
        let out = node.ok(&args, &tokens.join("\n"));
        assert_eq!(out.lines().collect::<Vec<_>>(), PANS, "after {extra:?}");
    };
    reveal(&[]);

    // passphrase → shamir
    let out = node.ok(
        &[
            "keys",
            "reseal",
            "--to",
            "shamir",
            "--shares",
            "3",
            "--threshold",
            "2",
        ],
        "",
    );
    let shares = share_files(node.dir.path(), "share", &out);
    assert_eq!(shares.len(), 3);
    let s0 = shares[0].to_str().unwrap();
    let s2 = shares[2].to_str().unwrap();
    reveal(&["--share-file", s0, "--share-file", s2]);
    node.fails(&["detokenize", &tokens[0]], "");

    // shamir → pkcs11 (needs the current seal: the shares)
    node.ok(
        &[
            "--share-file",
            s0,
            "--share-file",
            s2,
            "keys",
            "reseal",
            "--to",
            "pkcs11",
            "--hsm-token",
            "vg",
        ],
        "",
    );
    reveal(&[]);
    let err = node.fails(
        &["--share-file", s0, "--share-file", s2, "keys", "rekey"],
        "",
    );
    assert!(err.contains("not sealed by Shamir"), "{err}");

    // pkcs11 → passphrase
    node.ok(
        &[
            "keys",
            "reseal",
            "--to",
            "passphrase",
            "--kdf-memory-kib",
            "19456",
            "--kdf-passes",
            "2",
        ],
        "",
    );
    let err = node.fails(
        &["--passphrase-file", "/dev/null", "detokenize", &tokens[0]],
        "",
    );
    assert!(!err.is_empty());
    let pass_file = node.path("pass");
    std::fs::write(&pass_file, "second passphrase").unwrap();
    reveal(&["--passphrase-file", pass_file.to_str().unwrap()]);

    let audit = node.audit();
    assert_eq!(audit.matches("\"key_reseal\"").count(), 3, "{audit}");
}
