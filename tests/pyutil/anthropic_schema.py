"""Shape checks for Anthropic Messages API output, written from Anthropic's public API reference
("Messages" response object, "Streaming Messages" event types and order, "Errors").

``validate_message``, ``validate_error`` and ``validate_event`` check one object;
``parse_sse`` splits a raw event stream; ``validate_stream`` checks the event order and returns the
message the events accumulate into (as the SDKs build it). Each raises ``AnthropicShapeError``.
"""

from __future__ import annotations

import json
from typing import Any, Final

STOP_REASONS: Final = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "model_context_window_exceeded"}
)
ERROR_TYPES: Final = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    }
)
DELTA_FIELDS: Final = {
    "text_delta": "text",
    "input_json_delta": "partial_json",
    "thinking_delta": "thinking",
    "signature_delta": "signature",
}
BLOCK_DELTAS: Final = {
    "text": {"text_delta", "citations_delta"},
    "tool_use": {"input_json_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
}

__all__ = [
    "AnthropicShapeError",
    "parse_sse",
    "validate_error",
    "validate_event",
    "validate_message",
    "validate_stream",
]


class AnthropicShapeError(AssertionError):
    """An object does not have the documented shape."""


def _fail(where: str, message: str) -> AnthropicShapeError:
    return AnthropicShapeError(f"{where}: {message}")


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"expected an object, got {value!r}")
    return value


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _fail(f"{where}.{key}", f"expected a string, got {value!r}")
    return value


def _uint(obj: dict[str, Any], key: str, where: str, optional: bool = False) -> None:
    value = obj.get(key)
    if optional and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _fail(f"{where}.{key}", f"expected a non-negative integer, got {value!r}")


def _type(obj: dict[str, Any], expected: str, where: str) -> None:
    if obj.get("type") != expected:
        raise _fail(f"{where}.type", f"expected {expected!r}, got {obj.get('type')!r}")


def validate_usage(usage: Any, where: str = "usage", delta: bool = False) -> None:
    u = _obj(usage, where)
    _uint(u, "input_tokens", where, optional=delta)
    _uint(u, "output_tokens", where)
    _uint(u, "cache_creation_input_tokens", where, optional=True)
    _uint(u, "cache_read_input_tokens", where, optional=True)


def validate_block(block: Any, where: str) -> None:
    b = _obj(block, where)
    kind = b.get("type")
    if kind == "text":
        _str(b, "text", where)
    elif kind == "thinking":
        _str(b, "thinking", where)
        if "signature" in b:  # content_block_start may omit it; signature_delta fills it in
            _str(b, "signature", where)
    elif kind == "redacted_thinking":
        _str(b, "data", where)
    elif kind == "tool_use":
        _str(b, "id", where)
        _str(b, "name", where)
        _obj(b.get("input"), f"{where}.input")
    else:
        raise _fail(f"{where}.type", f"unknown content block type {kind!r}")


def _stop(obj: dict[str, Any], where: str, allow_null: bool) -> None:
    reason = obj.get("stop_reason")
    if not ((reason is None and allow_null) or reason in STOP_REASONS):
        raise _fail(f"{where}.stop_reason", repr(reason))
    seq = obj.get("stop_sequence")
    if seq is not None and not isinstance(seq, str):
        raise _fail(f"{where}.stop_sequence", repr(seq))


def validate_message(message: Any, started: bool = False) -> None:
    """A whole Message, or ``message_start.message`` when ``started``."""
    m = _obj(message, "message")
    _str(m, "id", "message")
    _type(m, "message", "message")
    if m.get("role") != "assistant":
        raise _fail("message.role", repr(m.get("role")))
    _str(m, "model", "message")
    content = m.get("content")
    if not isinstance(content, list):
        raise _fail("message.content", "expected an array")
    if started and content:
        raise _fail("message_start.message.content", "must be empty")
    for i, block in enumerate(content):
        validate_block(block, f"message.content[{i}]")
    if not started:
        for i, block in enumerate(content):
            if block.get("type") == "thinking":
                _str(block, "signature", f"message.content[{i}]")
    _stop(m, "message", allow_null=started)
    validate_usage(m.get("usage"), "message.usage")


def validate_error(body: Any) -> None:
    """``{"type": "error", "error": {"type": ..., "message": ...}}``."""
    b = _obj(body, "error body")
    _type(b, "error", "error body")
    e = _obj(b.get("error"), "error")
    _str(e, "message", "error")
    if e.get("type") not in ERROR_TYPES:
        raise _fail("error.type", repr(e.get("type")))


def validate_event(name: str, data: Any) -> None:
    d = _obj(data, name)
    _type(d, name, f"event {name}")
    if name == "message_start":
        validate_message(d.get("message"), started=True)
    elif name == "content_block_start":
        _uint(d, "index", name)
        validate_block(d.get("content_block"), f"{name}.content_block")
    elif name == "content_block_delta":
        _uint(d, "index", name)
        delta = _obj(d.get("delta"), f"{name}.delta")
        kind = delta.get("type")
        if kind == "citations_delta":
            _obj(delta.get("citation"), f"{name}.delta.citation")
        elif kind in DELTA_FIELDS:
            _str(delta, DELTA_FIELDS[kind], f"{name}.delta")
        else:
            raise _fail(f"{name}.delta.type", repr(kind))
    elif name == "content_block_stop":
        _uint(d, "index", name)
    elif name == "message_delta":
        _stop(_obj(d.get("delta"), f"{name}.delta"), f"{name}.delta", allow_null=True)
        validate_usage(d.get("usage"), f"{name}.usage", delta=True)
    elif name == "error":
        validate_error(d)
    elif name not in ("message_stop", "ping"):
        raise _fail("event", f"unknown event type {name!r}")


def parse_sse(raw: bytes | str) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, data)`` pairs of a raw Anthropic event stream, each validated."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    text = text.replace("\r\n", "\n")
    events: list[tuple[str, dict[str, Any]]] = []
    for chunk in text.split("\n\n"):
        if not chunk.strip():
            continue
        name, data = "", []
        for line in chunk.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].lstrip())
            elif line.startswith(":"):
                continue
            else:
                raise _fail("stream", f"unexpected line {line!r}")
        if not name:
            raise _fail("stream", f"event without a name: {chunk!r}")
        obj = json.loads("\n".join(data))
        validate_event(name, obj)
        events.append((name, obj))
    return events


def validate_stream(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Event order; returns the accumulated message (or the error body for an ``error`` stream)."""
    seq = [(n, d) for n, d in events if n != "ping"]
    if not seq:
        raise _fail("stream", "empty")
    if seq[0][0] == "error":
        return seq[0][1]
    if seq[0][0] != "message_start":
        raise _fail("stream", f"must start with message_start, got {seq[0][0]}")
    message = json.loads(json.dumps(seq[0][1]["message"]))
    content: list[dict[str, Any]] = message["content"]
    open_block: dict[str, Any] | None = None
    partial = ""
    delta_seen = stopped = False
    for name, d in seq[1:]:
        if stopped:
            raise _fail("stream", f"{name} after message_stop")
        if name == "error":
            return d
        if name == "content_block_start":
            if open_block is not None or delta_seen:
                raise _fail("stream", "block started while another is open or after message_delta")
            if d["index"] != len(content):
                raise _fail("stream", f"block index {d['index']}, expected {len(content)}")
            open_block = dict(d["content_block"])
            content.append(open_block)
            partial = ""
        elif name == "content_block_delta":
            if open_block is None or d["index"] != len(content) - 1:
                raise _fail("stream", "delta outside the open block")
            kind = d["delta"]["type"]
            if kind not in BLOCK_DELTAS.get(open_block["type"], set()):
                raise _fail("stream", f"{kind} inside a {open_block['type']} block")
            if kind == "input_json_delta":
                partial += d["delta"]["partial_json"]
            elif kind == "signature_delta":
                open_block["signature"] = d["delta"]["signature"]
            elif kind != "citations_delta":
                key = DELTA_FIELDS[kind]
                open_block[key] = open_block.get(key, "") + d["delta"][key]
        elif name == "content_block_stop":
            if open_block is None or d["index"] != len(content) - 1:
                raise _fail("stream", "stop outside the open block")
            if open_block["type"] == "tool_use":
                value = json.loads(partial) if partial else {}
                if not isinstance(value, dict):
                    raise _fail("stream", f"tool input is not an object: {partial!r}")
                open_block["input"] = value
            open_block = None
        elif name == "message_delta":
            if open_block is not None:
                raise _fail("stream", "message_delta while a block is open")
            delta_seen = True
            message["stop_reason"] = d["delta"].get("stop_reason")
            message["stop_sequence"] = d["delta"].get("stop_sequence")
            for key, value in d["usage"].items():
                if value is not None:
                    message["usage"][key] = value
        elif name == "message_stop":
            if not delta_seen:
                raise _fail("stream", "message_stop before message_delta")
            stopped = True
        else:
            raise _fail("stream", f"unexpected event {name}")
    if not stopped:
        raise _fail("stream", "did not end with message_stop")
    validate_message(message)
    return message
