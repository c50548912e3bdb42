"""Launch the provider mock (``mock_provider.py``) as a subprocess for tests.

Usage::

    from mock_provider import start_mock   # with <repo>/tests on sys.path

    with start_mock() as mock:
        url = f"http://127.0.0.1:{mock.port}/v1/chat/completions"
        ...
        assert mock.requests()[-1]["provider"] == "openai"
        mock.clear()

The child process binds 127.0.0.1 only, is started with ``sys.executable`` (no
``python -m``), and exits when :meth:`MockHandle.close` is called, when the
``with`` block ends, or when this process dies (it watches its stdin for EOF).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["MOCK_SCRIPT", "MockHandle", "MockStartError", "start_mock"]

MOCK_SCRIPT = Path(__file__).resolve().with_name("mock_provider.py")
"""Path of the standalone server script (for launching it from other languages)."""


class MockStartError(RuntimeError):
    """The mock process did not report ``LISTENING <port>`` in time."""


class MockHandle:
    """A running mock provider process."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str, timeout: float = 10.0) -> Any:
        request = urllib.request.Request(self.base_url + path, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
            return json.loads(response.read())

    def requests(self) -> list[dict[str, Any]]:
        """Every request recorded so far (see ``GET /__mock/requests``)."""
        result = self._call("GET", "/__mock/requests")
        assert isinstance(result, list)
        return result

    def clear(self) -> None:
        """Forget the recorded requests."""
        self._call("DELETE", "/__mock/requests")

    def add_fault(self, token: str, status: int, count: int | None = None) -> dict[str, Any]:
        """Make requests with API key ``token`` (``"*"``: any) answer ``status`` (``count`` times)."""
        data = json.dumps({"token": token, "status": status, "count": count}).encode()
        request = urllib.request.Request(
            self.base_url + "/__mock/faults", data=data, method="POST", headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10.0) as response:  # noqa: S310 - loopback only
            result = json.loads(response.read())
        assert isinstance(result, dict)
        return result

    def faults(self) -> list[dict[str, Any]]:
        """The injected faults with their hit counts."""
        result = self._call("GET", "/__mock/faults")
        assert isinstance(result, list)
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/__mock/faults")

    def healthy(self) -> bool:
        try:
            result = self._call("GET", "/__mock/health", timeout=2.0)
        except OSError:
            return False
        return isinstance(result, dict) and result.get("status") == "ok"

    def close(self, timeout: float = 5.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and reap it.  Idempotent."""
        process = self.process
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        for stream in (process.stdin, process.stdout):
            if stream is not None and not stream.closed:
                stream.close()

    def __enter__(self) -> MockHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MockHandle(port={self.port}, pid={self.process.pid})"


def start_mock(
    port: int = 0,
    *,
    stream_delay_ms: float = 0.0,
    slow_ms: float | None = None,
    verbose: bool = False,
    startup_timeout: float = 10.0,
) -> MockHandle:
    """Start ``mock_provider.py`` on 127.0.0.1 (``port=0``: ephemeral) and wait until it listens."""
    args = [sys.executable, str(MOCK_SCRIPT), "--port", str(port), "--exit-on-stdin-eof"]
    if stream_delay_ms:
        args += ["--stream-delay-ms", str(stream_delay_ms)]
    if slow_ms is not None:
        args += ["--slow-ms", str(slow_ms)]
    if verbose:
        args.append("--verbose")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, env=env
    )
    assert process.stdout is not None
    deadline = time.monotonic() + startup_timeout
    line = b""
    try:
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MockStartError(f"mock provider did not start within {startup_timeout}s (got {line!r})")
            ready, _, _ = select.select([process.stdout], [], [], remaining)
            if not ready:
                continue
            byte = os.read(process.stdout.fileno(), 1)
            if not byte:
                raise MockStartError(f"mock provider exited with {process.wait(timeout=5)} before listening")
            line += byte
        word, _, value = line.decode().strip().partition(" ")
        if word != "LISTENING" or not value.isdigit():
            raise MockStartError(f"unexpected first line from mock provider: {line!r}")
        return MockHandle(process, int(value))
    except BaseException:
        MockHandle(process, port).close()
        raise
