//! The real `vaultgate` binary as a child process: keyring, config file, `serve`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_vaultgate");
pub const PASS: &str = "a test passphrase";

/// A port that was free a moment ago (bound, then released).
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A vault directory: a keyring made with `vaultgate init` (fast KDF) and a store
/// directory beside it.
pub struct VaultDir {
    pub dir: tempfile::TempDir,
    pub keyring: PathBuf,
    pub data: PathBuf,
    /// `vault.store` (and `--store`): `sled` unless made with [`VaultDir::init_on`].
    pub store: &'static str,
}

impl VaultDir {
    pub fn init() -> VaultDir {
        VaultDir::init_on("sled")
    }

    /// A vault directory whose store is `store` (`sled` or `fjall`).
    pub fn init_on(store: &'static str) -> VaultDir {
        VaultDir::init_with_kdf(store, 19456, 2)
    }

    /// A vault directory whose keyring's argon2 takes `memory_kib` and `passes`: a
    /// heavier one makes `serve`'s unseal take a while.
    pub fn init_with_kdf(store: &'static str, memory_kib: u32, passes: u32) -> VaultDir {
        let dir = tempfile::tempdir().unwrap();
        let keyring = dir.path().join("keyring.json");
        let data = dir.path().join("data");
        let out = Command::new(BIN)
            .args(["--keyring", super::path_str(&keyring).as_str()])
            .args(["--data", super::path_str(&data).as_str()])
            .args(["init", "--kdf-memory-kib", &memory_kib.to_string()])
            .args(["--kdf-passes", &passes.to_string()])
            .env("VAULTGATE_PASSPHRASE", PASS)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        VaultDir {
            dir,
            keyring,
            data,
            store,
        }
    }

    /// Write a config (the `[vault]` section is added here) and return its path.
    pub fn write_config(&self, proxy: SocketAddr, api: SocketAddr, rest: &str) -> PathBuf {
        let text = format!(
            r#"
[proxy]
listen = "{proxy}"
[api]
listen = "{api}"
[vault]
keyring = "{}"
data = "{}"
store = "{}"
cache_capacity_mb = 16
[log]
level = "warn"
{rest}
"#,
            super::path_str(&self.keyring),
            super::path_str(&self.data),
            self.store
        );
        let path = self.dir.path().join("vaultgate.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `vaultgate serve --config …`, its stderr appended to `serve.log` in the dir.
    pub fn serve(&self, config: &Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .unwrap();
        Command::new(BIN)
            .args(["serve", "--config", super::path_str(config).as_str()])
            .env("VAULTGATE_PASSPHRASE", PASS)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    pub fn serve_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Reveal tokens through `vaultgate detokenize --batch` (the server must be
    /// stopped: an embedded store is locked). One line per token: the value or `!code`.
    pub fn detokenize_batch(&self, tokens: &[String]) -> Vec<String> {
        use std::io::Write as _;
        let mut child = Command::new(BIN)
            .args(["--keyring", super::path_str(&self.keyring).as_str()])
            .args(["--data", super::path_str(&self.data).as_str()])
            .args(["--store", self.store])
            .args(["detokenize", "--batch"])
            .env("VAULTGATE_PASSPHRASE", PASS)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = tokens.join("\n") + "\n";
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(
            out.status.success(),
            "detokenize --batch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Wait until something accepts connections on `addr` (or the child exits).
pub async fn wait_listening(child: &mut Child, addr: SocketAddr, patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("vaultgate serve exited with {status} before listening on {addr}");
        }
        assert!(
            Instant::now() < deadline,
            "vaultgate serve is not listening on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Open file descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// The real binary with one proxy worker and the default `[limits]` (a 1 MiB body),
/// in front of an echo upstream that answers after `delay`: `routes` (to the upstream
/// `backend`) and `vault_lines` (for `[vault]`: `sweep_threshold = 0`, say) go into
/// its config. Killed when dropped.
pub struct OneWorker {
    _vault: VaultDir,
    pub child: Child,
    pub proxy: SocketAddr,
    echo: Option<vaultgate::demo::echo::EchoHandle>,
}

impl OneWorker {
    pub async fn start(delay: Duration, routes: &str, vault_lines: &str) -> OneWorker {
        use vaultgate::demo::echo::{EchoOptions, EchoUpstream};
        let (up, echo) = EchoUpstream::start_with(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            EchoOptions { delay, tls: None },
        )
        .await
        .unwrap();
        let mut served = OneWorker::start_for(up, routes, "", vault_lines).await;
        served.echo = Some(echo);
        served
    }

    /// The same in front of the upstream at `up` (no echo), with `proxy_lines` in its
    /// `[proxy]` section. The binary is `VAULTGATE_MEASURE_BIN` when that is set (a
    /// release build, for the `#[ignore]`d measurements), else the test build's.
    pub async fn start_for(
        up: SocketAddr,
        routes: &str,
        proxy_lines: &str,
        vault_lines: &str,
    ) -> OneWorker {
        let vault = VaultDir::init();
        let (proxy, api) = (free_port(), free_port());
        let config = vault.write_config(
            proxy,
            api,
            &format!("[[upstreams]]\nname = \"backend\"\nurl = \"http://{up}\"\n{routes}"),
        );
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replacen("[api]", &format!("workers = 1\n{proxy_lines}\n[api]"), 1)
            .replacen("[log]", &format!("{vault_lines}\n[log]"), 1);
        std::fs::write(&config, text).unwrap();
        let bin = std::env::var("VAULTGATE_MEASURE_BIN").unwrap_or_else(|_| BIN.to_owned());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(vault.dir.path().join("serve.log"))
            .unwrap();
        let mut child = Command::new(bin)
            .args(["serve", "--config", super::path_str(&config).as_str()])
            .env("VAULTGATE_PASSPHRASE", PASS)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_listening(&mut child, proxy, Duration::from_secs(20)).await;
        OneWorker {
            _vault: vault,
            child,
            proxy,
            echo: None,
        }
    }

    /// What the upstream received.
    pub fn echo(&self) -> &vaultgate::demo::echo::EchoHandle {
        self.echo.as_ref().expect("the upstream runs until stop")
    }

    /// CPU time of every thread of the server, in nanoseconds (`schedstat`: finer
    /// than the clock ticks of `stat`).
    pub fn cpu_ns(&self) -> u64 {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    /// Kill the server and stop the upstream.
    pub async fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(echo) = self.echo.take() {
            echo.stop().await;
        }
    }
}

impl Drop for OneWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
