//! The shared token store on PostgreSQL, so that several vaultgate instances serve
//! one vault.
//!
//! Plain PostgreSQL SQL (it also runs on CockroachDB and YugabyteDB; see
//! docs/postgres.md). Every operation is one statement (or one short transaction),
//! committed before it returns: durability is the database's commit, so
//! [`TokenStore::durable`] has nothing to wait for. Deterministic tokens stay unique
//! across instances through the primary key on the fingerprint; single-use CVVs are
//! taken with `DELETE … RETURNING`, so two instances never both reveal one.
//!
//! A lost connection surfaces as [`Error::StoreUnavailable`] (503 on the proxy's
//! tokenizing routes); the pool drops closed connections and dials new ones, so the
//! store recovers by itself when the database is back.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{FingerprintInsert, Inserted, Space, TokenStore};
use crate::error::{Error, Result};
use crate::vault::settings::VaultSettings;

/// The schema migrations, embedded in the binary, applied in order.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../../migrations/0001_init.sql")),
    (2, "meta", include_str!("../../../migrations/0002_meta.sql")),
];

/// The advisory lock that serializes migrations between instances starting together.
const MIGRATION_LOCK: i64 = 0x7661_756c_7467_6174; // "vaultgat"

/// How long to wait for a connection (dial or a free pooled one).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL store: a connection pool.
pub struct PgStore {
    pool: Pool,
    /// How long one operation may take, a pooled connection's wait included
    /// (`vault.postgres_timeout_ms`).
    timeout: Duration,
}

/// SQL per space: the volatile table also has an expiry.
struct Sql {
    insert: &'static str,
    get: &'static str,
    take: &'static str,
    remove: &'static str,
    replace: &'static str,
    scan_first: &'static str,
    scan_after: &'static str,
}

const TOKENS: Sql = Sql {
    insert: "INSERT INTO vaultgate_tokens (key, record) VALUES ($1, $2) \
             ON CONFLICT (key) DO NOTHING",
    get: "SELECT record FROM vaultgate_tokens WHERE key = $1",
    take: "DELETE FROM vaultgate_tokens WHERE key = $1 RETURNING record",
    remove: "WITH d AS (DELETE FROM vaultgate_tokens WHERE key = $1::text RETURNING 1), \
             f AS (DELETE FROM vaultgate_fingerprints \
                   WHERE fingerprint = $2::bytea AND token = $1::text) \
             SELECT count(*) FROM d",
    replace: "UPDATE vaultgate_tokens SET record = $3 WHERE key = $1 AND record = $2",
    scan_first: "SELECT key, record FROM vaultgate_tokens ORDER BY key LIMIT $1",
    scan_after: "SELECT key, record FROM vaultgate_tokens WHERE key > $1 ORDER BY key LIMIT $2",
};

const VOLATILE: Sql = Sql {
    insert: "INSERT INTO vaultgate_volatile (key, record, expires) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO NOTHING",
    get: "SELECT record FROM vaultgate_volatile WHERE key = $1",
    take: "DELETE FROM vaultgate_volatile WHERE key = $1 RETURNING record",
    remove: "WITH d AS (DELETE FROM vaultgate_volatile WHERE key = $1::text RETURNING 1), \
             f AS (DELETE FROM vaultgate_fingerprints \
                   WHERE fingerprint = $2::bytea AND token = $1::text) \
             SELECT count(*) FROM d",
    replace: "UPDATE vaultgate_volatile SET record = $3 WHERE key = $1 AND record = $2",
    scan_first: "SELECT key, record FROM vaultgate_volatile ORDER BY key LIMIT $1",
    scan_after: "SELECT key, record FROM vaultgate_volatile WHERE key > $1 \
                 ORDER BY key LIMIT $2",
};

fn sql(space: Space) -> &'static Sql {
    match space {
        Space::Tokens => &TOKENS,
        Space::Volatile => &VOLATILE,
    }
}

/// One statement: claim the fingerprint, and only if this call claimed it, store the
/// record. A concurrent claim of the same fingerprint waits on the primary key and
/// then does nothing; a token key that is taken fails the whole statement (23505).
const INSERT_FINGERPRINTED: &str = "WITH fp AS ( \
        INSERT INTO vaultgate_fingerprints (fingerprint, token) VALUES ($1::bytea, $2::text) \
        ON CONFLICT (fingerprint) DO NOTHING RETURNING token), \
    tok AS ( \
        INSERT INTO vaultgate_tokens (key, record) SELECT token, $3::bytea FROM fp \
        RETURNING key) \
    SELECT count(*) FROM tok";
const GET_FINGERPRINT: &str = "SELECT token FROM vaultgate_fingerprints WHERE fingerprint = $1";
const GET_FINGERPRINT_ANY: &str =
    "SELECT fingerprint, token FROM vaultgate_fingerprints WHERE fingerprint = ANY($1::bytea[])";
const SCAN_EXPIRED: &str = "SELECT key FROM vaultgate_volatile WHERE expires <= $1 \
                            ORDER BY expires LIMIT $2";
const CVV_KEY_INSERT: &str = "INSERT INTO vaultgate_cvv_keys (epoch, wrapped) VALUES ($1, $2) \
                              ON CONFLICT (epoch) DO NOTHING";
const PING: &str = "SELECT 1";
const KEY_VERSION_GET: &str = "SELECT active_key_version FROM vaultgate_meta WHERE id = 1";
// Monotonic: a late or repeated publish never moves the version back.
const KEY_VERSION_SET: &str = "INSERT INTO vaultgate_meta (id, active_key_version) VALUES (1, $1) \
     ON CONFLICT (id) DO UPDATE SET active_key_version = \
     GREATEST(vaultgate_meta.active_key_version, EXCLUDED.active_key_version)";
const CVV_KEY_GET: &str = "SELECT wrapped FROM vaultgate_cvv_keys WHERE epoch = $1";
const CVV_KEYS_DESTROY: &str = "DELETE FROM vaultgate_cvv_keys WHERE epoch < $1";

/// Map a driver error: a lost or refused connection is `StoreUnavailable` (503);
/// anything else names only its SQLSTATE, never a value.
fn pg_error(e: tokio_postgres::Error) -> Error {
    if let Some(code) = e.code() {
        let c = code.code();
        // 08: connection exception; 57P: operator intervention (shutdown);
        // 53: insufficient resources (too many connections).
        if c.starts_with("08") || c.starts_with("57P") || c.starts_with("53") {
            tracing::warn!(sqlstate = c, "the database is unavailable");
            return Error::StoreUnavailable;
        }
        return Error::Store(format!("database error (SQLSTATE {c})"));
    }
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io {
        tracing::warn!("the database connection was lost");
        return Error::StoreUnavailable;
    }
    Error::Store(format!("database: {e}"))
}

fn pool_error(e: PoolError) -> Error {
    match e {
        PoolError::Backend(e) => pg_error(e),
        other => {
            tracing::warn!(error = %other, "no database connection");
            Error::StoreUnavailable
        }
    }
}

fn to_i64(v: u64, what: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Internal(what))
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A loopback address or a Unix socket: the only hosts reached without TLS.
fn is_local(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
    }
}

fn tls_connector(settings: &VaultSettings) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let builder = rustls::ClientConfig::builder_with_provider(crate::net::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("vault.postgres_ca: {e}")))?;
    let roots = match &settings.postgres_ca {
        Some(ca) => crate::net::tls::root_store("vault.postgres_ca", ca)?,
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

impl PgStore {
    /// Build the pool from the settings and, if `postgres_migrate_on_start`, apply
    /// pending migrations (which also proves the database is reachable).
    pub async fn connect(settings: &VaultSettings) -> Result<Self> {
        let store = Self::pool_only(settings)?;
        if settings.postgres_migrate_on_start {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Build the pool; connections are dialled on first use.
    pub fn pool_only(settings: &VaultSettings) -> Result<Self> {
        let url = settings.postgres_url.as_ref().ok_or_else(|| {
            Error::Config("vault.postgres_url: required when vault.store = \"postgres\"".into())
        })?;
        // The parse error never echoes the URL (it may hold a password).
        let mut config: tokio_postgres::Config = url
            .expose()
            .parse()
            .map_err(|_| Error::Config("vault.postgres_url: not a valid PostgreSQL URL".into()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("vaultgate");
        }
        let local = !config.get_hosts().is_empty() && config.get_hosts().iter().all(is_local);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = if local && settings.postgres_ca.is_none() {
            Manager::from_config(config, tokio_postgres::NoTls, manager_config)
        } else {
            // Off the machine, TLS is required and the certificate verified.
            config.ssl_mode(SslMode::Require);
            Manager::from_config(config, tls_connector(settings)?, manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(settings.postgres_pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| Error::Config(format!("vault.postgres_url: {e}")))?;
        Ok(PgStore {
            pool,
            timeout: Duration::from_millis(settings.postgres_timeout_ms),
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Run `op` on a pooled connection within the store's timeout. A database that
    /// stops answering (hung, overloaded, a network path that drops packets) would
    /// otherwise hold the request, and its connection, until the kernel gives up on
    /// the socket minutes later; past the timeout the operation is
    /// `StoreUnavailable` (503, nothing forwarded) and its connection is closed
    /// rather than handed to the next request. A statement the database still
    /// commits later only stores a record no answer carried.
    async fn bounded<T>(
        &self,
        op: impl AsyncFnOnce(&deadpool_postgres::Object) -> Result<T>,
    ) -> Result<T> {
        let client = tokio::time::timeout(self.timeout, self.client())
            .await
            .map_err(|_| self.timed_out())??;
        let outcome = tokio::time::timeout(self.timeout, op(&client)).await;
        match outcome {
            Ok(result) => result,
            Err(_) => {
                drop(deadpool_postgres::Object::take(client));
                Err(self.timed_out())
            }
        }
    }

    fn timed_out(&self) -> Error {
        tracing::warn!(timeout = ?self.timeout, "the database did not answer in time");
        Error::StoreUnavailable
    }

    /// Apply the embedded migrations that are not applied yet, in one transaction
    /// under an advisory lock (so two instances starting together do not race).
    /// Returns the versions applied by this call. The whole run is one store
    /// operation, bounded by `vault.postgres_timeout_ms`: a database that stops
    /// answering, or a session that holds the migration lock or a lock on the
    /// migrations table, would otherwise hold the start for good.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        tokio::time::timeout(self.timeout, self.migrate_unbounded())
            .await
            .map_err(|_| {
                Error::Store(format!(
                    "the schema migration did not finish within {} ms \
                     (vault.postgres_timeout_ms): the database does not answer, or another \
                     session holds the migration lock (pg_advisory_lock({MIGRATION_LOCK})) \
                     or a lock on vaultgate_schema_migrations",
                    self.timeout.as_millis()
                ))
            })?
    }

    async fn migrate_unbounded(&self) -> Result<Vec<i64>> {
        match self.migrate_once(true).await {
            // CockroachDB has no advisory locks: rely on the transaction and the
            // primary key on the version instead (the loser fails and retries).
            Err(MigrateError::NoAdvisoryLock) => {
                tracing::info!("no advisory locks in this database; migrating without");
                match self.migrate_once(false).await {
                    Err(MigrateError::Conflict) => self.migrate_once(false).await,
                    other => other,
                }
            }
            Err(MigrateError::Conflict) => self.migrate_once(true).await,
            other => other,
        }
        .map_err(|e| match e {
            MigrateError::Store(e) => e,
            MigrateError::NoAdvisoryLock | MigrateError::Conflict => {
                Error::Store("the schema migration conflicted with another instance".into())
            }
        })
    }

    async fn migrate_once(&self, lock: bool) -> std::result::Result<Vec<i64>, MigrateError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        if lock {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(MigrateError::from_lock)?;
        }
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS vaultgate_schema_migrations ( \
                version bigint PRIMARY KEY, \
                name text NOT NULL, \
                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(MigrateError::from_pg)?;
        let rows = tx
            .query("SELECT version FROM vaultgate_schema_migrations", &[])
            .await
            .map_err(MigrateError::from_pg)?;
        let done: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let mut applied = Vec::new();
        for (version, name, text) in MIGRATIONS {
            if done.contains(version) {
                continue;
            }
            tx.batch_execute(text)
                .await
                .map_err(MigrateError::from_pg)?;
            tx.execute(
                "INSERT INTO vaultgate_schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await
            .map_err(MigrateError::from_pg)?;
            applied.push(*version);
        }
        tx.commit().await.map_err(MigrateError::from_pg)?;
        if !applied.is_empty() {
            tracing::info!(?applied, "schema migrations applied");
        }
        Ok(applied)
    }

    /// The migration versions recorded in the database.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>> {
        self.bounded(async |client| {
            let rows = client
                .query(
                    "SELECT version FROM vaultgate_schema_migrations ORDER BY version",
                    &[],
                )
                .await
                .map_err(pg_error)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    async fn query_opt_bytes(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Vec<u8>>> {
        self.bounded(async |client| {
            let stmt = client.prepare_cached(sql).await.map_err(pg_error)?;
            let row = client.query_opt(&stmt, params).await.map_err(pg_error)?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
        .await
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        self.bounded(async |client| {
            let stmt = client.prepare_cached(sql).await.map_err(pg_error)?;
            client.execute(&stmt, params).await.map_err(pg_error)
        })
        .await
    }
}

enum MigrateError {
    NoAdvisoryLock,
    Conflict,
    Store(Error),
}

impl From<Error> for MigrateError {
    fn from(e: Error) -> Self {
        MigrateError::Store(e)
    }
}

impl MigrateError {
    fn from_lock(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(c)
                if *c == SqlState::UNDEFINED_FUNCTION || *c == SqlState::FEATURE_NOT_SUPPORTED =>
            {
                MigrateError::NoAdvisoryLock
            }
            _ => MigrateError::from_pg(e),
        }
    }

    fn from_pg(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(c)
                if *c == SqlState::UNIQUE_VIOLATION
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
            {
                MigrateError::Conflict
            }
            _ => MigrateError::Store(pg_error(e)),
        }
    }
}

#[async_trait]
impl TokenStore for PgStore {
    async fn insert(
        &self,
        space: Space,
        key: &str,
        record: &[u8],
        expires: Option<u64>,
    ) -> Result<Inserted> {
        let n = match space {
            Space::Tokens => self.execute(TOKENS.insert, &[&key, &record]).await?,
            Space::Volatile => {
                let expires = expires
                    .map(|e| to_i64(e, "expiry out of range"))
                    .transpose()?;
                self.execute(VOLATILE.insert, &[&key, &record, &expires])
                    .await?
            }
        };
        Ok(if n == 1 {
            Inserted::New
        } else {
            Inserted::Taken
        })
    }

    async fn insert_fingerprinted(
        &self,
        fingerprint: &[u8],
        key: &str,
        record: &[u8],
    ) -> Result<FingerprintInsert> {
        self.bounded(async |client| {
            let insert = client
                .prepare_cached(INSERT_FINGERPRINTED)
                .await
                .map_err(pg_error)?;
            let lookup = client
                .prepare_cached(GET_FINGERPRINT)
                .await
                .map_err(pg_error)?;
            // A mapping can vanish between the two statements (a concurrent delete):
            // then claiming it again is right.
            for _ in 0..4 {
                let stored: i64 = match client
                    .query_one(&insert, &[&fingerprint, &key, &record])
                    .await
                {
                    Ok(row) => row.get(0),
                    Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                        return Ok(FingerprintInsert::Taken);
                    }
                    Err(e) => return Err(pg_error(e)),
                };
                if stored == 1 {
                    return Ok(FingerprintInsert::New);
                }
                if let Some(row) = client
                    .query_opt(&lookup, &[&fingerprint])
                    .await
                    .map_err(pg_error)?
                {
                    return Ok(FingerprintInsert::Existing(row.get(0)));
                }
            }
            Err(Error::Store(
                "a fingerprint kept changing under a deterministic insert".into(),
            ))
        })
        .await
    }

    async fn fingerprint(&self, fingerprint: &[u8]) -> Result<Option<String>> {
        self.bounded(async |client| {
            let stmt = client
                .prepare_cached(GET_FINGERPRINT)
                .await
                .map_err(pg_error)?;
            let row = client
                .query_opt(&stmt, &[&fingerprint])
                .await
                .map_err(pg_error)?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    /// One round trip for every form (a new card costs one lookup, not two).
    async fn fingerprint_any(&self, forms: &[&[u8]]) -> Result<Option<String>> {
        self.bounded(async |client| {
            let stmt = client
                .prepare_cached(GET_FINGERPRINT_ANY)
                .await
                .map_err(pg_error)?;
            let rows = client.query(&stmt, &[&forms]).await.map_err(pg_error)?;
            // Both forms of one value can be stored (an earlier and a later release
            // side by side): the first form asked for wins.
            let found = forms.iter().find_map(|form| {
                rows.iter()
                    .find(|r| r.get::<_, &[u8]>(0) == *form)
                    .map(|r| r.get::<_, String>(1))
            });
            Ok(found)
        })
        .await
    }

    async fn get(&self, space: Space, key: &str) -> Result<Option<Vec<u8>>> {
        self.query_opt_bytes(sql(space).get, &[&key]).await
    }

    async fn take(&self, space: Space, key: &str) -> Result<Option<Vec<u8>>> {
        // DELETE … RETURNING: one atomic step, so exactly one caller gets the record.
        self.query_opt_bytes(sql(space).take, &[&key]).await
    }

    async fn remove(&self, space: Space, key: &str, fingerprint: Option<&[u8]>) -> Result<bool> {
        self.bounded(async |client| {
            let stmt = client
                .prepare_cached(sql(space).remove)
                .await
                .map_err(pg_error)?;
            let row = client
                .query_one(&stmt, &[&key, &fingerprint])
                .await
                .map_err(pg_error)?;
            Ok(row.get::<_, i64>(0) > 0)
        })
        .await
    }

    async fn replace(&self, space: Space, key: &str, old: &[u8], new: &[u8]) -> Result<bool> {
        // Compare-and-swap: only a record still holding `old` is replaced.
        Ok(self
            .execute(sql(space).replace, &[&key, &old, &new])
            .await?
            == 1)
    }

    async fn scan(
        &self,
        space: Space,
        after: Option<&str>,
        limit_n: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.bounded(async |client| {
            let n = limit(limit_n);
            let rows = match after {
                Some(a) => {
                    let stmt = client
                        .prepare_cached(sql(space).scan_after)
                        .await
                        .map_err(pg_error)?;
                    client.query(&stmt, &[&a, &n]).await
                }
                None => {
                    let stmt = client
                        .prepare_cached(sql(space).scan_first)
                        .await
                        .map_err(pg_error)?;
                    client.query(&stmt, &[&n]).await
                }
            }
            .map_err(pg_error)?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }

    async fn scan_expired(&self, now: u64, limit_n: usize) -> Result<Vec<String>> {
        self.bounded(async |client| {
            let stmt = client
                .prepare_cached(SCAN_EXPIRED)
                .await
                .map_err(pg_error)?;
            let now = to_i64(now, "time out of range")?;
            let rows = client
                .query(&stmt, &[&now, &limit(limit_n)])
                .await
                .map_err(pg_error)?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    /// Nothing to wait for: every operation above commits before it returns, and a
    /// commit is durable by PostgreSQL's own WAL flush (`synchronous_commit`).
    async fn durable(&self) -> Result<()> {
        Ok(())
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn cvv_key_insert(&self, epoch: u64, wrapped: &[u8]) -> Result<Vec<u8>> {
        let epoch = to_i64(epoch, "epoch out of range")?;
        self.execute(CVV_KEY_INSERT, &[&epoch, &wrapped]).await?;
        // Read back the winner: another instance may have inserted first.
        self.query_opt_bytes(CVV_KEY_GET, &[&epoch])
            .await?
            .ok_or(Error::CvvExpired)
    }

    async fn cvv_key_get(&self, epoch: u64) -> Result<Option<Vec<u8>>> {
        let epoch = to_i64(epoch, "epoch out of range")?;
        self.query_opt_bytes(CVV_KEY_GET, &[&epoch]).await
    }

    async fn cvv_keys_destroy_before(&self, epoch: u64) -> Result<u64> {
        let epoch = to_i64(epoch, "epoch out of range")?;
        self.execute(CVV_KEYS_DESTROY, &[&epoch]).await
    }

    async fn ping(&self) -> Result<()> {
        self.execute(PING, &[]).await.map(|_| ())
    }

    async fn shared_key_version(&self) -> Result<Option<u32>> {
        self.bounded(async |client| {
            let stmt = client
                .prepare_cached(KEY_VERSION_GET)
                .await
                .map_err(pg_error)?;
            let row = client.query_opt(&stmt, &[]).await.map_err(pg_error)?;
            let Some(row) = row else { return Ok(None) };
            let v: i64 = row.try_get(0).map_err(|_| {
                Error::Store("vaultgate_meta.active_key_version is not a bigint".into())
            })?;
            u32::try_from(v).map(Some).map_err(|_| {
                Error::Store("vaultgate_meta.active_key_version is out of range".into())
            })
        })
        .await
    }

    async fn set_shared_key_version(&self, version: u32) -> Result<()> {
        self.execute(KEY_VERSION_SET, &[&i64::from(version)])
            .await
            .map(|_| ())
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}
