//! `vaultgate serve` and the CVV sweeper it runs.

use super::args::Global;
use super::context::multi_thread_runtime;
use crate::error::Result;
use crate::vault::Vault;
use crate::vault::keys::keyring;

/// `vaultgate serve`: open the keyring and store named in the config and serve
/// until SIGTERM or SIGINT, then drain and flush.
pub(super) fn serve(global: &Global, path: &std::path::Path) -> Result<()> {
    let config = crate::config::Config::load(path)?;
    crate::logging::init(config.log.format, &config.log.level)?;
    let pass = global.passphrase()?;
    let keys = keyring::open(&config.vault.keyring, &pass)?;
    drop(pass);
    multi_thread_runtime()?.block_on(async {
        let vault = std::sync::Arc::new(Vault::open_async(&config.vault, keys).await?);
        let handle = crate::app::start(&config, std::sync::Arc::clone(&vault)).await?;
        tracing::info!(
            proxy = %handle.proxy_addr(),
            api = %handle.api_addr(),
            "vaultgate is serving"
        );
        let sweeper = spawn_sweeper(std::sync::Arc::clone(&vault));
        handle.run_until_signal().await?;
        sweeper.abort();
        vault.flush().await?;
        tracing::info!("stopped; the store is flushed");
        Ok(())
    })
}

/// Drop expired CVVs once a minute (and once at start, for records left by a restart).
pub fn spawn_sweeper(vault: std::sync::Arc<Vault>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            match vault.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(swept = n, "expired CVV records removed"),
                Err(e) => tracing::warn!(error = %e, "CVV sweep failed"),
            }
        }
    })
}
