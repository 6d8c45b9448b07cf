//! A full disk under the embedded store (sled, then fjall), on a real tmpfs, with the
//! real binary: once a flush fails, tokenizing requests fail closed (5xx, nothing
//! forwarded), `/readyz` reports the store (`store_reachable`) so that a load balancer
//! drains the instance; after space is freed and the server restarted, every token
//! the upstream was given reveals to its card (`vaultgate detokenize --batch`) and new
//! cards are tokenized again.
//!
//! Mounting needs root (as in CI); elsewhere the test says it did not run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use vaultgate::demo::echo::{EchoHandle, EchoUpstream};
use vaultgate::sensitive::luhn;

use crate::common::binary::{VaultDir, free_port, wait_listening};
use crate::common::*;

const ROUTE: &str = r#"
[[routes]]
name = "q2open"
upstream = "backend"
method = "POST"
path = "/v1/payment"
profile = "q2open"
"#;

/// A tmpfs of `size` at `dir`, unmounted on drop; `None` when this process may not
/// mount.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a file the store still holds open does not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
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

/// Write zeros to `path` until the file system is full.
fn fill(path: &Path) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

fn card(i: u64) -> String {
    let mut digits = format!("424242{i:09}");
    digits.push(char::from(b'0' + luhn::check_digit(&digits)));
    digits
}

/// POST a new card; its token as forwarded when answered 200, else the reply.
async fn tokenize(proxy: SocketAddr, echo: &EchoHandle, pan: &str) -> Result<String, Reply> {
    let body = format!(r#"{{"paymentType":"card","cardNumber":"{pan}"}}"#);
    let req = Request::post(url(proxy, "/v1/payment"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let before = echo.received().len();
    let reply = send(&http1(), req).await;
    let got = echo.received();
    if reply.status != StatusCode::OK {
        assert_eq!(got.len(), before, "a refused request was forwarded");
        return Err(reply);
    }
    let sent: serde_json::Value = serde_json::from_slice(&got.last().unwrap().body).unwrap();
    let token = sent["cardNumber"].as_str().unwrap().to_owned();
    assert_ne!(token, pan);
    Ok(token)
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    let req = Request::get(url(addr, path))
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(&http1(), req).await
}

#[tokio::test]
async fn a_full_disk_fails_closed_reports_not_ready_and_keeps_every_token() {
    for store in ["sled", "fjall"] {
        let mut vault = VaultDir::init_on(store);
        let mnt = vault.dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let Some(_tmpfs) = Tmpfs::mount(&mnt, "16m") else {
            eprintln!("disk_full: cannot mount a tmpfs here (not root?): not run");
            return;
        };
        vault.data = mnt.join("data");
        let (up, echo) = EchoUpstream::start().await.unwrap();
        let (proxy, api) = (free_port(), free_port());
        let rest = format!("[[upstreams]]\nname = \"backend\"\nurl = \"http://{up}\"\n{ROUTE}");
        let config = vault.write_config(proxy, api, &rest);
        let mut child = Server(vault.serve(&config));
        wait_listening(&mut child.0, proxy, Duration::from_secs(60)).await;

        // Some tokens while there is room, then no room at all.
        let mut given: HashMap<String, String> = HashMap::new();
        let mut refused = None;
        for i in 0..20_000u64 {
            if i == 50 {
                fill(&mnt.join("filler"));
            }
            let pan = card(i);
            match tokenize(proxy, &echo, &pan).await {
                Ok(token) => {
                    given.insert(token, pan);
                }
                Err(reply) => {
                    refused = Some(reply);
                    break;
                }
            }
        }
        let refused =
            refused.unwrap_or_else(|| panic!("{store}: the full disk never failed a write"));
        assert!(
            refused.status.is_server_error(),
            "{store}: {}",
            refused.status
        );
        let code = refused.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(
            ["store_error", "store_unavailable"].contains(&code.as_str()),
            "{store}: {code}"
        );
        assert!(given.len() >= 50, "{store}: {} tokens", given.len());
        // The forwarded requests are exactly the answered ones.
        assert_eq!(echo.received().len(), given.len(), "{store}");

        // Not ready within a few watch periods (one a second), and the metric says why.
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(api, "/readyz").await.status != StatusCode::SERVICE_UNAVAILABLE {
            assert!(Instant::now() < deadline, "{store}: still ready");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let metrics = get(api, "/metrics").await;
        assert!(
            String::from_utf8_lossy(&metrics.body)
                .contains("vaultgate_ready{check=\"store_reachable\"} 0"),
            "{store}"
        );

        // Space again, a restart: every token the upstream got reveals to its card,
        // and new cards are tokenized again.
        drop(child);
        std::fs::remove_file(mnt.join("filler")).unwrap();
        let tokens: Vec<String> = given.keys().cloned().collect();
        let revealed = vault.detokenize_batch(&tokens);
        assert_eq!(revealed.len(), tokens.len(), "{store}");
        for (token, value) in tokens.iter().zip(&revealed) {
            assert_eq!(Some(value), given.get(token), "{store}: {token}");
        }
        let mut child = Server(vault.serve(&config));
        wait_listening(&mut child.0, proxy, Duration::from_secs(60)).await;
        assert!(
            tokenize(proxy, &echo, &card(99_999)).await.is_ok(),
            "{store}"
        );
        assert_eq!(get(api, "/readyz").await.status, StatusCode::OK, "{store}");
        drop(child);
    }
}
