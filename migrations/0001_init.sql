-- vaultgate 0001: the token store.
-- Plain PostgreSQL; also runs on CockroachDB and YugabyteDB (see docs/postgres.md).

-- Long-lived records (PANs, bank accounts, secrets): encrypted, bound to their key.
CREATE TABLE IF NOT EXISTS vaultgate_tokens (
    key    text  PRIMARY KEY,
    record bytea NOT NULL
);

-- Keyed fingerprints (HMAC) of deterministic values → their token. The primary key
-- keeps deterministic tokens unique across every instance sharing the database.
CREATE TABLE IF NOT EXISTS vaultgate_fingerprints (
    fingerprint bytea PRIMARY KEY,
    token       text  NOT NULL
);

-- Records with an expiry (CVVs), deleted on first reveal or by the sweeper.
CREATE TABLE IF NOT EXISTS vaultgate_volatile (
    key     text   PRIMARY KEY,
    record  bytea  NOT NULL,
    expires bigint
);
CREATE INDEX IF NOT EXISTS vaultgate_volatile_expires ON vaultgate_volatile (expires);

-- Short-lived CVV window keys, wrapped under the master key; one per window,
-- shared by every instance, deleted when the window has passed.
CREATE TABLE IF NOT EXISTS vaultgate_cvv_keys (
    epoch   bigint PRIMARY KEY,
    wrapped bytea  NOT NULL
);
