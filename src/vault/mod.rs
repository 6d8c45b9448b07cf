//! The vault: tokenize and detokenize over an encrypted store.
//!
//! The façade composes the store's single operations with the keyring's ciphers
//! and the token formats. A token leaves [`Vault::tokenize`] only after its record
//! is durable (group commit), and CVVs follow their own volatile rules.

pub mod cvv;
pub mod keys;
mod maintain;
pub mod record;
mod reveal;
mod rotation;
pub mod settings;
pub mod store;
pub mod sweep;
pub mod token;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use smallvec::{SmallVec, smallvec};

use crate::error::{Error, Result};
use crate::sensitive::{DataClass, Plaintext, Sensitive};

pub use keys::{Keys, Passphrase, crypto, keyring};
pub use rotation::{SHARED_SWITCH_GRACE, WATCH_PERIOD};
pub use settings::{StoreKind, VaultSettings};
pub use store::fjall::FjallStore;
pub use store::postgres::PgStore;
pub use store::sled::SledStore;
pub use store::{Space, TokenStore};
pub use token::TokenFormat;

use cvv::{EpochKeys, MemoryCvv};
use record::{Format, Header, Record, SealedValue};
use store::{FingerprintInsert, Inserted};
use token::Template;

/// Random draws before a small token space is searched in full.
const RANDOM_ATTEMPTS: usize = 32;
/// The largest space that is searched in full once random draws keep colliding.
const ENUMERABLE_SPACE: u64 = 100_000;
/// Separates a CVV's scope from its token in the volatile key.
const SCOPE_SEP: char = '\u{1f}';

/// How to tokenize one value.
#[derive(Clone, Debug, Default)]
pub struct TokenizeOptions {
    /// The token format; the class's default if `None`.
    pub format: Option<TokenFormat>,
    /// Same value, same token. Default: true for PANs and bank accounts, false
    /// otherwise; never for a CVV.
    pub deterministic: Option<bool>,
    /// For a CVV: the token it travels with, which makes a same-length token unique.
    pub scope: Option<String>,
}

/// Whether a CVV's scope is to be checked for a token of this vault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// A caller's: looked up.
    Checked,
    /// The token this vault returned for the same request's card a moment before.
    JustIssued,
}

/// A revealed value.
pub struct Revealed {
    pub class: DataClass,
    pub value: Plaintext,
}

/// What may be said about a token without revealing it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TokenMeta {
    pub class: DataClass,
    pub last4: Option<String>,
    pub created: u64,
    pub expires: Option<u64>,
}

/// The outcome of a rewrap pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// Records re-encrypted under the active key.
    pub rewrapped: u64,
    /// Records already under the active key.
    pub current: u64,
}

enum CvvMode {
    Memory(MemoryCvv),
    Durable(EpochKeys),
}

/// A CVV taken out of the store for a request that may not reach its processor:
/// [`Vault::restore_cvv`] puts it back, dropping it consumes it.
pub struct CvvHold {
    key: String,
    expires: u64,
    record: Vec<u8>,
}

/// The live CVV keys of each card scope, oldest first, so that a scope holds at most
/// `cvv_per_scope` of them (a new CVV evicts the oldest). Keyed by the scope's keyed
/// hash, like the records.
#[derive(Default)]
struct ScopeIndex {
    scopes: HashMap<String, VecDeque<(String, u64)>>,
    entries: usize,
}

/// Bytes of a value's fingerprint that new index entries are stored under: 128 bits
/// of HMAC-SHA256, ample for an equality index (a chance collision needs about 2^64
/// values), at half the size of the full MAC.
const FINGERPRINT_LEN: usize = 16;

/// A value's keyed fingerprint. Stored in its short form (in a store only this
/// process writes); stores written before the short form, and shared stores, hold
/// the full 32-byte MAC, which lookups fall back to.
struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The form new index entries use: the MAC truncated to [`FINGERPRINT_LEN`].
    fn short(&self) -> &[u8] {
        self.0.get(..FINGERPRINT_LEN).unwrap_or(&self.0)
    }

    /// The full MAC, as index entries written before the short form hold it.
    fn legacy(&self) -> &[u8] {
        &self.0
    }
}

/// The vault.
pub struct Vault {
    /// The current keys: swapped whole when a rotated keyring is picked up
    /// ([`Vault::refresh_keys`]); a request uses the keys it loaded throughout.
    keys: arc_swap::ArcSwap<Keys>,
    /// Where the keyring file is, to pick up rotations from.
    keyring: std::path::PathBuf,
    /// Serialises reloads; holds the keyring file's stamp as last read.
    reload: tokio::sync::Mutex<Option<rotation::FileStamp>>,
    /// Rewrap progress, for metrics.
    rewrap: rotation::RewrapProgress,
    store: Arc<dyn TokenStore>,
    cvv: CvvMode,
    cvv_ttl: u64,
    cvv_per_scope: usize,
    /// The most CVV keys the scope index remembers (`cvv_max_entries`).
    scope_index_max: usize,
    scope_index: Mutex<ScopeIndex>,
    sweep: sweep::SweepDetector,
    issued: [AtomicU64; 4],
}

impl std::fmt::Debug for Vault {
    // Names the type only: keys and records never reach a formatter.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn class_index(c: DataClass) -> usize {
    match c {
        DataClass::Pan => 0,
        DataClass::Cvv => 1,
        DataClass::BankAccount => 2,
        DataClass::Secret => 3,
    }
}

/// Whether a token names a CVV record.
fn is_cvv(token: &str, scope: Option<&str>) -> bool {
    scope.is_some() || token.starts_with(token::OPAQUE_CVV_PREFIX)
}

/// Candidate tokens: random draws, then (for a small space) every token in turn.
fn candidates(t: &Template) -> impl Iterator<Item = String> + '_ {
    let enumerable = t.space().filter(|s| *s <= ENUMERABLE_SPACE);
    let start = enumerable
        .map(|s| rand::random_range(0..s.max(1)))
        .unwrap_or(0);
    let draws = std::iter::repeat_with(|| t.draw())
        .take(RANDOM_ATTEMPTS)
        .flatten();
    let sweep = enumerable
        .into_iter()
        .flat_map(move |s| (0..s).map(move |i| (start + i) % s))
        .filter_map(|i| t.nth(i));
    draws.chain(sweep)
}

/// Open the store the settings name, without keys: a server that starts sealed opens
/// its store first and builds a [`Vault`] on it ([`Vault::with_store`]) at each unseal.
pub async fn open_store(settings: &VaultSettings) -> Result<Arc<dyn TokenStore>> {
    match open_embedded(settings)? {
        Some(store) => Ok(store),
        None => Ok(Arc::new(PgStore::connect(settings).await?)),
    }
}

/// The embedded store the settings name (sled or fjall, in `data`); `None` when they
/// name PostgreSQL.
fn open_embedded(settings: &VaultSettings) -> Result<Option<Arc<dyn TokenStore>>> {
    let cache = settings.cache_capacity_mb * 1024 * 1024;
    Ok(match settings.store {
        StoreKind::Sled => Some(Arc::new(
            SledStore::open(&settings.data, cache)?.with_flush_timeout(settings.flush_timeout()),
        )),
        StoreKind::Fjall => Some(Arc::new(
            FjallStore::open(&settings.data, cache)?.with_flush_timeout(settings.flush_timeout()),
        )),
        StoreKind::Postgres => None,
    })
}

impl Vault {
    /// Open the vault on its embedded store (sled or fjall). A PostgreSQL store needs a
    /// runtime to connect and migrate: use [`Vault::open_async`] for it.
    pub fn open(settings: &VaultSettings, keys: Keys) -> Result<Self> {
        match open_embedded(settings)? {
            Some(store) => Self::with_store(settings, keys, store),
            None => Err(Error::Config(
                "vault.store = \"postgres\" is opened with Vault::open_async".into(),
            )),
        }
    }

    /// Open the vault on the store its settings name (sled, fjall or PostgreSQL).
    pub async fn open_async(settings: &VaultSettings, keys: Keys) -> Result<Self> {
        let store = open_store(settings).await?;
        Self::with_store(settings, keys, store)
    }

    /// Open the vault on any store. On a store shared by several instances, CVVs
    /// always live in the store (under window keys kept in the store), so that a
    /// CVV tokenized by one instance can be revealed, once, by any other.
    pub fn with_store(
        settings: &VaultSettings,
        keys: Keys,
        store: Arc<dyn TokenStore>,
    ) -> Result<Self> {
        let cvv = if store.is_shared() {
            CvvMode::Durable(EpochKeys::shared(
                Arc::clone(&store),
                settings.cvv_ttl_secs,
                keys.master(),
            )?)
        } else if settings.cvv_durable {
            std::fs::create_dir_all(&settings.data)
                .map_err(|e| Error::io(format!("create {}", settings.data.display()), e))?;
            CvvMode::Durable(EpochKeys::open(
                settings.data.join("cvv-keys.json"),
                settings.cvv_ttl_secs,
                keys.master(),
            )?)
        } else {
            CvvMode::Memory(MemoryCvv::new(
                settings.cvv_max_entries,
                settings.cvv_max_bytes,
            )?)
        };
        Ok(Vault {
            keys: arc_swap::ArcSwap::from_pointee(keys),
            keyring: settings.keyring.clone(),
            reload: tokio::sync::Mutex::new(rotation::FileStamp::of(&settings.keyring)),
            rewrap: rotation::RewrapProgress::default(),
            store,
            cvv,
            cvv_ttl: settings.cvv_ttl_secs.max(1),
            cvv_per_scope: settings.cvv_per_scope.max(1),
            scope_index_max: settings.cvv_max_entries.max(1),
            scope_index: Mutex::new(ScopeIndex::default()),
            sweep: sweep::SweepDetector::new(settings.sweep_threshold, settings.sweep_window_secs),
            issued: Default::default(),
        })
    }

    /// The audit log's MAC key, derived from the master key ([`Keys::audit_key`]).
    pub fn audit_key(&self) -> Result<crypto::SecretKey> {
        self.keys.load().audit_key()
    }

    /// The store under this vault.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }

    /// CVV records held in memory (zero when CVVs are durable: they live in the
    /// store then), for the `vaultgate_cvv_store_entries` metric.
    pub fn cvv_store_len(&self) -> usize {
        match &self.cvv {
            CvvMode::Memory(mem) => mem.len(),
            CvvMode::Durable(_) => 0,
        }
    }

    /// How many CVV records memory may hold (`vault.cvv_max_entries`; zero when CVVs
    /// are durable), for the `vaultgate_cvv_store_capacity` metric.
    pub fn cvv_store_capacity(&self) -> usize {
        match &self.cvv {
            CvvMode::Memory(mem) => mem.capacity(),
            CvvMode::Durable(_) => 0,
        }
    }

    /// Tokenizations refused by the sweep detector (for metrics).
    pub fn sweep_refusals(&self) -> u64 {
        self.sweep.refusals()
    }

    /// The volatile key of a CVV token: the token, after the scope's keyed hash when
    /// it has one. The scope itself (a card token, or whatever a caller sent) is never
    /// stored.
    fn cvv_key(&self, token: &str, scope: Option<&str>) -> Result<String> {
        let scope_hash = scope.map(|s| self.scope_hash(s)).transpose()?;
        Ok(scoped_key(scope_hash.as_deref(), token))
    }

    // Safe to store: a keyed HMAC, useless without the fingerprint key.
    fn scope_hash(&self, scope: &str) -> Result<String> {
        let mac = crypto::hmac_sha256(
            self.keys.load().fingerprint_key(),
            &[b"vaultgate-cvv-scope/1", scope.as_bytes()],
        )?;
        Ok(data_encoding::HEXLOWER.encode(&mac))
    }

    /// Tokens issued by this process, per class (for metrics).
    pub fn issued(&self, class: DataClass) -> u64 {
        self.issued
            .get(class_index(class))
            .map(|a| a.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    fn count_issued(&self, class: DataClass) {
        if let Some(a) = self.issued.get(class_index(class)) {
            a.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Swap a value for a token. Returns once the record is durable.
    pub async fn tokenize(&self, value: &Sensitive, opts: &TokenizeOptions) -> Result<String> {
        let token = self.tokenize_unsynced(value, opts).await?;
        if value.class() != DataClass::Cvv || matches!(self.cvv, CvvMode::Durable(_)) {
            self.store.durable().await?;
        }
        Ok(token)
    }

    /// Tokenize several values; their records share one durable barrier.
    pub async fn tokenize_batch(
        &self,
        items: &[(Sensitive, TokenizeOptions)],
    ) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(items.len());
        for (value, opts) in items {
            out.push(self.tokenize_unsynced(value, opts).await?);
        }
        self.store.durable().await?;
        Ok(out)
    }

    /// Tokenize without waiting for durability. Callers must call
    /// `store().durable()` before a token leaves the process.
    pub async fn tokenize_unsynced(
        &self,
        value: &Sensitive,
        opts: &TokenizeOptions,
    ) -> Result<String> {
        self.tokenize_scoped(value, opts, Scope::Checked).await
    }

    /// [`Self::tokenize_unsynced`] for a CVV whose scope is a token this vault has
    /// just returned for the same request's card (the proxy tokenizes a card before
    /// its CVV): the scope is not looked up again.
    pub(crate) async fn tokenize_unsynced_in_issued_scope(
        &self,
        value: &Sensitive,
        opts: &TokenizeOptions,
    ) -> Result<String> {
        self.tokenize_scoped(value, opts, Scope::JustIssued).await
    }

    async fn tokenize_scoped(
        &self,
        value: &Sensitive,
        opts: &TokenizeOptions,
        scope_is: Scope,
    ) -> Result<String> {
        let class = value.class();
        let format = opts.format.unwrap_or(TokenFormat::default_for(class));
        if class == DataClass::Cvv {
            return self
                .tokenize_cvv(value, format, opts.scope.as_deref(), scope_is)
                .await;
        }
        let deterministic = opts
            .deterministic
            .unwrap_or(matches!(class, DataClass::Pan | DataClass::BankAccount));
        let template = Template::new(class, format, value.expose())?;
        let fingerprint = deterministic
            .then(|| self.fingerprint(class, format, value))
            .transpose()?;
        // A deterministic PAN token is an oracle for its number: count the numbers
        // seen for the first time per first six and last four (see `sweep`).
        let bucket = (deterministic && class == DataClass::Pan)
            .then(|| sweep::bucket_of(value.expose()))
            .flatten();
        let now = now_secs();
        if let Some(b) = bucket {
            self.sweep.check(b, now)?;
        }
        if let Some(fp) = &fingerprint
            && let Some(existing) = self.find_fingerprint(fp).await?
        {
            return Ok(existing);
        }
        if let Some(b) = bucket {
            self.sweep.note_new(b, now)?;
        }
        let keys = self.keys.load_full();
        let (version, sealer) = keys.active()?;
        let sealed = SealedValue::of(self.record_format(), value.expose());
        let header = Header {
            class,
            key_version: version,
            created: now_secs(),
            expires: None,
            deterministic,
            packed: sealed.packed(),
        };
        for token in candidates(&template) {
            let (nonce, ct) =
                sealer.seal(&header.aad(self.record_format(), &token), sealed.bytes())?;
            let record = header.encode_record(self.record_format(), &nonce, &ct);
            let outcome = match &fingerprint {
                Some(fp) => {
                    self.store
                        .insert_fingerprinted(self.stored_fingerprint(fp), &token, &record)
                        .await?
                }
                None => match self
                    .store
                    .insert(Space::Tokens, &token, &record, None)
                    .await?
                {
                    Inserted::New => FingerprintInsert::New,
                    Inserted::Taken => FingerprintInsert::Taken,
                },
            };
            match outcome {
                FingerprintInsert::New => {
                    self.count_issued(class);
                    return Ok(token);
                }
                FingerprintInsert::Existing(t) => return Ok(t),
                FingerprintInsert::Taken => continue,
            }
        }
        Err(Error::TokenSpaceExhausted(class.as_str()))
    }

    // Safe to store: a keyed HMAC, useless without the fingerprint key.
    fn fingerprint(
        &self,
        class: DataClass,
        format: TokenFormat,
        value: &Sensitive,
    ) -> Result<Fingerprint> {
        let mac = crypto::hmac_sha256(
            self.keys.load().fingerprint_key(),
            &[
                b"vaultgate-fingerprint/1",
                class.as_str().as_bytes(),
                format.as_str().as_bytes(),
                value.expose().as_bytes(),
            ],
        )?;
        Ok(Fingerprint(mac))
    }

    /// The layout new records are written in. A store only this process writes
    /// (sled) gets format 2. A shared store (PostgreSQL) keeps format 1 for now: during
    /// a rolling update, instances of an earlier release run against the same store
    /// and read neither format 2 nor a short fingerprint; a later release can switch
    /// once every instance reads both (this one does).
    fn record_format(&self) -> Format {
        if self.store.is_shared() {
            Format::V1
        } else {
            Format::V2
        }
    }

    /// The form a new fingerprint index entry is stored under (see `record_format`).
    fn stored_fingerprint<'a>(&self, fp: &'a Fingerprint) -> &'a [u8] {
        if self.store.is_shared() {
            fp.legacy()
        } else {
            fp.short()
        }
    }

    /// Every form a fingerprint may be stored under, the one new entries use first.
    /// Both are read from most stores: a sled store made by an earlier release holds
    /// full MACs from before the short form, and a shared store will hold short ones
    /// once a later release writes them, while this one may still run next to it.
    /// A store that holds short ones only is asked for that form alone.
    fn fingerprint_forms<'a>(&self, fp: &'a Fingerprint) -> SmallVec<[&'a [u8]; 2]> {
        if self.store.is_shared() {
            smallvec![fp.legacy(), fp.short()]
        } else if self.store.short_fingerprints_only() {
            smallvec![fp.short()]
        } else {
            smallvec![fp.short(), fp.legacy()]
        }
    }

    /// The token a fingerprint maps to, under any of its forms.
    async fn find_fingerprint(&self, fp: &Fingerprint) -> Result<Option<String>> {
        self.store
            .fingerprint_any(&self.fingerprint_forms(fp))
            .await
    }

    async fn tokenize_cvv(
        &self,
        value: &Sensitive,
        format: TokenFormat,
        scope: Option<&str>,
        scope_is: Scope,
    ) -> Result<String> {
        // A same-length CVV token is unique only within its scope; without one the
        // token is opaque.
        let format = match (format, scope) {
            (TokenFormat::Digits, None) => TokenFormat::Opaque,
            (f, _) => f,
        };
        // A scope must be a token of this vault: anything else (a PAN, say) would
        // make a card's CVV slots fillable by name, and is refused.
        if let Some(s) = scope
            && scope_is == Scope::Checked
            && !self.is_issued(s).await?
        {
            return Err(Error::InvalidScope);
        }
        let template = Template::new(DataClass::Cvv, format, value.expose())?;
        let now = now_secs();
        let expires = now.saturating_add(self.cvv_ttl);
        let scope_hash = scope.map(|s| self.scope_hash(s)).transpose()?;
        if let Some(h) = &scope_hash {
            self.make_room(h, now).await?;
        }
        let sealed = SealedValue::of(self.record_format(), value.expose());
        for token in candidates(&template) {
            // The scope's hash, made once above (an HMAC), not again per candidate.
            let key = scoped_key(scope_hash.as_deref(), &token);
            let inserted = match &self.cvv {
                CvvMode::Memory(mem) => {
                    let header = Header {
                        class: DataClass::Cvv,
                        key_version: 0,
                        created: now,
                        expires: Some(expires),
                        deterministic: false,
                        packed: sealed.packed(),
                    };
                    let (nonce, ct) = mem
                        .sealer()
                        .seal(&header.aad(self.record_format(), &key), sealed.bytes())?;
                    mem.insert(
                        key.clone(),
                        expires,
                        header.encode_record(self.record_format(), &nonce, &ct),
                    )?
                }
                CvvMode::Durable(epochs) => {
                    let epoch = epochs.epoch_of(now);
                    let header = Header {
                        class: DataClass::Cvv,
                        key_version: u32::try_from(epoch).unwrap_or(u32::MAX),
                        created: now,
                        expires: Some(expires),
                        deterministic: false,
                        packed: sealed.packed(),
                    };
                    let sealer = epochs.sealer(epoch, true).await?;
                    let (nonce, ct) =
                        sealer.seal(&header.aad(self.record_format(), &key), sealed.bytes())?;
                    let record = header.encode_record(self.record_format(), &nonce, &ct);
                    self.store
                        .insert(Space::Volatile, &key, &record, Some(expires))
                        .await?
                        == Inserted::New
                }
            };
            if inserted {
                if let Some(h) = scope_hash {
                    self.remember_scoped(h, key, expires)?;
                }
                self.count_issued(DataClass::Cvv);
                return Ok(token);
            }
        }
        Err(Error::TokenSpaceExhausted("cvv"))
    }

    fn scope_index(&self) -> Result<std::sync::MutexGuard<'_, ScopeIndex>> {
        self.scope_index
            .lock()
            .map_err(|_| Error::Internal("CVV scope index lock"))
    }

    /// Before a scoped CVV is stored: evict the scope's oldest live CVVs so that it
    /// keeps at most `cvv_per_scope` (counting the new one). Nobody can fill a card's
    /// token space; a flood only pushes out earlier CVVs of that card.
    async fn make_room(&self, scope_hash: &str, now: u64) -> Result<()> {
        let evicted: Vec<String> = {
            let mut index = self.scope_index()?;
            let ScopeIndex { scopes, entries } = &mut *index;
            let mut evicted = Vec::new();
            if let Some(keys) = scopes.get_mut(scope_hash) {
                let before = keys.len();
                keys.retain(|(_, exp)| *exp > now);
                while keys.len() >= self.cvv_per_scope {
                    match keys.pop_front() {
                        Some((k, _)) => evicted.push(k),
                        None => break,
                    }
                }
                *entries = entries.saturating_sub(before - keys.len());
            }
            evicted
        };
        for key in evicted {
            match &self.cvv {
                CvvMode::Memory(mem) => {
                    mem.take(&key)?;
                }
                CvvMode::Durable(_) => {
                    self.store.take(Space::Volatile, &key).await?;
                }
            }
        }
        Ok(())
    }

    /// Note a scoped CVV in the index. Bounded by `cvv_max_entries`: when full,
    /// expired keys go first; if it is still full, the CVV store counts as full.
    fn remember_scoped(&self, scope_hash: String, key: String, expires: u64) -> Result<()> {
        let mut index = self.scope_index()?;
        if index.entries >= self.scope_index_max {
            let now = now_secs();
            let mut left = 0;
            index.scopes.retain(|_, keys| {
                keys.retain(|(_, exp)| *exp > now);
                left += keys.len();
                !keys.is_empty()
            });
            index.entries = left;
            if index.entries >= self.scope_index_max {
                return Err(Error::CvvStoreFull);
            }
        }
        index
            .scopes
            .entry(scope_hash)
            .or_default()
            .push_back((key, expires));
        index.entries += 1;
        Ok(())
    }

    /// Make every write so far durable.
    pub async fn flush(&self) -> Result<()> {
        self.store.durable().await
    }
}

/// A CVV record's key: its token, after its scope's hash when it has a scope.
fn scoped_key(scope_hash: Option<&str>, token: &str) -> String {
    match scope_hash {
        Some(hash) => {
            let mut key = String::with_capacity(hash.len() + 1 + token.len());
            key.push_str(hash);
            key.push(SCOPE_SEP);
            key.push_str(token);
            key
        }
        None => token.to_owned(),
    }
}
