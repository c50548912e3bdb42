#!/usr/bin/env python3
"""Start NGINX with aiproxy on 127.0.0.1 (``run.sh`` builds and then calls this).

The provider is chosen like the Envoy example's (``examples/envoy/launch.py``): ``AIPROXY_CONFIG``
(any seed configuration file), else the first API key variable set (``OPENAI_API_KEY``,
``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY``, ``DEEPSEEK_API_KEY``, ``MOONSHOT_API_KEY``,
``DASHSCOPE_API_KEY``, ``MISTRAL_API_KEY``, ``GROQ_API_KEY``), else the loopback mock provider
(tests/mock_provider) with an ``openai`` configuration. ``AIPROXY_MOCK=1`` sends any configuration
to the mock. ``AIPROXY_NGINX_PORT`` (10080) and ``AIPROXY_NGINX_WORKERS`` (2) adjust the server;
``NGINX_BIN`` the binary (default ``/usr/sbin/nginx``). Keys are never printed; the configuration
files holding them are owner-readable only and removed on exit.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Final

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))

import nginx_config  # noqa: E402


def _envoy_launch():  # type: ignore[no-untyped-def]
    """The Envoy example's launcher, for its provider choice (one rule for both examples)."""
    spec = importlib.util.spec_from_file_location("envoy_launch", REPO / "examples" / "envoy" / "launch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def find_nginx() -> str:
    path = os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(path).is_file():
        raise SystemExit(f"nginx not found at {path}: run examples/nginx/install_nginx.sh")
    if not nginx_config.LUA_MODULE.is_file():
        raise SystemExit(f"{nginx_config.LUA_MODULE} missing: run examples/nginx/install_nginx.sh")
    return path


def main() -> int:
    env = dict(os.environ)
    choice = _envoy_launch().choose(env)
    port = int(env.get("AIPROXY_NGINX_PORT", nginx_config.DEFAULT_PORT))
    workers = int(env.get("AIPROXY_NGINX_WORKERS", "2"))
    nginx = find_nginx()
    lib = REPO / "target" / "release" / "libaiproxy.so"

    mock = None
    workdir = Path(tempfile.mkdtemp(prefix="aiproxy-nginx-"))
    workdir.chmod(0o755)  # worker processes (user nobody when started as root) read under it
    try:
        upstream = None
        where = "the real provider hosts (TLS)"
        if choice.mock:
            from mock_provider import start_mock

            mock = start_mock()
            upstream = f"127.0.0.1:{mock.port}"
            where = f"the mock provider on {upstream}"
        rendered = nginx_config.render(
            [nginx_config.Server("main", port, choice.config_json)],
            workdir,
            upstream=upstream,
            workers=workers,
            access_log="/dev/stdout",
            lib=str(lib),
        )
        conf = nginx_config.write(rendered, workdir)
        print(f"aiproxy: NGINX on http://127.0.0.1:{port} fronting {choice.description}, via {where}.")
        print(f"aiproxy: access log on stdout, error log in {workdir}/error.log. Ctrl-C stops.")
        print(
            f"aiproxy: try  curl -s http://127.0.0.1:{port}/v1/chat/completions -H 'content-type: application/json' "
            """-d '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}'""",
            flush=True,
        )
        proc = subprocess.Popen([nginx, "-p", str(workdir), "-c", str(conf)])  # noqa: S603 - fixed argv

        def forward(signum: int, frame: FrameType | None) -> None:
            proc.send_signal(signal.SIGQUIT if signum == signal.SIGINT else signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        try:
            return proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        if mock is not None:
            mock.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
