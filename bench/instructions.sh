#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: a figure that does not
# move with the machine's noise (the same binary and requests give the same count to
# within about 2 %), for comparing two builds on a shared machine where req/s and CPU time
# move by 2x between runs.
#
#   bench/instructions.sh [--requests N] [--no-build] [--keep] [--log-level L]
#
# For each path it starts a fresh vaultgate (one proxy shard) under callgrind in
# front of nginx, warms up with 200 requests, then counts the user-space
# instructions of every vaultgate thread over N requests (default 2,000) on one
# keep-alive connection, sent one after another by a Python client. Paths:
#   nginx       nginx proxy_pass as bench/run.sh configures it (one process, no master):
#               the reference the per-core ratios are taken against
#   floor       examples/hyper_floor: a bare hyper proxy, none of vaultgate's work
#   pass_noguard  vaultgate pass-through, stream_guard off
#   pass        vaultgate pass-through, the streaming leak guard on (the default)
#   tok_same    vaultgate q2open tokenizing route, the same card each time
#   tok_fresh   the same route, a new card and a CVV each time (durable: each request
#               waits for the group commit, whose threads are counted too)
# Kernel time (the TCP stack, wake-ups) is not counted: callgrind sees user space only.
# What varies between repeat runs is how many reads and wake-ups a request takes,
# which the client's and the kernel's timing decide.
# tok_same overstates HMAC: valgrind hides the CPU's SHA extensions, so sha2 falls back
# to its software SHA-256 (a quarter of a tokenizing request's instructions in one
# profile; a `perf` profile of the real run shows sha2's SHA-NI code at under 1 %).
# --log-level sets vaultgate's `log.level` (default `warn`, as bench/run.sh); `info` is
# the shipped default, with the request span and the access line (stderr goes to a
# file under the work directory).
# BENCH_STORE=fjall runs vaultgate on the opt-in fjall store instead of sled.
# --keep leaves the callgrind profiles (NAME.cg.1) for callgrind_annotate and prints
# where they are. Needs valgrind, nginx and python3.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=2000
BUILD=1
KEEP=0
LOG_LEVEL=warn
while [ $# -gt 0 ]; do
  case $1 in
    --requests) N=$2; shift ;;
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;;
    --log-level) LOG_LEVEL=$2; shift ;;
    *) echo "usage: $0 [--requests N] [--no-build] [--keep] [--log-level L]" >&2; exit 2 ;;
  esac
  shift
done
for cmd in valgrind callgrind_annotate callgrind_control nginx python3 curl; do
  command -v "$cmd" >/dev/null || { echo "$0: needs $cmd" >&2; exit 1; }
done
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && cargo build --release --quiet --bin vaultgate --example hyper_floor)
fi
VG="$TARGET/release/vaultgate"
FLOOR="$TARGET/release/examples/hyper_floor"

WORK=$(mktemp -d /tmp/vaultgate-instructions.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then echo "profiles kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP_PORT=$(free_port)
mkdir -p "$WORK/up/body"
cat >"$WORK/up/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/up/nginx.pid; error_log $WORK/up/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $WORK/up/body; keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP_PORT; location / { default_type application/json;
    return 200 '{"id":"pm_123","status":"ok"}'; } } }
EOF
nginx -c "$WORK/up/nginx.conf" -p "$WORK/up" -e "$WORK/up/error.log" &
PIDS+=($!)

export VAULTGATE_PASSPHRASE=instructions-bench-passphrase
"$VG" --keyring "$WORK/keyring.json" --data "$WORK/data" init --kdf-memory-kib 19456 --kdf-passes 2 >/dev/null 2>&1

# send PORT PATH BODY_KIND COUNT: COUNT POSTs on one keep-alive connection, each 200.
send() {
  python3 - "$@" <<'PY'
import http.client, sys
port, path, kind, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
# The bench bodies (bench/pass.lua, bench/q2open_same_card.lua).
body = {
  "pass": b'{"clientId":"56e1ddbd1a05319bc198d36f","paymentType":"card",'
          b'"identifier":"optional_custom_identifier","cardNumber":"4242424242424241",'
          b'"cardCode":"218","expMonth":"10","expYear":"2030","zipcode":"12345",'
          b'"name":"Bench User","setAsDefault":true,"customLabel":"Entertainment Rewards Card"}',
  "card": b'{"clientId":"56e1ddbd1a05319bc198d36f","paymentType":"card",'
          b'"identifier":"optional_custom_identifier","cardNumber":"4242424242424242",'
          b'"expMonth":"10","expYear":"2030","zipcode":"12345",'
          b'"name":"Bench User","setAsDefault":true,"customLabel":"Entertainment Rewards Card"}',
  "fresh": None,
}[kind]

def luhn_card(n):
    # A new test card per request: BIN 424242, the counter, a Luhn check digit.
    digits = "424242" + "%09d" % n
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = int(d)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)

import os, random
start = random.SystemRandom().randrange(10**8)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for i in range(n):
    if kind == "fresh":
        body = (b'{"clientId":"56e1ddbd1a05319bc198d36f","paymentType":"card",'
                b'"identifier":"optional_custom_identifier","cardNumber":"%s",'
                b'"cardCode":"218","expMonth":"10","expYear":"2030","zipcode":"12345",'
                b'"name":"Bench User","setAsDefault":true,"customLabel":"Entertainment Rewards Card"}'
                % luhn_card(start + i).encode())
    c.request("POST", path, body=body, headers={"content-type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"{path}: answered {r.status}")
PY
}

# measure NAME PATH BODY_KIND CMD...: instructions per request of CMD serving PATH.
measure() {
  local name=$1 path=$2 kind=$3 port=$4; shift 4
  local out="$WORK/$name.cg"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$@" \
    2>"$WORK/$name.valgrind" &
  local pid=$!
  PIDS+=("$pid")
  # Ready when a request is answered 200 (under valgrind, starting takes seconds).
  local ready=0
  for _ in $(seq 240); do
    if send "$port" "$path" "$kind" 1 2>/dev/null; then ready=1; break; fi
    sleep 0.25
  done
  [ "$ready" = 1 ] || { echo "$name: not answering; $WORK/$name.valgrind:" >&2; tail -5 "$WORK/$name.valgrind" >&2; exit 1; }
  send "$port" "$path" "$kind" 200
  callgrind_control -i on "$pid" >/dev/null 2>&1
  send "$port" "$path" "$kind" "$N"
  callgrind_control -i off "$pid" >/dev/null 2>&1
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local total
  total=$(callgrind_annotate "$out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !seen { gsub(",", "", $1); print $1; seen = 1 }')
  printf '%-13s %8d instructions per request\n' "$name" "$((total / N))"
}

vg_config() {
  local port=$1
  cat >"$WORK/vg-$port.toml" <<EOF
[proxy]
listen = "127.0.0.1:$port"
workers = 1

[api]
listen = "127.0.0.1:$(free_port)"

[vault]
keyring = "$WORK/keyring.json"
data = "$WORK/data"
store = "${BENCH_STORE:-sled}"
# Fresh cards share a BIN: keep the sweep detector out of the way (as bench/run.sh).
sweep_threshold = 1000000
cvv_ttl_secs = 15

[[upstreams]]
name = "up"
url = "http://127.0.0.1:$UP_PORT"

[[routes]]
name = "pass"
upstream = "up"
method = "*"
path = "/pass/*"

[[routes]]
name = "raw"
upstream = "up"
method = "*"
path = "/raw/*"
stream_guard = "off"

[[routes]]
name = "q2open"
upstream = "up"
method = "POST"
path = "/v1/payment"
profile = "q2open"

[log]
level = "$LOG_LEVEL"
EOF
  echo "$WORK/vg-$port.toml"
}

# nginx as a proxy, as bench/run.sh has it (keep-alive upstream, X-Forwarded-*), in one
# process (no master) so that callgrind counts the worker that serves.
ng_config() {
  local port=$1
  mkdir -p "$WORK/ng/body" "$WORK/ng/proxy"
  cat >"$WORK/ng/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $WORK/ng/nginx.pid;
error_log $WORK/ng/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $WORK/ng/body; proxy_temp_path $WORK/ng/proxy;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$UP_PORT; keepalive 256; }
  server { listen 127.0.0.1:$port; location / { proxy_pass http://backend;
    proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto \$scheme; } } }
EOF
  echo "$WORK/ng/nginx.conf"
}

echo "## instructions per request ($(date -u +%Y-%m-%d), callgrind, $N requests on one connection, user space only)"
p=$(free_port); measure nginx /v1/payment pass "$p" nginx -c "$(ng_config "$p")" -p "$WORK/ng" -e "$WORK/ng/error.log"
p=$(free_port); measure floor /v1/payment pass "$p" "$FLOOR" "127.0.0.1:$p" "127.0.0.1:$UP_PORT"
p=$(free_port); measure pass_noguard /raw/v1/payment pass "$p" "$VG" serve --config "$(vg_config "$p")"
p=$(free_port); measure pass /pass/v1/payment pass "$p" "$VG" serve --config "$(vg_config "$p")"
p=$(free_port); measure tok_same /v1/payment card "$p" "$VG" serve --config "$(vg_config "$p")"
p=$(free_port); measure tok_fresh /v1/payment fresh "$p" "$VG" serve --config "$(vg_config "$p")"
