//! What every command needs: the passphrase, the vault settings from the global
//! options, an opened vault, the CLI's audit entries, and a runtime.

use std::io::IsTerminal;
use std::path::PathBuf;

use super::args::{Global, StoreArg};
use crate::audit::{Action, AuditEvent, AuditKey, AuditLog};
use crate::error::{Error, Result};
use crate::vault::keys::crypto::SecretKey;
use crate::vault::keys::keyring::{self, Passphrase};
use crate::vault::settings::SecretUrl;
use crate::vault::{StoreKind, Vault, VaultSettings};

/// Read a passphrase: a file, an environment variable, or a prompt on a terminal.
pub fn read_passphrase(file: Option<&PathBuf>, env: &str, prompt: &str) -> Result<Passphrase> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("read the passphrase file {}", path.display()), e))?;
        return Passphrase::new(text);
    }
    if let Ok(v) = std::env::var(env) {
        return Passphrase::new(v);
    }
    if std::io::stdin().is_terminal() || std::io::stderr().is_terminal() {
        let p = rpassword::prompt_password(prompt)
            .map_err(|e| Error::io("read the passphrase from the terminal", e))?;
        return Passphrase::new(p);
    }
    Err(Error::Keyring(format!(
        "no passphrase: use --passphrase-file, set {env}, or run on a terminal"
    )))
}

impl Global {
    /// The passphrase for this invocation.
    pub fn passphrase(&self) -> Result<Passphrase> {
        read_passphrase(
            self.passphrase_file.as_ref(),
            "VAULTGATE_PASSPHRASE",
            "vaultgate passphrase: ",
        )
    }

    pub(super) fn settings(&self) -> Result<VaultSettings> {
        let settings = VaultSettings {
            keyring: self.keyring.clone(),
            data: self.data.clone(),
            store: match self.store {
                StoreArg::Sled => StoreKind::Sled,
                StoreArg::Postgres => StoreKind::Postgres,
            },
            postgres_url: self.postgres_url.clone().map(SecretUrl::new),
            postgres_ca: self.postgres_ca.clone(),
            ..VaultSettings::default()
        };
        settings.validate().map_err(|_| {
            Error::Config(
                "--postgres-url (or VAULTGATE_POSTGRES_URL) is required with --store postgres"
                    .into(),
            )
        })?;
        Ok(settings)
    }

    /// The audit log that CLI commands write to: `--audit-log`, else
    /// `<data>/audit.log`.
    pub(super) fn audit_path(&self) -> PathBuf {
        self.audit_log
            .clone()
            .unwrap_or_else(|| self.data.join("audit.log"))
    }

    /// Open the audit log under the keyring's audit key.
    pub(super) fn open_audit(&self, key: SecretKey) -> Result<AuditLog> {
        AuditLog::open(self.audit_path(), AuditKey::new(key))
    }

    /// Record a key operation in the audit log (fsynced, then checkpointed, before
    /// returning), as `cli:<OS user>`. Without the audit key (the keyring was never
    /// opened, so no key was touched) nothing can be signed: say so on stderr.
    pub(super) fn audit_key_op(
        &self,
        action: Action,
        result: &Result<()>,
        key: Option<SecretKey>,
    ) -> Result<()> {
        let Some(key) = key else {
            eprintln!("vaultgate: not audited: the keyring was not opened");
            return Ok(());
        };
        let log = self.open_audit(key)?;
        let event = AuditEvent::new(cli_actor(), action).outcome_of(result);
        log.record_blocking(std::slice::from_ref(&event))?;
        log.checkpoint()
    }

    pub(super) async fn open_vault(&self) -> Result<Vault> {
        let settings = self.settings()?;
        let keys = keyring::open(&self.keyring, &self.passphrase()?)?;
        Vault::open_async(&settings, keys).await
    }
}

/// The actor of CLI audit entries: `cli:` and the OS user ($USER, else $LOGNAME,
/// else the real uid from /proc/self/status).
pub(super) fn cli_actor() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.is_empty())
        .or_else(|| {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
            uid.split_whitespace().next().map(|u| format!("uid={u}"))
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let user: String = user
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    format!("cli:{user}")
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime", e))
}

pub(super) fn multi_thread_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime", e))
}
