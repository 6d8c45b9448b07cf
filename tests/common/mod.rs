//! Shared helpers for the proxy integration tests: config strings, a started server,
//! HTTP/1 and HTTP/2 clients, and generated certificates.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use vaultgate::app::{self, ServerHandle};
use vaultgate::config::Config;
use vaultgate::vault::{Keys, Vault, VaultSettings};

/// The red-team rounds' form route (TOML, a literal for `concat!`): `POST /form`,
/// whose rules name a card and its CVV, scoped by the card.
#[allow(unused_macros)]
macro_rules! form_route {
    () => {
        r#"
[[routes]]
name = "form"
upstream = "backend"
method = "POST"
path = "/form"
fields = [
  { path = "card_number", class = "pan" },
  { path = "cvv", class = "cvv", scope = "card_number" },
]
"#
    };
}
#[allow(unused_imports)]
pub(crate) use form_route;

/// A config with one upstream named `backend` and the given routes (TOML).
pub fn config_toml(upstream_url: &str, extra: &str) -> String {
    format!(
        r#"
[proxy]
listen = "127.0.0.1:0"
[api]
listen = "127.0.0.1:0"
[limits]
max_body_bytes = 1024
upstream_timeout_ms = 2000
[[upstreams]]
name = "backend"
url = "{upstream_url}"
{extra}
"#
    )
}

/// A pass-through route for everything plus a rules route on `/tokenize`.
pub const ROUTES: &str = r#"
[[routes]]
name = "cards"
upstream = "backend"
method = "POST"
path = "/tokenize"
fields = [{ path = "card", class = "pan" }]

[[routes]]
name = "pass"
upstream = "backend"
path = "/pass/*"
"#;

thread_local! {
    /// The temp dirs of the vaults [`test_vault`] made on this thread.
    static SCRATCH: std::cell::RefCell<Vec<tempfile::TempDir>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A temp dir that lives until the calling thread ends, then is removed. The test
/// harness runs each test on a thread of its own, and a `#[tokio::test]`'s runtime
/// (with the server and the vault it holds) is dropped before that thread ends, so
/// the dir outlives the test's server and is gone once the test is.
pub fn scratch_dir() -> PathBuf {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    SCRATCH.with(|dirs| dirs.borrow_mut().push(dir));
    path
}

/// A real vault: throwaway keys and a sled store in a temp dir that lives as long
/// as the test ([`scratch_dir`]).
pub fn test_vault() -> Arc<Vault> {
    let dir = scratch_dir();
    let settings = VaultSettings {
        data: dir.join("data"),
        cache_capacity_mb: 8,
        ..VaultSettings::default()
    };
    Arc::new(Vault::open(&settings, test_keys(&dir)).expect("vault"))
}

/// The passphrase of [`test_keys`]' keyring.
pub const TEST_PASSPHRASE: &str = "integration-test-passphrase";

/// [`start`] on a vault whose keyring is `dir/keyring.json` (passphrase
/// [`TEST_PASSPHRASE`]), so that the test can run `vaultgate audit verify --keyring`.
pub async fn start_in(dir: &Path, toml: &str) -> ServerHandle {
    let config = Config::from_toml_str(toml).expect("config");
    let settings = VaultSettings {
        data: dir.join("data"),
        cache_capacity_mb: 8,
        ..VaultSettings::default()
    };
    let vault = Arc::new(Vault::open(&settings, test_keys(dir)).expect("vault"));
    app::start(&config, vault).await.expect("start")
}

/// Keys sealed in a real keyring file under `dir`, with the cheapest KDF allowed.
pub fn test_keys(dir: &Path) -> Keys {
    let pass = vaultgate::vault::Passphrase::new(TEST_PASSPHRASE.to_owned()).expect("passphrase");
    vaultgate::vault::keyring::init(
        &dir.join("keyring.json"),
        &pass,
        vaultgate::vault::keyring::KdfParams::MINIMUM,
    )
    .expect("keys")
}

pub async fn start(toml: &str) -> ServerHandle {
    let config = Config::from_toml_str(toml).expect("config");
    app::start(&config, test_vault()).await.expect("start")
}

pub async fn start_config(config: &Config, grace: std::time::Duration) -> ServerHandle {
    app::start_with_grace(config, test_vault(), grace)
        .await
        .expect("start")
}

pub type Http = Client<HttpConnector, Full<Bytes>>;

/// An HTTP/1.1 client.
pub fn http1() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 prior-knowledge (h2c) client.
pub fn h2c() -> Http {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

/// A POST of `body` with the given Content-Type.
pub async fn post(addr: SocketAddr, path: &str, ct: &str, body: impl Into<Bytes>) -> Reply {
    let req = Request::post(url(addr, path))
        .header("content-type", ct)
        .body(Full::new(body.into()))
        .unwrap();
    send(&http1(), req).await
}

/// The stable error code of an error answer (`""` when there is none).
pub fn code(reply: &Reply) -> String {
    reply.json()["error"]["code"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

pub async fn send<C>(client: &Client<C, Full<Bytes>>, req: Request<Full<Bytes>>) -> Reply
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let res = client.request(req).await.expect("request");
    let (parts, body) = res.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        version: parts.version,
        body: body.collect().await.expect("body").to_bytes(),
    }
}

pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

// === certificates ===

/// A CA and a leaf certificate for `localhost` / `127.0.0.1`, as PEM files.
pub struct Certs {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    pub fn generate() -> Certs {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "vaultgate test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate().unwrap();
        let leaf_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

        let write = |name: &str, text: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let ca = write("ca.pem", ca_cert.pem());
        let cert = write("cert.pem", leaf.pem());
        let key = write("key.pem", leaf_key.serialize_pem());
        Certs { dir, ca, cert, key }
    }

    /// A rustls server config for this leaf (as the proxy would build it).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        vaultgate::net::tls::server_config(
            "test.tls",
            &vaultgate::config::TlsFiles {
                cert: self.cert.clone(),
                key: self.key.clone(),
                client_ca: None,
            },
        )
        .unwrap()
    }

    /// An HTTPS client (h2 + http/1.1 by ALPN) trusting only this CA.
    pub fn client(&self) -> Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>> {
        let roots = vaultgate::net::tls::root_store("test.ca", &self.ca).unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(vaultgate::net::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .build();
        Client::builder(TokioExecutor::new()).build(https)
    }
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Every file under `dir`, at any depth: the store's files, to grep for a value.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

// === vault API and outbound helpers ===

/// A configured API client: its key (shown once) and its `[[clients]]` TOML.
pub struct ApiClient {
    pub key: String,
    pub toml: String,
}

/// A client with a fresh API key; `body` is the rest of its `[[clients]]` table
/// (`reveal = ["pan"]`, …).
pub fn api_client(name: &str, body: &str) -> ApiClient {
    let (key, hash) = vaultgate::auth::generate_api_key().unwrap();
    ApiClient {
        key: key.as_str().to_owned(),
        toml: format!("\n[[clients]]\nname = \"{name}\"\napi_key_hash = \"{hash}\"\n{body}\n"),
    }
}

/// `[audit] path = …` for a file in `dir`.
pub fn audit_toml(path: &Path) -> String {
    format!("\n[audit]\npath = \"{}\"\n", path.display())
}

/// Send a JSON request (or none, for `Value::Null`) with an optional header.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: serde_json::Value,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(url(addr, path))
        .header("content-type", "application/json");
    if let Some((name, value)) = auth {
        req = req.header(name, value);
    }
    let bytes = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    send(&http1(), req.body(Full::new(bytes)).unwrap()).await
}

/// `Authorization: Bearer <key>`.
pub fn bearer(key: &str) -> Option<(&'static str, String)> {
    Some(("authorization", format!("Bearer {key}")))
}

/// Call the vault API as the client with this key.
pub async fn api(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: serde_json::Value,
) -> Reply {
    let auth = format!("Bearer {key}");
    call(addr, method, path, Some(("authorization", &auth)), body).await
}

/// A CA that issues server and client certificates.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} CA"));
        let cert = params.self_signed(&ca_key).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, cert.pem()).unwrap();
        Pki {
            dir,
            ca,
            issuer: Issuer::new(params, ca_key),
        }
    }

    /// A leaf for `localhost` (server use): (cert path, key path).
    pub fn server(&self, file: &str) -> (PathBuf, PathBuf) {
        self.leaf(file, "localhost", vec!["localhost".to_owned()])
    }

    /// A leaf with this common name (client use): (cert path, key path).
    pub fn client(&self, file: &str, cn: &str) -> (PathBuf, PathBuf) {
        self.leaf(file, cn, Vec::new())
    }

    fn leaf(&self, file: &str, cn: &str, sans: Vec<String>) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let c = self.dir.path().join(format!("{file}.pem"));
        let k = self.dir.path().join(format!("{file}-key.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    /// A rustls server config for a leaf.
    pub fn server_config(&self, file: &str) -> Arc<rustls::ServerConfig> {
        let (cert, key) = self.server(file);
        vaultgate::net::tls::server_config(
            "test.tls",
            &vaultgate::config::TlsFiles {
                cert,
                key,
                client_ca: None,
            },
        )
        .unwrap()
    }

    /// An HTTPS client trusting this CA, presenting `identity` (cert, key) if given.
    pub fn https_client(
        &self,
        identity: Option<&(PathBuf, PathBuf)>,
    ) -> Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>> {
        let roots = vaultgate::net::tls::root_store("test.ca", &self.ca).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(vaultgate::net::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let tls = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vaultgate::net::tls::load_certs("c", cert).unwrap(),
                    vaultgate::net::tls::load_key("k", key).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        Client::builder(TokioExecutor::new()).build(https)
    }
}

pub mod binary;

// === what an upstream received, read every way a backend might ===

/// Every reading of `bytes` worth scanning for a raw value: as they are,
/// decompressed (gzip, zlib, raw deflate), as UTF-16 (both byte orders), and each of
/// those JSON-unescaped, percent-decoded, quoted-printable-decoded and with numeric
/// character references decoded; then base64 runs in all of them, decoded the same
/// ways. Bounded: at most two base64 levels.
pub fn readings(bytes: &[u8]) -> Vec<String> {
    use std::io::Read as _;
    let mut layers = vec![bytes.to_vec()];
    let inflate = |r: &mut dyn std::io::Read| {
        let mut out = Vec::new();
        let _ = r.take(16 << 20).read_to_end(&mut out);
        out
    };
    layers.push(inflate(&mut flate2::read::MultiGzDecoder::new(bytes)));
    layers.push(inflate(&mut flate2::read::ZlibDecoder::new(bytes)));
    layers.push(inflate(&mut flate2::read::DeflateDecoder::new(bytes)));
    let mut texts = Vec::new();
    for layer in layers.into_iter().filter(|l| !l.is_empty()) {
        for text in text_readings(&layer) {
            texts.push(text);
        }
    }
    let mut more = Vec::new();
    for _ in 0..2 {
        for t in texts.iter().chain(more.clone().iter()) {
            for run in t
                .split(|c: char| !(c.is_ascii_alphanumeric() || "+/-_=".contains(c)))
                .filter(|r| r.len() >= 8)
            {
                use base64::Engine as _;
                for engine in [
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                ] {
                    if let Ok(d) = engine.decode(run.trim_end_matches('=')) {
                        more.extend(text_readings(&d));
                    }
                }
            }
        }
    }
    texts.extend(more);
    texts.sort();
    texts.dedup();
    texts
}

fn text_readings(bytes: &[u8]) -> Vec<String> {
    let mut bases = vec![String::from_utf8_lossy(bytes).into_owned()];
    for le in [true, false] {
        for skip in [0, 1] {
            let units: Vec<u16> = bytes
                .get(skip..)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|c| {
                    if le {
                        u16::from_le_bytes([c[0], c[1]])
                    } else {
                        u16::from_be_bytes([c[0], c[1]])
                    }
                })
                .collect();
            bases.push(String::from_utf16_lossy(&units));
        }
    }
    let mut out = Vec::new();
    for b in bases {
        out.push(unescape_json(&b));
        out.push(percent_decode(&b));
        out.push(b.replace("=\r\n", "").replace("=3D", "="));
        out.push(char_refs(&b));
        out.push(b);
    }
    out
}

/// `\uXXXX` escapes decoded (either case of `u`); anything else kept.
pub fn unescape_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('u' | 'U')) {
            chars.next();
            let hex: String = chars.by_ref().take(4).collect();
            match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                Some(ch) => out.push(ch),
                None => out.push_str(&hex),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `%XX` escapes decoded and `+` read as a space, as forms send them (lossy UTF-8).
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn char_refs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("&#") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let (hex, digits) = match tail.strip_prefix(['x', 'X']) {
            Some(t) => (true, t),
            None => (false, tail),
        };
        let n = digits
            .chars()
            .take_while(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
            .count();
        let cp = u32::from_str_radix(&digits[..n], if hex { 16 } else { 10 }).ok();
        match cp.and_then(char::from_u32) {
            Some(c) if n > 0 => {
                out.push(c);
                let after = &digits[n..];
                rest = after.strip_prefix(';').unwrap_or(after);
            }
            _ => {
                out.push_str("&#");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `s` without the separators a card's digit groups may be written with.
pub fn squeeze(s: &str) -> String {
    s.chars()
        .filter(|c| {
            !matches!(
                c,
                ' ' | '-'
                    | '.'
                    | '/'
                    | '\t'
                    | '\n'
                    | '\r'
                    | '_'
                    | '\0'
                    | '\u{a0}'
                    | '\u{2009}'
                    | '\u{2013}'
                    | '\u{2212}'
            )
        })
        .collect()
}

/// Whether `value` appears in a reading of `bytes` as a whole number (not inside a
/// longer digit run); card-length values also with separators squeezed out.
pub fn holds_raw(bytes: &[u8], value: &str) -> bool {
    let whole = |text: &str| {
        text.match_indices(value).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + value.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit())
        })
    };
    readings(bytes)
        .iter()
        .any(|t| whole(t) || (value.len() >= 13 && squeeze(t).contains(value)))
}

/// Every run of 13 to 19 ASCII digits in a reading of `bytes` that passes the Luhn
/// check.
pub fn luhn_runs(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for t in readings(bytes) {
        for run in t.split(|c: char| !c.is_ascii_digit()) {
            if (13..=19).contains(&run.len()) && luhn(run) {
                out.push(run.to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

pub fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// All the bytes of what an upstream received: body, path, query and header values.
pub fn received_bytes(r: &vaultgate::demo::echo::Received) -> Vec<u8> {
    let mut all = r.body.to_vec();
    all.extend_from_slice(b" ");
    all.extend_from_slice(r.path.as_bytes());
    all.extend_from_slice(b" ");
    all.extend_from_slice(r.query.as_deref().unwrap_or("").as_bytes());
    for (n, v) in &r.headers {
        // Lengths, and the request and trace ids vaultgate makes up (random hex, in
        // which a digit run can pass the Luhn check or spell a CVV), are not data the
        // client sent.
        if [
            "content-length",
            "traceparent",
            "tracestate",
            "x-request-id",
        ]
        .iter()
        .any(|h| n.eq_ignore_ascii_case(h))
        {
            continue;
        }
        all.extend_from_slice(b" ");
        all.extend_from_slice(v.as_bytes());
    }
    all
}

/// Read from a raw upstream socket up to the end of a request head (or EOF).
pub async fn read_head(s: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Send a chunked POST body in pieces, `pause` apart (each its own read at the
/// proxy), with `connection: close`, then read the whole answer (at most 5 s).
pub async fn drip(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    pieces: &[&[u8]],
    pause: std::time::Duration,
) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for p in pieces {
        let mut frame = format!("{:x}\r\n", p.len()).into_bytes();
        frame.extend_from_slice(p);
        frame.extend_from_slice(b"\r\n");
        if s.write_all(&frame).await.is_err() {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// JSON numbers a float parser (JavaScript, Python) rounds to a test card.
pub const ROUNDED_TO_CARDS: [&str; 5] = [
    "4242424242424241.9",
    "4.2424242424242419e15",
    "-4242424242424241.9",
    "378282246310004.99999",
    "5555555555554443.9",
];

/// `data` gzip-compressed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `data` zlib-compressed (`deflate` as the RFC means it).
pub fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `data` as raw DEFLATE (`deflate` as some clients send it).
pub fn raw_deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A fresh schema on the test PostgreSQL (`VAULTGATE_TEST_POSTGRES_URL`), with an
/// admin connection to it, for tests that reach the database through a proxy of
/// their own (to freeze or cut it).
pub struct PgSchema {
    pub admin: tokio_postgres::Client,
    pub schema: String,
    /// The database server's address (what a proxy in between forwards to).
    pub server: SocketAddr,
    userinfo: String,
    tail: String,
}

impl PgSchema {
    /// `None` when no test PostgreSQL is configured (the test is skipped).
    pub async fn new() -> Option<PgSchema> {
        let base = std::env::var("VAULTGATE_TEST_POSTGRES_URL").ok()?;
        let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let schema = format!("test_{:016x}", rand::random::<u64>());
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        let rest = base.strip_prefix("postgres://").unwrap();
        let (userinfo, hostpart) = rest.split_once('@').unwrap();
        let (hostport, tail) = hostpart.split_once('/').unwrap();
        let server = tokio::net::lookup_host(hostport)
            .await
            .unwrap()
            .next()
            .unwrap();
        Some(PgSchema {
            admin,
            schema,
            server,
            userinfo: userinfo.to_owned(),
            tail: tail.to_owned(),
        })
    }

    /// The schema's URL with the database reached at `via`, `extra` query
    /// parameters appended (`&connect_timeout=2`, say).
    pub fn url_via(&self, via: SocketAddr, extra: &str) -> String {
        let (userinfo, tail, schema) = (&self.userinfo, &self.tail, &self.schema);
        let sep = if tail.contains('?') { '&' } else { '?' };
        format!("postgres://{userinfo}@{via}/{tail}{sep}options=-c%20search_path%3D{schema}{extra}")
    }
}
