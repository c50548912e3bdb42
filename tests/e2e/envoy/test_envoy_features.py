"""Envoy-specific behaviour of the aiproxy module, end to end through the real Envoy 1.40.

Context callouts (``context.fileUrl``, ``moonshotFileId``, the callout timeout), passthrough,
buffer limits, streaming without buffering, a client that disconnects mid-stream, an upstream that
resets, counters, access-log metadata, secrets kept out of logs, and the example configuration.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import pytest
from conftest import CALLOUT_TIMEOUT_MS, CLIENT_KEY, COZE_TOKEN, SMALL_BUFFER_BYTES, Proxy, marker, settled
from envoy_harness import REPO, envoy_config, validate
from mock_provider import mock_provider as mock_impl
from provider_cases import CASES
from pyutil.openai_schema import validate_chat_completion, validate_error, validate_sse_stream

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.05) -> T:
    """Polls ``probe`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def chat(proxy: Proxy, listener: str, prompt: str, **kwargs: Any) -> Any:
    return proxy.client(listener).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": prompt}], **kwargs
    )


def assert_healthy(proxy: Proxy) -> None:
    """Envoy is still running and serves the next request."""
    assert proxy.envoy.alive(), proxy.envoy.log()[-3000:]
    word = marker()
    completion = chat(proxy, "openai", f"next {word}")
    assert word in (completion.choices[0].message.content or "")


# ---------------------------------------------------------------------------------------------
# Context callouts
# ---------------------------------------------------------------------------------------------


def test_context_file_url_becomes_the_first_system_message(proxy: Proxy) -> None:
    word = marker()
    completion = chat(proxy, "context", f"where {word}")
    validate_chat_completion(completion.to_dict())
    callouts = [e for e in proxy.mock.requests() if e["path"] == "/ai/context.txt"]
    assert callouts and callouts[-1]["method"] == "GET" and callouts[-1]["host"] == "context.internal"
    body = proxy.one_upstream(word)["json"]
    assert body["messages"][0] == {"role": "system", "content": mock_impl.CONTEXT_TEXT}, body
    assert body["messages"][-1]["content"] == f"where {word}"


def test_moonshot_file_id_is_fetched_from_the_files_api(proxy: Proxy) -> None:
    word = marker()
    completion = chat(proxy, "moonshot_file", f"summarise {word}")
    validate_chat_completion(completion.to_dict())
    fetches = [e for e in proxy.mock.requests() if e["path"] == "/v1/files/file-abc123/content"]
    assert fetches, "the file content was not fetched"
    fetch = fetches[-1]
    assert (fetch["method"], fetch["host"]) == ("GET", "api.moonshot.cn"), fetch
    assert fetch["headers"].get("authorization") == "Bearer sk-secret-moonshot-file"
    entry = proxy.one_upstream(word)
    assert entry["host"] == "api.moonshot.cn" and entry["path"] == "/v1/chat/completions"
    system = entry["json"]["messages"][0]
    assert system["role"] == "system" and "Mock file file-abc123 content" in system["content"], system


@pytest.mark.parametrize(
    ("listener", "status"),
    [("context_missing_file", 502), ("context_no_cluster", 502), ("context_timeout", 502)],
)
def test_context_fetch_failures_are_openai_errors(proxy: Proxy, listener: str, status: int) -> None:
    word = marker()
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        chat(proxy, listener, f"ctx {word}")
    elapsed = time.monotonic() - started
    assert caught.value.status_code == status
    body = caught.value.response.json()
    validate_error(body)
    assert body["error"]["code"] == "context_fetch_failed", body
    assert not proxy.upstream(word), "the chat request went upstream without its context"
    if listener == "context_timeout":
        # The seed's `timeout` (300 ms here) bounds the callout.
        assert CALLOUT_TIMEOUT_MS / 1000 * 0.8 <= elapsed < 5.0, elapsed


# ---------------------------------------------------------------------------------------------
# Requests the core does not translate
# ---------------------------------------------------------------------------------------------


def test_protocol_original_passes_the_native_body_through(proxy: Proxy) -> None:
    word = marker()
    native = {
        "model": "claude-3-5-haiku-20241022",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": f"native {word}"}],
    }
    response = httpx.post(
        f"{proxy.base_url('claude_original')}/v1/messages",
        json=native,
        headers={"authorization": f"Bearer {CLIENT_KEY}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "message", response.text
    entry = proxy.one_upstream(word)
    assert (entry["host"], entry["path"]) == ("api.anthropic.com", "/v1/messages"), entry
    assert entry["headers"].get("x-api-key") == "sk-secret-claude-original"
    assert "authorization" not in entry["headers"]
    assert entry["json"] == native


def test_untranslated_path_gets_provider_host_and_auth(proxy: Proxy) -> None:
    word = marker()
    response = httpx.get(f"{proxy.base_url('openai')}/v1/models?probe={word}", timeout=10)
    entry = eventually(lambda: next((e for e in proxy.mock.requests() if word in e["path"]), None))
    assert response.status_code == 404  # the mock has no /v1/models; what matters is where it went
    assert (entry["method"], entry["host"]) == ("GET", "api.openai.com"), entry
    assert entry["headers"].get("authorization") == "Bearer sk-secret-openai"


def coze_native(word: str, stream: bool) -> bytes:
    """A Coze v3 bot-chat body (docs.coze.cn "发起对话"), spaced and ordered as no JSON writer here
    would: the upstream must receive these exact bytes."""
    body = {
        "user_id": "u-e2e",
        "bot_id": "7342000000000000001",
        "stream": stream,
        "auto_save_history": True,
        "additional_messages": [{"role": "user", "content": f"coze {word}", "content_type": "text"}],
    }
    return json.dumps(body, indent=1).encode()


def coze_mock_answer(body: bytes) -> bytes:
    """What the mock answers to ``body`` (its replies depend only on the request)."""
    req = mock_impl.MockRequest(
        method="POST",
        host="api.coze.cn",
        path="/v3/chat",
        route="/v3/chat",
        query={},
        headers={"authorization": f"Bearer {COZE_TOKEN}"},
        body=body,
        json=json.loads(body),
    )
    reply = mock_impl.coze_chat(req)
    return reply.body if reply.events is None else b"".join(reply.events)


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "stream"])
def test_coze_original_keeps_cozes_own_api(proxy: Proxy, stream: bool) -> None:
    word = marker()
    native = coze_native(word, stream)
    response = httpx.post(
        f"{proxy.base_url('coze_original')}/v3/chat",
        content=native,
        headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    entry = proxy.one_upstream(word)
    assert (entry["method"], entry["host"], entry["path"]) == ("POST", "api.coze.cn", "/v3/chat"), entry
    assert entry["headers"].get("authorization") == f"Bearer {COZE_TOKEN}", entry["headers"]
    assert entry["body"].encode() == native, "the Coze body was changed"
    # Coze's answer comes back as Coze wrote it: no OpenAI translation either way.
    assert response.content == coze_mock_answer(native)
    if stream:
        assert response.headers["content-type"].startswith("text/event-stream"), response.headers
        assert b"event:conversation.message.delta" in response.content and b"chat.completion" not in response.content
    else:
        assert response.json()["data"]["status"] == "in_progress", response.text


def test_coze_without_protocol_original_is_refused_with_the_reason(envoy_bin: Path, modules: Path, workdir: Path) -> None:
    seed = {"provider": {"type": "coze", "apiTokens": [COZE_TOKEN]}}
    rendered = envoy_config.render(json.dumps(seed), listen_port=0, admin_port=0)
    result = validate(envoy_bin, modules, envoy_config.load(rendered), workdir)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "invalid aiproxy configuration: provider.protocol" in output, output[-3000:]
    assert "coze needs protocol 'original'" in output and "not translate it" in output, output[-3000:]
    assert COZE_TOKEN not in output, "a credential reached Envoy's log"


def test_vllm_custom_url_ending_in_completions_is_the_endpoint(proxy: Proxy) -> None:
    """``vllmCustomUrl`` with a path ending in /completions: host and path as given, buffered and
    streamed; no apiTokens, so no Authorization upstream."""
    client = proxy.client("vllm_custom_direct")
    model = "Qwen/Qwen2.5-7B-Instruct"
    first, second = marker(), marker()
    completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"direct {first}"}])
    validate_chat_completion(completion.to_dict())
    assert first in (completion.choices[0].message.content or "")
    with client.chat.completions.with_streaming_response.create(
        model=model, messages=[{"role": "user", "content": f"direct {second}"}], stream=True
    ) as response:
        raw = b"".join(response.iter_bytes())
    validate_sse_stream(raw, min_chunks=2)
    assert second in raw.decode("utf-8")
    for word in (first, second):
        entry = proxy.one_upstream(word)
        assert (entry["host"], entry["path"]) == ("vllm-direct.internal", "/serving/llm/chat/completions"), entry
        assert "authorization" not in entry["headers"], entry["headers"]
        assert entry["json"]["model"] == model and word in entry["json"]["messages"][-1]["content"], entry["json"]
    assert proxy.one_upstream(second)["json"]["stream"] is True


# ---------------------------------------------------------------------------------------------
# Request limits and bad requests
# ---------------------------------------------------------------------------------------------


def test_body_over_the_buffer_limit_is_a_413(proxy: Proxy) -> None:
    word = marker()
    big = "x" * (SMALL_BUFFER_BYTES * 2)
    # With a content-length: refused before the body is read.
    with pytest.raises(openai.APIStatusError) as caught:
        chat(proxy, "small_buffer", f"{word} {big}")
    assert caught.value.status_code == 413
    validate_error(caught.value.response.json())
    assert caught.value.response.json()["error"]["code"] == "request_too_large"

    # Chunked, without a length: Envoy's own buffer-limit reply, rewritten to OpenAI's shape.
    payload = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": f"{word} {big}"}]}).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 8192):
            yield payload[i : i + 8192]

    response = httpx.post(
        f"{proxy.base_url('small_buffer')}/v1/chat/completions",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/json"
    validate_error(response.json())
    assert response.json()["error"]["code"] == "request_too_large"
    assert not proxy.upstream(word)


def test_invalid_json_is_an_openai_400(proxy: Proxy) -> None:
    response = httpx.post(
        f"{proxy.base_url('openai')}/v1/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    validate_error(response.json())


# ---------------------------------------------------------------------------------------------
# Streaming, disconnects and resets
# ---------------------------------------------------------------------------------------------


def stream_entry(proxy: Proxy, word: str) -> dict[str, Any]:
    entry = proxy.one_upstream(word)
    response = entry["response"]
    assert isinstance(response, dict)
    return response


def test_stream_chunks_reach_the_client_while_upstream_is_still_sending(proxy: Proxy) -> None:
    word = marker()
    client = proxy.client("openai", default_headers={"x-mock-delay-ms": "250"})
    started = time.monotonic()
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": f"slowly {word}"}], stream=True
    )
    with stream:
        first = next(iter(stream))
        first_at = time.monotonic() - started
        upstream_state = stream_entry(proxy, word)
        rest = list(stream)
    assert first.choices, first
    assert not upstream_state["completed"], "the first chunk only arrived after the upstream finished"
    assert first_at < 1.5, first_at
    assert len(rest) >= 5


def test_client_disconnect_mid_stream_leaves_envoy_serving(proxy: Proxy) -> None:
    word = marker()
    client = proxy.client("openai", default_headers={"x-mock-delay-ms": "200"})
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": f"abandon {word} now please"}], stream=True
    )
    next(iter(stream))
    stream.close()  # the client goes away after the first chunk
    state = eventually(lambda: (s := stream_entry(proxy, word))["client_disconnected"] and s)
    assert not state["completed"], state
    assert_healthy(proxy)


def test_upstream_reset_mid_stream_leaves_envoy_serving(proxy: Proxy) -> None:
    word = marker()
    # Events 100 ms apart: the headers and first chunks pass through before the reset.
    client = proxy.client("openai", default_headers={"x-mock-scenario": "reset", "x-mock-delay-ms": "100"})
    received: list[Any] = []
    try:
        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"reset {word} midway"}], stream=True
        )
        with stream:
            for chunk in stream:
                received.append(chunk)
    except openai.APIStatusError as error:
        # The reset beat the headers (the kernel drops unread data on RST): an OpenAI error.
        assert not received
        validate_error(error.response.json())
    except (openai.APIError, httpx.HTTPError):
        # Headers and the first chunks went out; the stream then ends abruptly.
        assert received, "an error without any chunk should have been an HTTP error status"
    else:
        pytest.fail("the stream completed although the upstream reset it")
    assert stream_entry(proxy, word).get("reset")
    assert_healthy(proxy)


def test_upstream_reset_of_a_buffered_reply_is_an_openai_error(proxy: Proxy) -> None:
    word = marker()
    client = proxy.client("openai", default_headers={"x-mock-scenario": "reset"})
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"reset {word}"}])
    assert caught.value.status_code in (502, 503), caught.value.status_code
    validate_error(caught.value.response.json())
    assert_healthy(proxy)


def test_malformed_upstream_stream_ends_cleanly_with_an_error_event(proxy: Proxy) -> None:
    word = marker()
    client = proxy.client("openai", default_headers={"x-mock-scenario": "malformed"})
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": f"broken {word}"}], stream=True
    ) as response:
        raw = b"".join(response.iter_bytes())
    assert raw.rstrip().endswith(b"data: [DONE]"), raw[-300:]
    errors = [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith('data: {"error"')]
    assert errors, raw[-500:]
    validate_error(errors[0])
    good = raw.split(b'data: {"error"')[0] + b"data: [DONE]\n\n"
    validate_sse_stream(good)


# ---------------------------------------------------------------------------------------------
# Observability
# ---------------------------------------------------------------------------------------------


def prometheus_value(text: str, metric: str, provider: str, model: str) -> int:
    pattern = rf'^envoy_dynamicmodulescustom_{metric}{{provider="{provider}",model="{re.escape(model)}"}} (\d+)$'
    match = re.search(pattern, text, re.M)
    return int(match.group(1)) if match else 0


def test_counters_per_provider_and_model(proxy: Proxy) -> None:
    names = ("aiproxy_requests_total", "aiproxy_input_tokens_total", "aiproxy_output_tokens_total")

    def read() -> dict[str, int]:
        text = proxy.envoy.admin("/stats/prometheus")
        return {n: prometheus_value(text, n, "groq", "llama-3.1-8b-instant") for n in names}

    # The three are flushed together: their sum settles when they all have.
    settled(lambda: sum(read().values()))
    before = read()
    completion = proxy.client("groq").chat.completions.create(
        model="llama-3.1-8b-instant", messages=[{"role": "user", "content": f"count {marker()} these words"}]
    )
    assert completion.usage is not None
    expected = {
        "aiproxy_requests_total": before["aiproxy_requests_total"] + 1,
        "aiproxy_input_tokens_total": before["aiproxy_input_tokens_total"] + completion.usage.prompt_tokens,
        "aiproxy_output_tokens_total": before["aiproxy_output_tokens_total"] + completion.usage.completion_tokens,
    }
    eventually(lambda: read() == expected)


def test_usage_is_dynamic_metadata_in_the_access_log(proxy: Proxy) -> None:
    word = marker()
    completion = proxy.client("mistral").chat.completions.create(
        model="mistral-small-latest", messages=[{"role": "user", "content": f"log {word} me"}]
    )
    usage = completion.usage
    assert usage is not None
    line = (
        f"provider=mistral model=mistral-small-latest prompt_tokens={usage.prompt_tokens} "
        f"completion_tokens={usage.completion_tokens} total_tokens={usage.total_tokens}"
    )
    eventually(lambda: line in proxy.envoy.access_log())


def test_no_credential_in_any_log_line(proxy: Proxy) -> None:
    for case in CASES:
        client = proxy.client(case.name)
        client.chat.completions.create(model=case.model, messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.APIStatusError):
            proxy.client(case.name, default_headers={"x-mock-scenario": "error"}).chat.completions.create(
                model=case.model, messages=[{"role": "user", "content": "hi"}]
            )
    time.sleep(0.5)  # let the access log flush
    logs = proxy.envoy.log() + proxy.envoy.access_log()
    assert "aiproxy: filter configured for provider" in logs
    leaked = [s for s in [*proxy.secrets, CLIENT_KEY] if s in logs]
    assert not leaked, f"credentials in Envoy's logs: {leaked}"


# ---------------------------------------------------------------------------------------------
# The example configuration
# ---------------------------------------------------------------------------------------------


def provider_hosts() -> set[str]:
    """Host constants of the provider implementations (test modules excluded)."""
    hosts: set[str] = set()
    # One file per provider, or a folder of files for the larger ones.
    for path in sorted((REPO / "src" / "providers").rglob("*.rs")):
        if path.stem.endswith("tests"):
            continue
        # An inline test module ends the production code; `#[cfg(test)] mod tests;` (a folder's
        # test file declaration) does not.
        code = path.read_text().split("#[cfg(test)]\nmod tests {")[0]
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("//"))
        hosts.update(re.findall(r'"((?:[a-z0-9-]+\.)+(?:com|cn|ai|chat|io|net))"', code))
    return hosts


def test_example_routes_every_provider_host_to_a_tls_cluster() -> None:
    config = envoy_config.load(envoy_config.render("{}", ca_file="/etc/ssl/certs/ca-certificates.crt"))
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = {d: vh["routes"][0]["route"]["cluster"] for vh in hcm["route_config"]["virtual_hosts"] for d in vh["domains"]}
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    hosts = provider_hosts()
    assert len(hosts) >= 20, hosts
    for host in sorted(hosts):
        assert routes.get(host) == host, f"no route for {host}"
        tls = clusters[host]["transport_socket"]["typed_config"]
        assert tls["sni"] == host
        assert clusters[host]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
            "socket_address"
        ] == {"address": host, "port_value": 443}
    assert routes["*"] == "dynamic_https"


def test_example_configuration_is_accepted_by_envoy(envoy_bin: Path, modules: Path, workdir: Path) -> None:
    config_json = json.dumps({"provider": {"type": "claude", "apiTokens": ["sk-secret-example"]}})
    for config in (
        envoy_config.load(envoy_config.render(config_json)),
        envoy_config.route_to_mock(envoy_config.load(envoy_config.render(config_json)), 8080),
    ):
        result = validate(envoy_bin, modules, config, workdir)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        assert "sk-secret-example" not in result.stdout + result.stderr
