#!/usr/bin/env bash
# vaultgate side-by-side benchmark: direct upstream vs nginx proxy_pass vs vaultgate.
#
#   bench/run.sh              full run: 3 interleaved rounds x 5 s per path, medians
#   bench/run.sh --smoke      every path once for 1 s, no thresholds (for CI)
#   bench/run.sh --store-size also: store size on disk after 1M tokens (benches/store_size.rs)
#   bench/run.sh --pin        per-core ratios: upstream and wrk on core 0, the process
#                             under test (nginx with 1 worker, or vaultgate) on core 1
#   options: --rounds N  --duration SECS  --conns N  --no-build
#            --debug   use the debug binary `cargo test` already built (CI's smoke: checks
#                      that every path works, measures nothing)
#   BENCH_PERF=NAME (direct, nginx, pass, tok_fresh, tok_same, plano, ...): record a
#   `perf record -g` CPU profile of vaultgate during that path, into /tmp/vaultgate-NAME.perf
#   (BENCH_PERF_CALLGRAPH=dwarf for whole call chains through code built without frame pointers).
#   BENCH_STORE=fjall: run vaultgate on the opt-in fjall store instead of sled.
#   BENCH_STRACE=NAME: every syscall of vaultgate's threads during that path, timed, into
#   /tmp/vaultgate-NAME.strace (strace -f -T; slows the path down).
#   BENCH_SYNC="NAME ...": count, per vaultgate thread, the futex calls (a lock or
#   condvar that had to wait or wake: cross-thread synchronisation) and context switches
#   per request during those paths (`perf stat --per-thread` on tracepoints).
#
# Everything binds 127.0.0.1 only. Needs nginx and wrk (installed from Debian's
# packages when missing and running as root). Every child is killed on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
ROUNDS=3
DUR=5
CONNS=32
SMOKE=0
STORE_SIZE=0
BUILD=1
PIN=0
PROFILE_DIR=release
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1; ROUNDS=1; DUR=1 ;;
    --store-size) STORE_SIZE=1 ;;
    --rounds) ROUNDS="$2"; shift ;;
    --duration) DUR="$2"; shift ;;
    --conns) CONNS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --pin) PIN=1 ;;
    --debug) PROFILE_DIR=debug ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done

T0=$(date +%s.%N)
log() { echo "[bench] $*" >&2; }

# --- tools -------------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them: apt-get install -y ${need[*]})" >&2
    exit 1
  fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# --- build -------------------------------------------------------------------------
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ "$BUILD" = 1 ]; then
  if [ "$PROFILE_DIR" = release ]; then
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet --bin vaultgate)
  else
    (cd "$ROOT" && cargo build --quiet --bin vaultgate)
  fi
fi
VG="$TARGET/$PROFILE_DIR/vaultgate"
[ -x "$VG" ] || { echo "no release binary at $VG" >&2; exit 1; }

# --- workspace, cleanup ------------------------------------------------------------
WORK=$(mktemp -d /tmp/vaultgate-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p=$1
  while ! port_free "$p"; do p=$((p + 1)); done
  echo "$p"
}
UP_PORT=$(pick_port 18700)
NG_PORT=$(pick_port $((UP_PORT + 1)))
VG_PORT=$(pick_port $((NG_PORT + 1)))
API_PORT=$(pick_port $((VG_PORT + 1)))

# vaultgate's runtime has one worker per core it may run on; nginx gets as many workers.
# --pin: the process under test gets core 1 only (tokio's worker count follows the CPU
# affinity), the upstream and wrk share core 0, so the ratio is per core and the shared
# machine's noise disturbs it less.
if [ "$PIN" = 1 ]; then
  command -v taskset >/dev/null || { echo "--pin needs taskset (util-linux)" >&2; exit 1; }
  [ "$(nproc)" -ge 2 ] || { echo "--pin needs 2 cores" >&2; exit 1; }
  WORKERS=1
  ON_UP=(taskset -c 0)
  ON_SUT=(taskset -c 1)
  WRK_THREADS=1
else
  WORKERS=$(nproc)
  ON_UP=()
  ON_SUT=()
  WRK_THREADS=2
fi

wait_port() {
  for _ in $(seq 1 100); do
    port_free "$1" || return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# --- the upstream: nginx answering a small fixed JSON 200, keep-alive -----------------
mkdir -p "$WORK/up" "$WORK/ng"
cat >"$WORK/up/nginx.conf" <<EOF
daemon off;
worker_processes $WORKERS;
pid $WORK/up/nginx.pid;
error_log $WORK/up/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $WORK/up/body;
  keepalive_requests 1000000;
  log_format body escape=none '\$request_body';
  server {
    listen 127.0.0.1:$UP_PORT;
    location / {
      default_type application/json;
      return 200 '{"id":"pm_123","status":"ok"}';
    }
    # Records what vaultgate forwarded (tokens only), for the reveal path.
    location /capture/ {
      access_log $WORK/up/captured.log body;
      proxy_pass http://127.0.0.1:$UP_PORT/ok;
    }
  }
}
EOF
cat >"$WORK/ng/nginx.conf" <<EOF
daemon off;
worker_processes $WORKERS;
pid $WORK/ng/nginx.pid;
error_log $WORK/ng/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $WORK/ng/body;
  proxy_temp_path $WORK/ng/proxy;
  keepalive_requests 1000000;
  upstream backend {
    server 127.0.0.1:$UP_PORT;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:$NG_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
EOF
"${ON_UP[@]}" "$NGINX" -c "$WORK/up/nginx.conf" -p "$WORK/up" -e "$WORK/up/error.log" &
UP_MASTER=$!
PIDS+=($UP_MASTER)
"${ON_SUT[@]}" "$NGINX" -c "$WORK/ng/nginx.conf" -p "$WORK/ng" -e "$WORK/ng/error.log" &
NG_MASTER=$!
PIDS+=($NG_MASTER)

# --- vaultgate -------------------------------------------------------------------
export VAULTGATE_PASSPHRASE="bench-passphrase-$$-$RANDOM"
"$VG" --keyring "$WORK/keyring.json" --data "$WORK/data" init --kdf-memory-kib 19456 --kdf-passes 2 2>/dev/null
CLIENT_OUT=$("$VG" clients add bench --reveal pan --tokenize pan --deterministic pan)
API_KEY=$(echo "$CLIENT_OUT" | sed -n '2p')
CLIENT_TOML=$(echo "$CLIENT_OUT" | sed -n '/^\[\[clients\]\]/,$p')
cat >"$WORK/vaultgate.toml" <<EOF
[proxy]
listen = "127.0.0.1:$VG_PORT"
max_connections = 10000

[api]
listen = "127.0.0.1:$API_PORT"

[vault]
keyring = "$WORK/keyring.json"
data = "$WORK/data"
store = "${BENCH_STORE:-sled}"
# A processor takes a CVV within seconds. At the default hour, the fresh-card paths'
# thousands of new CVVs a second fill the in-memory CVV store (100,000 records) by the
# second round, and the rest are refused with 503 cvv_store_full, cheap answers that
# would flatter the tokenizing rows. Expired CVVs make room. At 15 s, a pinned run
# at about 10,000 fresh cards a second over two routes still filled it once (599
# answers of 503 on Plano, 2026-11-30): 5 s keeps the store under half full.
cvv_ttl_secs = 5
# Every bench card shares the BIN 424242, so its last four alone spread the cards over
# 10,000 buckets, and a long run pushes some past the sweep detector's 32 new cards per
# bucket (429 tokenization_sweep_detected). Real traffic spreads over many BINs. The
# detector still runs; it does not trip.
sweep_threshold = 1000000

[[upstreams]]
name = "up"
url = "http://127.0.0.1:$UP_PORT"

[[routes]]
name = "pass"
upstream = "up"
method = "*"
path = "/pass/*"

[[routes]]
name = "pass_noguard"
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

[[routes]]
name = "capture"
upstream = "up"
method = "POST"
path = "/capture/payment"
profile = "q2open"

[[routes]]
name = "plano"
upstream = "up"
method = "POST"
path = "/payment-methods"
profile = "plano"

[log]
level = "warn"

$(echo "$CLIENT_TOML" | grep -v '^rate_limit_per_minute')
rate_limit_per_minute = 4000000000
EOF
if ! "$VG" check-config --config "$WORK/vaultgate.toml" 2>"$WORK/check.err"; then
  # A build without [[clients]] support: bench without the client.
  log "config with [[clients]] refused ($(head -c 200 "$WORK/check.err")); dropping the client"
  sed -i '/^\[\[clients\]\]/,$d' "$WORK/vaultgate.toml"
  API_KEY=""
fi
"${ON_SUT[@]}" "$VG" serve --config "$WORK/vaultgate.toml" 2>"$WORK/vaultgate.log" &
VG_PID=$!
PIDS+=($VG_PID)
wait_port "$UP_PORT"; wait_port "$NG_PORT"; wait_port "$VG_PORT"; wait_port "$API_PORT"

UP="http://127.0.0.1:$UP_PORT"
NG="http://127.0.0.1:$NG_PORT"
VGU="http://127.0.0.1:$VG_PORT"
API="http://127.0.0.1:$API_PORT"

# --- sanity: every path answers 200, and the tokenizing route does tokenize ----------
# The body of bench/q2open_same.lua.
SAME_BODY='{"clientId":"56e1ddbd1a05319bc198d36f","paymentType":"card","identifier":"optional_custom_identifier","cardNumber":"4242424242424242","cardCode":"218","expMonth":"10","expYear":"2030","zipcode":"12345","name":"Bench User","setAsDefault":true,"customLabel":"Entertainment Rewards Card"}'
check() {
  local name=$1 url=$2 ctype=$3 body=$4 code
  code=$(curl -s -o "$WORK/check.out" -w '%{http_code}' -X POST -H "Content-Type: $ctype" --data-binary "$body" "$url")
  if [ "$code" != 200 ]; then
    echo "sanity check failed: $name answered $code: $(head -c 300 "$WORK/check.out")" >&2
    exit 1
  fi
}
check direct "$UP/v1/payment" application/json "$SAME_BODY"
check nginx "$NG/v1/payment" application/json "$SAME_BODY"
PASS_BODY=${SAME_BODY/4242424242424242/4242424242424241}
check pass "$VGU/pass/v1/payment" application/json "$PASS_BODY"
check pass_noguard "$VGU/raw/v1/payment" application/json "$PASS_BODY"
check q2open "$VGU/v1/payment" application/json "$SAME_BODY"
check capture "$VGU/capture/payment" application/json "$SAME_BODY"
if grep -q 4242424242424242 "$WORK/up/captured.log"; then
  echo "sanity check failed: the upstream saw a card number" >&2
  exit 1
fi

# --- measuring -----------------------------------------------------------------------
RES="$WORK/results"
mkdir -p "$RES"

# wrk_run NAME URL CONNS THREADS SCRIPT [SCRIPT ARGS...]: one wrk run; appends
# "rps p50_us p99_us errors" to $RES/NAME.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000; else m = 1;
    printf "%.0f", n * m }'
}
wrk_run() {
  local name=$1 url=$2 conns=$3 threads=$4 script=$5
  shift 5
  local out="$WORK/wrk.out" perf_pid=""
  # BENCH_PERF=NAME: record a CPU profile of vaultgate during that path's runs.
  if [ "${BENCH_PERF:-}" = "$name" ]; then
    perf record -e cpu-clock -F 2000 --call-graph "${BENCH_PERF_CALLGRAPH:-fp}" -p "$VG_PID" -o "${BENCH_PERF_OUT:-/tmp/vaultgate-$name.perf}" \
      -- sleep "$DUR" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  # BENCH_STRACE=NAME: every syscall of vaultgate's threads during that path, timed
  # (`strace -f -T`), into /tmp/vaultgate-NAME.strace.
  local strace_pid=""
  if [ "${BENCH_STRACE:-}" = "$name" ]; then
    timeout "$DUR" strace -f -T -tt -p "$VG_PID" -o "/tmp/vaultgate-$name.strace" >/dev/null 2>&1 &
    strace_pid=$!
  fi
  local sync_pid=""
  if [[ " ${BENCH_SYNC:-} " == *" $name "* ]]; then
    perf stat --per-thread -x, -e syscalls:sys_enter_futex,sched:sched_switch -p "$VG_PID" \
      -o "$WORK/$name.sync" -- sleep "$DUR" >/dev/null 2>&1 &
    sync_pid=$!
  fi
  local t0 u0; t0=$(cpu_ticks "$(pids_for "$name")"); u0=$(cpu_ticks "$(pids_for "$name")" user)
  "${ON_UP[@]}" wrk -t"$threads" -c"$conns" -d"${DUR}s" --timeout 5s --latency -s "$script" "$url" -- "$@" >"$out" 2>&1 || true
  # Their exit status is not the benchmark's (`timeout` ends strace with 124).
  local pid
  for pid in "$perf_pid" "$sync_pid" "$strace_pid"; do
    if [ -n "$pid" ]; then wait "$pid" 2>/dev/null || true; fi
  done
  local t1 u1; t1=$(cpu_ticks "$(pids_for "$name")"); u1=$(cpu_ticks "$(pids_for "$name")" user)
  local rps p50 p99 bad sockerr
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  sockerr=$(awk '/Socket errors:/ {print}' "$out")
  if [ -z "$rps" ]; then
    echo "wrk failed for $name:" >&2; cat "$out" >&2; exit 1
  fi
  [ -n "$bad" ] && log "WARNING: $name: $bad non-2xx responses"
  [ -n "$sockerr" ] && log "WARNING: $name: $sockerr"
  # CPU time of the process under test per request, in µs.
  # Also the user-space part alone: the kernel's part includes waking the peers on
  # the other core, which costs more the idler that core is (a slower process under
  # test leaves it idler), so user time compares the code itself more fairly.
  local cpu_us user_us
  cpu_us=$(awk -v a="$t0" -v b="$t1" -v r="$rps" -v d="$DUR" -v hz="$CLK_TCK" 'BEGIN {
    if (r > 0) printf "%.0f", (b - a) / hz * 1e6 / (r * d); else print 0 }')
  user_us=$(awk -v a="$u0" -v b="$u1" -v r="$rps" -v d="$DUR" -v hz="$CLK_TCK" 'BEGIN {
    if (r > 0) printf "%.0f", (b - a) / hz * 1e6 / (r * d); else print 0 }')
  echo "$rps $(to_us "$p50") $(to_us "$p99") ${bad:-0} $cpu_us $user_us" >>"$RES/$name"
  if [ -n "$sync_pid" ] && [ -s "$WORK/$name.sync" ]; then
    # Lines: "thread-TID,count,,event,...": sum per thread name (the TID stripped).
    awk -F, -v r="$rps" -v d="$DUR" -v n="$name" '
      NF > 3 && $2 ~ /^[0-9]+$/ {
        t = $1; sub(/-[0-9]+$/, "", t); gsub(/ /, "", t); ev = ($4 ~ /futex/) ? "futex" : "switch"
        c[t, ev] += $2; names[t] = 1 }
      END {
        printf "%s, per 1,000 requests (%.0f req/s): thread futex-calls context-switches\n", n, r
        for (t in names) if (c[t, "futex"] + c[t, "switch"] > 0)
          printf "  %-24s %8.1f %8.1f\n", t, c[t, "futex"] * 1000 / (r * d), c[t, "switch"] * 1000 / (r * d) }
    ' "$WORK/$name.sync" >>"$RES/sync.txt"
  fi
  cp "$out" "$RES/$name.last.txt"
}

CLK_TCK=$(getconf CLK_TCK)
# utime + stime (clock ticks) of a list of PIDs and their threads; utime alone with
# a second argument `user`.
cpu_ticks() {
  local total=0 p f='$14 + $15'
  [ "${2:-}" = user ] && f='$14'
  for p in $1; do
    total=$((total + $(awk "{print $f}" "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
# The processes serving a path: nginx workers (children of the master) or vaultgate.
pids_for() {
  case "$1" in
    direct*) ps -o pid= --ppid "$UP_MASTER" | tr '\n' ' ' ;;
    nginx*) ps -o pid= --ppid "$NG_MASTER" | tr '\n' ' ' ;;
    *) echo "$VG_PID" ;;
  esac
}

median() { sort -g | awk '{a[NR] = $1} END { if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$2" '{print $c}' "$RES/$1" | median; }

# metric NAME LABEL [FORMAT]: the sum of a family's samples (FORMAT %d, or %.9f for seconds).
metric() {
  curl -s "$API/metrics" | awk -v m="$1" -v l="$2" -v f="${3:-%d}" '
    index($0, m) == 1 && (l == "" || index($0, l) > 0) && $0 !~ /^#/ { s += $NF } END { printf f, s }'
}

SAME="$BENCH/q2open_same.lua"
PASS="$BENCH/pass.lua"
FRESH="$BENCH/q2open_fresh.lua"
PLANO="$BENCH/plano_fresh.lua"

# Reveal API: is it in this build?
REVEAL=0
REVEAL_CODE=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data '{"tokens":[]}' "$API/v1/detokenize")
if [ "$REVEAL_CODE" = 404 ]; then
  log "reveal API: not available in this build"
elif [ -z "$API_KEY" ]; then
  log "reveal API: present but no API client could be configured; skipped"
else
  # Collect 1,000 card tokens: tokenize through the capture route, read them back from
  # what the upstream received.
  log "reveal API: collecting 1,000 card tokens"
  wrk -t1 -c4 -d60s -s "$FRESH" "$VGU/capture/payment" >/dev/null 2>&1 &
  WRK_FILL=$!
  for _ in $(seq 1 600); do
    [ "$(wc -l <"$WORK/up/captured.log")" -ge 1001 ] && break
    sleep 0.1
  done
  kill "$WRK_FILL" 2>/dev/null || true
  wait "$WRK_FILL" 2>/dev/null || true
  grep -o '"cardNumber":"[^"]*"' "$WORK/up/captured.log" | cut -d'"' -f4 | sort -u | awk 'NR <= 1000' >"$WORK/tokens.txt"
  # Batches of 100, each a rotation of the token list: 1,000 tokens, 10 distinct batches.
  awk '{t[NR-1] = $0} END {
    for (b = 0; b < NR; b += 100) {
      s = "{\"tokens\":[";
      for (k = 0; k < 100; k++) { s = s (k ? "," : "") "\"" t[(b + k) % NR] "\"" }
      print s "]}" } }' "$WORK/tokens.txt" >"$WORK/batches.txt"
  head -1 "$WORK/batches.txt" >"$WORK/batch1.json"
  code=$(curl -s -o "$WORK/reveal.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $API_KEY" --data-binary "@$WORK/batch1.json" "$API/v1/detokenize" || true)
  if [ "$code" = 200 ]; then
    REVEAL=1
    log "reveal API: $(wc -l <"$WORK/tokens.txt") tokens, batches of 100"
  else
    log "reveal API: a batch of 100 answered $code ($(head -c 200 "$WORK/reveal.out")); skipped"
  fi
fi

# Warm-up: connections, page cache, allocator.
DUR_SAVED=$DUR
DUR=1
for u in "$UP/v1/payment" "$NG/v1/payment" "$VGU/pass/v1/payment"; do
  wrk -t2 -c"$CONNS" -d1s -s "$PASS" "$u" >/dev/null 2>&1 || true
done
wrk -t2 -c"$CONNS" -d1s -s "$FRESH" "$VGU/v1/payment" >/dev/null 2>&1 || true
DUR=$DUR_SAVED

# Memory with 1,000 keep-alive connections under load, measured before the rounds so
# that it is not inflated by the rounds' tokens: first on the pass-through route (the
# cost of the connections), then on the tokenizing route (plus new records and CVVs).
rss() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$VG_PID/status" 2>/dev/null || echo 0; }
mem_run() {
  local name=$1 url=$2 script=$3 peak=0 r
  wrk -t2 -c1000 -d"$((DUR < 3 ? 3 : DUR))s" --timeout 10s -s "$script" "$url" >"$WORK/$name.out" 2>&1 &
  local w=$!
  while kill -0 "$w" 2>/dev/null; do
    r=$(rss VmRSS); [ "${r:-0}" -gt "$peak" ] && peak=$r
    sleep 0.1
  done
  wait "$w" 2>/dev/null || true
  local rps bad err
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/$name.out")
  bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$WORK/$name.out")
  err=$(awk '/Socket errors:/ {$1=$2=""; print}' "$WORK/$name.out")
  echo "$((peak / 1024)) MiB VmRSS peak (${rps:-?} req/s${bad:+, $bad non-2xx}${err:+, socket errors:$err})"
}
# 1,000 keep-alive connections that each made one pass-through request and stay open
# idle (what a fleet of clients with connection pools holds), VmRSS while they are open.
idle_conns() {
  python3 - "$VG_PORT" "$VG_PID" <<'PY'
import socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
before = rss()
req = b"GET /pass/idle HTTP/1.1\r\nhost: bench\r\n\r\n"
socks = []
for _ in range(1000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    socks.append(s)
ok = 0
for s in socks:
    s.settimeout(10)
    if s.recv(4096).startswith(b"HTTP/1.1 200"):
        ok += 1
time.sleep(1)
peak = rss()
for s in socks:
    s.close()
print(f"{(peak - before) // 1024} MiB over the {before // 1024} MiB before ({ok} of 1000 answered 200)")
PY
}
log "1,000 connections"
MEM_IDLE=$(idle_conns)
RSS_IDLE=$(( $(rss VmRSS) / 1024 ))
MEM_PASS=$(mem_run mem_pass "$VGU/pass/v1/payment" "$PASS")
MEM_TOK=$(mem_run mem_tok "$VGU/v1/payment" "$FRESH")
HWM_MEM=$(( $(rss VmHWM) / 1024 ))

FL0=0; RQ0=0; FL1=0; RQ1=0; FC1=0; FS1=0
for r in $(seq 1 "$ROUNDS"); do
  log "round $r/$ROUNDS"
  wrk_run direct "$UP/v1/payment" "$CONNS" "$WRK_THREADS" "$PASS"
  wrk_run nginx "$NG/v1/payment" "$CONNS" "$WRK_THREADS" "$PASS"
  wrk_run pass "$VGU/pass/v1/payment" "$CONNS" "$WRK_THREADS" "$PASS"
  wrk_run pass_noguard "$VGU/raw/v1/payment" "$CONNS" "$WRK_THREADS" "$PASS"
  f0=$(metric vaultgate_store_flushes_total ""); q0=$(metric vaultgate_requests_total 'route="q2open",outcome="ok"')
  wrk_run tok_fresh "$VGU/v1/payment" "$CONNS" "$WRK_THREADS" "$FRESH"
  f1=$(metric vaultgate_store_flushes_total ""); q1=$(metric vaultgate_requests_total 'route="q2open",outcome="ok"')
  FL1=$((FL1 + f1 - f0)); RQ1=$((RQ1 + q1 - q0))
  wrk_run tok_same "$VGU/v1/payment" "$CONNS" "$WRK_THREADS" "$BENCH/q2open_same_card.lua"
  wrk_run plano "$VGU/payment-methods" "$CONNS" "$WRK_THREADS" "$PLANO"
  if [ "$REVEAL" = 1 ]; then
    wrk_run reveal "$API/v1/detokenize" "$CONNS" "$WRK_THREADS" "$BENCH/reveal.lua" "$WORK/batches.txt" "$API_KEY"
  fi
  # Added latency at one connection: direct vs tokenizing.
  wrk_run direct_c1 "$UP/v1/payment" 1 1 "$SAME"
  # The store's flushes during it: the disk's share of that latency.
  c0=$(metric vaultgate_store_flush_duration_seconds_count ""); s0=$(metric vaultgate_store_flush_duration_seconds_sum "" %.9f)
  wrk_run tok_fresh_c1 "$VGU/v1/payment" 1 1 "$FRESH"
  c1=$(metric vaultgate_store_flush_duration_seconds_count ""); s1=$(metric vaultgate_store_flush_duration_seconds_sum "" %.9f)
  FC1=$((FC1 + c1 - c0)); FS1=$(awk -v a="$FS1" -v b="$s1" -v c="$s0" 'BEGIN { printf "%.9f", a + b - c }')
done

# --- report --------------------------------------------------------------------------
if [ -s "$RES/sync.txt" ]; then
  echo "## cross-thread synchronisation (BENCH_SYNC)"
  cat "$RES/sync.txt"
  echo
fi
NG_RPS=$(col nginx 1)
UP_RPS=$(col direct 1)
row() {
  local label=$1 name=$2 mult=${3:-1}
  [ -s "$RES/$name" ] || return 0
  local rps p50 p99 cpu user
  rps=$(col "$name" 1); p50=$(col "$name" 2); p99=$(col "$name" 3); cpu=$(col "$name" 5); user=$(col "$name" 6)
  awk -v l="$label" -v r="$rps" -v m="$mult" -v a="$p50" -v b="$p99" -v n="$NG_RPS" -v d="$UP_RPS" -v c="$cpu" -v u="$user" 'BEGIN {
    printf "| %-42s | %9.0f | %7.0f | %7.0f | %6.2f | %7.2f | %5.0f | %5.0f |\n", l, r * m, a, b, r / n, r / d, c, u }'
}
echo
if [ "$PIN" = 1 ]; then
  echo "## vaultgate benchmark, pinned ($(date -u +%Y-%m-%d): process under test on core 1, upstream and wrk on core 0; 1 nginx worker; wrk -t1 -c$CONNS, $ROUNDS x ${DUR}s, medians)"
else
  echo "## vaultgate benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, $WORKERS nginx workers, wrk -t2 -c$CONNS, $ROUNDS x ${DUR}s, medians)"
fi
echo
echo "vaultgate's store: ${BENCH_STORE:-sled}"
echo
echo "| path                                       |     req/s |  p50 µs |  p99 µs | ×nginx | ×direct | CPU µs/req | user µs/req |"
echo "|--------------------------------------------|-----------|---------|---------|--------|---------|-------|-------|"
row "1. direct to upstream" direct
row "2. nginx proxy_pass" nginx
row "3. vaultgate pass-through (streaming guard)" pass
row "3b. vaultgate pass-through, stream_guard off" pass_noguard
row "4. vaultgate q2open, fresh card (durable)" tok_fresh
row "5. vaultgate q2open, same card" tok_same
row "6. vaultgate Plano base64, fresh card" plano
if [ "$REVEAL" = 1 ]; then
  row "7. reveal API, batches of 100 (tokens/s)" reveal 100
else
  echo "| 7. reveal API, batches of 100              | not available in this build | | | | | |"
fi
row "direct, 1 connection" direct_c1
row "q2open fresh card, 1 connection" tok_fresh_c1
echo
awk -v a="$(col tok_fresh_c1 2)" -v b="$(col direct_c1 2)" -v c="$(col tok_fresh_c1 3)" -v d="$(col direct_c1 3)" 'BEGIN {
  printf "added latency, tokenizing, 1 connection: p50 %+d µs, p99 %+d µs over direct\n", a - b, c - d }'
if [ "$FC1" -gt 0 ]; then
  awk -v n="$FC1" -v s="$FS1" 'BEGIN {
    printf "store flushes at 1 connection (fresh cards): %d, %d µs each on average (vaultgate_store_flush_duration_seconds): the disk'"'"'s share of the added latency\n", n, s / n * 1e6 }'
fi
if [ "$RQ1" -gt 0 ]; then
  awk -v f="$FL1" -v q="$RQ1" -v c="$CONNS" 'BEGIN {
    printf "fsyncs per tokenizing request at %d connections: %.3f (%d flushes / %d requests)\n", c, f / q, f, q }'
fi
echo "resident memory, 1,000 open keep-alive connections, idle after one request each: $MEM_IDLE"
echo "resident memory, 1,000 busy keep-alive connections (wrk -c1000), VmRSS before: $RSS_IDLE MiB"
echo "  pass-through route: $MEM_PASS"
echo "  q2open fresh cards: $MEM_TOK; VmHWM $HWM_MEM MiB"
echo "  after all rounds: VmRSS $(( $(rss VmRSS) / 1024 )) MiB, VmHWM $(( $(rss VmHWM) / 1024 )) MiB"
# Requests that did not end well, by route and outcome (vaultgate's own counters):
# the warnings above say how many; this says why.
curl -s "$API/metrics" | awk '/^vaultgate_requests_total\{/ && !/outcome="ok"/ && $NF > 0 {
  sub(/^vaultgate_requests_total/, ""); printf "  not ok: %s %d\n", $1, $NF }'
if grep -qiE 'error|panic' "$WORK/vaultgate.log"; then
  log "vaultgate logged errors:"; grep -iE 'error|panic' "$WORK/vaultgate.log" | awk 'NR <= 5' >&2
fi

if [ "$STORE_SIZE" = 1 ]; then
  log "store size after 1M tokens (cargo bench --bench store_size)"
  (cd "$ROOT" && cargo bench --quiet --bench store_size)
fi
T1=$(date +%s.%N)
awk -v a="$T0" -v b="$T1" 'BEGIN { printf "wall time: %.1f s\n", b - a }'
