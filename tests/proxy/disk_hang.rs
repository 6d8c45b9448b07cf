//! A hung disk under the embedded store (sled, then fjall): the store's file system is
//! frozen (`fsfreeze`, an ext4 image on a loop device) under the real binary with one
//! proxy shard. While it is frozen, a tokenizing request is answered 503
//! `store_unavailable` within `vault.flush_timeout_ms` and forwards nothing; pass-through
//! requests on the same shard, `/healthz`, `/metrics` and reveals of existing tokens
//! still answer; `/readyz` goes 503 and the metrics show the hung flush. Once thawed,
//! the server is ready again by itself and tokenizes again; every token the upstream
//! was given reveals to its card, after a restart too.
//!
//! Needs root and loop devices (as in CI, where `.ci/run` installs e2fsprogs and
//! util-linux); elsewhere the test says why it did not run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::json;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream};
use vaultgate::sensitive::luhn;

use crate::common::binary::{VaultDir, free_port, wait_listening};
use crate::common::*;

/// `vault.flush_timeout_ms` in this test: short, so that the test is.
const FLUSH_TIMEOUT: Duration = Duration::from_millis(1000);

/// How long anything that does not need the disk may take while it is frozen (a
/// loaded 2-core machine included); without the fix these waited for the thaw.
const PROMPT: Duration = Duration::from_secs(3);

const ROUTES: &str = r#"
[[routes]]
name = "cards"
upstream = "backend"
method = "POST"
path = "/v1/payment"
profile = "q2open"

[[routes]]
name = "rest"
upstream = "backend"
path = "/*"
"#;

/// Why this process cannot freeze a file system, if it cannot: not root, no loop
/// devices, or (a container without the rights, say) a loop image that does not
/// mount or freeze.
fn cannot_freeze() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0");
    if !root {
        return Some("not root".to_owned());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("no loop devices (/dev/loop-control)".to_owned());
    }
    let dir = tempfile::tempdir().ok()?;
    let (img, mnt) = (dir.path().join("img"), dir.path().join("mnt"));
    let made = std::fs::create_dir(&mnt)
        .and_then(|()| std::fs::File::create(&img)?.set_len(8 << 20))
        .is_ok();
    let (img, mnt) = (path_str(&img), path_str(&mnt));
    let probe = |cmd: &str, args: &[&str]| -> Option<String> {
        match Command::new(cmd).args(args).output() {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!(
                "{cmd}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Some(format!("{cmd}: {e}")),
        }
    };
    let why = if made {
        None
    } else {
        Some("no temp image".to_owned())
    }
    .or_else(|| probe("mkfs.ext4", &["-q", "-F", &img]))
    .or_else(|| probe("mount", &["-o", "loop", &img, &mnt]));
    if why.is_none() {
        let frozen = probe("fsfreeze", &["-f", &mnt]);
        let _ = probe("fsfreeze", &["-u", &mnt]);
        let _ = probe("umount", &["-l", &mnt]);
        return frozen;
    }
    why
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (e2fsprogs and util-linux are needed)"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ext4 image mounted on a loop device at `mnt`; thawed and unmounted on drop,
/// also when the test fails half-way (declare it after the server, so that it drops
/// first: a process blocked on a frozen file system dies only once it thaws).
struct LoopFs {
    mnt: PathBuf,
}

impl LoopFs {
    fn mount(dir: &Path) -> LoopFs {
        let img = dir.join("img");
        let mnt = dir.join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        std::fs::File::create(&img)
            .unwrap()
            .set_len(200 << 20)
            .unwrap();
        let (img, mnt_s) = (path_str(&img), path_str(&mnt));
        run("mkfs.ext4", &["-q", "-F", &img]);
        run("mount", &["-o", "loop", &img, &mnt_s]);
        LoopFs { mnt }
    }

    fn freeze(&self) {
        run("fsfreeze", &["-f", &path_str(&self.mnt)]);
    }

    fn thaw(&self) {
        run("fsfreeze", &["-u", &path_str(&self.mnt)]);
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("fsfreeze").arg("-u").arg(&self.mnt).output();
        // Lazily: a file the store still holds open does not keep it mounted; the loop
        // device is released with the mount (`mount -o loop` sets autoclear).
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}

/// A server that is killed when the test ends, also when it fails half-way.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn card(i: u64) -> String {
    let mut digits = format!("411111{i:09}");
    digits.push(char::from(b'0' + luhn::check_digit(&digits)));
    digits
}

/// POST a new card; its token as forwarded when answered 200, else the reply. Also
/// how long the answer took.
async fn tokenize(
    proxy: SocketAddr,
    echo: &EchoHandle,
    pan: &str,
) -> (Result<String, Reply>, Duration) {
    let body = format!(r#"{{"paymentType":"card","cardNumber":"{pan}"}}"#);
    let req = Request::post(url(proxy, "/v1/payment"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let before = payments(echo).len();
    let started = Instant::now();
    let reply = send(&http1(), req).await;
    let took = started.elapsed();
    let got = payments(echo);
    if reply.status != StatusCode::OK {
        assert_eq!(got.len(), before, "a refused request was forwarded");
        return (Err(reply), took);
    }
    let sent: serde_json::Value = serde_json::from_slice(got.last().unwrap()).unwrap();
    let token = sent["cardNumber"].as_str().unwrap().to_owned();
    assert_ne!(token, pan);
    (Ok(token), took)
}

/// The bodies of the tokenizing requests the upstream received (pass-through
/// requests go to other paths).
fn payments(echo: &EchoHandle) -> Vec<Bytes> {
    echo.received()
        .into_iter()
        .filter(|r| r.path == "/v1/payment")
        .map(|r| r.body)
        .collect()
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    let req = Request::get(url(addr, path))
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(&http1(), req).await
}

/// `what` must answer within [`PROMPT`].
async fn promptly<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PROMPT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PROMPT:?} while the disk is frozen"))
}

/// One sample of a metric without labels.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in the metrics"))
}

async fn wait_ready(admin: SocketAddr, want: StatusCode, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(admin, "/readyz").await.status != want {
        assert!(Instant::now() < deadline, "{what}: /readyz is not {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_frozen_disk_answers_503_in_time_and_stalls_nothing_else() {
    if let Some(why) = cannot_freeze() {
        eprintln!("disk_hang: cannot freeze a file system here ({why}): not run");
        return;
    }
    for store in ["sled", "fjall"] {
        let mut vault = VaultDir::init_on(store);
        let (up, echo) = EchoUpstream::start().await.unwrap();
        let echo = std::sync::Arc::new(echo);
        let (proxy, admin) = (free_port(), free_port());
        let client = api_client("probe", "reveal = [\"pan\"]");
        // The audit log stays off the frozen disk here: a reveal must not need the
        // store's disk.
        let rest = format!(
            "[[upstreams]]\nname = \"backend\"\nurl = \"http://{up}\"\n{ROUTES}{}{}",
            client.toml,
            audit_toml(&vault.dir.path().join("audit.log"))
        );
        let fs_dir = tempfile::tempdir().unwrap();
        let mut child: Option<Server> = None;
        // Dropped before `child`: thawed first, then the server is killed.
        let fs = LoopFs::mount(fs_dir.path());
        vault.data = fs.mnt.join("data");
        let config = vault.write_config(proxy, admin, &rest);
        // One proxy shard: a pass-through request shares the tokenizing one's thread.
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replacen("[api]", "workers = 1\n[api]", 1)
            .replacen(
                "[log]",
                &format!("flush_timeout_ms = {}\n[log]", FLUSH_TIMEOUT.as_millis()),
                1,
            );
        std::fs::write(&config, text).unwrap();
        let server = child.insert(Server(vault.serve(&config)));
        wait_listening(&mut server.0, proxy, Duration::from_secs(60)).await;

        let mut given: HashMap<String, String> = HashMap::new();
        for i in 0..3 {
            let (token, _) = tokenize(proxy, &echo, &card(i)).await;
            let token = token.unwrap_or_else(|r| panic!("{store}: {}", r.status));
            given.insert(token, card(i));
        }
        let early = given.keys().next().unwrap().clone();

        fs.freeze();
        // Two tokenizing requests: the first one's flush hangs; the second one's write
        // waits behind it (on fjall, for the journal lock the hung flush holds). Both
        // are answered 503 within the bound, nothing sent.
        let mut pending = Vec::new();
        for i in [100, 101] {
            let echo = std::sync::Arc::clone(&echo);
            pending.push(tokio::spawn(async move {
                tokenize(proxy, &echo, &card(i)).await
            }));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Meanwhile, on the same shard and on the API: answers, at once.
        let pass = promptly("pass-through", get(proxy, "/v1/things")).await;
        assert_eq!(pass.status, StatusCode::OK, "{store}: pass-through");
        let health = promptly("/healthz", get(admin, "/healthz")).await;
        assert_eq!(health.status, StatusCode::OK, "{store}");
        let shown = promptly(
            "a reveal",
            api(
                admin,
                "POST",
                "/v1/detokenize",
                &client.key,
                json!({ "tokens": [early] }),
            ),
        )
        .await;
        assert_eq!(shown.status, StatusCode::OK, "{store}: reveal");
        assert_eq!(
            shown.json()["results"][0]["value"].as_str(),
            given.get(&early).map(String::as_str),
            "{store}"
        );
        for task in pending {
            let (refused, took) =
                promptly("a tokenizing request", async { task.await.unwrap() }).await;
            let refused = refused.expect_err("tokenized while the disk was frozen");
            assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{store}");
            assert_eq!(code(&refused), "store_unavailable", "{store}");
            assert!(
                took >= FLUSH_TIMEOUT.mul_f32(0.9),
                "{store}: answered after {took:?}, before the flush timed out"
            );
        }

        // Not ready while the flush hangs; the metrics show it. New writes are
        // refused at once now, not after another bound.
        wait_ready(admin, StatusCode::SERVICE_UNAVAILABLE, store).await;
        let (again, took) =
            promptly("a tokenizing request", tokenize(proxy, &echo, &card(102))).await;
        assert_eq!(
            code(&again.expect_err("tokenized while frozen")),
            "store_unavailable"
        );
        assert!(took < FLUSH_TIMEOUT, "{store}: refused after {took:?}");
        // A card tokenized before the freeze stores nothing, but its request waits for
        // every write made so far, the refused ones' included: refused at once too,
        // not after another bound.
        let (known, took) = promptly("a known card", tokenize(proxy, &echo, &card(0))).await;
        assert_eq!(
            code(&known.expect_err("forwarded while writes were not durable")),
            "store_unavailable"
        );
        assert!(
            took < FLUSH_TIMEOUT,
            "{store}: a known card refused after {took:?}"
        );
        let metrics = promptly("/metrics", get(admin, "/metrics")).await;
        let text = String::from_utf8_lossy(&metrics.body).into_owned();
        assert!(
            metric(&text, "vaultgate_store_flush_pending_seconds") >= FLUSH_TIMEOUT.as_secs_f64(),
            "{store}: {text}"
        );
        assert!(
            metric(&text, "vaultgate_store_flush_timeouts_total") >= 2.0,
            "{store}"
        );
        assert!(
            text.contains("vaultgate_ready{check=\"store_reachable\"} 0"),
            "{store}"
        );
        let log = vault.serve_log();
        assert!(log.contains("has not returned in time"), "{store}: {log}");
        assert!(!log.contains("the disk answers again"), "{store}: {log}");

        // Thawed: ready again by itself, and tokenizing again.
        fs.thaw();
        wait_ready(admin, StatusCode::OK, store).await;
        assert!(
            vault.serve_log().contains("the disk answers again"),
            "{store}"
        );
        for i in 200..203 {
            let (token, _) = tokenize(proxy, &echo, &card(i)).await;
            given.insert(
                token.unwrap_or_else(|r| panic!("{store}: {}", r.status)),
                card(i),
            );
        }
        // Exactly the answered requests were forwarded.
        assert_eq!(payments(&echo).len(), given.len(), "{store}");

        // Every token the upstream got reveals to its card after a restart.
        drop(child.take());
        let tokens: Vec<String> = given.keys().cloned().collect();
        let revealed = vault.detokenize_batch(&tokens);
        assert_eq!(revealed.len(), tokens.len(), "{store}");
        for (token, value) in tokens.iter().zip(&revealed) {
            assert_eq!(Some(value), given.get(token), "{store}: {token}");
        }
        let server = child.insert(Server(vault.serve(&config)));
        wait_listening(&mut server.0, proxy, Duration::from_secs(60)).await;
        let (token, _) = tokenize(proxy, &echo, &card(300)).await;
        assert!(token.is_ok(), "{store}: after a restart");
        drop(fs);
        drop(child);
    }
}

/// The audit log on the frozen disk (its default place, in `vault.data`): a reveal
/// writes it, so reveals are refused with 503 `audit_unavailable` within the bound,
/// while `/healthz`, `/metrics` and pass-through traffic keep answering; `/readyz` is
/// 503 until the thaw. The audit write used to run on the API's runtime workers, and
/// two reveals held both of them until the thaw: every API endpoint stalled.
#[tokio::test]
async fn a_frozen_audit_log_refuses_reveals_and_stalls_nothing_else() {
    if let Some(why) = cannot_freeze() {
        eprintln!("disk_hang: cannot freeze a file system here ({why}): not run");
        return;
    }
    let mut vault = VaultDir::init_on("sled");
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let (proxy, admin) = (free_port(), free_port());
    let client = api_client("probe", "reveal = [\"pan\"]");
    let rest = format!(
        "[[upstreams]]\nname = \"backend\"\nurl = \"http://{up}\"\n{ROUTES}{}",
        client.toml
    );
    let fs_dir = tempfile::tempdir().unwrap();
    let mut child: Option<Server> = None;
    // Dropped before `child`: thawed first, then the server is killed.
    let fs = LoopFs::mount(fs_dir.path());
    vault.data = fs.mnt.join("data");
    let config = vault.write_config(proxy, admin, &rest);
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[log]",
        &format!("flush_timeout_ms = {}\n[log]", FLUSH_TIMEOUT.as_millis()),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let server = child.insert(Server(vault.serve(&config)));
    wait_listening(&mut server.0, proxy, Duration::from_secs(60)).await;
    let (token, _) = tokenize(proxy, &echo, &card(7)).await;
    let token = token.unwrap_or_else(|r| panic!("{}", r.status));
    let reveal = || {
        let (key, token) = (client.key.clone(), token.clone());
        async move {
            api(
                admin,
                "POST",
                "/v1/detokenize",
                &key,
                json!({ "tokens": [token] }),
            )
            .await
        }
    };
    assert_eq!(reveal().await.status, StatusCode::OK);

    fs.freeze();
    // More reveals at once than the API has runtime workers.
    let reveals: Vec<_> = (0..4).map(|_| tokio::spawn(reveal())).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = promptly("/healthz", get(admin, "/healthz")).await;
    assert_eq!(health.status, StatusCode::OK);
    let metrics = promptly("/metrics", get(admin, "/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let pass = promptly("pass-through", get(proxy, "/v1/things")).await;
    assert_eq!(pass.status, StatusCode::OK);
    for r in reveals {
        let r = promptly("a reveal", async { r.await.unwrap() }).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(code(&r), "audit_unavailable");
        assert!(!String::from_utf8_lossy(&r.body).contains(&card(7)));
    }
    wait_ready(admin, StatusCode::SERVICE_UNAVAILABLE, "audit").await;
    let refused = promptly("a reveal", reveal()).await;
    assert_eq!(code(&refused), "audit_unavailable");

    fs.thaw();
    wait_ready(admin, StatusCode::OK, "audit").await;
    let shown = reveal().await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(
        shown.json()["results"][0]["value"].as_str(),
        Some(card(7).as_str())
    );
    drop(fs);
    drop(child);
}
