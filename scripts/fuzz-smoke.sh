#!/usr/bin/env bash
# Fuzz smoke test for CI: build the fuzz workspace once, run every target for a short
# bounded time from its seed corpus, fail on any crash, leak-assert or timeout.
#
#   scripts/fuzz-smoke.sh            # 10 s per target
#   FUZZ_SECONDS=60 scripts/fuzz-smoke.sh
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
TARGETS=(json form query base64 field_path config keyring record token pipeline multipart guard stream_guard)

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
    echo "fuzz-smoke: $t (${SECONDS_PER_TARGET}s)" >&2
    if ! cargo fuzz run "${PROFILE[@]}" --fuzz-dir fuzz -s none "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
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
