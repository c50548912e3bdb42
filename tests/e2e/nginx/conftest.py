"""Session fixtures: one loopback mock provider and one NGINX (lua-nginx-module) with aiproxy.

NGINX runs the example configuration (examples/nginx) with one server per configuration under
test (each seed provider type, plus the feature configurations below), every provider connection
sent to the mock. Skipped when NGINX or its Lua module is not installed
(examples/nginx/install_nginx.sh installs them; tests/run_all.sh runs it).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

HERE: Final = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from nginx_harness import CALLOUT_TIMEOUT_MS, NginxProcess, NginxSetupError, Proxy, find_nginx, library, nginx_config  # noqa: E402
from mock_provider import start_mock  # noqa: E402
from provider_cases import CASES  # noqa: E402  (tests/e2e/envoy/provider_cases.py)

CONTEXT_SERVICE: Final = "context-service"

FEATURE_CONFIGS: Final[dict[str, dict[str, Any]]] = {
    "context": {
        "provider": {
            "type": "openai",
            "apiTokens": ["sk-secret-context"],
            "context": {
                "fileUrl": "http://context.internal/ai/context.txt",
                "serviceName": CONTEXT_SERVICE,
                "servicePort": 80,
            },
        }
    },
    "context_missing_file": {
        "provider": {
            "type": "openai",
            "apiTokens": ["sk-secret-context"],
            "context": {
                "fileUrl": "http://context.internal/no/such/file.txt",
                "serviceName": CONTEXT_SERVICE,
                "servicePort": 80,
            },
        }
    },
    "context_no_service": {
        "provider": {
            "type": "openai",
            "apiTokens": ["sk-secret-context"],
            "context": {
                "fileUrl": "http://nowhere.internal/ai/context.txt",
                "serviceName": "no-such-service.invalid",
                "servicePort": 80,
            },
        }
    },
    "moonshot_file": {
        "provider": {"type": "moonshot", "apiTokens": ["sk-secret-moonshot-file"], "moonshotFileId": "file-abc123"}
    },
    "claude_original": {"provider": {"type": "claude", "apiTokens": ["sk-secret-claude-original"], "protocol": "original"}},
}


@pytest.fixture(scope="session")
def nginx_bin() -> Path:
    path = find_nginx()
    if path is None or not path.is_file() or not nginx_config.LUA_MODULE.is_file():
        pytest.skip("nginx or libnginx-mod-http-lua not installed (examples/nginx/install_nginx.sh)")
    return path


@pytest.fixture(scope="session")
def aiproxy_lib() -> Path:
    try:
        return library()
    except NginxSetupError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="aiproxy-nginx-e2e-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def proxy(nginx_bin: Path, aiproxy_lib: Path, workdir: Path) -> Iterator[Proxy]:
    mock = start_mock()
    configs = {c.name: c.config_json for c in CASES}
    configs.update({name: json.dumps(cfg) for name, cfg in FEATURE_CONFIGS.items()})
    # The callout timeout: a listener that accepts and never answers.
    configs["context_timeout"] = json.dumps(
        {
            "provider": {
                "type": "openai",
                "apiTokens": ["sk-secret-context"],
                "timeout": CALLOUT_TIMEOUT_MS,
                "context": {
                    "fileUrl": "http://silent.internal/ai/context.txt",
                    "serviceName": "silent-service",
                    "servicePort": 80,
                },
            }
        }
    )
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    services = {
        CONTEXT_SERVICE: f"127.0.0.1:{mock.port}",
        "silent-service": f"127.0.0.1:{silent.getsockname()[1]}",
    }
    nginx = NginxProcess(
        nginx_bin,
        workdir / "nginx",
        configs,
        upstream=f"127.0.0.1:{mock.port}",
        services=services,
        lib=aiproxy_lib,
    )
    try:
        nginx.start()
        secrets = [s for c in CASES for s in c.secrets]
        secrets += [t for cfg in FEATURE_CONFIGS.values() for t in cfg["provider"].get("apiTokens", [])]
        yield Proxy(nginx, mock, secrets)
    finally:
        nginx.stop()
        mock.close()
        silent.close()
