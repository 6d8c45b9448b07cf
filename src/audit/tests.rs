use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::*;
use crate::error::Error;
use crate::sensitive::DataClass;
use crate::vault::keys::crypto::SecretKey;

/// The test keyring's audit key (the same bytes every call).
fn key() -> AuditKey {
    AuditKey::new(SecretKey::from_slice(&[7u8; 32]).unwrap())
}

fn open(path: &Path) -> AuditLog {
    AuditLog::open(path, key()).unwrap()
}

fn verify_keyed(path: &Path) -> VerifyReport {
    verify(path, Some(&key())).unwrap()
}

/// A well-formed opaque token (the log names only strings that can be tokens).
fn tok(i: usize) -> String {
    format!("tok_{i:022}")
}

fn event(i: usize) -> AuditEvent {
    AuditEvent::new("checkout", Action::Reveal)
        .token(tok(i))
        .class(DataClass::Pan)
        .origin("127.0.0.1:4000")
}

fn temp_log() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    (dir, path)
}

async fn write_log(path: &Path, n: usize) {
    let log = open(path);
    for i in 0..n {
        log.record(event(i)).await.unwrap();
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn first_bad(path: &Path) -> u64 {
    let report = verify_keyed(path);
    report.first_bad.expect("tampering must be detected").line
}

#[test]
fn time_is_rfc3339_utc() {
    let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // 2000-02-29
    assert_eq!(line::rfc3339(t), "2000-02-29T00:00:00.123Z");
    let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(line::rfc3339(t), "2023-11-14T22:13:20.000Z");
}

#[tokio::test]
async fn chain_verifies_and_lines_have_the_documented_shape() {
    let (_dir, path) = temp_log();
    write_log(&path, 5).await;
    let report = verify_keyed(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 5);
    assert_eq!(report.last_seq, 5);

    let all = lines(&path);
    let first: serde_json::Value = serde_json::from_str(&all[0]).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["prev"], "0".repeat(64));
    assert_eq!(first["action"], "reveal");
    assert_eq!(first["class"], "pan");
    assert_eq!(first["outcome"], "ok");
    assert_eq!(first["token"], tok(0));
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    let second: serde_json::Value = serde_json::from_str(&all[1]).unwrap();
    assert_eq!(second["prev"], first["hash"]);
}

#[tokio::test]
async fn an_edited_field_is_detected() {
    let (_dir, path) = temp_log();
    write_log(&path, 5).await;
    let mut all = lines(&path);
    all[2] = all[2].replace("\"outcome\":\"ok\"", "\"outcome\":\"forbidden\"");
    write_lines(&path, &all);
    assert_eq!(first_bad(&path), 3);
}

#[tokio::test]
async fn an_edited_last_line_is_detected() {
    let (_dir, path) = temp_log();
    write_log(&path, 3).await;
    let mut all = lines(&path);
    all[2] = all[2].replace(&tok(2), &tok(999_999));
    write_lines(&path, &all);
    assert_eq!(first_bad(&path), 3);
    assert!(matches!(
        AuditLog::open(&path, key()),
        Err(Error::Integrity(_))
    ));
}

#[tokio::test]
async fn a_deleted_line_is_detected() {
    let (_dir, path) = temp_log();
    write_log(&path, 5).await;
    let mut all = lines(&path);
    all.remove(1);
    write_lines(&path, &all);
    assert_eq!(first_bad(&path), 2);

    // Deleting the first line is seen too.
    let (_dir2, path2) = temp_log();
    write_log(&path2, 3).await;
    let mut all = lines(&path2);
    all.remove(0);
    write_lines(&path2, &all);
    assert_eq!(first_bad(&path2), 1);
}

#[tokio::test]
async fn swapped_lines_are_detected() {
    let (_dir, path) = temp_log();
    write_log(&path, 5).await;
    let mut all = lines(&path);
    all.swap(1, 3);
    write_lines(&path, &all);
    assert_eq!(first_bad(&path), 2);
}

#[tokio::test]
async fn an_inserted_line_is_detected() {
    let (_dir, path) = temp_log();
    write_log(&path, 4).await;
    let mut all = lines(&path);
    // A copy of a genuine line, and a forged line with a correct self-hash.
    let copy = all[1].clone();
    all.insert(2, copy);
    write_lines(&path, &all);
    assert_eq!(first_bad(&path), 3);

    let (_dir2, path2) = temp_log();
    write_log(&path2, 4).await;
    let mut all = lines(&path2);
    let mut forged = Vec::new();
    let body = line::Body {
        v: line::VERSION,
        seq: 3,
        time: "2030-01-01T00:00:00.000Z",
        client: "mallory",
        action: Action::Reveal,
        token: Some("tok_x"),
        class: None,
        outcome: "ok",
        origin: None,
        count: None,
        prev: &"1".repeat(64),
    };
    line::encode(&body, &key(), &mut forged).unwrap();
    all.insert(2, String::from_utf8(forged).unwrap().trim_end().to_owned());
    write_lines(&path2, &all);
    assert_eq!(first_bad(&path2), 3);
}

#[tokio::test]
async fn a_truncated_last_line_is_detected_and_refused_at_open() {
    let (_dir, path) = temp_log();
    write_log(&path, 3).await;
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..text.len() - 10]).unwrap();
    assert_eq!(first_bad(&path), 3);
    let err = AuditLog::open(&path, key()).unwrap_err();
    assert!(matches!(err, Error::Integrity(_)), "{err}");
}

#[tokio::test]
async fn reopen_continues_the_chain() {
    let (_dir, path) = temp_log();
    write_log(&path, 3).await;
    let log = open(&path);
    assert_eq!(log.head().seq, 3);
    log.record(event(3)).await.unwrap();
    log.record_batch(&[event(4), event(5)]).await.unwrap();
    drop(log);
    let report = verify_keyed(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 6);
}

#[tokio::test]
async fn a_full_disk_makes_record_fail_closed() {
    let log = AuditLog::open("/dev/full", key()).unwrap();
    let err = log.record(event(0)).await.unwrap_err();
    assert!(matches!(err, Error::AuditUnavailable), "{err}");
    // And again: the log is still usable as an object, and still refuses.
    let err = log.record_batch(&[event(1), event(2)]).await.unwrap_err();
    assert!(matches!(err, Error::AuditUnavailable), "{err}");
    assert_eq!(log.head().seq, 0);
}

#[tokio::test]
async fn a_deleted_file_is_refused_then_recreated() {
    let (dir, path) = temp_log();
    let log = open(&path);
    log.record(event(0)).await.unwrap();
    std::fs::remove_file(&path).unwrap();

    // The entry went to an unlinked file: refused.
    let err = log.record(event(1)).await.unwrap_err();
    assert!(matches!(err, Error::AuditUnavailable), "{err}");

    // The next record opens the path afresh and starts a new chain.
    log.record(event(2)).await.unwrap();
    let report = verify_keyed(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 1);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_keep_one_valid_chain() {
    let (_dir, path) = temp_log();
    let log = Arc::new(open(&path));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..32 {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            for r in 0..10 {
                let batch: Vec<_> = (0..100).map(|i| event(t * 10_000 + r * 100 + i)).collect();
                log.record_batch(&batch).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let report = verify_keyed(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 32_000);
    let syncs = log.sync_count();
    assert!((1..=320).contains(&syncs), "{syncs}");
    eprintln!("32,000 entries in 320 batches, {syncs} fsyncs: {elapsed:?}");
}

#[test]
fn record_blocking_works_outside_a_runtime() {
    let (_dir, path) = temp_log();
    let log = open(&path);
    log.record_blocking(&[AuditEvent::new("operator", Action::KeyRotate)])
        .unwrap();
    let report = verify_keyed(&path);
    assert_eq!(report.entries, 1);
    assert!(report.is_intact());
}

#[test]
fn outcome_is_an_error_code() {
    let e = AuditEvent::new("a", Action::Reveal).failed(&Error::CvvExpired);
    assert_eq!(e.outcome, "cvv_expired");
    let r: crate::Result<()> = Err(Error::Forbidden("class"));
    assert_eq!(
        AuditEvent::new("a", Action::Reveal).outcome_of(&r).outcome,
        "forbidden"
    );
}

// === keyed chain, checkpoints, token names, several writers, reopen ===

/// What a forger without the keyring can do: edit a line, then recompute every
/// SHA-256 and `prev` after it, as a short script would.
fn rehash(lines: &[String]) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let mut prev = "0".repeat(64);
    lines
        .iter()
        .map(|l| {
            let cut = l.rfind(",\"hash\":\"").unwrap();
            let head = &l[..cut];
            let at = head.find("\"prev\":\"").unwrap() + 8;
            let head = format!("{}{}{}", &head[..at], prev, &head[at + 64..]);
            let hash = hex(&Sha256::digest(format!("{head}}}").as_bytes()));
            prev = hash.clone();
            format!("{head},\"hash\":\"{hash}\"}}")
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_forged_chain_with_recomputed_hashes_fails_on_the_mac() {
    let (_dir, path) = temp_log();
    write_log(&path, 5).await;
    let mut all = lines(&path);
    all[1] = all[1].replace("\"client\":\"checkout\"", "\"client\":\"someone\"");
    write_lines(&path, &rehash(&all));
    // Every hash is right again: the keyless check passes, and says what it missed.
    let hashes_only = verify(&path, None).unwrap();
    assert!(hashes_only.is_intact(), "{hashes_only}");
    assert!(hashes_only.to_string().contains("hashes only"));
    // With the key, the edited entry is named.
    let report = verify_keyed(&path);
    let bad = report.first_bad.clone().expect("forgery must be detected");
    assert_eq!(bad.line, 2, "{report}");
    assert!(bad.reason.contains("MAC"), "{report}");
    // A log written under another keyring does not verify either, and is refused.
    let (_dir2, path2) = temp_log();
    write_log(&path2, 2).await;
    let other = AuditKey::new(SecretKey::from_slice(&[8u8; 32]).unwrap());
    assert_eq!(
        verify(&path2, Some(&other))
            .unwrap()
            .first_bad
            .unwrap()
            .line,
        1
    );
    assert!(matches!(
        AuditLog::open(&path2, other),
        Err(Error::Integrity(_))
    ));
}

#[tokio::test]
async fn a_truncated_tail_is_detected_against_the_checkpoint() {
    let (_dir, path) = temp_log();
    let options = AuditOptions {
        fsync: true,
        checkpoint_every: 4,
        ..AuditOptions::default()
    };
    let log = AuditLog::open_with(&path, key(), options).unwrap();
    for i in 0..10 {
        log.record(event(i)).await.unwrap();
    }
    // Clean shutdown: a checkpoint of the head (seq 10), besides those at 4 and 8.
    log.checkpoint().unwrap();
    drop(log);
    let cps = std::fs::read_to_string(checkpoints_path(&path)).unwrap();
    assert_eq!(cps.lines().count(), 3, "{cps}");
    let report = verify_keyed(&path);
    assert!(report.is_intact(), "{report}");

    // Cut the last three entries: every remaining line verifies, the tail does not.
    let all = lines(&path);
    write_lines(&path, &all[..7]);
    let report = verify_keyed(&path);
    assert!(report.first_bad.is_none(), "{report}");
    assert_eq!(
        report.missing_tail,
        Some(MissingTail {
            checkpoint_seq: 10,
            log_seq: 7
        })
    );
    assert!(!report.is_intact());
    assert!(report.to_string().contains("missing tail"), "{report}");

    // Cut and re-append other entries: the checkpointed entry 8 differs.
    let log = open(&path);
    for i in 100..103 {
        log.record(event(i)).await.unwrap();
    }
    drop(log);
    let report = verify_keyed(&path);
    assert_eq!(report.first_bad.unwrap().line, 8);

    // A forged checkpoint (no key) is reported.
    let mut text = std::fs::read_to_string(checkpoints_path(&path)).unwrap();
    text = text.replacen("\"seq\":4", "\"seq\":5", 1);
    std::fs::write(checkpoints_path(&path), text).unwrap();
    let report = verify_keyed(&path);
    assert!(matches!(
        report.checkpoints,
        Checkpoints::Read {
            first_bad: Some(_),
            ..
        }
    ));
}

#[tokio::test]
async fn only_token_shaped_strings_are_named() {
    let (_dir, path) = temp_log();
    let log = open(&path);
    let pan = "4242424242424242";
    let long = "x".repeat(900);
    let opaque = tok(1);
    let events = [
        // A card number sent as a token: not found, so hashed.
        AuditEvent::new("c", Action::Reveal)
            .token(pan)
            .failed(&Error::TokenNotFound),
        AuditEvent::new("c", Action::Metadata)
            .token(long.as_str())
            .failed(&Error::TokenNotFound),
        AuditEvent::new("c", Action::Reveal).token(opaque.as_str()),
        // An opaque token's shape holding a card number: hashed.
        AuditEvent::new("c", Action::Reveal)
            .token("tok_4242424242424242abcdef")
            .failed(&Error::TokenNotFound),
        // A six-four token the vault found is a token: named.
        AuditEvent::new("c", Action::Reveal).token("4242421234564242"),
        AuditEvent::new("-", Action::AuthFailure)
            .origin("10.0.0.1")
            .count(17),
    ];
    log.record_batch(&events).await.unwrap();
    drop(log);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(pan), "{text}");
    assert!(!text.contains("tok_4242"), "{text}");
    assert!(!text.contains(&long));
    assert!(text.contains(&opaque));
    assert!(text.contains("4242421234564242"));
    assert!(text.contains("\"count\":17"));
    let all = lines(&path);
    let first: serde_json::Value = serde_json::from_str(&all[0]).unwrap();
    let h = first["token"].as_str().unwrap();
    assert!(h.starts_with("h:") && h.len() == 18, "{h}");
    assert!(all.iter().all(|l| l.len() < 600));
    assert!(verify_keyed(&path).is_intact());
}

#[test]
fn two_writers_on_one_file_keep_one_chain() {
    // Two logs on one path stand for two processes: each has its own file
    // description, its own flock and its own idea of the head.
    let (_dir, path) = temp_log();
    let a = Arc::new(open(&path));
    let b = Arc::new(open(&path));
    let threads: Vec<_> = [a, b]
        .into_iter()
        .map(|log| {
            std::thread::spawn(move || {
                for i in 0..200 {
                    log.record_blocking(&[event(i), event(i + 1)]).unwrap();
                }
                log.checkpoint().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = verify_keyed(&path);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 800);
}

#[tokio::test]
async fn reopen_after_rename_starts_a_new_file_and_both_verify() {
    let (dir, path) = temp_log();
    let log = open(&path);
    log.record_batch(&[event(0), event(1)]).await.unwrap();
    let rotated = dir.path().join("audit.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    log.reopen().unwrap();
    log.record(event(2)).await.unwrap();
    log.checkpoint().unwrap();
    drop(log);
    let old = verify_with(&rotated, &checkpoints_path(&path), Some(&key())).unwrap();
    assert!(old.is_intact(), "{old}");
    assert_eq!(old.entries, 2);
    assert!(matches!(
        old.checkpoints,
        Checkpoints::Read { matched: 1, .. }
    ));
    let new = verify_keyed(&path);
    assert!(new.is_intact(), "{new}");
    assert_eq!(new.entries, 1);
}
