#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a bounded time each; exits non-zero on a
# finding (crash, panic, failed assertion, leak, timeout, OOM). Needs the nightly toolchain and
# cargo-fuzz (installed here if missing).
#
#   fuzz/run.sh [SECONDS_PER_TARGET=60] [TARGET...]
#
# FUZZ_SANITIZER=none skips AddressSanitizer (default: address). The targets call no unsafe code,
# so the short CI pass uses none (quicker to build and to run); panics, overflow checks and debug
# assertions fire either way.
#
# New corpus entries go to fuzz/work/<target>/ (not committed); fuzz/corpus/<target>/ holds the
# committed seeds and is only read. Findings land in fuzz/artifacts/<target>/; reproduce one with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
set -uo pipefail

secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(config request response sse)
fi
cd "$(dirname "$0")/.."

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz/run.sh: the nightly toolchain is required (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked || exit 2
fi
san=${FUZZ_SANITIZER:-address}
# One build for all targets (release, debug assertions and overflow checks on, the sanitizer).
cargo +nightly fuzz build --sanitizer "$san" || exit 2

declare -A dicts=(
    [config]="json config"
    [request]="json"
    [response]="json sse"
    [sse]="sse"
)
failed=0
mkdir -p fuzz/work
for t in "${targets[@]}"; do
    mkdir -p "fuzz/work/$t"
    dict="fuzz/work/$t.dict"
    : >"$dict"
    for d in ${dicts[$t]:-json}; do cat "fuzz/dicts/$d.dict" >>"$dict"; done
    log="fuzz/work/$t.log"
    echo "== fuzz $t: ${secs}s"
    cargo +nightly fuzz run --sanitizer "$san" "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -dict="$dict" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    if [ $rc -ne 0 ]; then
        failed=1
        echo "!! fuzz $t: FINDING (exit $rc), see $log and fuzz/artifacts/$t/"
        grep -m1 -E "panicked|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY" "$log" || tail -20 "$log"
    else
        echo "ok fuzz $t: ${execs:-?} execs in ${secs}s, ${cov:-cov ?}"
    fi
done
exit $failed
