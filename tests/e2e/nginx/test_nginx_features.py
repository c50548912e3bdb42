"""NGINX-specific behaviour of aiproxy, end to end through the real NGINX + lua-nginx-module.

Callouts (context file, Moonshot file, failures and timeout), passthrough, chunk-by-chunk
streaming, a client abort mid-stream with the workers' memory flat over a bounded loop, an
unreachable upstream, usage in the access log, no key in any log, and a configuration error that
stops NGINX from starting.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import pytest
from nginx_harness import CALLOUT_TIMEOUT_MS, CLIENT_KEY, NginxProcess, Proxy, marker, rss_kib, run_once
from mock_provider import mock_provider as mock_impl
from provider_cases import CASES
from pyutil.openai_schema import validate_chat_completion, validate_error

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def chat(proxy: Proxy, server: str, prompt: str, **kwargs: Any) -> Any:
    return proxy.client(server).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": prompt}], **kwargs
    )


def assert_healthy(proxy: Proxy) -> None:
    assert proxy.nginx.alive(), proxy.nginx.log()[-3000:]
    word = marker()
    completion = chat(proxy, "openai", f"next {word}")
    assert word in (completion.choices[0].message.content or "")


# ---------------------------------------------------------------------------------------------
# Callouts
# ---------------------------------------------------------------------------------------------


def test_context_file_becomes_the_first_system_message(proxy: Proxy) -> None:
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
    assert (fetches[-1]["method"], fetches[-1]["host"]) == ("GET", "api.moonshot.cn"), fetches[-1]
    assert fetches[-1]["headers"].get("authorization") == "Bearer sk-secret-moonshot-file"
    entry = proxy.one_upstream(word)
    assert (entry["host"], entry["path"]) == ("api.moonshot.cn", "/v1/chat/completions")
    system = entry["json"]["messages"][0]
    assert system["role"] == "system" and "Mock file file-abc123 content" in system["content"], system


@pytest.mark.parametrize("server", ["context_missing_file", "context_no_service", "context_timeout"])
def test_context_fetch_failures_are_openai_errors(proxy: Proxy, server: str) -> None:
    word = marker()
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        chat(proxy, server, f"ctx {word}")
    elapsed = time.monotonic() - started
    assert caught.value.status_code == 502
    body = caught.value.response.json()
    validate_error(body)
    assert body["error"]["code"] == "context_fetch_failed", body
    assert not proxy.upstream(word), "the chat request went upstream without its context"
    if server == "context_timeout":
        assert CALLOUT_TIMEOUT_MS / 1000 * 0.8 <= elapsed < 5.0, elapsed


# ---------------------------------------------------------------------------------------------
# Requests the core does not translate, bad requests
# ---------------------------------------------------------------------------------------------


def test_protocol_original_passes_the_native_body_through(proxy: Proxy) -> None:
    word = marker()
    native = {"model": "claude-3-5-haiku-20241022", "max_tokens": 64, "messages": [{"role": "user", "content": f"native {word}"}]}
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
# Streaming, aborts, resets
# ---------------------------------------------------------------------------------------------


def stream_state(proxy: Proxy, word: str) -> dict[str, Any]:
    response = proxy.one_upstream(word)["response"]
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
        upstream_state = stream_state(proxy, word)
        rest = list(stream)
    assert first.choices, first
    assert not upstream_state["completed"], "the first chunk only arrived after the upstream finished"
    assert first_at < 1.5, first_at
    assert len(rest) >= 5


def abort_mid_stream(proxy: Proxy, prompt: str, delay_ms: int = 50) -> None:
    """Reads the response head and first bytes of a slow stream, then drops the connection."""
    body = json.dumps({"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": prompt}]}).encode()
    with socket.create_connection(("127.0.0.1", proxy.nginx.ports["openai"]), timeout=10) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
            + f"x-mock-delay-ms: {delay_ms}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        got = b""
        while b"data:" not in got:
            data = s.recv(65536)
            assert data, got
            got += data


def test_client_abort_mid_stream_leaves_nginx_serving(proxy: Proxy) -> None:
    word = marker()
    abort_mid_stream(proxy, f"abandon {word} now please", delay_ms=200)
    state = eventually(lambda: (s := stream_state(proxy, word))["client_disconnected"] and s)
    assert not state["completed"], state
    assert_healthy(proxy)


def workers_rss(proxy: Proxy) -> int:
    return sum(rss_kib(pid) for pid in proxy.nginx.worker_pids())


def test_client_aborts_do_not_grow_worker_memory(proxy: Proxy) -> None:
    """Each aborted request carries a 100 KB prompt (one word, cheap for the mock), which the
    exchange holds as the translated body until it is freed: 200 leaked exchanges would add 20+ MB
    to the workers."""
    filler = "x" * 100_000

    def loop(n: int) -> None:
        for i in range(n):
            abort_mid_stream(proxy, f"abort {i} {filler}", delay_ms=20)

    try:
        loop(40)  # warm up: connection pools, Lua heap, allocator arenas
        time.sleep(0.3)
        before = workers_rss(proxy)
        loop(200)
        time.sleep(0.3)
        after = workers_rss(proxy)
    finally:
        proxy.mock.clear()  # 24 MB of logged prompts would slow every later look-up
    assert after - before < 8 * 1024, f"workers grew from {before} KiB to {after} KiB over 200 aborted streams"
    assert_healthy(proxy)


def test_upstream_reset_mid_stream_ends_the_client_stream_abruptly(proxy: Proxy) -> None:
    word = marker()
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
        assert not received
        validate_error(error.response.json())
    except (openai.APIError, httpx.HTTPError):
        assert received, "an error without any chunk should have been an HTTP error status"
    else:
        pytest.fail("the stream completed although the upstream reset it")
    assert_healthy(proxy)


def test_upstream_reset_of_a_buffered_reply_is_an_openai_error(proxy: Proxy) -> None:
    word = marker()
    client = proxy.client("openai", default_headers={"x-mock-scenario": "reset"})
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"reset {word}"}])
    assert caught.value.status_code in (502, 503), caught.value.status_code
    validate_error(caught.value.response.json())
    assert_healthy(proxy)


def test_unreachable_upstream_is_an_openai_502(nginx_bin: Path, aiproxy_lib: Path, tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    config = json.dumps({"provider": {"type": "openai", "apiTokens": ["sk-secret-unreachable"]}})
    nginx = NginxProcess(nginx_bin, tmp_path / "nginx", {"openai": config}, upstream=f"127.0.0.1:{port}", workers=1, lib=aiproxy_lib)
    nginx.start()
    try:
        response = httpx.post(
            f"http://127.0.0.1:{nginx.ports['openai']}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert response.status_code == 502, response.text
        validate_error(response.json())
        assert "sk-secret-unreachable" not in nginx.log()
    finally:
        nginx.stop()


# ---------------------------------------------------------------------------------------------
# Observability, secrets, configuration errors
# ---------------------------------------------------------------------------------------------


def test_usage_is_in_the_access_log(proxy: Proxy) -> None:
    """Buffered (mistral) and streamed (openai, whose modelMapping sends gpt-4o): the model sent
    and the usage the provider reported end up in $aiproxy_* variables of the access log."""
    word = marker()
    usage = proxy.client("mistral").chat.completions.create(
        model="mistral-small-latest", messages=[{"role": "user", "content": f"log {word} me"}]
    ).usage
    assert usage is not None
    line = (
        f"provider=mistral model=mistral-small-latest prompt_tokens={usage.prompt_tokens} "
        f"completion_tokens={usage.completion_tokens} total_tokens={usage.total_tokens}"
    )
    eventually(lambda: line in proxy.nginx.access_log())

    word = marker()
    usage = None
    for chunk in proxy.client("openai").chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"log {word} this stream"}],
        stream=True,
        stream_options={"include_usage": True},
    ):
        usage = chunk.usage or usage
    assert usage is not None
    line = (
        f"provider=openai model=gpt-4o prompt_tokens={usage.prompt_tokens} "
        f"completion_tokens={usage.completion_tokens} total_tokens={usage.total_tokens}"
    )
    eventually(lambda: line in proxy.nginx.access_log())


def test_no_credential_in_any_log_line(proxy: Proxy) -> None:
    for case in CASES:
        proxy.client(case.name).chat.completions.create(model=case.model, messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.APIStatusError):
            proxy.client(case.name, default_headers={"x-mock-scenario": "error"}).chat.completions.create(
                model=case.model, messages=[{"role": "user", "content": "hi"}]
            )
    logs = proxy.nginx.log() + proxy.nginx.access_log()
    assert "aiproxy: configuration 'openai' loaded for provider openai" in logs
    leaked = [s for s in [*proxy.secrets, CLIENT_KEY] if s in logs]
    assert not leaked, f"credentials in NGINX's logs: {leaked}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_config_error_stops_nginx_from_starting(nginx_bin: Path, aiproxy_lib: Path, tmp_path: Path, case: Any) -> None:
    result = run_once(nginx_bin, tmp_path / "nginx", {"bad": json.dumps(case.broken)}, aiproxy_lib)
    output = result.stdout + result.stderr + ((tmp_path / "nginx" / "error.log").read_text(errors="replace") if (tmp_path / "nginx" / "error.log").exists() else "")
    assert result.returncode != 0, output[-3000:]
    assert f"invalid aiproxy configuration 'bad': {case.broken_path}" in output, output[-3000:]
    for secret in case.secrets:
        assert secret not in output, "a credential reached NGINX's log"
