#!/usr/bin/env python3
"""Render ``examples/envoy/envoy.yaml`` into a runnable Envoy configuration.

Two forms come out of the one template, so the demo and the tests route exactly like the
real-world setup:

* **real**: the placeholders are filled in; each provider host goes to its TLS cluster.
* **mock**: the same listener, routes and filters, but every cluster (provider hosts, Ollama, the
  dynamic forward proxy for configured hosts) points at one plain-HTTP loopback mock provider.

Usage (the output is JSON, which Envoy reads like YAML)::

    python3 envoy_config.py --config seed.json [--mock-port 8080] [--listen-port 10000] \\
        [--admin-port 9901] -o envoy.json

Needs PyYAML only for the mock form (the real form is plain text substitution).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

TEMPLATE: Final = Path(__file__).resolve().with_name("envoy.yaml")
"""The real-world configuration with ``${...}`` placeholders."""

CA_FILES: Final = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/ssl/cert.pem",  # macOS, Arch
)

DEFAULT_LISTEN_PORT: Final = 10000
DEFAULT_ADMIN_PORT: Final = 9901
LOOPBACK: Final = "127.0.0.1"
FILTER_NAME: Final = "aiproxy"
MODULE_NAME: Final = "aiproxy_envoy"
DFP_FILTER: Final = "envoy.filters.http.dynamic_forward_proxy"

EnvoyConfig = dict[str, Any]


def find_ca_file() -> str:
    """The system CA bundle Envoy verifies provider certificates with."""
    for candidate in CA_FILES:
        if Path(candidate).is_file():
            return candidate
    return CA_FILES[0]


def render(
    config_json: str,
    *,
    listen_port: int = DEFAULT_LISTEN_PORT,
    admin_port: int = DEFAULT_ADMIN_PORT,
    ca_file: str | None = None,
    template: str | None = None,
) -> str:
    """The template with its placeholders filled in (YAML text)."""
    text = TEMPLATE.read_text() if template is None else template
    values = {
        "AIPROXY_CONFIG_JSON": json.dumps(config_json),
        "AIPROXY_LISTEN_PORT": str(listen_port),
        "AIPROXY_ADMIN_PORT": str(admin_port),
        "AIPROXY_CA_FILE": ca_file or find_ca_file(),
    }
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise ValueError("envoy.yaml has a placeholder this renderer does not know")
    return text


def load(text: str) -> EnvoyConfig:
    import yaml  # type: ignore[import-untyped,unused-ignore]  # PyYAML, only for structural edits

    loaded = yaml.safe_load(text)
    if not isinstance(loaded, dict):
        raise ValueError("an Envoy configuration must be a mapping")
    return loaded


def static_cluster(name: str, port: int, host: str = LOOPBACK) -> EnvoyConfig:
    """A plain-HTTP cluster with one loopback endpoint."""
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}
            ],
        },
    }


def http_filters(listener: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The HTTP filter list of a listener's connection manager."""
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    filters = hcm["http_filters"]
    assert isinstance(filters, list)
    return filters


def route_to_mock(config: EnvoyConfig, mock_port: int, extra_clusters: Iterable[str] = ()) -> EnvoyConfig:
    """A copy of ``config`` whose clusters all lead to the loopback mock on ``mock_port``.

    Routes, filters and cluster names stay as they are; TLS, DNS and the dynamic forward proxy go.
    ``extra_clusters`` adds more names (e.g. a ``context.serviceName``) pointing at the mock.
    """
    out = copy.deepcopy(config)
    resources = out["static_resources"]
    names = [c["name"] for c in resources["clusters"]]
    names += [n for n in extra_clusters if n not in names]
    resources["clusters"] = [static_cluster(n, mock_port) for n in names]
    for listener in resources["listeners"]:
        filters = http_filters(listener)
        filters[:] = [f for f in filters if f.get("name") != DFP_FILTER]
    return out


def set_filter_config(listener: dict[str, Any], config_json: str) -> None:
    """Replaces the aiproxy ``filter_config`` text of one listener."""
    for f in http_filters(listener):
        if f.get("name") == FILTER_NAME:
            f["typed_config"]["filter_config"]["value"] = config_json
            return
    raise KeyError("listener has no aiproxy filter")


def with_listeners(config: EnvoyConfig, filter_configs: Mapping[str, str], port: int = 0) -> EnvoyConfig:
    """One copy of the first listener per entry (``name -> seed config JSON``), all on loopback.

    With ``port=0`` each listener takes a free ephemeral port (read it from the admin API's
    ``/listeners?format=json``).
    """
    out = copy.deepcopy(config)
    template = out["static_resources"]["listeners"][0]
    listeners = []
    for name, config_json in filter_configs.items():
        listener = copy.deepcopy(template)
        listener["name"] = name
        listener["address"] = {"socket_address": {"address": LOOPBACK, "port_value": port}}
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["stat_prefix"] = name
        set_filter_config(listener, config_json)
        listeners.append(listener)
    out["static_resources"]["listeners"] = listeners
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="seed plugin configuration file (JSON)")
    source.add_argument("--config-json", help="seed plugin configuration text (JSON)")
    parser.add_argument("--mock-port", type=int, help="route every cluster to the mock on this loopback port")
    parser.add_argument("--listen-port", type=int, default=DEFAULT_LISTEN_PORT)
    parser.add_argument("--admin-port", type=int, default=DEFAULT_ADMIN_PORT)
    parser.add_argument("-o", "--output", type=Path, help="output file (default: stdout)")
    args = parser.parse_args(argv)

    config_json = args.config.read_text() if args.config else args.config_json
    text = render(config_json, listen_port=args.listen_port, admin_port=args.admin_port)
    if args.mock_port is not None:
        text = json.dumps(route_to_mock(load(text), args.mock_port), indent=1)
    if args.output is None:
        sys.stdout.write(text)
    else:
        # The configuration holds API keys: readable by the owner only.
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
