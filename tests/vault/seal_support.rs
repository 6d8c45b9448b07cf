//! What the seal tests share: the real binary with its environment, a raw HTTP/1.1
//! client, an upstream that counts what reaches it, and an API client key.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::binary::{BIN, free_port};
use crate::common::path_str;

/// A directory with a keyring, a store, a config and the child's log.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    pub proxy: SocketAddr,
    pub api: SocketAddr,
    pub key: String,
    pub client_toml: String,
}

impl Node {
    /// A node directory; `env` goes to every command run in it.
    pub fn new(env: &[(&str, &str)]) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut node = Node {
            dir,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            proxy: free_port(),
            api: free_port(),
            key: String::new(),
            client_toml: String::new(),
        };
        // An API client that may tokenize, reveal and seal.
        let out = node.ok(&["clients", "add", "ops"], "");
        let mut lines = out.lines();
        node.key = lines.nth(1).unwrap().trim().to_owned();
        let snippet: String = out
            .split("Add this to vaultgate.toml")
            .nth(1)
            .and_then(|rest| rest.split_once('\n'))
            .unwrap()
            .1
            .lines()
            .filter(|l| {
                !l.starts_with("reveal") && !l.starts_with("tokenize") && !l.starts_with("delete")
            })
            .collect::<Vec<_>>()
            .join("\n");
        node.client_toml =
            format!("{snippet}\nreveal = [\"pan\"]\ntokenize = [\"pan\"]\nseal = true\n");
        node
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Run `vaultgate --keyring … --data … ARGS` with `stdin`.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(BIN)
            .current_dir(self.dir.path())
            .args([
                "--keyring",
                "keyring.json",
                "--data",
                "data",
                "--audit-log",
                "audit.log",
            ])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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

    /// [`run`](Self::run), asserting success; returns stdout.
    pub fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "vaultgate {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// [`run`](Self::run), asserting failure; returns stderr.
    pub fn fails(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(!out.status.success(), "vaultgate {args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    /// Write `vaultgate.toml` with `[vault.seal]` lines and an upstream.
    pub fn write_config(&self, seal: &str, upstream: SocketAddr) -> PathBuf {
        let text = format!(
            r#"
[proxy]
listen = "{proxy}"
[api]
listen = "{api}"
[vault]
keyring = "keyring.json"
data = "data"
cache_capacity_mb = 16
[vault.seal]
{seal}
[audit]
path = "audit.log"
[log]
level = "warn"
[[upstreams]]
name = "backend"
url = "http://{upstream}"
[[routes]]
name = "pass"
upstream = "backend"
path = "/pass/*"
{clients}
"#,
            proxy = self.proxy,
            api = self.api,
            clients = self.client_toml,
        );
        let path = self.path("vaultgate.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `vaultgate serve` in the node's directory, with extra arguments; waits until
    /// the API listens.
    pub fn serve(&self, extra: &[&str]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("serve.log"))
            .unwrap();
        let mut child = Command::new(BIN)
            .current_dir(self.dir.path())
            .args(extra)
            .args(["serve", "--config", "vaultgate.toml"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.api).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("serve exited with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "serve is not listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("serve.log")).unwrap_or_default()
    }

    /// `vaultgate unseal` with one share file against this node's server.
    pub fn unseal(&self, share: &Path) -> Output {
        let url = format!("http://{}", self.api);
        self.run(
            &[
                "unseal",
                "--api-url",
                &url,
                "--share-file",
                path_str(share).as_str(),
            ],
            "",
        )
    }

    /// `vaultgate seal` with the node's client key.
    pub fn seal(&self) -> Output {
        let url = format!("http://{}", self.api);
        let key_file = self.path("api-key");
        std::fs::write(&key_file, &self.key).unwrap();
        self.run(
            &[
                "seal",
                "--api-url",
                &url,
                "--api-key-file",
                path_str(&key_file).as_str(),
            ],
            "",
        )
    }

    /// Tokenize card numbers through the API.
    pub fn tokenize(&self, pans: &[&str]) -> Vec<String> {
        let values: Vec<_> = pans
            .iter()
            .map(|p| serde_json::json!({"class": "pan", "value": p}))
            .collect();
        let body = serde_json::json!({ "values": values }).to_string();
        let (status, text) = http(self.api, "POST", "/v1/tokenize", Some(&self.key), &body);
        assert_eq!(status, 200, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["token"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Reveal tokens through the API: (status, values).
    pub fn reveal(&self, tokens: &[String]) -> (u16, Vec<String>) {
        let body = serde_json::json!({ "tokens": tokens }).to_string();
        let (status, text) = http(self.api, "POST", "/v1/detokenize", Some(&self.key), &body);
        if status != 200 {
            return (status, Vec::new());
        }
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let values = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_str().unwrap_or("").to_owned())
            .collect();
        (status, values)
    }

    pub fn status(&self) -> serde_json::Value {
        let (status, text) = http(self.api, "GET", "/v1/sys/seal-status", None, "");
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    pub fn ready(&self) -> u16 {
        http(self.api, "GET", "/readyz", None, "").0
    }

    pub fn audit(&self) -> String {
        std::fs::read_to_string(self.path("audit.log")).unwrap_or_default()
    }
}

/// A running server, stopped (SIGTERM, then a wait) when dropped.
pub struct Server {
    child: Child,
}

impl Server {
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

/// One HTTP/1.1 request over a fresh connection: (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// An upstream that answers 200 to anything and counts the connections it accepts.
pub fn counting_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (addr, count)
}

/// Write each share (one per line of `text`) to its own file; returns the paths.
pub fn share_files(dir: &Path, prefix: &str, text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter(|l| l.starts_with("vgshare1-"))
        .enumerate()
        .map(|(i, line)| {
            let path = dir.join(format!("{prefix}-{i}"));
            std::fs::write(&path, line).unwrap();
            path
        })
        .collect()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
