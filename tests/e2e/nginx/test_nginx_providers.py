"""Seed providers through the real NGINX + aiproxy (lua-nginx-module), with the official OpenAI SDK.

For each provider: a chat completion, a streamed chat completion (through the SDK and raw), and an
upstream error (buffered and streamed). Each test checks what the mock upstream received (host,
path, auth header, body) and validates what the client received against OpenAI's OpenAPI spec.
The cases are the Envoy suite's (tests/e2e/envoy/provider_cases.py): the same expectations hold
for both hosts.

    .venv/bin/python -m pytest -c tests/pytest.ini --rootdir . tests/e2e/nginx -q
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
from nginx_harness import CLIENT_KEY, Proxy, marker
from provider_cases import CASES, ProviderCase, Upstream
from pyutil.openai_schema import validate_chat_chunk, validate_chat_completion, validate_error, validate_sse_stream

# The five the issue names first, then every other seed provider.
REQUIRED = ("openai", "claude", "gemini", "qwen", "hunyuan")
ORDERED = [c for name in REQUIRED for c in CASES if c.name == name] + [c for c in CASES if c.name not in REQUIRED]

pytestmark = pytest.mark.parametrize("case", ORDERED, ids=[c.name for c in ORDERED])


def assert_upstream(entry: dict[str, Any], case: ProviderCase, upstream: Upstream, path: str) -> None:
    """Host, path, auth and framing of one request the mock received."""
    headers: dict[str, str] = entry["headers"]
    assert (entry["method"], entry["host"], entry["path"]) == ("POST", upstream.host, path), entry
    if case.auth_header is None:
        assert "authorization" not in headers, headers
    elif case.auth_prefix:
        assert headers.get(case.auth_header, "").startswith(case.auth_value), headers
    else:
        assert headers.get(case.auth_header) == case.auth_value, headers
    for name, value in case.extra_headers.items():
        assert headers.get(name) == value, (name, headers)
    assert all(CLIENT_KEY not in v for v in headers.values()), "the client's key was forwarded"
    assert int(headers["content-length"]) == len(entry["body"].encode("utf-8")), headers
    assert "transfer-encoding" not in headers, headers
    assert entry["json"] is not None, "upstream body is not JSON"


def test_chat(proxy: Proxy, case: ProviderCase) -> None:
    word = marker()
    prompt = f"hello {word}"
    completion = proxy.client(case.name).chat.completions.create(
        model=case.model, messages=[{"role": "user", "content": prompt}]
    )
    validate_chat_completion(completion.to_dict())
    content = completion.choices[0].message.content or ""
    assert case.reply_contains in content and word in content, content
    entry = proxy.one_upstream(word)
    assert_upstream(entry, case, case.chat, case.chat.path)
    case.chat.check(entry["json"], prompt, case.model_sent)


def test_chat_stream(proxy: Proxy, case: ProviderCase) -> None:
    client = proxy.client(case.name)
    word = marker()
    prompt = f"stream to {word}"
    text = ""
    chunks = 0
    stream = client.chat.completions.create(
        model=case.model,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    with stream:
        for chunk in stream:
            validate_chat_chunk(chunk.to_dict())
            chunks += 1
            for choice in chunk.choices:
                text += choice.delta.content or ""
    assert chunks >= 2 and case.reply_contains in text and word in text, (chunks, text)
    entry = proxy.one_upstream(word)
    assert_upstream(entry, case, case.chat, case.chat.stream_path or case.chat.path)
    case.chat.check(entry["json"], prompt, case.model_sent)

    word = marker()
    with client.chat.completions.with_streaming_response.create(
        model=case.model, messages=[{"role": "user", "content": f"raw {word}"}], stream=True
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream"), response.headers
        raw = b"".join(response.iter_bytes())
        assert int(response.headers.get("content-length", len(raw))) == len(raw), response.headers
    validate_sse_stream(raw, min_chunks=2)
    assert word in raw.decode("utf-8")


def test_upstream_error(proxy: Proxy, case: ProviderCase) -> None:
    """The provider's own error shape (for hunyuan and minimax an HTTP 200) becomes an OpenAI error
    with an error status, buffered and streamed alike."""
    client = proxy.client(case.name, default_headers={"x-mock-scenario": "error"})
    for stream in (False, True):
        word = marker()
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(
                model=case.model, messages=[{"role": "user", "content": f"fail {word}"}], stream=stream
            )
        error = caught.value
        assert error.status_code >= 400, error.status_code
        body = error.response.json()
        validate_error(body)
        assert body["error"]["message"], body
        entry = proxy.one_upstream(word)
        assert entry["host"] == case.chat.host and entry["scenario"] == "error", entry
