#!/usr/bin/env bash
# Instructions per iteration of one case of the criterion bench binary, under callgrind
# (stable on a loaded machine, unlike wall clock): runs the case N times and once, and prints
# the difference divided by N - 1, which strips start-up and fixture building.
#   benches/icount.sh <case> [N]     e.g. benches/icount.sh stream/qwen/64 5
# Cases: request/<kind>, request_tools/<kind>, request_qwen/<thinking|vl>, response/<openai|openai_pretty|claude>, stream/<openai_usage|claude|gemini|qwen>/<whole|4096|64|1>, stream_short/<openai_usage|claude|gemini|qwen>/<slice>
# Needs valgrind and a release bench build (`cargo bench --bench translate --no-run`).
set -euo pipefail
cd "$(dirname "$0")/.."
case_=${1:?case}
n=${2:-5}
bin=$(cargo bench --bench translate --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="translate": print(m["executable"])' | tail -1)
count() {
  local out; out=$(mktemp)
  AIPROXY_PROFILE="$case_:$1" valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$out"; rm -f "$out"
}
a=$(count "$n"); b=$(count 1)
echo "$case_ $(( (a - b) / (n - 1) ))"
