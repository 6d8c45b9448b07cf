#!/usr/bin/env bash
# The red-team gate (see README.md): starts a Python standard-library backend and, when
# Node.js and this directory's npm packages are there, an Express backend, each behind
# its own vaultgate on free loopback ports; sends every crafted case through both; fails
# on any finding expected.txt does not list. Everything runs in a temporary directory
# that is removed at the end (kept with --keep).
#
#   tests/redteam/run.sh [--binary PATH] [--store sled|fjall] [--only SUBSTR] [--keep]
#
# The binary defaults to target/debug/vaultgate (what `cargo test` builds).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/vaultgate
STORE=sled
ONLY=()
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --binary) BIN=$2; shift ;;
    --store) STORE=$2; shift ;;
    --only) ONLY=(--only "$2"); shift ;;
    --keep) KEEP=1 ;;
    *) echo "usage: $0 [--binary PATH] [--store sled|fjall] [--only SUBSTR] [--keep]" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$BIN" ] || { echo "$0: no vaultgate binary at $BIN (cargo build first, or --binary)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/vaultgate-redteam.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$0: nothing listens on $1 ($2); its log:" >&2
  cat "$WORK/$2.log" >&2 || true
  exit 1
}

echo redteam-passphrase > "$WORK/pass"
"$BIN" init --keyring "$WORK/keyring.json" --data "$WORK/data-init" --passphrase-file "$WORK/pass" \
  --kdf-memory-kib 19456 --kdf-passes 2 > /dev/null

BACKENDS=(py)
if command -v node > /dev/null && [ -d "$HERE/node_modules/express" ]; then
  BACKENDS+=(node)
else
  echo "red-team gate: no Node.js or no node_modules (npm ci --prefix tests/redteam): the Express backend is skipped"
fi

ARGS=()
for be in "${BACKENDS[@]}"; do
  up=$(free_port); pp=$(free_port); ap=$(free_port)
  if [ "$be" = py ]; then
    python3 "$HERE/backend.py" "$up" "$WORK/$be.jsonl" > "$WORK/backend-$be.log" 2>&1 &
  else
    node "$HERE/backend.js" "$up" "$WORK/$be.jsonl" > "$WORK/backend-$be.log" 2>&1 &
  fi
  PIDS+=($!)
  sed -e "s|@PPORT@|$pp|" -e "s|@APORT@|$ap|" -e "s|@UPORT@|$up|" -e "s|@NAME@|$be|" \
      -e "s|@STATE@|$WORK|" -e "s|@STORE@|$STORE|" "$HERE/config.tmpl.toml" > "$WORK/config-$be.toml"
  "$BIN" serve --config "$WORK/config-$be.toml" --passphrase-file "$WORK/pass" > "$WORK/proxy-$be.log" 2>&1 &
  PIDS+=($!)
  wait_port "$up" "backend-$be"
  wait_port "$pp" "proxy-$be"
  ARGS+=(--proxy "$be=$pp" --log "$be=$WORK/$be.jsonl")
done

cd "$HERE"
python3 gate.py "${ARGS[@]}" --expected expected.txt --out "$WORK/results.json" "${ONLY[@]}"
