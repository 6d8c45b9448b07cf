//! `vaultgate check-config`: load everything `serve` would open, short of unsealing,
//! so that a config it passes does not fail at start for a file.
//!
//! Each error names the config key it is about (`proxy.tls.cert: …`).

use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::net::tls;
use crate::vault::StoreKind;
use crate::vault::keys::keyring::KeyringFile;

/// Parse and validate the config, then check its files: TLS certificates and keys
/// (and that they fit), CA files, the keyring's form and seal, and that the data
/// directory and the audit log can be written.
pub(super) fn check_config(path: &Path) -> Result<Config> {
    let config = Config::load(path)?;
    check_tls(&config)?;
    check_keyring(&config)?;
    if matches!(config.vault.store, StoreKind::Sled | StoreKind::Fjall) {
        writable_dir("vault.data", &config.vault.data)?;
    }
    if crate::custody::audit_wanted(&config) {
        let key = if config.audit.path.is_some() {
            "audit.path"
        } else {
            "vault.data (the audit log's folder)"
        };
        writable_file(key, &config.audit_path())?;
    }
    Ok(config)
}

fn check_tls(config: &Config) -> Result<()> {
    let mut listeners = vec![("proxy", &config.proxy), ("api", &config.api)];
    if let Some(o) = &config.outbound {
        listeners.push(("outbound", &o.listener));
    }
    for (name, settings) in listeners {
        if let Some(files) = &settings.tls {
            // Building the server config reads both files and checks they fit.
            tls::server_config(&format!("{name}.tls"), files)?;
        }
    }
    for (i, up) in config.upstreams.iter().enumerate() {
        if let Some(ca) = &up.ca {
            tls::root_store(&format!("upstreams[{i}].ca"), ca)?;
        }
    }
    if let Some(o) = &config.outbound {
        for (i, route) in o.routes.iter().enumerate() {
            if let Some(ca) = &route.ca {
                tls::root_store(&format!("outbound.routes[{i}].ca"), ca)?;
            }
        }
    }
    if let Some(ca) = &config.vault.postgres_ca {
        tls::root_store("vault.postgres_ca", ca)?;
    }
    Ok(())
}

fn check_keyring(config: &Config) -> Result<()> {
    let key = |e: Error| Error::Config(format!("vault.keyring: {e}"));
    let file = KeyringFile::load(&config.vault.keyring).map_err(key)?;
    let seal = file.seal().map_err(key)?;
    if seal.kind() != config.vault.seal.kind {
        return Err(Error::Config(format!(
            "vault.seal.kind is \"{}\" but the keyring is sealed with `{}`",
            config.vault.seal.kind.as_str(),
            seal.kind().as_str()
        )));
    }
    Ok(())
}

/// `dir` is a directory we can write in, or can be created in one.
fn writable_dir(key: &str, dir: &Path) -> Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            return Err(Error::Config(format!(
                "{key}: {} is not a directory",
                dir.display()
            )));
        }
        return probe(key, dir);
    }
    // Created at start: its nearest existing ancestor must take it.
    let mut up = dir.parent();
    while let Some(p) = up {
        let p = if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        };
        if p.exists() {
            if !p.is_dir() {
                return Err(Error::Config(format!(
                    "{key}: {} is not a directory",
                    p.display()
                )));
            }
            return probe(key, p);
        }
        up = p.parent();
    }
    Ok(())
}

/// `file` can be appended to, or created.
fn writable_file(key: &str, file: &Path) -> Result<()> {
    if file.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .map(|_| ())
            .map_err(|e| Error::Config(format!("{key}: cannot write {}: {e}", file.display())));
    }
    match file.parent() {
        Some(dir) => writable_dir(key, dir),
        None => Ok(()),
    }
}

/// Create and remove a probe file in `dir`.
fn probe(key: &str, dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".vaultgate-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| Error::Config(format!("{key}: cannot write in {}: {e}", dir.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
