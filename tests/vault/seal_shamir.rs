//! Shamir seals, with the real binary: `init --seal shamir`, a server that starts
//! sealed and is unsealed share by share over its API, rekey, and seal.

use std::sync::atomic::Ordering;

use crate::common::path_str;
use crate::seal_support::{Node, counting_upstream, http, share_files, stderr};

const PANS: [&str; 2] = ["4111111111111111", "5555555555554444"];

fn shamir_node(shares: u8, threshold: u8) -> (Node, Vec<std::path::PathBuf>) {
    let node = Node::new(&[]);
    let (s, t) = (shares.to_string(), threshold.to_string());
    let out = node.ok(
        &[
            "init",
            "--seal",
            "shamir",
            "--shares",
            &s,
            "--threshold",
            &t,
        ],
        "",
    );
    let files = share_files(node.dir.path(), "share", &out);
    assert_eq!(files.len(), usize::from(shares), "{out}");
    (node, files)
}

#[test]
fn three_of_five_unseal_serve_and_survive_a_restart() {
    let (node, shares) = shamir_node(5, 3);
    let (upstream, hits) = counting_upstream();
    node.write_config("kind = \"shamir\"", upstream);
    let server = node.serve(&[]);

    // Sealed: nothing is forwarded, the vault API and /readyz say so.
    let (status, body) = http(node.proxy, "GET", "/pass/x", None, "");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"sealed\""), "{body}");
    assert_eq!(node.ready(), 503);
    assert_eq!(node.status()["received"], 0);

    // Two shares: still sealed, still nothing forwarded.
    for share in &shares[..2] {
        let out = node.unseal(share);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let status = node.status();
    assert_eq!(status["sealed"], true);
    assert_eq!(status["received"], 2);
    assert_eq!(status["threshold"], 3);
    assert_eq!(http(node.proxy, "GET", "/pass/x", None, "").0, 503);
    assert_eq!(node.reveal(&["tok".into()]).0, 503);
    assert_eq!(node.ready(), 503);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a sealed proxy forwards nothing"
    );

    // The third share unseals (through stdin this time).
    let text = std::fs::read_to_string(&shares[4]).unwrap();
    let url = format!("http://{}", node.api);
    let out = node.run(&["unseal", "--api-url", &url], &text);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("unsealed"), "{}", stderr(&out));
    assert_eq!(node.status()["sealed"], false);
    assert_eq!(node.ready(), 200);
    assert_eq!(http(node.proxy, "GET", "/pass/x", None, "").0, 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let tokens = node.tokenize(&PANS);
    server.stop();

    // Unattended restart: --share-file at start.
    let args: Vec<String> = shares[1..4]
        .iter()
        .flat_map(|p| ["--share-file".to_owned(), path_str(p)])
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = node.serve(&args);
    assert_eq!(node.ready(), 200);
    let (status, values) = node.reveal(&tokens);
    assert_eq!(status, 200);
    assert_eq!(values, PANS);
    server.stop();

    // Every attempt and the unseal are audited, without share material.
    let audit = node.audit();
    assert_eq!(audit.matches("\"unseal_attempt\"").count(), 3, "{audit}");
    assert!(audit.contains("\"action\":\"unseal\""), "{audit}");
    for share in &shares {
        let text = std::fs::read_to_string(share).unwrap();
        let point = text.trim().split('-').nth(5).unwrap().to_owned();
        assert!(!audit.contains(&point) && !node.log().contains(&point));
    }
}

#[test]
fn corrupted_and_foreign_shares_are_refused_by_name() {
    let (node, shares) = shamir_node(3, 2);
    let (_other, other_shares) = shamir_node(3, 2);
    let (upstream, _) = counting_upstream();
    node.write_config("kind = \"shamir\"", upstream);
    let _server = node.serve(&[]);

    // One character of the point mistyped.
    let text = std::fs::read_to_string(&shares[0]).unwrap();
    let mut parts: Vec<String> = text.trim().split('-').map(str::to_owned).collect();
    let point = &mut parts[5];
    let c = if point.starts_with('0') { "1" } else { "0" };
    point.replace_range(0..1, c);
    let typo = node.path("typo");
    std::fs::write(&typo, parts.join("-")).unwrap();
    let out = node.unseal(&typo);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("mistyped"), "{}", stderr(&out));

    let out = node.unseal(&other_shares[0]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("another keyring"), "{}", stderr(&out));

    let cut = node.path("cut");
    std::fs::write(&cut, &text[..40]).unwrap();
    let out = node.unseal(&cut);
    assert!(
        stderr(&out).contains("not a vaultgate share"),
        "{}",
        stderr(&out)
    );

    // None of them counted.
    assert_eq!(node.status()["received"], 0);
    // The audit key comes from the master key, so attempts made while sealed are
    // written when the vault unseals (held in memory until then).
    for share in &shares[..2] {
        assert!(node.unseal(share).status.success());
    }
    let audit = node.audit();
    assert!(audit.contains("\"outcome\":\"invalid_share\""), "{audit}");
}

#[test]
fn rekey_retires_the_old_shares() {
    let (node, old) = shamir_node(3, 2);
    let out = node.run(
        &[
            "--share-file",
            path_str(&old[0]).as_str(),
            "--share-file",
            path_str(&old[2]).as_str(),
            "keys",
            "rekey",
            "--shares",
            "4",
            "--threshold",
            "3",
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let new = share_files(
        node.dir.path(),
        "new",
        &String::from_utf8(out.stdout).unwrap(),
    );
    assert_eq!(new.len(), 4);
    assert!(node.audit().contains("\"key_rekey\""));

    let (upstream, _) = counting_upstream();
    node.write_config("kind = \"shamir\"", upstream);
    let _server = node.serve(&[]);
    let out = node.unseal(&old[1]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("older split"), "{}", stderr(&out));
    assert_eq!(node.status()["generation"], 2);
    for share in &new[..3] {
        let out = node.unseal(share);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(node.status()["sealed"], false);
    assert_eq!(node.ready(), 200);
}

#[test]
fn seal_through_the_api_and_unseal_again() {
    let (node, shares) = shamir_node(3, 2);
    let (upstream, hits) = counting_upstream();
    node.write_config("kind = \"shamir\"", upstream);
    let args = [
        "--share-file".to_owned(),
        path_str(&shares[0]),
        "--share-file".to_owned(),
        path_str(&shares[1]),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _server = node.serve(&args);
    assert_eq!(http(node.proxy, "GET", "/pass/x", None, "").0, 200);
    let tokens = node.tokenize(&PANS);

    // Unauthenticated: refused.
    assert_eq!(http(node.api, "POST", "/v1/sys/seal", None, "").0, 401);
    let out = node.seal();
    assert!(out.status.success(), "{}", stderr(&out));
    let before = hits.load(Ordering::SeqCst);
    assert_eq!(http(node.proxy, "GET", "/pass/x", None, "").0, 503);
    assert_eq!(node.reveal(&tokens).0, 503);
    assert_eq!(node.ready(), 503);
    assert_eq!(hits.load(Ordering::SeqCst), before);

    for share in &shares[1..] {
        let out = node.unseal(share);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(http(node.proxy, "GET", "/pass/x", None, "").0, 200);
    assert_eq!(
        node.reveal(&tokens),
        (200, PANS.map(str::to_owned).to_vec())
    );
    let audit = node.audit();
    assert!(
        audit.contains("\"action\":\"seal\",") && audit.contains("\"client\":\"ops\""),
        "{audit}"
    );
}
