#!/usr/bin/env bash
# Peers end to end, one command: aiproxy's aiohttp example proxy and Go example proxy against the
# LiteLLM proxy server, same mock upstream, wrk at fixed concurrency (benches/peers/peers.py).
#
#   benches/peers.sh                                  # provider openai, 3 rounds x 5 s, -c8
#   benches/peers.sh --provider claude --trickle      # Anthropic upstream, one event per write
#   benches/peers.sh --duration 1 --rounds 1 --only aiohttp,go   # seconds-long smoke (CI)
#
# Installs LiteLLM (`litellm[proxy]`, PyPI) into its own venv (.venv-peers, or $PEERS_VENV), never
# into the test venv; needs wrk, go (/usr/local/go/bin is added to PATH) and cargo.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export PATH=$PATH:/usr/local/go/bin
VENV="${AIPROXY_VENV:-$REPO/.venv}"
PEERS_VENV="${PEERS_VENV:-$REPO/.venv-peers}"
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
  else
    echo "wrk not found: install the 'wrk' package" >&2
    exit 1
  fi
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'import aiohttp' 2>/dev/null ||
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
case " $* " in
  *" --only "*litellm*|*" --only="*litellm*) need_litellm=1 ;;
  *" --only "*|*" --only="*) need_litellm=0 ;;
  *) need_litellm=1 ;;
esac
if [ "$need_litellm" = 1 ] && [ ! -x "$PEERS_VENV/bin/litellm" ]; then
  python3 -m venv "$PEERS_VENV"
  "$PEERS_VENV/bin/python" -m pip install -q --disable-pip-version-check 'litellm[proxy]'
fi
cargo build --release -q -p aiproxy
GO_PROXY="$REPO/target/aiproxy-go-example"
(cd examples/go && go build -o "$GO_PROXY" .)
exec "$VENV/bin/python" benches/peers/peers.py --go-proxy "$GO_PROXY" --litellm-venv "$PEERS_VENV" "$@"
