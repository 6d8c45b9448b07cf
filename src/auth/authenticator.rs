//! Credential checks: API keys and certificate names.
//!
//! # SHA-256 keys: no cache needed
//!
//! A key stored as `sha256:<hex>` (what `clients add` writes) is checked by hashing
//! the presented key once and comparing the digest, in constant time, with every
//! such stored digest (no early exit). That costs about a microsecond, so a flood of
//! random keys costs nothing and never delays a real client.
//!
//! # Legacy argon2id hashes
//!
//! # Why a cache, and what it holds
//!
//! argon2id costs about 30 ms, so it runs once per key per TTL, not per request. The
//! cache maps `HMAC-SHA256(process key, api key)` to the client: the API key itself is
//! never stored, and the HMAC key is random per process, so the map is useless to
//! anyone who dumps it. Failures are cached too, but only as failures, for a short
//! time, so that a client retrying a wrong key does not cost argon2 each time.
//!
//! # Finding the client for a key
//!
//! A key does not name its client, so a key not in the cache is checked against every
//! client's hash, all of them every time (no early exit, so timing does not tell which
//! client matched), and it must match exactly one client. That costs one argon2 per
//! key hash (two for a client in the middle of a key rollover), which is fine for tens
//! of clients. To keep a flood of wrong keys
//! from filling the blocking pool, at most [`CacheSettings::argon2_concurrency`] argon2
//! runs happen at once, and malformed keys are refused before any argon2 work.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use hmac::{Hmac, KeyInit, Mac};
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::apikey;
use super::client::Client;
use super::config::{ClientConfig, cert_name, validate_clients};
use crate::error::{Error, Result};

/// Cache sizes and lifetimes.
#[derive(Clone, Copy, Debug)]
pub struct CacheSettings {
    /// How long a verified key stays verified.
    pub ttl: Duration,
    /// How long a refused key is refused without running argon2 again.
    pub negative_ttl: Duration,
    /// Most keys remembered (each of the positive and negative caches).
    pub max_entries: usize,
    /// Most argon2 runs at once.
    pub argon2_concurrency: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            ttl: Duration::from_secs(600),
            negative_ttl: Duration::from_secs(60),
            max_entries: 10_000,
            argon2_concurrency: 2,
        }
    }
}

/// The HMAC of a key under the per-process cache key. Compared in constant time.
#[derive(Clone, Copy)]
pub(super) struct CacheId([u8; 32]);

impl PartialEq for CacheId {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for CacheId {}

impl Hash for CacheId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

struct Cached {
    client: Arc<Client>,
    expires: Instant,
}

/// Checks credentials and hands back the client they belong to.
pub struct Authenticator {
    inner: Arc<Inner>,
    settings: CacheSettings,
    mac: Hmac<Sha256>,
    by_cert: HashMap<String, Arc<Client>>,
    clients: Vec<Arc<Client>>,
    /// SHA-256 digests of keys and their clients.
    digests: Vec<([u8; 32], Arc<Client>)>,
    cache: RwLock<HashMap<CacheId, Cached>>,
    refused: Mutex<HashMap<CacheId, Instant>>,
    argon2_permits: Arc<Semaphore>,
}

/// What the blocking argon2 task needs.
struct Inner {
    keyed: Vec<(PasswordHash, Arc<Client>)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Validate the clients and build an authenticator with the default cache.
    pub fn new(clients: &[ClientConfig]) -> Result<Self> {
        Authenticator::with_settings(clients, CacheSettings::default())
    }

    /// Validate the clients and build an authenticator.
    pub fn with_settings(clients: &[ClientConfig], settings: CacheSettings) -> Result<Self> {
        validate_clients(clients)?;
        let mut keyed = Vec::new();
        let mut digests = Vec::new();
        let mut by_cert = HashMap::new();
        let mut all = Vec::new();
        for c in clients {
            let client = Arc::new(Client::from_config(c));
            for hash in c.key_hashes() {
                match apikey::parse_key_hash(hash)? {
                    apikey::KeyHash::Sha256(d) => digests.push((d, Arc::clone(&client))),
                    apikey::KeyHash::Argon2(h) => keyed.push((*h, Arc::clone(&client))),
                }
            }
            if let Some(subject) = &c.cert_subject {
                by_cert.insert(cert_name(subject).to_ascii_lowercase(), Arc::clone(&client));
            }
            all.push(client);
        }
        let mut cache_key = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(cache_key.as_mut())
            .map_err(|_| Error::Internal("the system random number generator failed"))?;
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(cache_key.as_ref())
            .map_err(|_| Error::Internal("hmac key length"))?;
        Ok(Authenticator {
            inner: Arc::new(Inner { keyed }),
            settings,
            mac,
            by_cert,
            clients: all,
            digests,
            cache: RwLock::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            argon2_permits: Arc::new(Semaphore::new(settings.argon2_concurrency.max(1))),
        })
    }

    /// Every configured client.
    pub fn clients(&self) -> &[Arc<Client>] {
        &self.clients
    }

    /// The client for a bearer API key, or `Unauthenticated`.
    ///
    /// Cheap when the key was verified in the last TTL (one HMAC and a map lookup);
    /// otherwise argon2 runs on the blocking pool.
    pub async fn authenticate_bearer(&self, key: &str) -> Result<Arc<Client>> {
        if !apikey::well_formed(key) {
            return Err(Error::Unauthenticated);
        }
        if let Some(client) = self.find_digest(key)? {
            return Ok(client);
        }
        if self.inner.keyed.is_empty() {
            // No legacy hash to try: a miss is final, and cost one SHA-256.
            return Err(Error::Unauthenticated);
        }
        let id = self.cache_id(key);
        if let Some(client) = self.lookup(&id)? {
            return Ok(client);
        }
        // The permit moves into the blocking task, so that a cancelled request does not
        // free it while its argon2 run goes on.
        let permit = Arc::clone(&self.argon2_permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("argon2 semaphore closed"))?;
        // Another task may have checked the same key while we waited.
        if let Some(client) = self.lookup(&id)? {
            return Ok(client);
        }
        let key = Zeroizing::new(key.as_bytes().to_vec());
        let inner = Arc::clone(&self.inner);
        let found = tokio::task::spawn_blocking(move || {
            let found = inner.find(&key);
            drop(permit);
            found
        })
        .await
        .map_err(|_| Error::Internal("argon2 task failed"))?;
        match found {
            Some(client) => {
                self.remember(id, Arc::clone(&client));
                Ok(client)
            }
            None => {
                self.refuse(id);
                Err(Error::Unauthenticated)
            }
        }
    }

    /// The client whose `cert_subject` names `name`: a common name or DNS SAN of a
    /// client certificate that the TLS layer has already verified.
    pub fn authenticate_cert_subject(&self, name: &str) -> Result<Arc<Client>> {
        self.by_cert
            .get(&name.trim().to_ascii_lowercase())
            .cloned()
            .ok_or(Error::Unauthenticated)
    }

    /// The one client named by any of a certificate's names (CN and DNS SANs). Names
    /// that point at two different clients are refused as ambiguous.
    pub fn authenticate_cert_names<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Arc<Client>> {
        let mut found: Option<Arc<Client>> = None;
        for name in names {
            if let Ok(client) = self.authenticate_cert_subject(name) {
                match &found {
                    Some(f) if !Arc::ptr_eq(f, &client) => return Err(Error::Unauthenticated),
                    _ => found = Some(client),
                }
            }
        }
        found.ok_or(Error::Unauthenticated)
    }

    /// The client whose SHA-256 digest matches `key`: every digest is compared, in
    /// constant time, and the matches must all be one client's.
    fn find_digest(&self, key: &str) -> Result<Option<Arc<Client>>> {
        let digest = apikey::sha256_of(key.as_bytes());
        let mut found: Option<&Arc<Client>> = None;
        let mut ambiguous = false;
        for (stored, client) in &self.digests {
            if bool::from(stored.ct_eq(&digest)) {
                match found {
                    Some(f) if !Arc::ptr_eq(f, client) => ambiguous = true,
                    _ => found = Some(client),
                }
            }
        }
        if ambiguous {
            return Err(Error::Unauthenticated);
        }
        Ok(found.map(Arc::clone))
    }

    pub(super) fn cache_id(&self, key: &str) -> CacheId {
        let mut mac = self.mac.clone();
        mac.update(key.as_bytes());
        CacheId(mac.finalize().into_bytes().into())
    }

    /// A cached client, `Err` for a recently refused key, `None` to run argon2.
    pub(super) fn lookup(&self, id: &CacheId) -> Result<Option<Arc<Client>>> {
        let now = Instant::now();
        {
            let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(hit) = cache.get(id).filter(|hit| hit.expires > now) {
                return Ok(Some(Arc::clone(&hit.client)));
            }
        }
        let refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        match refused.get(id) {
            Some(until) if *until > now => Err(Error::Unauthenticated),
            _ => Ok(None),
        }
    }

    fn remember(&self, id: CacheId, client: Arc<Client>) {
        let now = Instant::now();
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= self.settings.max_entries {
            cache.retain(|_, c| c.expires > now);
        }
        if cache.len() >= self.settings.max_entries {
            let oldest = cache
                .iter()
                .min_by_key(|(_, c)| c.expires)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                cache.remove(&oldest);
            }
        }
        cache.insert(
            id,
            Cached {
                client,
                expires: now + self.settings.ttl,
            },
        );
    }

    fn refuse(&self, id: CacheId) {
        let now = Instant::now();
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if refused.len() >= self.settings.max_entries {
            refused.retain(|_, until| *until > now);
        }
        if refused.len() >= self.settings.max_entries {
            // Only an optimisation: forgetting refusals costs argon2 time, not safety.
            refused.clear();
        }
        refused.insert(id, now + self.settings.negative_ttl);
    }
}

impl Inner {
    /// Run argon2 against every hash; the hashes that match must all be one client's
    /// (a client has two during a key rollover).
    fn find(&self, key: &[u8]) -> Option<Arc<Client>> {
        let mut found: Option<&Arc<Client>> = None;
        let mut ambiguous = false;
        for (hash, client) in &self.keyed {
            if apikey::matches(key, hash) {
                match found {
                    Some(f) if !Arc::ptr_eq(f, client) => ambiguous = true,
                    _ => found = Some(client),
                }
            }
        }
        found.filter(|_| !ambiguous).map(Arc::clone)
    }
}
