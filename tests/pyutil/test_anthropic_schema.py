"""The Anthropic shape checker accepts the reference's examples and rejects broken variants."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pyutil.anthropic_schema import (
    AnthropicShapeError,
    parse_sse,
    validate_error,
    validate_message,
    validate_stream,
)

# Shapes of Anthropic's "Messages" and "Streaming Messages" reference examples.
MESSAGE: dict[str, Any] = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "text", "text": "Hi! My name is Claude."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "SF"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 2095, "output_tokens": 503},
}


def sse(*events: tuple[str, dict[str, Any]]) -> str:
    return "".join(f"event: {n}\ndata: {json.dumps(d)}\n\n" for n, d in events)


STREAM = sse(
    ("message_start", {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQB"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("ping", {"type": "ping"}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 15}}),
    ("message_stop", {"type": "message_stop"}),
)


def test_reference_examples_pass() -> None:
    validate_message(MESSAGE)
    validate_error({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    message = validate_stream(parse_sse(STREAM))
    assert message["content"][0] == {"type": "thinking", "thinking": "Let me", "signature": "EqQB"}
    assert message["content"][1]["input"] == {"a": 1}
    assert message["usage"] == {"input_tokens": 25, "output_tokens": 15}


@pytest.mark.parametrize(
    "path,value",
    [
        (("type",), "msg"),
        (("role",), "user"),
        (("stop_reason",), "stop"),
        (("usage", "input_tokens"), -1),
        (("content", 1, "input"), "[]"),
        (("content", 0, "type"), "image"),
    ],
)
def test_broken_messages_fail(path: tuple[Any, ...], value: Any) -> None:
    broken = copy.deepcopy(MESSAGE)
    target: Any = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(AnthropicShapeError):
        validate_message(broken)


def test_broken_errors_and_streams_fail() -> None:
    with pytest.raises(AnthropicShapeError):
        validate_error({"error": {"message": "x", "type": "api_error"}})
    with pytest.raises(AnthropicShapeError):
        validate_error({"type": "error", "error": {"message": "x", "type": "server_error"}})
    events = parse_sse(STREAM)
    for broken in (
        events[1:],  # no message_start
        events[:-1],  # no message_stop
        [e for e in events if e[0] != "content_block_stop"],
        [e for e in events if e[0] != "message_delta"],
        events[:2] + events[4:],  # thinking block never closed... then another starts
    ):
        with pytest.raises(AnthropicShapeError):
            validate_stream(broken)
    mixed = STREAM.replace('"input_json_delta", "partial_json": "1}"', '"text_delta", "text": "1}"')
    with pytest.raises(AnthropicShapeError):
        validate_stream(parse_sse(mixed))
