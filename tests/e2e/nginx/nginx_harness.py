"""Run the real NGINX (Debian's nginx + libnginx-mod-http-lua) with aiproxy for end-to-end tests.

Everything binds 127.0.0.1, every wait is bounded, and every process started here is stopped by
:meth:`NginxProcess.stop`. The configuration comes from ``examples/nginx/nginx_config.py``, so the
tests run the example's configuration.

Environment: ``NGINX_BIN`` (default ``nginx`` on PATH or ``/usr/sbin/nginx``) and ``AIPROXY_LIB``
(default ``target/release/libaiproxy.so``, built with ``cargo build --release`` when missing).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import openai

REPO: Final = Path(__file__).resolve().parents[3]
EXAMPLE_DIR: Final = REPO / "examples" / "nginx"
START_TIMEOUT_S: Final = 20.0
STOP_TIMEOUT_S: Final = 10.0
CALLOUT_TIMEOUT_MS: Final = 300
"""The `timeout` of the configuration whose context service never answers."""
CLIENT_KEY: Final = "sk-client-key-never-forwarded"
"""The key the OpenAI SDK sends to the proxy; aiproxy must replace it."""

for _path in (EXAMPLE_DIR, REPO / "tests", REPO / "tests" / "e2e" / "envoy"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import nginx_config  # noqa: E402  (examples/nginx/nginx_config.py)


class NginxSetupError(RuntimeError):
    """NGINX, its Lua module or the library is missing, or NGINX did not come up."""


def find_nginx() -> Path | None:
    override = os.environ.get("NGINX_BIN")
    if override:
        return Path(override)
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)
    return Path(found) if found else None


def library() -> Path:
    override = os.environ.get("AIPROXY_LIB")
    path = Path(override) if override else REPO / "target" / "release" / "libaiproxy.so"
    if not override and not path.is_file():
        subprocess.run(["cargo", "build", "--release", "-p", "aiproxy"], cwd=REPO, check=True, timeout=900)
    if not path.is_file():
        raise NginxSetupError(f"{path} missing")
    return path


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def marker() -> str:
    """A unique word to find a request in the mock's log."""
    return "m" + uuid.uuid4().hex[:16]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class NginxProcess:
    """One NGINX (master + workers) serving one server per configuration."""

    nginx_bin: Path
    workdir: Path
    configs: Mapping[str, str]  # server name -> configuration JSON
    upstream: str | None = None
    services: Mapping[str, str] | None = None
    workers: int = 2
    lib: Path | None = None
    timeout_ms: int | None = None
    extra_http: str = ""  # more configuration inside the http block (e.g. another server)
    upstream_tls: bool = False  # TLS (SNI, verification) to `upstream` too
    ca_file: str | None = None  # CA bundle that verifies upstream certificates
    proc: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def error_log_path(self) -> Path:
        return self.workdir / "error.log"

    @property
    def access_log_path(self) -> Path:
        return self.workdir / "access.log"

    def start(self) -> NginxProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)  # workers run as nobody when the tests run as root
        ports = free_ports(len(self.configs))
        self.ports = dict(zip(self.configs, ports))
        servers = [nginx_config.Server(name, self.ports[name], text) for name, text in self.configs.items()]
        rendered = nginx_config.render(
            servers,
            self.workdir,
            upstream=self.upstream,
            services=self.services,
            workers=self.workers,
            lib=str(self.lib) if self.lib else None,
            timeout_ms=self.timeout_ms,
            extra_http=self.extra_http,
            upstream_tls=self.upstream_tls,
            ca_file=self.ca_file,
        )
        conf = nginx_config.write(rendered, self.workdir)
        stderr = open(self.workdir / "stderr.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [str(self.nginx_bin), "-p", str(self.workdir), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        stderr.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        pending = set(self.ports.values())
        while pending and time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise NginxSetupError(f"nginx exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            for port in list(pending):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    pending.discard(port)
                except OSError:
                    pass
            time.sleep(0.05)
        if pending:
            raise NginxSetupError(f"nginx not listening within {START_TIMEOUT_S}s:\n{self.log()[-4000:]}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True, timeout=10
        )
        return [int(p) for p in out.stdout.split()]

    def log(self) -> str:
        text = ""
        for path in (self.workdir / "stderr.log", self.error_log_path):
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def access_log(self) -> str:
        return self.access_log_path.read_text(errors="replace") if self.access_log_path.exists() else ""

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # fast shutdown: master and workers exit
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


def run_once(nginx_bin: Path, workdir: Path, configs: Mapping[str, str], lib: Path) -> subprocess.CompletedProcess[str]:
    """Starts NGINX with ``configs`` and expects it to refuse to start (returns its output)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ports = free_ports(len(configs))
    servers = [nginx_config.Server(name, port, text) for (name, text), port in zip(configs.items(), ports)]
    conf = nginx_config.write(nginx_config.render(servers, workdir, lib=str(lib)), workdir)
    return subprocess.run(
        [str(nginx_bin), "-p", str(workdir), "-c", str(conf)], capture_output=True, text=True, timeout=30
    )


@dataclass
class Proxy:
    """The running NGINX, its mock upstream and helpers to talk to them."""

    nginx: NginxProcess
    mock: Any
    secrets: list[str] = field(default_factory=list)

    def base_url(self, server: str) -> str:
        return f"http://127.0.0.1:{self.nginx.ports[server]}"

    def client(self, server: str, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.base_url(server)}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20.0, **kwargs
        )

    def upstream(self, word: str) -> list[dict[str, Any]]:
        return [e for e in self.mock.requests() if word in (e.get("body") or "")]

    def one_upstream(self, word: str) -> dict[str, Any]:
        found = self.upstream(word)
        assert len(found) == 1, f"expected one upstream request with {word!r}, got {len(found)}"
        return found[0]
