"""``examples/python/proxy.py`` on loopback in front of the mock provider, driven by the official
``openai`` SDK: buffered and streamed chat, embeddings, errors, local replies and callouts.

Every process listens on 127.0.0.1 only, is stopped by the fixture that started it (SIGTERM, then
SIGKILL) and also exits when this process dies (its stdin closes); every wait is bounded.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from aiproxy_testutil import UPSTREAM_TOKEN, provider
from mock_provider import MockHandle, start_mock
from mock_provider.mock_provider import CONTEXT_TEXT
from pyutil.openai_schema import (
    validate_chat_completion,
    validate_embedding_response,
    validate_error,
    validate_sse_stream,
)

REPO = Path(__file__).resolve().parents[3]
PROXY = REPO / "examples" / "python" / "proxy.py"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
CLIENT_TIMEOUT_S = 15.0
CLIENT_KEY = "sk-client-key-not-for-upstream"


@dataclass
class ProxyProcess:
    process: subprocess.Popen[bytes]
    port: int
    usage_log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(api_key=CLIENT_KEY, base_url=self.base_url, timeout=CLIENT_TIMEOUT_S, max_retries=0)

    def usage_records(self) -> list[dict[str, Any]]:
        if not self.usage_log.exists():
            return []
        return [json.loads(line) for line in self.usage_log.read_text().splitlines() if line]

    def wait_usage_record(self, count: int, timeout_s: float = 5.0) -> dict[str, Any]:
        """The `count`-th record, waiting for it: streamed and passthrough replies are logged after
        the last byte is written, so the client can finish reading before the line is there."""
        deadline = time.monotonic() + timeout_s
        while len(records := self.usage_records()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(records) >= count, f"no usage record {count} after {timeout_s} s: {records}"
        return records[count - 1]

    def stop(self) -> int:
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        for stream in (process.stdin, process.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        return process.returncode


def start_proxy(config: dict[str, Any], mock: MockHandle, tmp: Path) -> ProxyProcess:
    usage_log = tmp / "usage.jsonl"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "bindings" / "python"), env.get("PYTHONPATH")]))
    args = [
        sys.executable,
        str(PROXY),
        "--port",
        "0",
        "--config-json",
        json.dumps(config),
        "--upstream-override",
        f"127.0.0.1:{mock.port}",
        "--usage-log",
        str(usage_log),
        "--exit-on-stdin-eof",
    ]
    process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)  # noqa: S603
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    line = b""
    try:
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"proxy did not start within {START_TIMEOUT_S}s (got {line!r})")
            ready, _, _ = select.select([process.stdout], [], [], remaining)
            if ready:
                byte = os.read(process.stdout.fileno(), 1)
                if not byte:
                    raise RuntimeError(f"proxy exited with {process.wait(timeout=5)} before listening")
                line += byte
        word, _, port = line.decode().strip().partition(" ")
        assert word == "LISTENING" and port.isdigit(), line
        return ProxyProcess(process, int(port), usage_log)
    except BaseException:
        ProxyProcess(process, 0, usage_log).stop()
        raise


@pytest.fixture(scope="module")
def mock() -> Iterator[MockHandle]:
    with start_mock() as handle:
        yield handle


@pytest.fixture(scope="module")
def openai_proxy(mock: MockHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    proxy = start_proxy(provider("openai"), mock, tmp_path_factory.mktemp("openai"))
    yield proxy
    proxy.stop()


def last_upstream_request(mock: MockHandle, path_part: str) -> dict[str, Any]:
    matching = [r for r in mock.requests() if path_part in r["path"]]
    assert matching, f"no upstream request to {path_part}"
    return matching[-1]


def assert_upstream_auth(record: dict[str, Any], header: str, value: str) -> None:
    headers = record["headers"]
    assert headers.get(header) == value
    assert CLIENT_KEY not in json.dumps(headers), "the client's key must not reach the provider"


# ------------------------------------------------------------------------------------------------


def test_buffered_chat_through_the_proxy(openai_proxy: ProxyProcess, mock: MockHandle) -> None:
    client = openai_proxy.client()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "what is the capital of Mockland"}]
    )
    body = json.loads(raw.http_response.content)
    validate_chat_completion(body)
    completion = raw.parse()
    assert completion.choices[0].message.content == "mock reply to: what is the capital of Mockland"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 6 and completion.usage.completion_tokens == 9
    record = last_upstream_request(mock, "/v1/chat/completions")
    assert record["host"].startswith("api.openai.com")
    assert_upstream_auth(record, "authorization", f"Bearer {UPSTREAM_TOKEN}")
    usage = openai_proxy.usage_records()[-1]
    assert usage["mode"] == "BUFFER" and usage["status"] == 200
    assert usage["usage"] == {"prompt_tokens": 6, "completion_tokens": 9, "total_tokens": 15}


def test_streamed_chat_through_the_proxy(openai_proxy: ProxyProcess) -> None:
    logged = len(openai_proxy.usage_records())
    client = openai_proxy.client()
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "tell me a story"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "mock reply to: tell me a story"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 4 + 7
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = openai_proxy.wait_usage_record(logged + 1)
    assert usage["mode"] == "STREAM" and usage["usage"]["total_tokens"] == 11


def test_raw_stream_matches_the_openai_schema(openai_proxy: ProxyProcess) -> None:
    client = openai_proxy.client()
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "stream raw please"}], stream=True
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(response.iter_bytes())
    chunks = validate_sse_stream(raw, min_chunks=3)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "mock reply to: stream raw please"


def test_stream_is_forwarded_chunk_by_chunk(openai_proxy: ProxyProcess) -> None:
    """With 150 ms between upstream events, the first chunk reaches the client long before the
    last: the proxy does not hold the stream back."""
    client = openai_proxy.client()
    started = time.monotonic()
    arrivals: list[float] = []
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "one two three four five"}],
        stream=True,
        extra_headers={"x-mock-delay-ms": "150"},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) >= 8
    assert arrivals[-1] - arrivals[0] >= 0.15 * (len(arrivals) - 2)
    assert arrivals[0] < arrivals[-1] - 0.6


def test_embeddings_through_the_proxy(openai_proxy: ProxyProcess, mock: MockHandle) -> None:
    client = openai_proxy.client()
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["alpha beta", "gamma"], encoding_format="float"
    )
    validate_embedding_response(json.loads(raw.http_response.content))
    result = raw.parse()
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 8
    assert result.usage.prompt_tokens == 3
    # The SDK's default asks for base64 and decodes it: the same vectors come out.
    decoded = client.embeddings.create(model="text-embedding-3-small", input=["alpha beta", "gamma"])
    for got, want in zip(decoded.data, result.data, strict=True):
        assert got.embedding == pytest.approx(want.embedding, rel=1e-5)
    assert_upstream_auth(last_upstream_request(mock, "/v1/embeddings"), "authorization", f"Bearer {UPSTREAM_TOKEN}")


def test_upstream_error_through_the_proxy(openai_proxy: ProxyProcess) -> None:
    client = openai_proxy.client()
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-mock-scenario": "error"},
        )
    assert info.value.status_code == 401
    validate_error(info.value.response.json())
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_headers={"x-mock-scenario": "error-429"},
        )


def test_local_reply_through_the_proxy(openai_proxy: ProxyProcess, mock: MockHandle) -> None:
    mock.clear()
    request = urllib.request.Request(
        openai_proxy.base_url + "/chat/completions",
        data=b'{"model": "gpt-4o", "messages": "not a list"}',
        headers={"content-type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT_S)  # noqa: S310 - loopback
    assert info.value.code == 400
    error = json.loads(info.value.read())
    validate_error(error)
    assert error["error"]["param"] == "messages"
    assert mock.requests() == [], "a local reply never goes upstream"
    with pytest.raises(openai.BadRequestError):
        openai_proxy.client().chat.completions.create(model="gpt-4o", messages=[], extra_body={"model": 5})


def test_azure_through_the_proxy(mock: MockHandle, tmp_path: Path) -> None:
    proxy = start_proxy(provider("azure"), mock, tmp_path)
    try:
        client = proxy.client()
        completion = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi azure"}])
        assert completion.choices[0].message.content == "mock reply to: hi azure"
        record = last_upstream_request(mock, "/openai/deployments/")
        assert record["path"] == "/openai/deployments/gpt4o-dep/chat/completions?api-version=2024-02-15-preview"
        assert record["provider"] == "azure"
        assert_upstream_auth(record, "api-key", UPSTREAM_TOKEN)
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "stream azure"}], stream=True
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "mock reply to: stream azure"
    finally:
        assert proxy.stop() == 0


def test_context_callout_through_the_proxy(mock: MockHandle, tmp_path: Path) -> None:
    context = {"fileUrl": "http://file.default.svc.cluster.local/ai/context.txt", "serviceName": "file.dns", "servicePort": 80}
    proxy = start_proxy(provider("openai", context=context), mock, tmp_path)
    try:
        mock.clear()
        completion = proxy.client().chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "where is Testville"}]
        )
        assert completion.choices[0].message.content == "mock reply to: where is Testville"
        log = mock.requests()
        assert [(r["method"], r["path"]) for r in log] == [("GET", "/ai/context.txt"), ("POST", "/v1/chat/completions")]
        assert log[0]["host"].startswith("file.default.svc.cluster.local")
        messages = log[1]["json"]["messages"]
        assert messages[0] == {"role": "system", "content": CONTEXT_TEXT}
    finally:
        assert proxy.stop() == 0


def test_passthrough_then_clean_stop_on_sigterm(mock: MockHandle, tmp_path: Path) -> None:
    proxy = start_proxy(provider("openai"), mock, tmp_path)
    # An untranslated path goes through unchanged (the mock has no /v1/models: its own 404 body).
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(proxy.base_url + "/models", timeout=CLIENT_TIMEOUT_S)  # noqa: S310 - loopback
    assert info.value.code == 404
    assert b"mock_provider: no route for GET /v1/models" in info.value.read()
    record = last_upstream_request(mock, "/v1/models")
    assert_upstream_auth(record, "authorization", f"Bearer {UPSTREAM_TOKEN}")
    assert proxy.wait_usage_record(1)["mode"] == "PASSTHROUGH"
    started = time.monotonic()
    assert proxy.stop() == 0
    assert time.monotonic() - started < STOP_TIMEOUT_S


def test_proxy_exits_when_its_parent_goes_away(mock: MockHandle, tmp_path: Path) -> None:
    proxy = start_proxy(provider("openai"), mock, tmp_path)
    assert proxy.process.stdin is not None
    proxy.process.stdin.close()  # what happens when the test process dies
    try:
        assert proxy.process.wait(timeout=STOP_TIMEOUT_S) == 0
    finally:
        proxy.stop()


def test_invalid_config_fails_fast(mock: MockHandle, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(PROXY), "--port", "0", "--config-json", '{"provider": {"type": "azure"}}'],
        env=dict(os.environ, PYTHONPATH=str(REPO / "bindings" / "python")),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode != 0
    assert "provider.apiTokens" in out.stderr or "provider.azureServiceUrl" in out.stderr
