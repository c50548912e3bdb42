#!/usr/bin/env bash
# Build libaiproxy, install NGINX + lua-nginx-module when missing (Debian/Ubuntu, as root), and
# start NGINX on 127.0.0.1:10080 with aiproxy. Counterpart of examples/envoy/run.sh.
#
#   examples/nginx/run.sh                                # no API key: fronts the loopback mock
#   OPENAI_API_KEY=sk-... examples/nginx/run.sh          # fronts api.openai.com (TLS, SNI)
#   AIPROXY_CONFIG=seed.json examples/nginx/run.sh       # any seed plugin configuration
#
# Other variables (ANTHROPIC_API_KEY, GEMINI_API_KEY, ..., AIPROXY_MOCK, AIPROXY_NGINX_PORT,
# AIPROXY_NGINX_WORKERS, AIPROXY_VENV, NGINX_BIN): see launch.py and README.md next to this script.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
VENV="${AIPROXY_VENV:-$REPO/.venv}"

examples/nginx/install_nginx.sh

echo "==> cargo build --release -p aiproxy"
cargo build --release -p aiproxy

# launch.py and the mock provider need only the standard library.
PY=python3
[ -x "$VENV/bin/python" ] && PY="$VENV/bin/python"
exec "$PY" examples/nginx/launch.py "$@"
