#!/usr/bin/env python3
"""Render ``nginx.conf.in`` into a runnable NGINX configuration for aiproxy.

One ``server`` (listening on 127.0.0.1) per aiproxy configuration; each configuration's JSON goes
into its own owner-readable file next to ``nginx.conf`` (the master process reads it at start, so
``nginx.conf`` itself holds no key). Two forms, like the Envoy example:

* **real**: provider hosts are resolved with the system resolver and reached over TLS (port 443,
  certificate verified against the system CA bundle, SNI = the provider host);
* **mock**: every provider connection goes to one plain-HTTP loopback server (``upstream``).

Usage::

    python3 nginx_config.py --config seed.json [--mock-port 8080] [--port 10080] -d workdir
    nginx -p workdir -c workdir/nginx.conf
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parents[1]
TEMPLATE: Final = HERE / "nginx.conf.in"
SERVER_TEMPLATE: Final = HERE / "server.conf.in"
LUA_DIR: Final = REPO / "bindings" / "lua"
LUA_MODULE: Final = Path("/usr/lib/nginx/modules/ngx_http_lua_module.so")
DEFAULT_PORT: Final = 10080
CA_FILES: Final = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/ssl/cert.pem",  # macOS, Arch
)


def find_ca_file() -> str:
    return next((c for c in CA_FILES if Path(c).is_file()), CA_FILES[0])


def system_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    """The name servers of the system resolver (NGINX resolves provider hosts itself)."""
    servers: list[str] = []
    try:
        for line in Path(path).read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                servers.append(f"[{parts[1]}]" if ":" in parts[1] else parts[1])
    except OSError:
        pass
    return servers or ["127.0.0.53"]


def lua_string(value: str) -> str:
    """A Lua string literal."""
    escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\{ord(c):03d}" for c in value)
    return f'"{escaped}"'


@dataclass
class Server:
    """One listener: a name (Lua identifier-like), its port, and its configuration JSON text."""

    name: str
    port: int
    config_json: str


@dataclass
class Rendered:
    nginx_conf: str
    config_files: dict[str, str] = field(default_factory=dict)  # file name -> JSON text


def render(
    servers: list[Server],
    workdir: Path,
    *,
    upstream: str | None = None,
    services: Mapping[str, str] | None = None,
    workers: int = 2,
    access_log: str | None = None,
    lib: str | None = None,
    timeout_ms: int | None = None,
    max_body: str = "16m",
    extra_http: str = "",
    upstream_tls: bool = False,
    ca_file: str | None = None,
) -> Rendered:
    """The configuration text plus the JSON files it reads (write both into ``workdir``)."""
    files: dict[str, str] = {}
    entries = []
    server_blocks = []
    template = SERVER_TEMPLATE.read_text()
    for s in servers:
        # Provider type names such as together-ai are server names in the tests: '-' is fine in
        # an unquoted nginx value and in a file name.
        if not s.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"server name {s.name!r} must be letters, digits, '-' and '_'")
        file_name = f"aiproxy-{s.name}.json"
        files[file_name] = s.config_json
        entries.append(f"[{lua_string(s.name)}] = {{file = {lua_string(str(workdir / file_name))}}}")
        server_blocks.append(template.replace("${PORT}", str(s.port)).replace("${CONFIG_NAME}", s.name))
    options = [f"configs = {{{', '.join(entries)}}}"]
    if upstream:
        options.append(f"upstream = {lua_string(upstream)}")
    if upstream_tls:
        options.append("upstream_tls = true")
    if services:
        pairs = ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in services.items())
        options.append(f"services = {{{pairs}}}")
    if lib:
        options.append(f"lib = {lua_string(lib)}")
    if timeout_ms:
        options.append(f"timeout_ms = {int(timeout_ms)}")
    values = {
        "WORKERS": str(workers),
        "WORKDIR": str(workdir),
        "ACCESS_LOG": access_log or str(workdir / "access.log"),
        "MAX_BODY": max_body,
        "LUA_DIR": str(LUA_DIR),
        "TLS": ""
        if upstream and not upstream_tls
        else f"    lua_ssl_trusted_certificate {ca_file or find_ca_file()};\n    lua_ssl_verify_depth 5;\n",
        "RESOLVER": " ".join(system_resolvers()),
        "LUA_OPTIONS": "{" + ", ".join(options) + "}",
        "SERVERS": "\n".join(server_blocks) + extra_http,
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise ValueError("nginx.conf.in has a placeholder this renderer does not know")
    return Rendered(text, files)


def write(rendered: Rendered, workdir: Path) -> Path:
    """Writes the configuration files (JSON owner-readable only); returns nginx.conf's path."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.config_files.items():
        fd = os.open(workdir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
    path = workdir / "nginx.conf"
    path.write_text(rendered.nginx_conf)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="seed plugin configuration file (JSON)")
    parser.add_argument("--mock-port", type=int, help="send every provider connection to this loopback port")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("-d", "--workdir", type=Path, required=True)
    args = parser.parse_args(argv)
    upstream = f"127.0.0.1:{args.mock_port}" if args.mock_port else None
    workdir = args.workdir.resolve()
    rendered = render(
        [Server("main", args.port, args.config.read_text())], workdir, upstream=upstream, workers=args.workers
    )
    print(write(rendered, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
