//! `vaultgate keys rotate | rewrap | passwd`.

use super::args::{Global, KeysAction};
use super::context::{read_passphrase, runtime};
use crate::error::Result;
use crate::vault::keys::crypto::SecretKey;
use crate::vault::keys::keyring;

/// Run a key command. `audit_key` receives the audit key as soon as the keyring is
/// open, so that the caller can audit the outcome, failures included.
pub(super) fn run_keys(
    global: &Global,
    action: &KeysAction,
    audit_key: &mut Option<SecretKey>,
) -> Result<()> {
    match action {
        KeysAction::Rotate => {
            let (version, keys) = keyring::rotate(&global.keyring, &global.passphrase()?)?;
            *audit_key = keys.audit_key().ok();
            eprintln!(
                "data key version {version} is now active; run `vaultgate keys rewrap` to \
                 re-encrypt older records"
            );
            Ok(())
        }
        KeysAction::Rewrap => {
            let report = runtime()?.block_on(async {
                let vault = global.open_vault().await?;
                *audit_key = vault.audit_key().ok();
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
            // The master key (and so the audit key) is unchanged; one more unseal.
            *audit_key = keyring::open(&global.keyring, &new)
                .and_then(|k| k.audit_key())
                .ok();
            eprintln!("the master key is sealed under the new passphrase");
            Ok(())
        }
    }
}
