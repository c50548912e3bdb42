"""TLS to the provider: certificate verification and SNI, against a local TLS terminator.

A second NGINX terminates TLS on 127.0.0.1 with a self-signed certificate for api.openai.com and
forwards to the mock provider; aiproxy's NGINX sends the provider traffic there with TLS
(`upstream_tls`), trusting only that certificate. The terminator logs the SNI it received.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from nginx_harness import NginxProcess, free_ports, marker
from mock_provider import start_mock
from pyutil.openai_schema import validate_chat_completion, validate_error

CONFIG = json.dumps({"provider": {"type": "openai", "apiTokens": ["sk-secret-tls"]}})


def certificate(directory: Path, host: str) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    key, cert = directory / f"{host}.key", directory / f"{host}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=DNS:{host}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return key, cert


@pytest.fixture(scope="module")
def terminator(nginx_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path, Path]]:
    """(port, certificate for api.openai.com, SNI log) of a TLS terminator in front of the mock."""
    workdir = tmp_path_factory.mktemp("tls")
    key, cert = certificate(workdir, "api.openai.com")
    (port,) = free_ports(1)
    log = workdir / "sni.log"
    with start_mock() as mock:
        conf = workdir / "tls.conf"
        conf.write_text(
            f"daemon off; worker_processes 1; pid {workdir}/tls.pid; error_log {workdir}/tls-error.log info;\n"
            "events { worker_connections 256; }\n"
            f"http {{ log_format sni '$ssl_server_name $host'; access_log {log} sni;\n"
            f"  client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;\n"
            f"  server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {cert}; ssl_certificate_key {key};\n"
            f"    location / {{ proxy_pass http://127.0.0.1:{mock.port}; proxy_set_header Host $host; }} }} }}\n"
        )
        proc = subprocess.Popen([str(nginx_bin), "-p", str(workdir), "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while not (workdir / "tls.pid").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            yield port, cert, log
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
def trust_dir() -> Iterator[Path]:
    """A directory the workers (user nobody when the tests run as root) can read a CA file from."""
    directory = Path(tempfile.mkdtemp(prefix="aiproxy-tls-ca-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def proxy_to(nginx_bin: Path, aiproxy_lib: Path, workdir: Path, port: int, ca: Path, trust: Path) -> NginxProcess:
    trusted = trust / "ca.crt"
    shutil.copyfile(ca, trusted)
    trusted.chmod(0o644)
    return NginxProcess(
        nginx_bin, workdir, {"openai": CONFIG}, upstream=f"127.0.0.1:{port}", upstream_tls=True,
        ca_file=str(trusted), workers=1, lib=aiproxy_lib,
    ).start()


def test_provider_traffic_uses_tls_with_sni_and_a_verified_certificate(
    nginx_bin: Path, aiproxy_lib: Path, tmp_path: Path, terminator: tuple[int, Path, Path], trust_dir: Path
) -> None:
    port, cert, log = terminator
    nginx = proxy_to(nginx_bin, aiproxy_lib, tmp_path / "nginx", port, cert, trust_dir)
    try:
        word = marker()
        response = httpx.post(
            f"http://127.0.0.1:{nginx.ports['openai']}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": f"tls {word}"}]},
            timeout=20,
        )
        assert response.status_code == 200, response.text
        validate_chat_completion(response.json())
        assert word in response.json()["choices"][0]["message"]["content"]
        deadline = time.monotonic() + 5
        while "api.openai.com api.openai.com" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "api.openai.com api.openai.com" in log.read_text()  # SNI and Host
    finally:
        nginx.stop()


def test_a_certificate_that_does_not_verify_is_an_openai_502(
    nginx_bin: Path, aiproxy_lib: Path, tmp_path: Path, terminator: tuple[int, Path, Path], trust_dir: Path
) -> None:
    port, _, _ = terminator
    _, other = certificate(tmp_path, "other.example")  # trusting only an unrelated certificate
    nginx = proxy_to(nginx_bin, aiproxy_lib, tmp_path / "nginx", port, other, trust_dir)
    try:
        response = httpx.post(
            f"http://127.0.0.1:{nginx.ports['openai']}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            timeout=20,
        )
        assert response.status_code == 502, response.text
        validate_error(response.json())
        assert "TLS handshake with api.openai.com failed" in nginx.log()
        assert "sk-secret-tls" not in nginx.log()
    finally:
        nginx.stop()
