"""Tests of the OpenAI-spec validator used on what the gateway emits."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from pyutil import openai_schema as oas  # noqa: E402
from pyutil.openai_schema import (  # noqa: E402
    OpenAISchemaError,
    validate_chat_chunk,
    validate_chat_completion,
    validate_embedding_response,
    validate_error,
    validate_sse_stream,
)

# A chat completion as api.openai.com returns it (fields and nesting as in the API reference).
REAL_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I assist you today?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}

TOOL_COMPLETION: dict[str, Any] = {
    **REAL_COMPLETION,
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_abc123",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
}


def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1694268190,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


def sse(*objs: Any, done: bool = True, newline: str = "\n") -> bytes:
    parts = [f"data: {json.dumps(o)}{newline}{newline}" for o in objs]
    if done:
        parts.append(f"data: [DONE]{newline}{newline}")
    return "".join(parts).encode()


# --------------------------------------------------------------------------
# spec loading and the nullable rewrite
# --------------------------------------------------------------------------


def test_spec_is_found_and_cached() -> None:
    assert oas.spec_path().is_file(), f"spec missing at {oas.spec_path()}"
    first = oas.load_spec()
    assert oas.load_spec() is first
    assert "CreateChatCompletionResponse" in first["schemas"]


def test_no_nullable_keyword_survives_preprocessing() -> None:
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            assert node.get("nullable") not in (True, False), node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(oas.load_spec())


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"type": "string", "nullable": True}, {"type": ["string", "null"]}),
        (
            {"type": "string", "enum": ["a", "b"], "nullable": True},
            {"type": ["string", "null"], "enum": ["a", "b", None]},
        ),
        (
            {"$ref": "#/components/schemas/X", "nullable": True},
            {"anyOf": [{"$ref": "#/components/schemas/X"}, {"type": "null"}]},
        ),
        (
            {"allOf": [{"$ref": "#/a"}], "description": "d", "nullable": True},
            {"anyOf": [{"allOf": [{"$ref": "#/a"}], "description": "d"}, {"type": "null"}]},
        ),
        (
            {"oneOf": [{"type": "string"}], "nullable": True},
            {"anyOf": [{"oneOf": [{"type": "string"}]}, {"type": "null"}]},
        ),
        ({"type": "integer", "nullable": False}, {"type": "integer"}),
        ({"description": "anything", "nullable": True}, {"description": "anything"}),
        # a property *named* nullable is a schema, not the keyword
        (
            {"type": "object", "properties": {"nullable": {"type": "boolean"}}},
            {"type": "object", "properties": {"nullable": {"type": "boolean"}}},
        ),
    ],
)
def test_rewrite_nullable(node: dict[str, Any], expected: dict[str, Any]) -> None:
    original = copy.deepcopy(node)
    assert oas._rewrite_nullable(node) == expected
    assert node == original  # input untouched


def test_rewrite_is_recursive() -> None:
    node = {"type": "object", "properties": {"a": {"type": "array", "items": {"$ref": "#/x", "nullable": True}}}}
    out = oas._rewrite_nullable(node)
    assert out["properties"]["a"]["items"] == {"anyOf": [{"$ref": "#/x"}, {"type": "null"}]}


def test_spec_path_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "mini.yaml"
    spec.write_text(
        "openapi: 3.0.0\n"
        "components:\n"
        "  schemas:\n"
        "    ErrorResponse:\n"
        "      type: object\n"
        "      required: [error]\n"
        "      properties:\n"
        "        error:\n"
        "          type: string\n"
        "          nullable: true\n"
    )
    monkeypatch.setenv(oas.SPEC_ENV, str(spec))
    assert oas.spec_path() == spec
    validate_error({"error": None})
    validate_error({"error": "x"})
    with pytest.raises(OpenAISchemaError):
        validate_error({"error": {"message": "m", "type": "t", "param": None, "code": None}})


def test_missing_spec_has_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(oas.SPEC_ENV, str(tmp_path / "absent.yaml"))
    with pytest.raises(FileNotFoundError, match="AIPROXY_OPENAI_SPEC"):
        validate_error({})


# --------------------------------------------------------------------------
# chat completions
# --------------------------------------------------------------------------


def test_real_chat_completion_passes() -> None:
    validate_chat_completion(REAL_COMPLETION)
    validate_chat_completion(TOOL_COMPLETION)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda o: o.pop("created"), "'created' is a required property"),
        (lambda o: o["choices"][0]["message"].pop("refusal"), "'refusal' is a required property"),
        (lambda o: o["choices"][0].pop("logprobs"), "'logprobs' is a required property"),
        (lambda o: o["choices"][0].update(finish_reason=None), "$.choices[0].finish_reason"),
        (lambda o: o.update(object="chat.completion.chunk"), "$.object"),
        (lambda o: o["usage"].pop("total_tokens"), "'total_tokens' is a required property"),
    ],
)
def test_broken_chat_completion_fails_with_path(mutate: Any, needle: str) -> None:
    broken = copy.deepcopy(REAL_COMPLETION)
    mutate(broken)
    with pytest.raises(OpenAISchemaError) as info:
        validate_chat_completion(broken)
    message = str(info.value)
    assert message.startswith("CreateChatCompletionResponse:")
    assert needle in message
    assert info.value.errors


def test_error_is_an_assertion_error() -> None:
    with pytest.raises(AssertionError):
        validate_chat_completion({})


# --------------------------------------------------------------------------
# chunks and streams
# --------------------------------------------------------------------------


def test_chunk_with_null_finish_reason_passes() -> None:
    validate_chat_chunk(chunk({"role": "assistant", "content": "", "refusal": None}, None))
    validate_chat_chunk(chunk({"content": "Hel"}, None, usage=None))
    validate_chat_chunk(chunk({}, "stop"))


def test_usage_only_final_chunk_passes() -> None:
    final = chunk({}, None, usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})
    final["choices"] = []
    validate_chat_chunk(final)


def test_bad_chunks_fail() -> None:
    with pytest.raises(OpenAISchemaError, match="finish_reason"):
        validate_chat_chunk(chunk({}, "done"))
    missing = chunk({"content": "x"}, None)
    del missing["choices"][0]["finish_reason"]
    with pytest.raises(OpenAISchemaError, match="'finish_reason' is a required property"):
        validate_chat_chunk(missing)
    with pytest.raises(OpenAISchemaError, match=r"\$\.object"):
        validate_chat_chunk({**chunk({}, None), "object": "chat.completion"})


def test_valid_stream_passes_and_returns_chunks() -> None:
    body = sse(chunk({"role": "assistant", "content": ""}, None), chunk({"content": "Hi"}, None), chunk({}, "stop"))
    chunks = validate_sse_stream(body)
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "stop"]
    # CRLF framing, comments and event names are fine too
    crlf = b": keep-alive\r\n\r\n" + sse(chunk({"content": "Hi"}, None), chunk({}, "stop"), newline="\r\n")
    assert len(validate_sse_stream(crlf)) == 2


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (sse(chunk({"content": "Hi"}, None), done=False), "does not end with 'data: [DONE]'"),
        (b"data: {not json}\n\ndata: [DONE]\n\n", "event #0 is not JSON"),
        (sse(chunk({}, "bogus")), "event #0 invalid"),
        (b"data: [DONE]\n\n" + sse(chunk({}, "stop")), "more events follow"),
        (b"", "no data events"),
        (b"data: [DONE]\n\n", "0 chunk(s)"),
        (sse(chunk({}, "stop"))[:-1], "not terminated by a blank line"),
    ],
)
def test_bad_streams_fail(body: bytes, needle: str) -> None:
    with pytest.raises(OpenAISchemaError) as info:
        validate_sse_stream(body)
    assert needle in str(info.value)


def test_parse_sse_events_joins_multiline_data() -> None:
    events = oas.parse_sse_events(b"event: a\nid: 7\ndata: x\ndata: y\n\n:comment\n\ndata:z\n\n")
    # the event name resets per event; the last event id persists (WHATWG semantics)
    assert [(e.event, e.id, e.data) for e in events] == [("a", "7", "x\ny"), (None, "7", "z")]


# --------------------------------------------------------------------------
# embeddings and errors
# --------------------------------------------------------------------------


def test_embedding_response() -> None:
    good: dict[str, Any] = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.0023, -0.0093]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    validate_embedding_response(good)
    bad = copy.deepcopy(good)
    del bad["usage"]["total_tokens"]
    with pytest.raises(OpenAISchemaError, match="total_tokens"):
        validate_embedding_response(bad)


def test_error_response() -> None:
    validate_error(
        {
            "error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
    )
    with pytest.raises(OpenAISchemaError, match="'param' is a required property"):
        validate_error({"error": {"message": "m", "type": "t", "code": None}})
    with pytest.raises(OpenAISchemaError, match="'error' is a required property"):
        validate_error({"message": "m"})
