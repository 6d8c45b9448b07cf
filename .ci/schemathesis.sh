#!/usr/bin/env bash
# Schemathesis against a real `vaultgate serve`: every check (`--checks all`), a bounded
# number of examples per operation, zero failures allowed.
#
# It installs schemathesis from PyPI into a venv if missing, builds the debug binary,
# makes a throwaway keyring (`vaultgate init`, cheap KDF) and an API client whose key
# it generates (`vaultgate clients add`), starts the server with a dead upstream (only
# the API listener is tested), runs `st run` with the bearer key, stops the server and
# exits non-zero on any failure.
#
#   bash .ci/schemathesis.sh            # about 1 to 2 minutes once the venv exists
#
# Environment: ST_VENV (default /tmp/st-venv), ST_MAX_EXAMPLES (default 30), ST_SEED
# (default 1, so that a failure reproduces; `ST_SEED=random` explores), CARGO_TARGET_DIR
# (as cargo uses it).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${ST_VENV:-/tmp/st-venv}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-30}
SEED=${ST_SEED:-1}
SEED_ARGS=()
if [ "$SEED" != random ]; then
    SEED_ARGS=(--seed "$SEED")
fi

step() { printf '\n=== schemathesis: %s (t=%ss)\n' "$1" "$SECONDS"; }

step "schemathesis from PyPI"
if [ ! -x "$VENV/bin/st" ]; then
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        apt-get install -y python3-venv >/dev/null
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet schemathesis
fi
"$VENV/bin/st" --version

step "cargo build"
cargo build --quiet --bin vaultgate
VG="${CARGO_TARGET_DIR:-target}/debug/vaultgate"

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

step "keyring, client and config"
export VAULTGATE_PASSPHRASE="schemathesis-$$-$RANDOM"
"$VG" --keyring "$WORK/keyring.json" --data "$WORK/data" init --kdf-memory-kib 19456 --kdf-passes 2 2>/dev/null
CLIENT_OUT=$("$VG" clients add schemathesis \
    --reveal pan,cvv,bank_account,secret --tokenize pan,cvv,bank_account,secret \
    --deterministic pan,bank_account --delete)
API_KEY=$(echo "$CLIENT_OUT" | sed -n '2p')
CLIENT_TOML=$(echo "$CLIENT_OUT" | sed -n '/^\[\[clients\]\]/,$p')
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PROXY_PORT=$(free_port)
API_PORT=$(free_port)
cat >"$WORK/vaultgate.toml" <<EOF
[proxy]
listen = "127.0.0.1:$PROXY_PORT"

[api]
listen = "127.0.0.1:$API_PORT"

[vault]
keyring = "$WORK/keyring.json"
data = "$WORK/data"
cache_capacity_mb = 16

[audit]
path = "$WORK/audit.log"

[log]
level = "warn"

[[upstreams]]
name = "nowhere"
url = "http://127.0.0.1:9"

[[routes]]
name = "pass"
upstream = "nowhere"
path = "/*"

$CLIENT_TOML
EOF

step "vaultgate serve"
"$VG" serve --config "$WORK/vaultgate.toml" 2>"$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$API_PORT/readyz', timeout=1)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        cat "$WORK/serve.log"
        echo "vaultgate serve exited before it was ready" >&2
        exit 1
    fi
    sleep 0.1
done

step "st run --checks all --max-examples $MAX_EXAMPLES"
status=0
timeout 170 "$VENV/bin/st" run "http://127.0.0.1:$API_PORT/openapi.json" \
    --checks all \
    --max-examples "$MAX_EXAMPLES" \
    --header "Authorization: Bearer $API_KEY" \
    "${SEED_ARGS[@]}" \
    --workers 2 \
    --no-color \
    --generation-database none \
    --warnings off || status=$?

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "vaultgate serve died during the run" >&2
    cat "$WORK/serve.log" >&2
    status=1
fi
step "done: exit $status"
exit "$status"
