//! rustls configuration from PEM files, on the `ring` provider only.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use std::path::PathBuf;

use serde::Deserialize;

use crate::{Error, Result};

/// `tls = { cert = "…", key = "…", client_ca = "…" }`: PEM files.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain (leaf first).
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates for verifying client certificates (mTLS). Allowed on
    /// the API and outbound listeners.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// The one crypto provider vaultgate uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read a PEM certificate chain; `key` names the config key in errors.
pub fn load_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::Config(format!(
                "{key}: cannot read PEM certificates from {}: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{key}: no certificate found in {}",
            path.display()
        )));
    }
    Ok(certs)
}

/// Read a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(key: &str, path: &Path) -> Result<PrivateKeyDer<'static>> {
    // The error names the file, never its contents.
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        Error::Config(format!(
            "{key}: cannot read a PEM private key from {}: {e}",
            path.display()
        ))
    })
}

/// A root store holding exactly the CA certificates in a PEM file.
pub fn root_store(key: &str, path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(key, path)? {
        roots
            .add(cert)
            .map_err(|e| Error::Config(format!("{key}: unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// A TLS 1.2+ server config with ALPN `h2` and `http/1.1`. `key` is the config
/// section (`proxy.tls`, `api.tls`).
pub fn server_config(key: &str, files: &TlsFiles) -> Result<Arc<ServerConfig>> {
    let certs = load_certs(&format!("{key}.cert"), &files.cert)?;
    let private = load_key(&format!("{key}.key"), &files.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Config(format!("{key}: {e}")))?;
    let builder = match &files.client_ca {
        // Client certificates are asked for and, when sent, verified against this CA;
        // a client without one may still connect and authenticate by API key.
        Some(ca) => {
            let roots = Arc::new(root_store(&format!("{key}.client_ca"), ca)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| Error::Config(format!("{key}.client_ca: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, private)
        .map_err(|e| Error::Config(format!("{key}: certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The notAfter of the leaf certificate in a PEM chain, as Unix seconds.
pub fn leaf_not_after(key: &str, path: &Path) -> Result<i64> {
    let certs = load_certs(key, path)?;
    let leaf = certs
        .first()
        .ok_or_else(|| Error::Config(format!("{key}: no certificate found")))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| Error::Config(format!("{key}: not an X.509 certificate: {e}")))?;
    Ok(parsed.validity().not_after.timestamp())
}

/// The names a verified client certificate presents: its subject common names and
/// DNS subject alternative names. Only call this on a certificate the TLS layer has
/// verified; an unparsable certificate yields no names (and so no identity).
pub fn peer_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = parsed
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_owned)
        .collect();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    names
}
