"""LangChain's ``ChatOpenAI`` (``langchain-openai``, pinned in tests/requirements.txt) through the
real Envoy 1.40: a strict tool bound with ``bind_tools`` (buffered, streamed with usage, and a
tool-result round trip) and ``with_structured_output`` with a pydantic model, for openai, claude,
gemini and qwen. The mock answers in each provider's documented shape (tests/mock_provider)."""

from __future__ import annotations

from typing import Any, Final, Literal

import pytest
from provider_cases import CASES
from pydantic import BaseModel

langchain_openai = pytest.importorskip("langchain_openai")
messages_mod = pytest.importorskip("langchain_core.messages")


from envoy_harness import envoy_conftest as _envoy_conftest  # noqa: E402


CLIENT_KEY = _envoy_conftest().CLIENT_KEY
Proxy = _envoy_conftest().Proxy
marker = _envoy_conftest().marker

PROVIDERS: Final = ["openai", "claude", "gemini", "qwen"]
MODELS: Final = {c.name: c.model for c in CASES}


class GetWeather(BaseModel):
    """Current weather in a city."""

    city: str
    unit: Literal["celsius", "fahrenheit"]


class Answer(BaseModel):
    title: str
    score: int
    tags: list[str]


def chat_model(proxy: Proxy, provider: str, **kwargs: Any) -> Any:
    return langchain_openai.ChatOpenAI(
        base_url=f"{proxy.base_url(provider)}/v1",
        api_key=CLIENT_KEY,
        model=MODELS[provider],
        max_retries=0,
        timeout=20,
        **kwargs,
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bind_tools_buffered_and_tool_result_round_trip(proxy: Proxy, provider: str) -> None:
    llm = chat_model(proxy, provider).bind_tools([GetWeather], strict=True)
    question = messages_mod.HumanMessage(f"weather in Bergen {marker()}")
    first = llm.invoke([question])
    assert len(first.tool_calls) == 1, first
    call = first.tool_calls[0]
    assert call["name"] == "GetWeather" and call["args"] == {"city": "mock", "unit": "celsius"}, call
    assert call["id"], call
    word = marker()
    result = messages_mod.ToolMessage(content=f'{{"temperature": 9, "note": "{word}"}}', tool_call_id=call["id"])
    reply = llm.invoke([question, first, result])
    assert not reply.tool_calls, reply
    assert "mock reply to tool result:" in reply.content and word in reply.content, reply
    assert proxy.one_upstream(word)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bind_tools_streamed_with_usage(proxy: Proxy, provider: str) -> None:
    llm = chat_model(proxy, provider, stream_usage=True).bind_tools([GetWeather], strict=True)
    word = marker()
    chunks = list(llm.stream(f"weather in Tromso {word}"))
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    # LangChain joins OpenAI's tool-call pieces by index; the first carries id and name.
    assert len(merged.tool_calls) == 1, merged
    call = merged.tool_calls[0]
    assert call["name"] == "GetWeather" and call["args"] == {"city": "mock", "unit": "celsius"}, merged
    assert call["id"]
    # The include_usage chunk (choices: []) became usage_metadata.
    usage = merged.usage_metadata
    assert usage is not None and usage["total_tokens"] > 0, merged
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert proxy.one_upstream(word)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_with_structured_output(proxy: Proxy, provider: str) -> None:
    word = marker()
    structured = chat_model(proxy, provider).with_structured_output(Answer, strict=True)
    answer = structured.invoke(f"rate this {word}")
    assert answer == Answer(title="mock", score=1, tags=[]), answer
    # LangChain asked with a strict json_schema response_format; it reached the provider's field.
    body = proxy.one_upstream(word)["json"]
    if provider == "claude":
        schema = body["output_config"]["format"]["schema"]
    elif provider == "gemini":
        schema = body["generation_config"]["responseJsonSchema"]
    elif provider == "qwen":
        schema = body["parameters"]["response_format"]["json_schema"]["schema"]
    else:
        schema = body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["title", "score", "tags"] and schema["additionalProperties"] is False, schema
