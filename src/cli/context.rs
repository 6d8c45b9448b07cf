//! What every command needs: the passphrase, the vault settings from the global
//! options, an opened vault, the CLI's audit entries, and a runtime.

use std::io::IsTerminal;
use std::path::PathBuf;

use super::args::{Global, SealArg, StoreArg};
use crate::audit::{Action, AuditEvent, AuditKey, AuditLog};
use crate::error::{Error, Result};
use crate::vault::keys::crypto::SecretKey;
use crate::vault::keys::keyring::{self, KeyringFile, Passphrase};
use crate::vault::keys::seal::{SealFile, SealKind, SealSettings, Share, Unlock};
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

/// Read one share: a file, else stdin when it is not a terminal, else a prompt.
pub fn read_share(file: Option<&PathBuf>, prompt: &str) -> Result<Share> {
    let text = zeroize::Zeroizing::new(match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("read the share file {}", path.display()), e))?,
        None if !std::io::stdin().is_terminal() => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| Error::io("read the share from stdin", e))?;
            text
        }
        None => rpassword::prompt_password(prompt)
            .map_err(|e| Error::io("read the share from the terminal", e))?,
    });
    Share::parse(&text)
}

/// What opens the keyring for this invocation, owned.
pub(super) enum Credential {
    Passphrase(Passphrase),
    Shares(Vec<Share>),
    Hsm(SealSettings),
}

impl Credential {
    pub(super) fn unlock(&self) -> Unlock<'_> {
        match self {
            Credential::Passphrase(p) => Unlock::Passphrase(p),
            Credential::Shares(s) => Unlock::Shares(s),
            Credential::Hsm(s) => Unlock::Hsm(s),
        }
    }
}

impl From<SealArg> for SealKind {
    fn from(s: SealArg) -> Self {
        match s {
            SealArg::Passphrase => SealKind::Passphrase,
            SealArg::Shamir => SealKind::Shamir,
            SealArg::Pkcs11 => SealKind::Pkcs11,
        }
    }
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

    /// The `[vault.seal]` the HSM options describe.
    pub(super) fn hsm_settings(&self) -> SealSettings {
        let h = &self.hsm;
        SealSettings {
            kind: SealKind::Pkcs11,
            module: h.hsm_module.clone(),
            token_label: h.hsm_token.clone(),
            slot: h.hsm_slot,
            pin_file: h.hsm_pin_file.clone(),
            key_label: h.hsm_key_label.clone(),
            allow_extractable: h.hsm_allow_extractable,
            ..SealSettings::default()
        }
    }

    /// The shares of --share-file, else `need` prompts on a terminal.
    pub(super) fn shares(&self, need: u8) -> Result<Vec<Share>> {
        if !self.share_file.is_empty() {
            return self
                .share_file
                .iter()
                .map(|f| read_share(Some(f), ""))
                .collect();
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::Keyring(
                "the keyring is sealed by Shamir shares: give a quorum with --share-file".into(),
            ));
        }
        (1..=need)
            .map(|i| read_share(None, &format!("share {i} of {need}: ")))
            .collect()
    }

    /// What opens the keyring, by the seal its file names.
    pub(super) fn credential(&self) -> Result<Credential> {
        Ok(match KeyringFile::load(&self.keyring)?.seal()? {
            SealFile::Passphrase(_) => Credential::Passphrase(self.passphrase()?),
            SealFile::Shamir(s) => Credential::Shares(self.shares(s.threshold())?),
            SealFile::Pkcs11(_) => Credential::Hsm(self.hsm_settings()),
        })
    }

    pub(super) fn settings(&self) -> Result<VaultSettings> {
        let settings = VaultSettings {
            keyring: self.keyring.clone(),
            data: self.data.clone(),
            store: match self.store {
                StoreArg::Sled => StoreKind::Sled,
                StoreArg::Fjall => StoreKind::Fjall,
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
    pub(super) fn audit_key_op<T>(
        &self,
        action: Action,
        result: &Result<T>,
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
        let keys = keyring::open_with(&self.keyring, &self.credential()?.unlock())?;
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
