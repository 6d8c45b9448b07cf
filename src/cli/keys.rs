//! `vaultgate keys rotate | rewrap | passwd`.

use super::args::{Global, KeysAction};
use super::context::{read_passphrase, runtime};
use crate::error::Result;
use crate::vault::keys::keyring;

pub(super) fn run_keys(global: &Global, action: &KeysAction) -> Result<()> {
    match action {
        KeysAction::Rotate => {
            let (version, _) = keyring::rotate(&global.keyring, &global.passphrase()?)?;
            eprintln!(
                "data key version {version} is now active; run `vaultgate keys rewrap` to \
                 re-encrypt older records"
            );
            Ok(())
        }
        KeysAction::Rewrap => {
            let report = runtime()?.block_on(async {
                let vault = global.open_vault().await?;
                vault.rewrap().await
            })?;
            eprintln!(
                "rewrapped {} records; {} were already under the active key",
                report.rewrapped, report.current
            );
            Ok(())
        }
        KeysAction::Passwd {
            new_passphrase_file,
        } => {
            let old = global.passphrase()?;
            let new = read_passphrase(
                new_passphrase_file.as_ref(),
                "VAULTGATE_NEW_PASSPHRASE",
                "new passphrase: ",
            )?;
            keyring::passwd(&global.keyring, &old, &new)?;
            eprintln!("the master key is sealed under the new passphrase");
            Ok(())
        }
    }
}
