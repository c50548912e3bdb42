"""The Anthropic Messages front (/v1/messages) through the real Envoy 1.40 + aiproxy module, with
the official ``anthropic`` Python SDK, for claude (native), openai, gemini, qwen and deepseek.

Per provider: text, streaming, tool use with streamed ``input_json_delta``, a tool_result round
trip, an image, thinking where the provider has it, and an upstream error; plus a request shaped
like Claude Code's (system blocks with cache_control, many tools, stream) against an OpenAI-family
provider and gemini, count_tokens, and the client-protocol counter / access-log key. Every body and
event the client receives is checked with tests/pyutil/anthropic_schema.py (written from
Anthropic's API reference); what the mock upstream received is checked too.

    .venv/bin/python -m pytest tests/e2e/envoy/test_envoy_messages.py -q
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Final

import anthropic
import httpx
import pytest
from conftest import Proxy, marker, settled
from pyutil.anthropic_schema import parse_sse, validate_error, validate_message, validate_stream

ANT_CLIENT_KEY: Final = "sk-ant-client-key-never-forwarded"
"""The key the Anthropic SDK sends to the gateway; it must stop there."""

# A 1x1 PNG.
PNG_B64: Final = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

WEATHER_TOOL: Final = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
    },
}


@dataclass(frozen=True)
class Target:
    name: str
    listener: str
    model: str  # what the client asks for
    model_sent: str  # what must reach the provider
    host: str
    auth: tuple[str, str]  # header and exact value upstream
    thinking: str | None = None  # how to ask for thinking, when the provider has it
    image_model: str | None = None


TARGETS: Final = [
    Target(
        "claude",
        "messages_claude",
        "claude-sonnet-5-5",
        "claude-opus-5-5",
        "api.anthropic.com",
        ("x-api-key", "sk-secret-messages-claude"),
        thinking="param",
    ),
    Target("openai", "messages_openai", "claude-sonnet-5-5", "gpt-4o", "api.openai.com", ("authorization", "Bearer sk-secret-messages-openai")),
    Target(
        "gemini",
        "messages_gemini",
        "claude-sonnet-5-5",
        "gemini-2.0-flash",
        "generativelanguage.googleapis.com",
        ("x-goog-api-key", "sk-secret-messages-gemini"),
    ),
    Target("qwen", "qwen", "qwen-plus", "qwen-plus", "dashscope.aliyuncs.com", ("authorization", "Bearer sk-secret-qwen"), image_model="qwen-vl-plus"),
    Target(
        "deepseek",
        "deepseek",
        "deepseek-chat",
        "deepseek-chat",
        "api.deepseek.com",
        ("authorization", "Bearer sk-secret-deepseek"),
        thinking="deepseek-reasoner",
    ),
]
BY_NAME: Final = {t.name: t for t in TARGETS}

each_target = pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])


def client(proxy: Proxy, target: Target, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=proxy.base_url(target.listener), api_key=ANT_CLIENT_KEY, max_retries=0, timeout=20.0, **kwargs
    )


def create_raw(c: anthropic.Anthropic, **kwargs: Any) -> dict[str, Any]:
    """A buffered Message: the raw JSON is shape-checked, then parsed by the SDK as well."""
    raw = c.messages.with_raw_response.create(**kwargs)
    body = raw.http_response.json()
    validate_message(body)
    parsed = raw.parse()
    assert parsed.id == body["id"] and parsed.stop_reason == body["stop_reason"]
    return body


def stream_raw(c: anthropic.Anthropic, **kwargs: Any) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """A streamed Message: every raw event shape-checked, the order checked, the message built."""
    with c.messages.with_streaming_response.create(stream=True, **kwargs) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(resp.iter_bytes())
    events = parse_sse(raw)
    return events, validate_stream(events)


def upstream_of(proxy: Proxy, word: str) -> dict[str, Any]:
    entry = proxy.one_upstream(word)
    assert entry["json"] is not None
    return entry


def assert_upstream(entry: dict[str, Any], target: Target, stream: bool | None = None) -> None:
    headers: dict[str, str] = entry["headers"]
    assert entry["host"] == target.host, entry["host"]
    name, value = target.auth
    assert headers.get(name) == value, headers
    assert all(ANT_CLIENT_KEY not in v for v in headers.values()), "the client's key was forwarded"
    if target.name == "claude":
        assert headers.get("anthropic-version") == "2023-06-01"
        assert entry["json"]["model"] == target.model_sent
        assert entry["path"].startswith("/v1/messages")
    else:
        for h in ("x-api-key", "anthropic-version", "anthropic-beta"):
            assert h not in headers, f"{h} reached {target.name}"
        if target.name == "gemini":
            assert f"/models/{target.model_sent}:" in entry["path"], entry["path"]
        else:
            assert entry["json"]["model"] == target.model_sent, entry["json"]
    if stream is not None and target.name == "gemini":
        assert ("streamGenerateContent" in entry["path"]) == stream


def text_of(message: dict[str, Any]) -> str:
    return "".join(b["text"] for b in message["content"] if b["type"] == "text")


@each_target
def test_text(proxy: Proxy, target: Target) -> None:
    word = marker()
    body = create_raw(
        client(proxy, target), model=target.model, max_tokens=256, messages=[{"role": "user", "content": f"hello {word}"}]
    )
    assert f"hello {word}" in text_of(body)
    assert body["stop_reason"] == "end_turn"
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    assert_upstream(upstream_of(proxy, word), target, stream=False)


@each_target
def test_streaming(proxy: Proxy, target: Target) -> None:
    word = marker()
    c = client(proxy, target)
    events, message = stream_raw(
        c,
        model=target.model,
        max_tokens=256,
        system="Answer briefly.",
        messages=[{"role": "user", "content": f"stream {word} please"}],
    )
    deltas = [d for n, d in events if n == "content_block_delta" and d["delta"]["type"] == "text_delta"]
    assert len(deltas) >= 3, "the reply arrives in several text deltas"
    assert f"stream {word} please" in text_of(message)
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["output_tokens"] > 0
    assert_upstream(upstream_of(proxy, word), target, stream=True)
    # The SDK's own stream helper accumulates the same message.
    word2 = marker()
    with c.messages.stream(
        model=target.model, max_tokens=256, messages=[{"role": "user", "content": f"again {word2}"}]
    ) as s:
        final = s.get_final_message()
    assert f"again {word2}" in "".join(b.text for b in final.content if b.type == "text")
    assert final.usage.output_tokens > 0


@each_target
def test_tool_use_streamed_then_tool_result_round_trip(proxy: Proxy, target: Target) -> None:
    word = marker()
    c = client(proxy, target)
    question = {"role": "user", "content": f"weather in Paris {word}?"}
    events, message = stream_raw(c, model=target.model, max_tokens=512, tools=[WEATHER_TOOL], messages=[question])
    json_deltas = [d for n, d in events if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"]
    assert json_deltas, "tool input arrives as input_json_delta"
    tool = next(b for b in message["content"] if b["type"] == "tool_use")
    assert tool["name"] == "get_weather" and isinstance(tool["input"].get("city"), str)
    assert message["stop_reason"] == "tool_use"
    sent = upstream_of(proxy, word)
    assert_upstream(sent, target, stream=True)
    assert "get_weather" in json.dumps(sent["json"])

    result_word = marker()
    follow_up = [
        question,
        {"role": "assistant", "content": message["content"]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool["id"], "content": f"18C and sunny {result_word}"},
                {"type": "text", "text": "Thanks, summarise."},
            ],
        },
    ]
    body = create_raw(c, model=target.model, max_tokens=512, tools=[WEATHER_TOOL], messages=follow_up)
    assert body["content"], body
    entry = upstream_of(proxy, result_word)
    assert_upstream(entry, target, stream=False)
    assert_tool_result_upstream(target, entry["json"], tool["id"], result_word)


def assert_tool_result_upstream(target: Target, sent: dict[str, Any], tool_id: str, word: str) -> None:
    """The tool result reached the provider in its own shape, tied to the call."""
    if target.name == "claude":
        blocks = sent["messages"][2]["content"]
        assert blocks[0]["type"] == "tool_result" and blocks[0]["tool_use_id"] == tool_id
    elif target.name == "gemini":
        parts = [p for c in sent["contents"] for p in c.get("parts", [])]
        responses = [p for p in parts if "functionResponse" in p or "function_response" in p]
        assert responses and word in json.dumps(responses), parts
    else:
        messages = sent["input"]["messages"] if target.name == "qwen" else sent["messages"]
        tool_msgs = [m for m in messages if m.get("role") == "tool"]
        assert tool_msgs and tool_msgs[0]["tool_call_id"] == tool_id and word in tool_msgs[0]["content"], messages
        calls = [m for m in messages if m.get("role") == "assistant" and m.get("tool_calls")]
        assert calls and calls[0]["tool_calls"][0]["id"] == tool_id


@each_target
def test_image(proxy: Proxy, target: Target) -> None:
    word = marker()
    model = target.image_model or target.model
    body = create_raw(
        client(proxy, target),
        model=model,
        max_tokens=256,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                    {"type": "text", "text": f"describe {word}"},
                ],
            }
        ],
    )
    assert word in text_of(body)
    entry = upstream_of(proxy, word)
    assert entry["host"] == target.host
    assert PNG_B64 in entry["body"], "the image reached the provider"


@pytest.mark.parametrize("target", [t for t in TARGETS if t.thinking], ids=[t.name for t in TARGETS if t.thinking])
@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "stream"])
def test_thinking(proxy: Proxy, target: Target, stream: bool) -> None:
    word = marker()
    kwargs: dict[str, Any] = {"max_tokens": 2048, "messages": [{"role": "user", "content": f"think {word}"}]}
    if target.thinking == "param":
        kwargs.update(model=target.model, thinking={"type": "enabled", "budget_tokens": 1024})
    else:
        kwargs.update(model=target.thinking)  # a reasoning model reasons by itself
    c = client(proxy, target)
    if stream:
        events, message = stream_raw(c, **kwargs)
        assert any(n == "content_block_delta" and d["delta"]["type"] == "thinking_delta" for n, d in events)
    else:
        message = create_raw(c, **kwargs)
    assert message["content"][0]["type"] == "thinking"
    assert message["content"][0]["thinking"].startswith("mock reasoning")
    assert word in text_of(message)
    assert upstream_of(proxy, word)["host"] == target.host


@each_target
def test_upstream_error(proxy: Proxy, target: Target) -> None:
    c = client(proxy, target, default_headers={"x-mock-scenario": "error-429"})
    for stream in (False, True):
        word = marker()
        with pytest.raises(anthropic.RateLimitError) as caught:
            kwargs: dict[str, Any] = {"model": target.model, "max_tokens": 64, "messages": [{"role": "user", "content": f"fail {word}"}]}
            if stream:
                with c.messages.stream(**kwargs) as s:
                    s.get_final_message()
            else:
                c.messages.create(**kwargs)
        err = caught.value
        assert err.status_code == 429
        body = err.response.json()
        validate_error(body)
        assert body["error"]["type"] == "rate_limit_error" and body["error"]["message"]
        assert upstream_of(proxy, word)["scenario"] == "error-429"


@pytest.mark.parametrize("name", ["openai", "deepseek"])
def test_malformed_upstream_stream_is_an_error_event(proxy: Proxy, name: str) -> None:
    target = BY_NAME[name]
    c = client(proxy, target, default_headers={"x-mock-scenario": "malformed"})
    word = marker()
    with c.messages.with_streaming_response.create(
        model=target.model, max_tokens=64, stream=True, messages=[{"role": "user", "content": f"broken {word}"}]
    ) as resp:
        raw = b"".join(resp.iter_bytes())
    events = parse_sse(raw)
    assert events[-1][0] == "error", events
    assert validate_stream(events)["type"] == "error"
    with pytest.raises(anthropic.APIError):
        with c.messages.stream(model=target.model, max_tokens=64, messages=[{"role": "user", "content": "x"}]) as s:
            s.get_final_message()


# ---------------------------------------------------------------------------------------------
# Claude Code
# ---------------------------------------------------------------------------------------------


def claude_code_tools() -> list[dict[str, Any]]:
    """Tools shaped like Claude Code's (JSON-schema draft-07 input schemas, nested objects)."""
    simple: dict[str, dict[str, Any]] = {
        "Bash": {"command": {"type": "string"}, "timeout": {"type": "number"}, "description": {"type": "string"}},
        "Glob": {"pattern": {"type": "string"}, "path": {"type": "string"}},
        "Grep": {"pattern": {"type": "string"}, "path": {"type": "string"}, "-i": {"type": "boolean"}},
        "LS": {"path": {"type": "string"}, "ignore": {"type": "array", "items": {"type": "string"}}},
        "Read": {"file_path": {"type": "string"}, "offset": {"type": "number"}, "limit": {"type": "number"}},
        "Edit": {"file_path": {"type": "string"}, "old_string": {"type": "string"}, "new_string": {"type": "string"}},
        "Write": {"file_path": {"type": "string"}, "content": {"type": "string"}},
        "WebFetch": {"url": {"type": "string", "format": "uri"}, "prompt": {"type": "string"}},
        "WebSearch": {"query": {"type": "string", "minLength": 2}},
        "NotebookEdit": {"notebook_path": {"type": "string"}, "new_source": {"type": "string"}},
        "TodoWrite": {
            "todos": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "content": {"type": "string"},
                        "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                    },
                    "required": ["content", "status"],
                    "additionalProperties": False,
                },
            }
        },
        "Task": {"description": {"type": "string"}, "prompt": {"type": "string"}, "subagent_type": {"type": "string"}},
        "ExitPlanMode": {"plan": {"type": "string"}},
        "BashOutput": {"bash_id": {"type": "string"}},
        "KillShell": {"shell_id": {"type": "string"}},
    }
    return [
        {
            "name": name,
            "description": f"{name} tool. " + "Usage notes. " * 20,
            "input_schema": {
                "type": "object",
                "properties": props,
                "required": [next(iter(props))],
                "additionalProperties": False,
                "$schema": "http://json-schema.org/draft-07/schema#",
            },
        }
        for name, props in simple.items()
    ]


def claude_code_body(word: str, model: str) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 32000,
        "stream": True,
        "temperature": 1,
        "metadata": {"user_id": "user_abc_account__session_0000"},
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "You are an interactive CLI tool. " * 200, "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>\nAs you answer, use the tools.\n</system-reminder>"},
                    {"type": "text", "text": f"list the files {word}", "cache_control": {"type": "ephemeral"}},
                ],
            }
        ],
        "tools": claude_code_tools(),
        "thinking": {"type": "enabled", "budget_tokens": 31999},
    }


@pytest.mark.parametrize("name", ["openai", "gemini"])
def test_claude_code_shaped_request(proxy: Proxy, name: str) -> None:
    target = BY_NAME[name]
    word = marker()
    headers = {
        "x-api-key": ANT_CLIENT_KEY,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14",
        "content-type": "application/json",
        "user-agent": "claude-cli/2.0.0 (external, cli)",
        "x-app": "cli",
    }
    with httpx.Client(timeout=20.0) as http:
        with http.stream(
            "POST", f"{proxy.base_url(target.listener)}/v1/messages?beta=true", headers=headers, json=claude_code_body(word, "claude-opus-5-5")
        ) as resp:
            assert resp.status_code == 200, resp.read()
            assert resp.headers["content-type"].startswith("text/event-stream")
            raw = resp.read()
    events = parse_sse(raw)
    message = validate_stream(events)
    assert message["stop_reason"] == "tool_use"
    tool = next(b for b in message["content"] if b["type"] == "tool_use")
    assert tool["name"] == "Bash" and isinstance(tool["input"]["command"], str)
    assert any(d["delta"]["type"] == "input_json_delta" for n, d in events if n == "content_block_delta")
    entry = upstream_of(proxy, word)
    assert_upstream(entry, target, stream=True)
    sent = json.dumps(entry["json"])
    for t in claude_code_tools():
        assert t["name"] in sent
    assert "You are Claude Code" in sent and "cache_control" not in sent


# ---------------------------------------------------------------------------------------------
# count_tokens, observability, secrets
# ---------------------------------------------------------------------------------------------


def test_count_tokens_claude_forwarded_and_others_a_clear_error(proxy: Proxy) -> None:
    word = marker()
    count = client(proxy, BY_NAME["claude"]).messages.count_tokens(
        model="claude-sonnet-5-5", messages=[{"role": "user", "content": f"count these four {word}"}]
    )
    assert count.input_tokens == 4
    entry = upstream_of(proxy, word)
    assert entry["path"] == "/v1/messages/count_tokens" and entry["json"]["model"] == "claude-opus-5-5"
    for name in ("openai", "gemini"):
        with pytest.raises(anthropic.NotFoundError) as caught:
            client(proxy, BY_NAME[name]).messages.count_tokens(
                model="claude-sonnet-5-5", messages=[{"role": "user", "content": "x"}]
            )
        body = caught.value.response.json()
        validate_error(body)
        assert "count_tokens" in body["error"]["message"]


def test_invalid_request_is_an_anthropic_400(proxy: Proxy) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(proxy, BY_NAME["openai"]).messages.create(
            model="claude-sonnet-5-5",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "web_search_20250305", "name": "web_search"}],  # type: ignore[list-item]
        )
    body = caught.value.response.json()
    validate_error(body)
    assert body["error"]["type"] == "invalid_request_error"


def eventually(probe: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def client_requests(proxy: Proxy, provider: str, protocol: str) -> int:
    text = proxy.envoy.admin("/stats/prometheus")
    for line in text.splitlines():
        if line.startswith("envoy_dynamicmodulescustom_aiproxy_client_requests_total{") and (
            f'provider="{provider}"' in line and f'protocol="{protocol}"' in line
        ):
            return int(line.rsplit(" ", 1)[1])
    return 0


def test_client_protocol_counter_and_access_log(proxy: Proxy) -> None:
    before = settled(lambda: client_requests(proxy, "gemini", "anthropic"))
    word = marker()
    body = create_raw(
        client(proxy, BY_NAME["gemini"]), model="claude-sonnet-5-5", max_tokens=64, messages=[{"role": "user", "content": f"log {word}"}]
    )
    eventually(lambda: client_requests(proxy, "gemini", "anthropic") == before + 1)
    usage = body["usage"]
    line = re.compile(
        rf"provider=gemini model=gemini-2.0-flash prompt_tokens={usage['input_tokens']} "
        rf"completion_tokens={usage['output_tokens']} total_tokens=\d+ client_protocol=anthropic"
    )
    eventually(lambda: bool(line.search(proxy.envoy.access_log())))
    # Native claude: the reply passes through untouched and its usage still reaches the log.
    word = marker()
    native = create_raw(
        client(proxy, BY_NAME["claude"]), model="claude-sonnet-5-5", max_tokens=64, messages=[{"role": "user", "content": f"count {word} me"}]
    )
    u = native["usage"]
    native_line = (
        f"provider=claude model=claude-opus-5-5 prompt_tokens={u['input_tokens']} completion_tokens={u['output_tokens']} "
        f"total_tokens={u['input_tokens'] + u['output_tokens']} client_protocol=anthropic"
    )
    eventually(lambda: native_line in proxy.envoy.access_log())
    # An OpenAI client on the same provider is counted apart.
    openai_before = client_requests(proxy, "gemini", "openai")
    proxy.client("gemini").chat.completions.create(model="gemini-2.0-flash", messages=[{"role": "user", "content": "hi"}])
    eventually(lambda: client_requests(proxy, "gemini", "openai") == openai_before + 1)


def test_no_key_in_any_log_line(proxy: Proxy) -> None:
    for target in TARGETS:
        create_raw(client(proxy, target), model=target.model, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    time.sleep(0.5)  # let the access log flush
    logs = proxy.envoy.log() + proxy.envoy.access_log()
    leaked = [s for s in [*proxy.secrets, ANT_CLIENT_KEY] if s in logs]
    assert not leaked, f"credentials in Envoy's logs: {leaked}"
