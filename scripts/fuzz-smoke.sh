#!/usr/bin/env bash
# Fuzz smoke test for CI: build the fuzz workspace once, run every target from its seed
# corpus, fail on any crash, leak-assert or timeout.
#
#   scripts/fuzz-smoke.sh            # up to 10 s per target, a fresh seed each run
#   FUZZ_SECONDS=60 scripts/fuzz-smoke.sh
#   FUZZ_SEED=1 scripts/fuzz-smoke.sh  # CI: a fixed seed and a fixed number of runs
#
# With FUZZ_SEED set, each target makes the same mutations every time (a set number of
# runs, about 5 s unoptimised on a 2-core machine; FUZZ_SECONDS still caps the time), so
# a gate that passed on a commit passes again on it. It replays every committed seed
# (the `regress-*` inputs of past findings among them) first. Exploring further is a
# job for longer runs without FUZZ_SEED (fuzz/README.md), whose findings become seeds.
#
# Stable toolchain, no sanitizer (`-s none`): no nightly needed. New corpus entries go
# to a scratch dir, so the committed seeds stay as they are; a crashing input is kept
# under fuzz/artifacts/<target>/.
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${FUZZ_SECONDS:-10}"
# FUZZ_DEV=1 builds the targets unoptimised (--dev): a cold build takes a few minutes
# instead of ~8, which is what CI wants for a smoke run; fewer executions per second.
PROFILE=()
[ "${FUZZ_DEV:-0}" = 1 ] && PROFILE=(--dev)
TARGETS=(json form query base64 field_path config keyring record token pipeline multipart guard stream_guard echo)
# Runs per target with FUZZ_SEED: about 5 s each, unoptimised, on the CI machine.
declare -A RUNS=(
    [json]=4000 [form]=900 [query]=700 [base64]=14000 [field_path]=35000 [config]=6000
    [keyring]=100000 [record]=300000 [token]=60000 [pipeline]=700 [multipart]=1200
    [guard]=2500 [stream_guard]=9000 [echo]=3000
)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cargo fuzz build "${PROFILE[@]}" --fuzz-dir fuzz -s none

failed=()
for t in "${TARGETS[@]}"; do
    mkdir -p "$scratch/$t" "fuzz/artifacts/$t"
    FIXED=()
    if [ -n "${FUZZ_SEED:-}" ]; then
        FIXED=(-seed="$FUZZ_SEED" -runs="${RUNS[$t]}")
        echo "fuzz-smoke: $t (seed $FUZZ_SEED, ${RUNS[$t]} runs, at most ${SECONDS_PER_TARGET}s)" >&2
    else
        echo "fuzz-smoke: $t (${SECONDS_PER_TARGET}s)" >&2
    fi
    if ! cargo fuzz run "${PROFILE[@]}" --fuzz-dir fuzz -s none "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
        "${FIXED[@]}" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 \
        >"$scratch/$t.log" 2>&1; then
        tail -n 40 "$scratch/$t.log" >&2
        failed+=("$t")
    else
        grep -E '^Done|stat::number_of_executed_units' "$scratch/$t.log" >&2 || true
    fi
done

if ((${#failed[@]})); then
    echo "fuzz-smoke: FAILED: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: all ${#TARGETS[@]} targets ok" >&2
