#!/usr/bin/env bash
# Builds the C example and the C API contract program against include/aiproxy.h and the release
# cdylib, and runs both under valgrind memcheck: any memory error or any leaked byte (definite,
# indirect, possible or still reachable) fails. Installs valgrind with apt when it is missing.
# Usage: tests/c/run_valgrind.sh   (after `cargo build --release`)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LIB=$ROOT/target/release
[ -f "$LIB/libaiproxy.so" ] || cargo build --release --lib -p aiproxy
if ! command -v valgrind >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq valgrind
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
CC=${CC:-cc}
for src in examples/c/translate_demo.c tests/c/api_contract.c; do
  exe=$OUT/$(basename "$src" .c)
  "$CC" -std=c11 -Wall -Wextra -Werror -g -pthread -I include -o "$exe" "$src" \
    -L "$LIB" -laiproxy "-Wl,-rpath,$LIB"
  echo "--- valgrind $(basename "$exe")"
  valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=all \
    --errors-for-leak-kinds=all "$exe" >"$OUT/out.txt" 2>"$OUT/vg.txt" || {
      cat "$OUT/out.txt" "$OUT/vg.txt"; echo "valgrind: $(basename "$exe") failed"; exit 1; }
  tail -n 1 "$OUT/out.txt"
done
# The error path of the example (a bad config) must be clean too.
echo '{"provider": {"type": "azure", "apiTokens": ["k"]}}' >"$OUT/bad.json"
if valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=all \
    --errors-for-leak-kinds=all "$OUT/translate_demo" "$OUT/bad.json" >/dev/null 2>"$OUT/vg.txt"; then
  echo "the example accepted a bad config"; exit 1
elif [ $? -eq 99 ]; then
  cat "$OUT/vg.txt"; echo "valgrind: translate_demo (bad config) failed"; exit 1
fi
echo "valgrind: zero errors, zero leaks"
