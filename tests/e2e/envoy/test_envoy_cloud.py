"""Bedrock and Vertex AI auth through a real Envoy 1.40, checked independently of aiproxy's code.

* Bedrock SigV4: the signature the mock received is recomputed here from the configured secret
  (AWS IAM "Create a signed AWS API request":
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html).
* Vertex service account: the module's token callout reaches the mock's OAuth endpoint (the
  ``oauth2.googleapis.com`` cluster of ``examples/envoy/envoy.yaml``); its JWT assertion is
  verified here with the ``openssl`` command line against the key generated for this run; the
  access token it gets back is what the Gemini and Claude-on-Vertex requests carry, and it is
  fetched once per configuration (cached) and again once it is about to expire (the mock issues
  short-lived tokens to ``ttl<N>-`` accounts). A refused token exchange is a 502 for the client.

Its own Envoy and mock (module scope): the token cache starts empty.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import openai
import pytest
from conftest import CLIENT_KEY, marker
from envoy_harness import EnvoyProcess, envoy_config
from mock_provider import MockHandle, start_mock
from provider_cases import BEDROCK_SECRET_KEY, CASES
from pyutil.openai_schema import parse_sse_events, validate_chat_chunk, validate_chat_completion, validate_error

TOKEN_HOST: Final = "oauth2.googleapis.com"
TOKEN_URI: Final = f"https://{TOKEN_HOST}/token"
SCOPE: Final = "https://www.googleapis.com/auth/cloud-platform"
PROJECT: Final = "aiproxy-test"
REGION: Final = "us-central1"
VERTEX_HOST: Final = f"{REGION}-aiplatform.googleapis.com"
GOOD_EMAIL: Final = "aiproxy-e2e@aiproxy-test.iam.gserviceaccount.com"
REVOKED_EMAIL: Final = "revoked-e2e@aiproxy-test.iam.gserviceaccount.com"
# The mock gives a "ttl<N>-" account tokens that expire in N seconds.
SHORT_TTL_S: Final = 4
TTL_EMAIL: Final = f"ttl{SHORT_TTL_S}-e2e@aiproxy-test.iam.gserviceaccount.com"
TTL_DEFAULT_EMAIL: Final = f"ttl{SHORT_TTL_S}-default-e2e@aiproxy-test.iam.gserviceaccount.com"
REFRESH_AHEAD_S: Final = 1
KEY_ID: Final = "e2e-key-1"
CLAUDE_MODEL: Final = "claude-sonnet-4@20250514"


def bedrock_config(name: str) -> dict[str, Any]:
    return next(c.config for c in CASES if c.name == name)


# ---------------------------------------------------------------------------------------------
# SigV4, written from the AWS documentation (not from src/providers/bedrock/sigv4.rs)
# ---------------------------------------------------------------------------------------------

AUTH_FORM: Final = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<scope>(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request), "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sigv4_expected(entry: dict[str, Any], secret: str) -> str:
    """The signature AWS would compute for the request the mock recorded."""
    headers: dict[str, str] = entry["headers"]
    form = AUTH_FORM.match(headers["authorization"])
    assert form is not None, headers["authorization"]
    path, _, query = str(entry["path"]).partition("?")
    # Services other than S3 encode each path segment once more (the model id's %3A -> %253A).
    canonical_uri = "/".join(urllib.parse.quote(seg, safe="-_.~") for seg in path.split("/")) or "/"
    pairs = sorted(
        (urllib.parse.quote(urllib.parse.unquote(k), safe="-_.~"), urllib.parse.quote(urllib.parse.unquote(v), safe="-_.~"))
        for k, _, v in (p.partition("=") for p in query.split("&") if p)
    )
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    signed = form.group("signed").split(";")
    canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed)
    payload = hashlib.sha256(str(entry["body"]).encode("utf-8")).hexdigest()
    canonical = "\n".join([entry["method"], canonical_uri, canonical_query, canonical_headers, ";".join(signed), payload])
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", headers["x-amz-date"], form.group("scope"), hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _sign(("AWS4" + secret).encode("utf-8"), form.group("date"))
    for part in (form.group("region"), form.group("service"), "aws4_request"):
        key = _sign(key, part)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------
# Vertex service account: a key made for this run, JWTs checked with openssl
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceAccountKey:
    private_pem: str
    public_pem: Path

    def key_json(self, email: str) -> str:
        """A service-account key file as the Google Cloud console downloads it (fields used)."""
        return json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": KEY_ID,
                "private_key": self.private_pem,
                "client_email": email,
                "token_uri": TOKEN_URI,
            }
        )


def make_key(directory: Path) -> ServiceAccountKey:
    private = directory / "sa.pem"
    public = directory / "sa.pub.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(private)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True, capture_output=True, timeout=60)
    return ServiceAccountKey(private.read_text(), public)


def b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def openssl_verifies(public_pem: Path, signing_input: bytes, signature: bytes, directory: Path) -> bool:
    data, sig = directory / "jwt.input", directory / "jwt.sig"
    data.write_bytes(signing_input)
    sig.write_bytes(signature)
    result = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(public_pem), "-signature", str(sig), str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0 and "Verified OK" in result.stdout


def vertex_config(key: ServiceAccountKey, email: str) -> dict[str, Any]:
    return {
        "provider": {
            "type": "vertex",
            "vertexAuthKey": key.key_json(email),
            "vertexRegion": REGION,
            "vertexProjectId": PROJECT,
            "vertexAuthServiceName": TOKEN_HOST,
        }
    }


@dataclass
class Rig:
    envoy: EnvoyProcess
    mock: MockHandle
    key: ServiceAccountKey
    directory: Path

    def client(self, listener: str, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"http://127.0.0.1:{self.envoy.ports[listener]}/v1",
            api_key=CLIENT_KEY,
            max_retries=0,
            timeout=20.0,
            **kwargs,
        )

    def upstream(self, mark: str) -> list[dict[str, Any]]:
        return [e for e in self.mock.requests() if mark in (e.get("body") or "")]

    def token_requests(self, email: str) -> list[dict[str, Any]]:
        """The token exchanges the mock received for the service account ``email``."""
        found = []
        for entry in self.mock.requests():
            if entry["path"] != "/token":
                continue
            assertion = urllib.parse.parse_qs(entry["body"])["assertion"][0]
            if json.loads(b64url(assertion.split(".")[1]))["iss"] == email:
                found.append(entry)
        return found


@pytest.fixture(scope="module")
def rig(envoy_bin: Path, modules: Path, workdir: Path) -> Iterator[Rig]:
    directory = workdir / "cloud"
    directory.mkdir(exist_ok=True)
    key = make_key(directory)
    configs = {
        "bedrock": json.dumps(bedrock_config("bedrock")),
        "bedrock_apikey": json.dumps(bedrock_config("bedrock_apikey")),
        "vertex_sa": json.dumps(vertex_config(key, GOOD_EMAIL)),
        "vertex_sa_revoked": json.dumps(vertex_config(key, REVOKED_EMAIL)),
        "vertex_sa_ttl": json.dumps(
            {"provider": {**vertex_config(key, TTL_EMAIL)["provider"], "vertexTokenRefreshAhead": REFRESH_AHEAD_S}}
        ),
        "vertex_sa_ttl_default": json.dumps(vertex_config(key, TTL_DEFAULT_EMAIL)),
    }
    mock = start_mock()
    rendered = envoy_config.render(configs["bedrock"], listen_port=0, admin_port=0)
    config = envoy_config.route_to_mock(envoy_config.load(rendered), mock.port)
    config = envoy_config.with_listeners(config, configs)
    envoy = EnvoyProcess(envoy_bin, modules, directory, config, concurrency=2)
    try:
        envoy.start()
        yield Rig(envoy, mock, key, directory)
    finally:
        envoy.stop()
        mock.close()


def chat_and_stream(rig: Rig, listener: str, model: str) -> tuple[str, str]:
    """One buffered and one streamed chat; returns their markers after checking the replies."""
    client = rig.client(listener)
    first, second = marker(), marker()
    completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"hi {first}"}])
    validate_chat_completion(completion.to_dict())
    assert first in (completion.choices[0].message.content or "")
    text = ""
    with client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": f"stream {second}"}], stream=True
    ) as stream:
        for chunk in stream:
            validate_chat_chunk(chunk.to_dict())
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert "mock reply to:" in text and second in text, text
    return first, second


# ---------------------------------------------------------------------------------------------
# Bedrock
# ---------------------------------------------------------------------------------------------


def test_bedrock_sigv4_signature_verifies(rig: Rig) -> None:
    for mark in chat_and_stream(rig, "bedrock", "anthropic.claude-3-haiku-20240307-v1:0"):
        (entry,) = rig.upstream(mark)
        headers = entry["headers"]
        form = AUTH_FORM.match(headers["authorization"])
        assert form is not None
        assert (form.group("region"), form.group("service")) == ("us-east-1", "bedrock")
        assert {"host", "x-amz-date"} <= set(form.group("signed").split(";"))
        signed_at = time.mktime(time.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")) - time.timezone
        assert abs(signed_at - time.time()) < 300, headers["x-amz-date"]
        assert form.group("sig") == sigv4_expected(entry, BEDROCK_SECRET_KEY)
        # The check can fail: another secret, or a changed body, gives another signature.
        assert form.group("sig") != sigv4_expected(entry, BEDROCK_SECRET_KEY + "x")
        assert form.group("sig") != sigv4_expected({**entry, "body": entry["body"] + " "}, BEDROCK_SECRET_KEY)


def test_bedrock_stream_exception_is_an_error_event(rig: Rig) -> None:
    """A ConverseStream exception message after the 200 (throttlingException) becomes an OpenAI
    error event, then ``[DONE]``; the text before it is kept."""
    client = rig.client("bedrock", default_headers={"x-mock-scenario": "exception"})
    with client.chat.completions.with_streaming_response.create(
        model="anthropic.claude-3-haiku-20240307-v1:0", messages=[{"role": "user", "content": f"x {marker()}"}], stream=True
    ) as response:
        assert response.status_code == 200
        raw = b"".join(response.iter_bytes()).decode("utf-8")
    assert raw.endswith("data: [DONE]\n\n") and raw.count("data: [DONE]") == 1, raw[-400:]
    events = [json.loads(e.data) for e in parse_sse_events(raw) if e.data.strip() != "[DONE]"]
    assert "error" in events[-1], events
    validate_error(events[-1])
    assert "Too many tokens" in events[-1]["error"]["message"], events[-1]
    for event in events[:-1]:
        assert "error" not in event, events
        validate_chat_chunk(event)
    assert "partial" in "".join(c["delta"].get("content") or "" for e in events[:-1] for c in e["choices"])


def test_bedrock_api_key_mode_sends_no_signature(rig: Rig) -> None:
    for mark in chat_and_stream(rig, "bedrock_apikey", "anthropic.claude-3-haiku-20240307-v1:0"):
        (entry,) = rig.upstream(mark)
        assert entry["headers"]["authorization"] == "Bearer sk-secret-bedrock-apikey"
        assert "x-amz-date" not in entry["headers"], entry["headers"]
        assert entry["host"] == "bedrock-runtime.eu-west-3.amazonaws.com"


# ---------------------------------------------------------------------------------------------
# Vertex AI with a service-account key
# ---------------------------------------------------------------------------------------------


def check_assertion(rig: Rig, entry: dict[str, Any], email: str) -> None:
    assert (entry["method"], entry["host"]) == ("POST", TOKEN_HOST), entry
    assert entry["headers"]["content-type"] == "application/x-www-form-urlencoded"
    form = urllib.parse.parse_qs(entry["body"])
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"], form
    head, claims, sig = form["assertion"][0].split(".")
    assert json.loads(b64url(head)) == {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}
    payload = json.loads(b64url(claims))
    assert (payload["iss"], payload["aud"], payload["scope"]) == (email, TOKEN_URI, SCOPE), payload
    assert payload["exp"] - payload["iat"] <= 3600 and abs(payload["iat"] - time.time()) < 300, payload
    signing_input = f"{head}.{claims}".encode()
    assert openssl_verifies(rig.key.public_pem, signing_input, b64url(sig), rig.directory)
    assert not openssl_verifies(rig.key.public_pem, signing_input + b"x", b64url(sig), rig.directory)


def test_vertex_gemini_with_service_account(rig: Rig) -> None:
    marks = chat_and_stream(rig, "vertex_sa", "gemini-2.0-flash")
    # One token exchange for both requests: the token is cached per configuration.
    (token_entry,) = rig.token_requests(GOOD_EMAIL)
    check_assertion(rig, token_entry, GOOD_EMAIL)
    base = f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/google/models/gemini-2.0-flash"
    for mark, path in zip(marks, (f"{base}:generateContent", f"{base}:streamGenerateContent?alt=sse")):
        (entry,) = rig.upstream(mark)
        assert (entry["host"], entry["path"]) == (VERTEX_HOST, path), entry
        assert entry["headers"]["authorization"].startswith("Bearer ya29.mock-"), entry["headers"]
        assert "x-goog-api-key" not in entry["headers"]
        assert entry["json"]["contents"][-1]["role"] == "user" and mark in entry["json"]["contents"][-1]["parts"][0]["text"]


def test_vertex_claude_raw_predict(rig: Rig) -> None:
    marks = chat_and_stream(rig, "vertex_sa", CLAUDE_MODEL)
    base = f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/anthropic/models/{CLAUDE_MODEL}"
    for mark, method, streamed in zip(marks, ("rawPredict", "streamRawPredict"), (False, True)):
        (entry,) = rig.upstream(mark)
        assert (entry["host"], entry["path"]) == (VERTEX_HOST, f"{base}:{method}"), entry
        body = entry["json"]
        assert "model" not in body and body["anthropic_version"] == "vertex-2023-10-16", body
        assert bool(body.get("stream")) is streamed and isinstance(body["max_tokens"], int), body
        assert entry["headers"]["authorization"].startswith("Bearer ya29.mock-")
    assert len(rig.token_requests(GOOD_EMAIL)) <= 1  # still the cached token


def bearer_tokens(rig: Rig, marks: tuple[str, ...]) -> list[str]:
    """The Authorization header of each marked model request."""
    return [rig.upstream(mark)[0]["headers"]["authorization"] for mark in marks]


def test_vertex_token_is_fetched_again_once_it_expires(rig: Rig) -> None:
    """A token that ``expires_in`` 4 s, with ``vertexTokenRefreshAhead`` 1: reused while more than
    1 s of it is left (the cache counts whole seconds: 2 to 3 s after the exchange), then a new
    exchange with a new assertion, whose token the following requests carry and reuse."""
    first = chat_and_stream(rig, "vertex_sa_ttl", "gemini-2.0-flash")
    (exchange,) = rig.token_requests(TTL_EMAIL)
    check_assertion(rig, exchange, TTL_EMAIL)
    old = bearer_tokens(rig, first)
    assert old[0] == old[1] and old[0].startswith("Bearer ya29.mock-"), old

    time.sleep(SHORT_TTL_S - REFRESH_AHEAD_S + 0.2)  # past the refresh point, whole seconds or not
    second = chat_and_stream(rig, "vertex_sa_ttl", "gemini-2.0-flash")
    exchanges = rig.token_requests(TTL_EMAIL)
    assert len(exchanges) == 2, [e["path"] for e in exchanges]
    check_assertion(rig, exchanges[1], TTL_EMAIL)
    assert exchanges[1]["body"] != exchange["body"], "the expired token's assertion was sent again"
    new = bearer_tokens(rig, second)
    assert new[0] == new[1] and new[0].startswith("Bearer ya29.mock-") and new[0] != old[0], (old, new)


def test_vertex_token_shorter_than_the_refresh_margin_is_fetched_per_request(rig: Rig) -> None:
    """With the default ``vertexTokenRefreshAhead`` (300 s) a 4 s token is never fresh enough to
    keep: each request makes its own exchange, and both still succeed."""
    marks = chat_and_stream(rig, "vertex_sa_ttl_default", "gemini-2.0-flash")
    assert len(rig.token_requests(TTL_DEFAULT_EMAIL)) == len(marks)
    assert all(t.startswith("Bearer ya29.mock-") for t in bearer_tokens(rig, marks))


def test_vertex_upstream_error(rig: Rig) -> None:
    client = rig.client("vertex_sa", default_headers={"x-mock-scenario": "error"})
    mark = marker()
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gemini-2.0-flash", messages=[{"role": "user", "content": f"x {mark}"}])
    validate_error(caught.value.response.json())
    (entry,) = rig.upstream(mark)
    assert entry["scenario"] == "error" and entry["host"] == VERTEX_HOST


def test_vertex_refused_token_exchange_is_a_502(rig: Rig) -> None:
    mark = marker()
    with pytest.raises(openai.APIStatusError) as caught:
        rig.client("vertex_sa_revoked").chat.completions.create(
            model="gemini-2.0-flash", messages=[{"role": "user", "content": f"x {mark}"}]
        )
    assert caught.value.status_code == 502
    body = caught.value.response.json()
    validate_error(body)
    assert "invalid_grant" in body["error"]["message"], body
    assert rig.token_requests(REVOKED_EMAIL), "no token exchange was attempted"
    assert not rig.upstream(mark), "the model request went out without a token"
    body_text = json.dumps(body)
    assert "PRIVATE KEY" not in body_text and "assertion" not in body_text


def test_no_key_material_in_envoy_logs(rig: Rig) -> None:
    chat_and_stream(rig, "vertex_sa", "gemini-2.0-flash")
    time.sleep(0.3)
    logs = rig.envoy.log() + rig.envoy.access_log()
    key_lines = [line for line in rig.key.private_pem.splitlines() if line and "PRIVATE KEY" not in line]
    assert not [line for line in key_lines if line in logs], "private key material in Envoy's logs"
    for secret in (BEDROCK_SECRET_KEY, "sk-secret-bedrock-apikey", CLIENT_KEY, "ya29.mock-"):
        assert secret not in logs, f"{secret!r} in Envoy's logs"
