"""Vertex AI with a service-account key through NGINX: the token exchange is a callout with a
form body (POST to the ``vertexAuthServiceName`` service), its answer authorises the Gemini call.

The mock provider answers the OAuth token endpoint (Google Identity "Using OAuth 2.0 for Server to
Server Applications"); the JWT it received is verified here with the ``openssl`` command line.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import openai
import pytest
from mock_provider import MockHandle, start_mock
from nginx_harness import CLIENT_KEY, NginxProcess, marker
from pyutil.openai_schema import validate_chat_completion

EMAIL: Final = "nginx-e2e@aiproxy-test.iam.gserviceaccount.com"
AUTH_SERVICE: Final = "google-oauth"


def b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.fixture(scope="module")
def rig(nginx_bin: Path, aiproxy_lib: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NginxProcess, MockHandle, Path]]:
    workdir = tmp_path_factory.mktemp("vertex")
    key = workdir / "sa.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
        check=True, capture_output=True, timeout=60,
    )
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(workdir / "sa.pub.pem")], check=True, timeout=60)
    account = {"type": "service_account", "private_key_id": "k1", "private_key": key.read_text(),
               "client_email": EMAIL, "token_uri": "https://oauth2.googleapis.com/token"}
    config = {"provider": {"type": "vertex", "vertexAuthKey": json.dumps(account), "vertexRegion": "us-central1",
                           "vertexProjectId": "aiproxy-test", "vertexAuthServiceName": AUTH_SERVICE}}
    with start_mock() as mock:
        nginx = NginxProcess(
            nginx_bin, workdir / "nginx", {"vertex_sa": json.dumps(config)}, upstream=f"127.0.0.1:{mock.port}",
            services={AUTH_SERVICE: f"127.0.0.1:{mock.port}"}, workers=1, lib=aiproxy_lib,
        ).start()
        try:
            yield nginx, mock, workdir
        finally:
            nginx.stop()


def test_vertex_service_account_token_callout(rig: tuple[NginxProcess, MockHandle, Path]) -> None:
    nginx, mock, workdir = rig
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{nginx.ports['vertex_sa']}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20.0)
    word = marker()
    completion = client.chat.completions.create(model="gemini-2.0-flash", messages=[{"role": "user", "content": f"hi {word}"}])
    validate_chat_completion(completion.to_dict())
    assert word in (completion.choices[0].message.content or "")
    entries: list[dict[str, Any]] = mock.requests()
    (token,) = [e for e in entries if e["path"] == "/token"]
    assert (token["method"], token["host"]) == ("POST", "oauth2.googleapis.com"), token
    form = urllib.parse.parse_qs(token["body"])
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"], form
    head, claims, sig = form["assertion"][0].split(".")
    assert json.loads(b64url(claims))["iss"] == EMAIL
    (workdir / "jwt.in").write_bytes(f"{head}.{claims}".encode())
    (workdir / "jwt.sig").write_bytes(b64url(sig))
    check = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(workdir / "sa.pub.pem"), "-signature", str(workdir / "jwt.sig"),
         str(workdir / "jwt.in")],
        capture_output=True, timeout=60,
    )
    assert check.returncode == 0, check.stdout
    (call,) = [e for e in entries if word in (e.get("body") or "")]
    assert call["host"] == "us-central1-aiplatform.googleapis.com", call
    assert call["path"].endswith("/publishers/google/models/gemini-2.0-flash:generateContent"), call
    assert call["headers"]["authorization"].startswith("Bearer ya29.mock-"), call["headers"]
