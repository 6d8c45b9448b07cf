use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::*;
use crate::error::Error;
use crate::sensitive::DataClass;

fn event(i: usize) -> AuditEvent {
    AuditEvent::new("checkout", Action::Reveal)
        .token(format!("tok_{i:06}"))
        .class(DataClass::Pan)
        .origin("127.0.0.1:4000")
}

fn temp_log() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    (dir, path)
}

async fn write_log(path: &Path, n: usize) {
    let log = AuditLog::open(path).unwrap();
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
    let report = verify(path).unwrap();
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
    let report = verify(&path).unwrap();
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
    assert_eq!(first["token"], "tok_000000");
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
    all[2] = all[2].replace("tok_000002", "tok_999999");
    write_lines(&path, &all);
    assert_eq!(first_bad(&path), 3);
    assert!(matches!(AuditLog::open(&path), Err(Error::Integrity(_))));
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
        seq: 3,
        time: "2030-01-01T00:00:00.000Z",
        client: "mallory",
        action: Action::Reveal,
        token: Some("tok_x"),
        class: None,
        outcome: "ok",
        origin: None,
        prev: &"1".repeat(64),
    };
    line::encode(&body, &mut forged).unwrap();
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
    let err = AuditLog::open(&path).unwrap_err();
    assert!(matches!(err, Error::Integrity(_)), "{err}");
}

#[tokio::test]
async fn reopen_continues_the_chain() {
    let (_dir, path) = temp_log();
    write_log(&path, 3).await;
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head().seq, 3);
    log.record(event(3)).await.unwrap();
    log.record_batch(&[event(4), event(5)]).await.unwrap();
    drop(log);
    let report = verify(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 6);
}

#[tokio::test]
async fn a_full_disk_makes_record_fail_closed() {
    let log = AuditLog::open("/dev/full").unwrap();
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
    let log = AuditLog::open(&path).unwrap();
    log.record(event(0)).await.unwrap();
    std::fs::remove_file(&path).unwrap();

    // The entry went to an unlinked file: refused.
    let err = log.record(event(1)).await.unwrap_err();
    assert!(matches!(err, Error::AuditUnavailable), "{err}");

    // The next record opens the path afresh and starts a new chain.
    log.record(event(2)).await.unwrap();
    let report = verify(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 1);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_keep_one_valid_chain() {
    let (_dir, path) = temp_log();
    let log = Arc::new(AuditLog::open(&path).unwrap());
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
    let report = verify(&path).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 32_000);
    let syncs = log.sync_count();
    assert!((1..=320).contains(&syncs), "{syncs}");
    eprintln!("32,000 entries in 320 batches, {syncs} fsyncs: {elapsed:?}");
}

#[test]
fn record_blocking_works_outside_a_runtime() {
    let (_dir, path) = temp_log();
    let log = AuditLog::open(&path).unwrap();
    log.record_blocking(&[AuditEvent::new("operator", Action::KeyRotate)])
        .unwrap();
    let report = verify(&path).unwrap();
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
