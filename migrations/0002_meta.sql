-- vaultgate 0002: what every instance sharing the database agrees on.
-- One row: the active data key version, so that every instance switches together
-- after `vaultgate keys rotate --store postgres`. It only ever goes up.
CREATE TABLE IF NOT EXISTS vaultgate_meta (
    id                 integer PRIMARY KEY CHECK (id = 1),
    active_key_version bigint  NOT NULL
);
