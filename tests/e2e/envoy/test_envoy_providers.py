"""Every seed provider through the real Envoy 1.40 + aiproxy module, with the official OpenAI SDK.

For each provider type: a chat completion, a streamed chat completion, embeddings (or the
OpenAI-shaped 400 when the provider has none), an upstream error, and a configuration error.
Each test checks what the mock upstream received (host, path, auth header, body) and validates
what the client received against OpenAI's OpenAPI spec (tests/pyutil/openai_schema.py).

    .venv/bin/python -m pytest tests/e2e/envoy -q
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import CLIENT_KEY, Proxy, marker
from envoy_harness import envoy_config, validate
from provider_cases import CASES, ProviderCase, Upstream
from pyutil.openai_schema import (
    validate_chat_chunk,
    validate_chat_completion,
    validate_embedding_response,
    validate_error,
    validate_sse_stream,
)

pytestmark = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])


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
        if name == "x-tc-action" and upstream is case.embeddings:
            continue
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

    # The same stream, raw: SSE framing, every chunk valid, `data: [DONE]` last.
    word = marker()
    with client.chat.completions.with_streaming_response.create(
        model=case.model, messages=[{"role": "user", "content": f"raw {word}"}], stream=True
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream"), response.headers
        raw = b"".join(response.iter_bytes())
        # Streamed translations carry no length; a buffered reply replayed as SSE (DeepL) may.
        assert int(response.headers.get("content-length", len(raw))) == len(raw), response.headers
    validate_sse_stream(raw, min_chunks=2)
    assert word in raw.decode("utf-8")


def test_embeddings(proxy: Proxy, case: ProviderCase) -> None:
    client = proxy.client(case.name)
    word = marker()
    text = f"embed {word}"
    if case.embeddings is None:
        with pytest.raises(openai.BadRequestError) as caught:
            client.embeddings.create(model=case.embedding_model or case.model, input=[text], encoding_format="float")
        validate_error(caught.value.response.json())
        assert not proxy.upstream(word), "a request the provider cannot serve went upstream"
        return
    result = client.embeddings.create(model=case.embedding_model, input=[text], encoding_format="float")
    validate_embedding_response(result.to_dict())
    assert len(result.data) == 1 and len(result.data[0].embedding) > 0
    entry = proxy.one_upstream(word)
    assert_upstream(entry, case, case.embeddings, case.embeddings.path)
    case.embeddings.check(entry["json"], text, case.embedding_model_sent)


def test_upstream_error(proxy: Proxy, case: ProviderCase) -> None:
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


def test_config_error(envoy_bin: Path, modules: Path, workdir: Path, case: ProviderCase) -> None:
    rendered = envoy_config.render(json.dumps(case.broken), listen_port=0, admin_port=0)
    result = validate(envoy_bin, modules, envoy_config.load(rendered), workdir)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert f"invalid aiproxy configuration: {case.broken_path}" in output, output[-3000:]
    assert "Failed to initialize dynamic module" in output, output[-3000:]
    for secret in case.secrets:
        assert secret not in output, "a credential reached Envoy's log"

