#!/usr/bin/env bash
# Installs NGINX with lua-nginx-module (Debian/Ubuntu: nginx + libnginx-mod-http-lua, which brings
# LuaJIT and lua-resty-core) when missing; optionally more packages (e.g. `wrk`). Idempotent and
# quiet; needs root and apt-get. Used by examples/nginx/run.sh, tests/run_all.sh and
# benches/nginx_overhead.sh.
#
#   examples/nginx/install_nginx.sh [extra-package ...]
set -euo pipefail
LUA_MODULE=/usr/lib/nginx/modules/ngx_http_lua_module.so

want=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || want+=(nginx)
[ -f "$LUA_MODULE" ] || want+=(libnginx-mod-http-lua)
for pkg in "$@"; do
  command -v "$pkg" >/dev/null 2>&1 || want+=("$pkg")
done
[ ${#want[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${want[*]}; install them (Debian/Ubuntu: sudo apt-get install -y ${want[*]})" >&2
  exit 1
fi

echo "==> apt-get install ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
# The package would start the system nginx on port 80: keep services down during the install when
# the machine has no policy of its own (containers usually do).
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
# An `if`, not `a && b`: an EXIT trap's last status becomes the script's, and a machine with its
# own policy leaves created_policy empty.
cleanup() { if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

install() { apt-get install -y -q --no-install-recommends "${want[@]}" >/dev/null; }
if ! apt-cache policy "${want[@]}" 2>/dev/null | grep -q 'Candidate: [0-9]' || ! install 2>/dev/null; then
  apt-get update -q >/dev/null
  install
fi
[ -f "$LUA_MODULE" ] || { echo "libnginx-mod-http-lua did not install $LUA_MODULE" >&2; exit 1; }
