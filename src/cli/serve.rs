//! `vaultgate serve`: open the store, unseal what can be unsealed at start, and serve.

use std::sync::Arc;

use super::args::Global;
use super::context::{multi_thread_runtime, read_share};
use crate::custody::Custody;
use crate::error::{Error, Result};
use crate::vault::keys::keyring::KeyringFile;
use crate::vault::keys::seal::{SealFile, Unlock};

/// `vaultgate serve`: open the keyring and store named in the config and serve
/// until SIGTERM, SIGINT or SIGQUIT, then drain and flush.
///
/// A passphrase or HSM seal is opened before listening. A Shamir seal is opened with
/// the `--share-file` shares if they reach the threshold; otherwise the server
/// starts sealed and waits for `vaultgate unseal`.
pub(super) fn serve(global: &Global, path: &std::path::Path) -> Result<()> {
    let config = crate::config::Config::load(path)?;
    crate::logging::init(config.log.format, &config.log.level)?;
    let runtime = multi_thread_runtime()?;
    // From here on, a SIGHUP, SIGUSR1 or SIGUSR2 (a config push, a log rotation) that
    // arrives while the keyring unseals (argon2 takes about a second, an HSM may take
    // longer) does not end the process, their default action: the server takes them
    // as it does once it serves.
    let _held = {
        let _in_runtime = runtime.enter();
        crate::app::hold_signals()?
    };
    let file = KeyringFile::load(&config.vault.keyring)?;
    let seal = file.seal()?;
    if seal.kind() != config.vault.seal.kind {
        return Err(Error::Config(format!(
            "vault.seal.kind is \"{}\" but the keyring is sealed with `{}`",
            config.vault.seal.kind.as_str(),
            seal.kind().as_str()
        )));
    }
    let keys = match &seal {
        SealFile::Passphrase(_) => Some(file.unseal(&global.passphrase()?)?),
        SealFile::Pkcs11(_) => Some(file.unseal_with(&Unlock::Hsm(&config.vault.seal))?),
        SealFile::Shamir(s) => {
            let shares = global
                .share_file
                .iter()
                .map(|f| read_share(Some(f), ""))
                .collect::<Result<Vec<_>>>()?;
            if shares.len() >= usize::from(s.threshold()) {
                Some(file.unseal_with(&Unlock::Shares(&shares))?)
            } else {
                if !shares.is_empty() {
                    return Err(Error::Config(format!(
                        "--share-file: {} shares given, {} needed",
                        shares.len(),
                        s.threshold()
                    )));
                }
                None
            }
        }
    };
    runtime.block_on(async {
        let store = crate::vault::open_store(&config.vault).await?;
        let custody = Arc::new(Custody::sealed(&config.vault, store));
        if let Some(keys) = keys {
            custody.unseal_with_keys(keys)?;
        }
        let mut handle =
            crate::app::start_custody(&config, Arc::clone(&custody), None, true).await?;
        // SIGHUP re-reads this file (and reopens the audit log).
        handle.reload_on_hangup(path.to_path_buf())?;
        tracing::info!(
            proxy = %handle.proxy_addr(),
            api = %handle.api_addr(),
            sealed = custody.is_sealed(),
            "vaultgate is serving"
        );
        handle.run_until_signal().await?;
        custody.store().durable().await?;
        tracing::info!("stopped; the store is flushed");
        Ok(())
    })
}
