#!/usr/bin/env bash
# Overhead of aiproxy in NGINX: p50/p99 latency, requests/s and worker CPU per request of the same
# NGINX with the aiproxy Lua handler and with a plain proxy_pass (no Lua phase), same upstream,
# same run (a non-streamed chat completion). Everything listens on 127.0.0.1; every run is bounded
# (default 3 rounds x 2 servers x 10 s).
#
#   benches/nginx_overhead.sh
#   benches/nginx_overhead.sh --connections 1
#   benches/nginx_overhead.sh --duration 5 --rounds 2
#
# Needs cargo and python3; installs nginx, libnginx-mod-http-lua and wrk with apt-get when missing
# (as root). The mock provider used to capture the canned reply is stdlib-only Python.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
examples/nginx/install_nginx.sh wrk
cargo build --release -q -p aiproxy
export AIPROXY_LIB="$REPO/target/release/libaiproxy.so"
PY=python3
[ -x "${AIPROXY_VENV:-$REPO/.venv}/bin/python" ] && PY="${AIPROXY_VENV:-$REPO/.venv}/bin/python"
exec "$PY" benches/nginx_overhead.py "$@"
