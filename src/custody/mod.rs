//! Custody of the keys while the server runs: sealed (no keys in memory, every vault
//! request answered `503 sealed`) or unsealed (a [`Vault`] the handlers use).
//!
//! A Shamir-sealed server starts sealed and collects shares, one per call, until the
//! threshold is reached; shares that wait longer than `vault.seal.share_timeout_secs`
//! are forgotten. A PKCS#11 server unseals at start (and again on request after a
//! seal) with one session to its HSM. [`Custody::seal`] drops the keys without stopping
//! the process. Every attempt, unseal and seal is audited, never with share material.
//!
//! The store stays open across seals: a vault is rebuilt on it at each unseal, so the
//! keys are the only thing that comes and goes.

mod gate;
pub mod http;

pub use gate::{Gate, audit_options, audit_wanted, spawn_sweeper};

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use serde::Serialize;

use crate::audit::{Action, AuditEvent};
use crate::auth::Access;
use crate::error::{Error, Result};
use crate::vault::keyring::KeyringFile;
use crate::vault::keys::seal::{Passphrase, SealFile, SealKind, Share, Unlock};
use crate::vault::{Keys, TokenStore, Vault, VaultSettings};

/// Where an unsealed vault goes: the server builds its handlers' states from it.
pub trait Slot: Send + Sync {
    /// Serve with this vault.
    fn install(&self, vault: Arc<Vault>) -> Result<()>;
    /// Stop serving any vault: every vault request is answered `sealed`.
    fn clear(&self);
}

/// Shares received toward a quorum, forgotten after the timeout.
struct Pending {
    split: Option<(String, u32)>,
    shares: Vec<Share>,
    since: Option<Instant>,
}

impl Pending {
    fn clear(&mut self) {
        self.split = None;
        self.shares.clear();
        self.since = None;
    }
}

/// What `GET /v1/sys/seal-status` reports.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SealStatus {
    /// Whether the keys are out of memory.
    pub sealed: bool,
    /// `passphrase`, `shamir` or `pkcs11`.
    pub kind: &'static str,
    /// Shamir: shares needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u8>,
    /// Shamir: shares made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<u8>,
    /// Shamir: the split's generation (one more at each rekey).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u32>,
    /// Shamir: shares received toward the threshold.
    pub received: usize,
    /// Shamir: seconds until received shares are forgotten.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forget_in_secs: Option<u64>,
}

/// The most custody events held while no audit log is open.
const MAX_EARLY_EVENTS: usize = 10_000;

/// The keys' custody: the store, the current vault (if unsealed) and pending shares.
pub struct Custody {
    settings: VaultSettings,
    store: Arc<dyn TokenStore>,
    vault: ArcSwapOption<Vault>,
    pending: Mutex<Pending>,
    slot: OnceLock<Arc<dyn Slot>>,
    /// Where unseal and seal events are audited (the server's audit log, opened with
    /// the audit key once a vault is unsealed).
    access: OnceLock<Arc<Access>>,
    /// Events from before the audit log could be opened (a server that starts sealed
    /// has no audit key yet): written first once it is open, at most
    /// [`MAX_EARLY_EVENTS`].
    early: Mutex<Vec<AuditEvent>>,
    /// Serialises unseal and seal, so that a seal cannot race an unseal in flight.
    turn: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Custody {
    // Names the type and the state only: shares and keys never reach a formatter.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custody")
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Custody {
    /// Sealed custody over an open store.
    pub fn sealed(settings: &VaultSettings, store: Arc<dyn TokenStore>) -> Custody {
        Custody {
            settings: settings.clone(),
            store,
            vault: ArcSwapOption::empty(),
            pending: Mutex::new(Pending {
                split: None,
                shares: Vec::new(),
                since: None,
            }),
            slot: OnceLock::new(),
            access: OnceLock::new(),
            early: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Custody of an already open vault.
    pub fn unsealed(settings: &VaultSettings, vault: Arc<Vault>) -> Custody {
        let custody = Custody::sealed(settings, Arc::clone(vault.store()));
        custody.vault.store(Some(vault));
        custody
    }

    /// Connect the server: its slot gets the vault now (if unsealed) and at every
    /// unseal; `access` holds the audit log that records unseal and seal events.
    pub fn attach(&self, slot: Arc<dyn Slot>, access: Arc<Access>) -> Result<()> {
        let _ = self.access.set(access);
        if let Some(vault) = self.vault.load_full() {
            slot.install(vault)?;
        }
        self.slot
            .set(slot)
            .map_err(|_| Error::Internal("the custody slot is attached twice"))
    }

    /// The store (open whether sealed or not).
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }

    /// The vault, if unsealed.
    pub fn vault(&self) -> Option<Arc<Vault>> {
        self.vault.load_full()
    }

    /// The vault, or `Error::Sealed`.
    pub fn vault_or_sealed(&self) -> Result<Arc<Vault>> {
        self.vault().ok_or(Error::Sealed)
    }

    /// Whether the keys are out of memory.
    pub fn is_sealed(&self) -> bool {
        self.vault.load().is_none()
    }

    fn keyring(&self) -> Result<KeyringFile> {
        KeyringFile::load(&self.settings.keyring)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.seal.share_timeout_secs)
    }

    /// Forget pending shares that waited longer than the timeout. Returns whether any were.
    pub fn expire(&self) -> bool {
        let mut p = lock(&self.pending);
        if p.since.is_some_and(|t| t.elapsed() >= self.timeout()) {
            p.clear();
            tracing::warn!("unseal shares timed out and were forgotten");
            return true;
        }
        false
    }

    /// The seal's kind and progress.
    pub fn status(&self) -> Result<SealStatus> {
        self.expire();
        let seal = self.keyring()?.seal()?;
        let p = lock(&self.pending);
        let mut status = SealStatus {
            sealed: self.is_sealed(),
            kind: seal.kind().as_str(),
            threshold: None,
            shares: None,
            generation: None,
            received: p.shares.len(),
            forget_in_secs: p
                .since
                .map(|t| self.timeout().saturating_sub(t.elapsed()).as_secs()),
        };
        if let SealFile::Shamir(s) = &seal {
            status.threshold = Some(s.threshold());
            status.shares = Some(s.shares());
            status.generation = Some(s.split_id().1);
        }
        Ok(status)
    }

    async fn record(&self, event: AuditEvent) -> Result<()> {
        let log = self.access.get().and_then(|a| a.audit_log());
        match log {
            Some(log) => {
                let mut events =
                    std::mem::take(&mut *self.early.lock().unwrap_or_else(PoisonError::into_inner));
                events.push(event);
                log.record_batch(&events).await
            }
            None => {
                // No audit key before the first unseal: keep the event (it carries no
                // share material) and write it once the log opens.
                tracing::info!(action = ?event.action, outcome = event.outcome, "custody event held until the audit log opens");
                let mut early = self.early.lock().unwrap_or_else(PoisonError::into_inner);
                if early.len() < MAX_EARLY_EVENTS {
                    early.push(event);
                }
                Ok(())
            }
        }
    }

    /// Audit an attempt's outcome; when the audit cannot be written, the attempt fails.
    async fn audited<T>(
        &self,
        action: Action,
        who: &str,
        origin: &str,
        result: Result<T>,
    ) -> Result<T> {
        let event = AuditEvent::new(who, action)
            .origin(origin)
            .outcome_of(&result);
        self.record(event).await?;
        result
    }

    /// Build a vault on the store with `keys` and hand it to the server.
    fn install(&self, keys: Keys) -> Result<()> {
        let vault = Arc::new(Vault::with_store(
            &self.settings,
            keys,
            Arc::clone(&self.store),
        )?);
        if let Some(slot) = self.slot.get() {
            slot.install(Arc::clone(&vault))?;
        }
        self.vault.store(Some(vault));
        Ok(())
    }

    /// Unseal with keys opened elsewhere (at start: a passphrase or the HSM).
    pub fn unseal_with_keys(&self, keys: Keys) -> Result<()> {
        self.install(keys)
    }

    /// Take one Shamir share (`origin` is the peer, for the audit log). Unseals once
    /// the threshold is reached.
    pub async fn submit_share(&self, text: &str, origin: &str) -> Result<SealStatus> {
        let _turn = self.turn.lock().await;
        let result = self.take_share(text);
        let unsealed = matches!(result, Ok(true));
        if let Err(e) = self
            .audited(Action::UnsealAttempt, "-", origin, result.map(|_| ()))
            .await
        {
            if !matches!(e, Error::InvalidShare(_) | Error::BadRequest(_)) {
                // Not recorded: not kept either.
                lock(&self.pending).clear();
            }
            return Err(e);
        }
        if unsealed {
            let result = self.combine();
            self.audited(Action::Unseal, "-", origin, result).await?;
        }
        self.status()
    }

    /// Check and keep a share; true when the threshold is reached.
    fn take_share(&self, text: &str) -> Result<bool> {
        if !self.is_sealed() {
            return Err(Error::BadRequest("the vault is already unsealed".into()));
        }
        let share = Share::parse(text)?;
        let SealFile::Shamir(seal) = self.keyring()?.seal()? else {
            return Err(Error::BadRequest(
                "the keyring is not sealed by Shamir shares".into(),
            ));
        };
        seal.check(&share)?;
        self.expire();
        let mut p = lock(&self.pending);
        let (id, generation) = share.split();
        let split = (id.to_owned(), generation);
        if p.split.as_ref() != Some(&split) {
            p.clear();
            p.split = Some(split);
        }
        p.shares.retain(|s| s.index() != share.index());
        p.shares.push(share);
        p.since.get_or_insert_with(Instant::now);
        Ok(p.shares.len() >= usize::from(seal.threshold()))
    }

    /// Open the keyring with the pending shares (forgotten whatever the outcome).
    fn combine(&self) -> Result<()> {
        let shares = std::mem::take(&mut lock(&self.pending).shares);
        lock(&self.pending).clear();
        let keys = self.keyring()?.unseal_with(&Unlock::Shares(&shares))?;
        drop(shares);
        self.install(keys)
    }

    /// Unseal a passphrase- or HSM-sealed vault again after a seal.
    pub async fn unseal_other(
        &self,
        passphrase: Option<Passphrase>,
        origin: &str,
    ) -> Result<SealStatus> {
        let _turn = self.turn.lock().await;
        let result = self.open_other(passphrase).await;
        self.audited(Action::Unseal, "-", origin, result).await?;
        self.status()
    }

    async fn open_other(&self, passphrase: Option<Passphrase>) -> Result<()> {
        if !self.is_sealed() {
            return Err(Error::BadRequest("the vault is already unsealed".into()));
        }
        let file = self.keyring()?;
        let settings = self.settings.seal.clone();
        let keys = tokio::task::spawn_blocking(move || match (file.seal()?.kind(), passphrase) {
            (SealKind::Pkcs11, _) => file.unseal_with(&Unlock::Hsm(&settings)),
            (SealKind::Passphrase, Some(p)) => file.unseal(&p),
            (SealKind::Passphrase, None) => Err(Error::BadRequest(
                "a passphrase-sealed vault needs {\"passphrase\": …}".into(),
            )),
            (SealKind::Shamir, _) => Err(Error::BadRequest(
                "a Shamir-sealed vault needs {\"share\": …}".into(),
            )),
        })
        .await
        .map_err(|_| Error::Internal("the unseal task failed"))??;
        self.install(keys)
    }

    /// Drop the keys from memory without stopping; `who` is the authorized client.
    pub async fn seal(&self, who: &str, origin: &str) -> Result<SealStatus> {
        let _turn = self.turn.lock().await;
        let was_sealed = self.is_sealed();
        self.vault.store(None);
        if let Some(slot) = self.slot.get() {
            slot.clear();
        }
        lock(&self.pending).clear();
        let result = if was_sealed {
            Err(Error::Sealed)
        } else {
            Ok(())
        };
        // Sealed either way; an already sealed vault is recorded as such.
        let _ = self.audited(Action::Seal, who, origin, result).await;
        self.status()
    }
}
