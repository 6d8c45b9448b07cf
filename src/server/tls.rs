//! rustls configuration from PEM files, on the `ring` provider only.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsFiles;
use crate::{Error, Result};

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
    if let Some(ca) = &files.client_ca {
        // Parsed now so a bad file fails at start-up; client-certificate verification
        // is wired in with the vault API's mTLS.
        root_store(&format!("{key}.client_ca"), ca)?;
    }
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Config(format!("{key}: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| Error::Config(format!("{key}: certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
