#!/usr/bin/env bash
# Builds and installs libaiproxy for programs outside this repository: the shared library (with
# its versioned soname), the C header, a pkg-config file and the Lua (NGINX) modules.
#
#   scripts/install.sh                              # PREFIX=/usr/local (as root)
#   PREFIX=$HOME/.local scripts/install.sh          # no root needed
#   DESTDIR=/tmp/stage PREFIX=/usr scripts/install.sh   # staged, for packaging
#
# Installs:
#   $LIBDIR/libaiproxy.so.<version>   the library (soname libaiproxy.so.<major>)
#   $LIBDIR/libaiproxy.so.<major>     -> libaiproxy.so.<version>  (what programs load)
#   $LIBDIR/libaiproxy.so             -> libaiproxy.so.<major>    (what the linker finds)
#   $LIBDIR/pkgconfig/aiproxy.pc      (Go: go build -tags aiproxy_system; C: pkg-config --cflags --libs aiproxy)
#   $INCLUDEDIR/aiproxy.h
#   $PREFIX/share/lua/5.1/aiproxy.lua, aiproxy/nginx.lua  (lua_package_path for NGINX)
#
# Variables: PREFIX (/usr/local), LIBDIR ($PREFIX/lib), INCLUDEDIR ($PREFIX/include), DESTDIR,
# AIPROXY_LIB (install this library file instead of building one), AIPROXY_NO_CARGO=1 (do not
# build; use target/release as it is).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${PREFIX:-/usr/local}"
LIBDIR="${LIBDIR:-$PREFIX/lib}"
INCLUDEDIR="${INCLUDEDIR:-$PREFIX/include}"
LUADIR="${LUADIR:-$PREFIX/share/lua/5.1}"
DESTDIR="${DESTDIR:-}"

VERSION="$(sed -n 's/^version = "\([^"]*\)"/\1/p' "$REPO/Cargo.toml" | head -n 1)"
MAJOR="${VERSION%%.*}"
[ -n "$VERSION" ] || { echo "cannot read the version from Cargo.toml" >&2; exit 1; }

LIB="${AIPROXY_LIB:-}"
if [ -z "$LIB" ]; then
  if [ -z "${AIPROXY_NO_CARGO:-}" ]; then
    (cd "$REPO" && cargo build --release -q -p aiproxy)
  fi
  LIB="$REPO/target/release/libaiproxy.so"
fi
[ -f "$LIB" ] || { echo "$LIB not found (cargo build --release -p aiproxy)" >&2; exit 1; }

install -d "$DESTDIR$LIBDIR/pkgconfig" "$DESTDIR$INCLUDEDIR" "$DESTDIR$LUADIR/aiproxy"
install -m 0755 "$LIB" "$DESTDIR$LIBDIR/libaiproxy.so.$VERSION"
ln -sfn "libaiproxy.so.$VERSION" "$DESTDIR$LIBDIR/libaiproxy.so.$MAJOR"
ln -sfn "libaiproxy.so.$MAJOR" "$DESTDIR$LIBDIR/libaiproxy.so"
install -m 0644 "$REPO/include/aiproxy.h" "$DESTDIR$INCLUDEDIR/aiproxy.h"
install -m 0644 "$REPO/bindings/lua/aiproxy.lua" "$DESTDIR$LUADIR/aiproxy.lua"
install -m 0644 "$REPO/bindings/lua/aiproxy/nginx.lua" "$DESTDIR$LUADIR/aiproxy/nginx.lua"

# Outside the system's library directories, programs also record an rpath to LIBDIR, so they run
# without LD_LIBRARY_PATH.
case "$LIBDIR" in
  /usr/lib | /usr/lib64 | /usr/lib/*-linux-gnu | /lib | /lib64) RPATH="" ;;
  *) RPATH=' -Wl,-rpath,${libdir}' ;;
esac
cat >"$DESTDIR$LIBDIR/pkgconfig/aiproxy.pc" <<PC
prefix=$PREFIX
libdir=$LIBDIR
includedir=$INCLUDEDIR

Name: aiproxy
Description: Translate OpenAI-API traffic to and from LLM providers (C API)
URL: https://github.com/aiproxy/aiproxy
Version: $VERSION
Libs: -L\${libdir} -laiproxy$RPATH
Cflags: -I\${includedir}
PC
chmod 0644 "$DESTDIR$LIBDIR/pkgconfig/aiproxy.pc"

# Refresh the loader's cache for the system's directories only (never add a private PREFIX to it).
if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then
  case "$LIBDIR" in
    /usr/local/lib | /usr/lib | /usr/lib64 | /usr/lib/*-linux-gnu) ldconfig || true ;;
  esac
fi
echo "installed libaiproxy $VERSION into ${DESTDIR}$PREFIX (pkg-config: $LIBDIR/pkgconfig/aiproxy.pc)"
