"""Agent traffic through the real Envoy 1.40 with the official ``openai`` Python SDK.

For openai, claude, gemini, qwen, hunyuan, deepseek and mistral: strict tool calls
(``openai.pydantic_function_tool``) buffered and through the SDK's stream helper, a tool-result
round trip, ``chat.completions.parse`` with a pydantic model, reasoning, embeddings (the SDK's
default base64 and float, exact vectors) and usage details. The mock answers in each provider's
documented shape (see the comments in ``tests/mock_provider/mock_provider.py``); the marker
``[mock:agent]`` makes it add reasoning and usage details.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Final, Literal

import openai
import pytest
from mock_provider import mock_provider as mock_impl
from provider_cases import CASES
from pydantic import BaseModel
from pyutil.openai_schema import validate_chat_chunk, validate_chat_completion, validate_embedding_response



from envoy_harness import envoy_conftest as _envoy_conftest  # noqa: E402


Proxy = _envoy_conftest().Proxy
marker = _envoy_conftest().marker


AGENT_PROVIDERS: Final = ["openai", "claude", "gemini", "qwen", "hunyuan", "deepseek", "mistral"]
REASONING_PROVIDERS: Final = ["claude", "gemini", "qwen", "hunyuan", "deepseek", "mistral"]
STRUCTURED: Final = ["openai", "claude", "gemini", "qwen", "mistral"]
NO_STRUCTURED: Final = ["hunyuan", "deepseek"]
EMBEDDINGS: Final = ["openai", "gemini", "qwen", "hunyuan", "mistral"]
# Providers whose upstream reports cached and reasoning tokens (Hunyuan's and Mistral's usage
# have neither).
USAGE_DETAILS: Final = ["openai", "claude", "gemini", "qwen", "deepseek"]
MODELS: Final = {c.name: c.model for c in CASES}
EMBEDDING_MODELS: Final = {c.name: c.embedding_model for c in CASES}


class GetWeather(BaseModel):
    """Current weather in a city."""

    city: str
    unit: Literal["celsius", "fahrenheit"]


class Answer(BaseModel):
    title: str
    score: int
    tags: list[str]


def weather_tool() -> Any:
    return openai.pydantic_function_tool(GetWeather)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def extra(obj: Any, name: str) -> Any:
    """A field the SDK's types do not declare (``reasoning_content``), from the raw JSON."""
    return obj.to_dict().get(name)


def upstream_json(proxy: Proxy, word: str) -> dict[str, Any]:
    body = proxy.one_upstream(word)["json"]
    assert isinstance(body, dict)
    return body


def strict_schema_upstream(provider: str, body: dict[str, Any]) -> dict[str, Any]:
    """The tool's JSON schema where each provider's docs put it."""
    if provider == "claude":
        return body["tools"][0]["input_schema"]
    if provider == "gemini":
        return body["tools"][0]["function_declarations"][0]["parametersJsonSchema"]
    if provider == "qwen":
        return body["parameters"]["tools"][0]["function"]["parameters"]
    if provider == "hunyuan":
        return json.loads(body["Tools"][0]["Function"]["Parameters"])
    tool = body["tools"][0]["function"]
    assert tool["strict"] is True, tool
    return tool["parameters"]


# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", AGENT_PROVIDERS)
def test_strict_tool_call_buffered(proxy: Proxy, provider: str) -> None:
    word = marker()
    client = proxy.client(provider)
    completion = client.chat.completions.parse(
        model=MODELS[provider], messages=user(f"weather in Paris {word}"), tools=[weather_tool()]
    )
    validate_chat_completion(completion.to_dict())
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls", completion
    calls = choice.message.tool_calls or []
    assert len(calls) == 1, completion
    call = calls[0]
    assert call.type == "function" and call.function.name == "GetWeather"
    assert call.function.parsed_arguments == GetWeather(city="mock", unit="celsius")
    assert call.id
    schema = strict_schema_upstream(provider, upstream_json(proxy, word))
    assert schema["additionalProperties"] is False and schema["required"] == ["city", "unit"], schema
    # Ids are unique per reply (agents key on them).
    other = client.chat.completions.create(
        model=MODELS[provider], messages=user(f"weather in Rome {marker()}"), tools=[weather_tool()]
    )
    assert (other.choices[0].message.tool_calls or [])[0].id != call.id


@pytest.mark.parametrize("provider", AGENT_PROVIDERS)
def test_streamed_tool_call_with_the_stream_helper(proxy: Proxy, provider: str) -> None:
    word = marker()
    client = proxy.client(provider)
    tool_pieces: list[dict[str, Any]] = []
    done_args: list[Any] = []
    with client.chat.completions.stream(
        model=MODELS[provider],
        messages=user(f"weather in Oslo {word}"),
        tools=[weather_tool()],
        stream_options={"include_usage": True},
    ) as stream:
        chunks = []
        for event in stream:
            if event.type == "chunk":
                chunks.append(event.chunk.to_dict())
                for choice in event.chunk.choices:
                    for tc in choice.delta.tool_calls or []:
                        tool_pieces.append(tc.to_dict())
            elif event.type == "tool_calls.function.arguments.done":
                done_args.append(event.parsed_arguments)
        final = stream.get_final_completion()
    for chunk in chunks:
        validate_chat_chunk(chunk)
    # OpenAI's chunk rules: the first piece carries index, id, type and name; later ones index
    # and arguments only.
    assert tool_pieces, chunks
    first, rest = tool_pieces[0], tool_pieces[1:]
    assert first["index"] == 0 and first["id"] and first["type"] == "function", first
    assert first["function"]["name"] == "GetWeather", first
    for piece in rest:
        assert "id" not in piece and "name" not in piece.get("function", {}), piece
    assert done_args == [GetWeather(city="mock", unit="celsius")]
    call = (final.choices[0].message.tool_calls or [])[0]
    assert call.function.parsed_arguments == GetWeather(city="mock", unit="celsius")
    assert final.choices[0].finish_reason == "tool_calls"
    # include_usage: the last chunk has no choices and the usage.
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0, chunks[-1]
    assert all(not c.get("usage") for c in chunks[:-1])


def tool_result_upstream(provider: str, body: dict[str, Any], call_id: str) -> None:
    """The tool result reached the provider in the shape its docs require."""
    if provider == "claude":
        last = body["messages"][-1]
        assert last["role"] == "user", body
        block = last["content"][0]
        assert block["type"] == "tool_result" and block["tool_use_id"] == call_id, body
        prev = body["messages"][-2]["content"]
        assert any(b.get("type") == "tool_use" and b["id"] == call_id for b in prev), body
    elif provider == "gemini":
        parts = body["contents"][-1]["parts"]
        assert parts[0]["functionResponse"]["name"] == "GetWeather", body
        assert any("functionCall" in p for p in body["contents"][-2]["parts"]), body
    elif provider == "qwen":
        last = body["input"]["messages"][-1]
        assert last["role"] == "tool" and last["tool_call_id"] == call_id, body
    elif provider == "hunyuan":
        last = body["Messages"][-1]
        assert last["Role"] == "tool" and last["ToolCallId"] == call_id, body
        assert body["Messages"][-2]["ToolCalls"][0]["Id"] == call_id, body
    else:
        last = body["messages"][-1]
        assert last["role"] == "tool" and last["tool_call_id"] == call_id, body


@pytest.mark.parametrize("provider", AGENT_PROVIDERS)
def test_tool_result_round_trip(proxy: Proxy, provider: str) -> None:
    client = proxy.client(provider)
    first_word = marker()
    messages: list[Any] = user(f"weather in Lima {first_word}")
    first = client.chat.completions.create(model=MODELS[provider], messages=messages, tools=[weather_tool()])
    call = (first.choices[0].message.tool_calls or [])[0]
    word = marker()
    messages = [
        *messages,
        first.choices[0].message.to_dict(),
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21, "note": word})},
    ]
    reply = client.chat.completions.create(model=MODELS[provider], messages=messages, tools=[weather_tool()])
    validate_chat_completion(reply.to_dict())
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls, reply
    assert "mock reply to tool result:" in (choice.message.content or "") and word in (choice.message.content or "")
    tool_result_upstream(provider, upstream_json(proxy, word), call.id)


# ---------------------------------------------------------------------------------------------
# Structured output
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", STRUCTURED)
def test_parse_with_a_pydantic_model(proxy: Proxy, provider: str) -> None:
    word = marker()
    completion = proxy.client(provider).chat.completions.parse(
        model=MODELS[provider], messages=user(f"rate this {word}"), response_format=Answer
    )
    assert completion.choices[0].message.parsed == Answer(title="mock", score=1, tags=[]), completion
    body = upstream_json(proxy, word)
    if provider == "claude":
        schema = body["output_config"]["format"]["schema"]
    elif provider == "gemini":
        schema = body["generation_config"]["responseJsonSchema"]
        assert body["generation_config"]["responseMimeType"] == "application/json"
    elif provider == "qwen":
        schema = body["parameters"]["response_format"]["json_schema"]["schema"]
    else:
        schema = body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["title", "score", "tags"] and schema["additionalProperties"] is False, schema


@pytest.mark.parametrize("provider", NO_STRUCTURED)
def test_parse_where_there_is_no_structured_output_is_a_clear_400(proxy: Proxy, provider: str) -> None:
    word = marker()
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client(provider).chat.completions.parse(
            model=MODELS[provider], messages=user(f"rate this {word}"), response_format=Answer
        )
    error = caught.value.response.json()["error"]
    assert "response_format" in error["message"] and error.get("param") == "response_format", error
    assert not proxy.upstream(word)


# ---------------------------------------------------------------------------------------------
# Reasoning and usage details
# ---------------------------------------------------------------------------------------------


def reasoning_kwargs(provider: str) -> dict[str, Any]:
    # reasoning_effort maps to Claude's thinking budget, Gemini's thinkingConfig and DashScope's
    # enable_thinking / thinking_budget (test_reasoning_effort_reaches_the_thinking_control).
    if provider in ("claude", "gemini"):
        return {"reasoning_effort": "low", "max_tokens": 4096}
    return {"reasoning_effort": "low"} if provider == "qwen" else {}


def thinking_control(provider: str, body: dict[str, Any]) -> Any:
    """The provider's own thinking control in the body aiproxy sent (None when absent)."""
    if provider == "claude":
        return body.get("thinking")
    if provider == "gemini":
        return body.get("generation_config", {}).get("thinkingConfig")
    if provider == "qwen":
        params = body["parameters"]
        return {k: params[k] for k in ("enable_thinking", "thinking_budget") if k in params}
    if provider == "deepseek":
        return {k: body[k] for k in ("reasoning_effort", "thinking") if k in body}
    if provider == "cohere":
        return body.get("thinking")
    raise AssertionError(provider)


@pytest.mark.parametrize(
    ("provider", "effort", "expected"),
    [
        ("claude", "low", {"type": "enabled", "budget_tokens": 1024}),
        ("claude", "none", {"type": "disabled"}),
        ("gemini", "medium", {"thinkingBudget": 8192, "includeThoughts": True}),
        ("gemini", "none", {"thinkingBudget": 0}),
        ("qwen", "high", {"enable_thinking": True, "thinking_budget": 24576}),
        ("qwen", "none", {"enable_thinking": False}),
        ("cohere", "low", {"type": "enabled", "token_budget": 1024}),
        ("cohere", "none", {"type": "disabled"}),
        # DeepSeek reads reasoning_effort itself; `none` is its thinking switch turned off.
        ("deepseek", "high", {"reasoning_effort": "high"}),
        ("deepseek", "none", {"thinking": {"type": "disabled"}}),
    ],
)
def test_reasoning_effort_reaches_the_thinking_control(
    proxy: Proxy, provider: str, effort: str, expected: Any
) -> None:
    word = marker()
    completion = proxy.client(provider).chat.completions.create(
        model=MODELS[provider], messages=user(f"think {word}"), reasoning_effort=effort  # type: ignore[arg-type]
    )
    assert completion.choices[0].message.content
    assert thinking_control(provider, upstream_json(proxy, word)) == expected


def test_reasoning_effort_where_there_is_no_thinking_control_is_a_clear_400(proxy: Proxy) -> None:
    # Hunyuan's ChatCompletions has no thinking switch or budget (README "Agent features").
    word = marker()
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client("hunyuan").chat.completions.create(
            model=MODELS["hunyuan"], messages=user(f"think {word}"), reasoning_effort="low"
        )
    error = caught.value.response.json()["error"]
    assert error.get("param") == "reasoning_effort" and "hunyuan" in error["message"], error
    assert not proxy.upstream(word)


@pytest.mark.parametrize("provider", REASONING_PROVIDERS)
def test_reasoning_buffered_and_streamed(proxy: Proxy, provider: str) -> None:
    client = proxy.client(provider)
    prompt = f"why is the sky blue {marker()} {mock_impl.AGENT_MARKER}"
    expected = mock_impl.reasoning_text(prompt)
    completion = client.chat.completions.create(
        model=MODELS[provider], messages=user(prompt), **reasoning_kwargs(provider)
    )
    validate_chat_completion(completion.to_dict())
    message = completion.choices[0].message
    assert extra(message, "reasoning_content") == expected, message
    assert message.content == mock_impl.reply_text(prompt)

    prompt = f"why is the sea blue {marker()} {mock_impl.AGENT_MARKER}"
    stream = client.chat.completions.create(
        model=MODELS[provider], messages=user(prompt), stream=True, **reasoning_kwargs(provider)
    )
    reasoning, content = "", ""
    for chunk in stream:
        validate_chat_chunk(chunk.to_dict())
        for choice in chunk.choices:
            reasoning += extra(choice.delta, "reasoning_content") or ""
            content += choice.delta.content or ""
    assert reasoning == mock_impl.reasoning_text(prompt)
    assert content == mock_impl.reply_text(prompt)


@pytest.mark.parametrize("provider", USAGE_DETAILS)
def test_usage_details_buffered_and_streamed(proxy: Proxy, provider: str) -> None:
    client = proxy.client(provider)
    prompt = f"count tokens {marker()} {mock_impl.AGENT_MARKER}"
    reasoning = mock_impl.word_count(mock_impl.reasoning_text(prompt))
    completion = client.chat.completions.create(
        model=MODELS[provider], messages=user(prompt), **reasoning_kwargs(provider)
    )
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens is not None
    assert usage.prompt_tokens_details.cached_tokens >= mock_impl.CACHED_TOKENS, usage
    if provider != "claude":  # Claude reports no reasoning-token count
        assert usage.completion_tokens_details is not None, usage
        assert usage.completion_tokens_details.reasoning_tokens == reasoning, usage
    chunks = list(
        client.chat.completions.create(
            model=MODELS[provider],
            messages=user(prompt + " again"),
            stream=True,
            stream_options={"include_usage": True},
            **reasoning_kwargs(provider),
        )
    )
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None, last
    assert last.usage.prompt_tokens_details is not None
    assert (last.usage.prompt_tokens_details.cached_tokens or 0) >= mock_impl.CACHED_TOKENS, last.usage
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize("provider", AGENT_PROVIDERS)
def test_include_usage_final_chunk_has_no_choices(proxy: Proxy, provider: str) -> None:
    prompt = f"short {marker()}"
    chunks = list(
        proxy.client(provider).chat.completions.create(
            model=MODELS[provider], messages=user(prompt), stream=True, stream_options={"include_usage": True}
        )
    )
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.total_tokens > 0, last
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1] if c.choices) == mock_impl.reply_text(prompt)


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------


def float32(values: list[float]) -> list[float]:
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


@pytest.mark.parametrize("provider", EMBEDDINGS)
@pytest.mark.parametrize("encoding", ["default", "float"])
def test_embeddings_exact_vectors(proxy: Proxy, provider: str, encoding: str) -> None:
    texts = [f"first {marker()}", f"second {marker()}"]
    kwargs: dict[str, Any] = {} if encoding == "default" else {"encoding_format": "float"}
    result = proxy.client(provider).embeddings.create(model=EMBEDDING_MODELS[provider], input=texts, **kwargs)
    validate_embedding_response(result.to_dict())
    dims = mock_impl.DEFAULT_EMBEDDING_DIMS
    expected = [mock_impl.embedding_vector(t, dims) for t in texts]
    got = [list(item.embedding) for item in sorted(result.data, key=lambda d: d.index)]
    if encoding == "default":
        # The SDK asked for base64 (little-endian float32) and decoded it: exact float32 values.
        assert got == [float32(v) for v in expected]
        sent = proxy.upstream(texts[0])[-1]["json"]
        if provider in ("openai", "mistral"):
            assert sent["encoding_format"] == "base64", sent
    else:
        assert got == expected


# ---------------------------------------------------------------------------------------------
# Provider specifics
# ---------------------------------------------------------------------------------------------


def test_hunyuan_stop_sequence_is_trimmed(proxy: Proxy) -> None:
    word = marker()
    prompt = f"alpha STOPHERE beta {word}"
    client = proxy.client("hunyuan")
    completion = client.chat.completions.create(model=MODELS["hunyuan"], messages=user(prompt), stop=["STOPHERE"])
    assert completion.choices[0].message.content == "mock reply to: alpha ", completion
    assert upstream_json(proxy, word)["Stop"] == ["STOPHERE"]
    prompt = f"gamma STOPHERE delta {marker()}"
    stream = client.chat.completions.create(
        model=MODELS["hunyuan"], messages=user(prompt), stop=["STOPHERE"], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "mock reply to: gamma "


def test_claude_cache_control_reaches_claude(proxy: Proxy) -> None:
    word = marker()
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f"long shared context {word}", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "question"},
            ],
        }
    ]
    completion = proxy.client("claude").chat.completions.create(model=MODELS["claude"], messages=messages)
    assert completion.choices[0].message.content
    content = upstream_json(proxy, word)["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": f"long shared context {word}", "cache_control": {"type": "ephemeral"}}
    assert "cache_control" not in content[1]


def test_claude_safety_identifier_becomes_metadata_user_id(proxy: Proxy) -> None:
    word = marker()
    proxy.client("claude").chat.completions.create(
        model=MODELS["claude"], messages=user(f"hi {word}"), safety_identifier="user-42", prompt_cache_key="k1"
    )
    body = upstream_json(proxy, word)
    assert body["metadata"] == {"user_id": "user-42"} and "prompt_cache_key" not in body, body
