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

/// A real vault: throwaway keys and a sled store in a temp dir that lives as long
/// as the test process.
pub fn test_vault() -> Arc<Vault> {
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("tempdir")));
    let settings = VaultSettings {
        data: dir.path().join("data"),
        cache_capacity_mb: 8,
        ..VaultSettings::default()
    };
    Arc::new(Vault::open(&settings, test_keys(dir.path())).expect("vault"))
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
