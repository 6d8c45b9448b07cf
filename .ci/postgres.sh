#!/usr/bin/env bash
# Start a throwaway PostgreSQL for vaultgate's Postgres tests and benchmark.
#
#   eval "$(.ci/postgres.sh)"      # exports VAULTGATE_TEST_POSTGRES_URL
#   .ci/postgres.sh stop           # stops the cluster
#
# Installs Debian's postgresql package if no initdb is found, then runs a cluster
# as the postgres user on 127.0.0.1:${PGPORT:-5433} with trust auth on a data
# directory under ${VAULTGATE_PG_DIR:-/tmp/vaultgate-pg}, and creates the database
# vaultgate_test. Idempotent: a running cluster is reused. Progress goes to stderr;
# stdout carries only the export line.
set -euo pipefail

PORT="${PGPORT:-5433}"
DIR="${VAULTGATE_PG_DIR:-/tmp/vaultgate-pg}"
DATA="$DIR/data"
LOG="$DIR/postgres.log"
URL="postgres://postgres@127.0.0.1:${PORT}/vaultgate_test"

log() { printf '%s\n' "$*" >&2; }

as_pg() {
    if [ "$(id -un)" = postgres ]; then "$@"
    elif command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"
    else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
}

find_bin() {
    local b
    for b in /usr/lib/postgresql/*/bin; do
        if [ -x "$b/initdb" ]; then printf '%s\n' "$b"; return 0; fi
    done
    if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
    return 1
}

BIN="$(find_bin || true)"
if [ "${1:-}" = stop ]; then
    if [ -n "$BIN" ] && [ -f "$DATA/PG_VERSION" ]; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast stop >&2 || true
    fi
    exit 0
fi

if [ -z "$BIN" ]; then
    log "installing postgresql from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends postgresql >&2
    BIN="$(find_bin)"
fi

id postgres >/dev/null 2>&1 || useradd --system --home-dir "$DIR" --shell /bin/sh postgres
mkdir -p "$DIR"
chown postgres "$DIR"

if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initdb $DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >&2 \
        || as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >&2
fi

if ! as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    log "starting postgres on 127.0.0.1:$PORT"
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
        -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on" start >&2
fi

if ! as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'vaultgate_test'" postgres | grep -q 1; then
    as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -c "CREATE DATABASE vaultgate_test" postgres >&2
fi

log "postgres is ready: $URL"
printf 'export VAULTGATE_TEST_POSTGRES_URL=%s\n' "$URL"
