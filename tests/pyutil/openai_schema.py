"""Validate what the gateway emits against the OpenAI OpenAPI spec.

The spec lives at ``<repo>/../shared/spec/openai-openapi.yaml`` (override with the
``AIPROXY_OPENAI_SPEC`` environment variable).  It marks nullable fields the
OpenAPI-3.0 way (``nullable: true``), which a JSON Schema 2020-12 validator
ignores, so every such node is rewritten to allow ``null`` before validating
(see ``shared/spec/README.txt``):

* a node with ``$ref``/``anyOf``/``oneOf``/``allOf`` becomes
  ``{"anyOf": [node, {"type": "null"}]}``;
* otherwise ``"null"`` is added to its ``type`` and, if it has one, ``None`` to
  its ``enum``.

The 3 MB YAML is loaded and preprocessed once per process (C loader when
available); compiled validators are cached per schema name.

Public API::

    validate_chat_completion(obj)      # CreateChatCompletionResponse
    validate_chat_chunk(obj)           # CreateChatCompletionStreamResponse
    validate_embedding_response(obj)   # CreateEmbeddingResponse
    validate_error(obj)                # ErrorResponse
    validate_sse_stream(raw_bytes)     # every chunk valid, ends with data: [DONE]

Each raises :class:`OpenAISchemaError` (an ``AssertionError``, so pytest shows
it as a plain test failure) with every violation and its JSON path.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import threading
from pathlib import Path
from typing import Any, Final

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError, best_match

__all__ = [
    "OpenAISchemaError",
    "SSEEvent",
    "spec_path",
    "load_spec",
    "schema_for",
    "validate",
    "validate_chat_completion",
    "validate_chat_chunk",
    "validate_embedding_response",
    "validate_error",
    "validate_sse_stream",
    "parse_sse_events",
]

SPEC_ENV: Final = "AIPROXY_OPENAI_SPEC"
CHAT_COMPLETION: Final = "CreateChatCompletionResponse"
CHAT_CHUNK: Final = "CreateChatCompletionStreamResponse"
EMBEDDING_RESPONSE: Final = "CreateEmbeddingResponse"
ERROR_RESPONSE: Final = "ErrorResponse"

_COMPOSITE_KEYS: Final = ("$ref", "anyOf", "oneOf", "allOf")
_MAX_REPORTED_ERRORS: Final = 8


class OpenAISchemaError(AssertionError):
    """An object does not match the named OpenAI schema."""

    def __init__(self, schema_name: str, message: str, errors: list[ValidationError] | None = None) -> None:
        super().__init__(f"{schema_name}: {message}")
        self.schema_name = schema_name
        self.errors: list[ValidationError] = errors or []


def spec_path() -> Path:
    """Where the spec is read from: ``$AIPROXY_OPENAI_SPEC`` or ``<repo>/../shared/spec``."""
    override = os.environ.get(SPEC_ENV)
    if override:
        return Path(override)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "spec" / "openai-openapi.yaml"


def _allow_null(node: dict[str, Any]) -> dict[str, Any]:
    """Rewrite one schema node carrying OpenAPI-3.0 ``nullable`` (already recursed into)."""
    nullable = node.pop("nullable", None)
    if nullable is not True:
        return node
    if any(key in node for key in _COMPOSITE_KEYS):
        return {"anyOf": [node, {"type": "null"}]}
    if "type" in node:
        current = node["type"]
        types = list(current) if isinstance(current, list) else [current]
        if "null" not in types:
            types.append("null")
        node["type"] = types
        if isinstance(node.get("enum"), list) and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
    elif isinstance(node.get("enum"), list) and None not in node["enum"]:
        node["enum"] = [*node["enum"], None]
    # A node with neither type nor composite keywords already accepts null.
    return node


def _rewrite_nullable(node: Any) -> Any:
    """Return a copy of ``node`` with every ``nullable: true`` turned into JSON Schema."""
    if isinstance(node, list):
        return [_rewrite_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten = {key: _rewrite_nullable(value) for key, value in node.items()}
    # Only a real boolean marks a schema node; a property *named* "nullable"
    # would map to a schema dict, which we leave alone.
    if rewritten.get("nullable") is True or rewritten.get("nullable") is False:
        return _allow_null(rewritten)
    return rewritten


_load_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def _load_components(path: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, "rb") as handle:
            spec = yaml.load(handle, Loader=loader)  # noqa: S506 - safe loader
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"OpenAI spec not found at {path}; set {SPEC_ENV} to its location") from exc
    schemas = spec.get("components", {}).get("schemas") if isinstance(spec, dict) else None
    if not isinstance(schemas, dict):
        raise ValueError(f"{path} has no components/schemas")
    return {"schemas": _rewrite_nullable(schemas)}


def load_spec() -> dict[str, Any]:
    """The preprocessed ``components`` object (cached; do not mutate)."""
    with _load_lock:
        return _load_components(str(spec_path()))


def schema_for(name: str) -> dict[str, Any]:
    """A copy of one preprocessed component schema, for inspection."""
    schemas = load_spec()["schemas"]
    if name not in schemas:
        raise KeyError(f"no schema named {name!r} in {spec_path()}")
    return copy.deepcopy(schemas[name])


@functools.lru_cache(maxsize=32)
def _validator(path: str, name: str) -> jsonschema.Draft202012Validator:
    components = _load_components(path)
    if name not in components["schemas"]:
        raise KeyError(f"no schema named {name!r} in {path}")
    # Refs are "#/components/schemas/X": keep the components under the root
    # so they resolve inside this one document.
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"#/components/schemas/{name}",
        "components": components,
    }
    return jsonschema.Draft202012Validator(root)


def _json_path(error: ValidationError) -> str:
    parts = ["$"]
    for item in error.absolute_path:
        parts.append(f"[{item}]" if isinstance(item, int) else f".{item}")
    return "".join(parts)


def _describe(error: ValidationError) -> str:
    return f"at {_json_path(error)}: {error.message}"


def validate(name: str, obj: Any) -> None:
    """Validate ``obj`` against ``components/schemas/<name>``; raise :class:`OpenAISchemaError`."""
    with _load_lock:
        validator = _validator(str(spec_path()), name)
    errors = sorted(validator.iter_errors(obj), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if not errors:
        return
    best = best_match(errors)
    lines = [f"{len(errors)} schema violation(s); most relevant {_describe(best) if best else '?'}"]
    for error in errors[:_MAX_REPORTED_ERRORS]:
        lines.append(f"  - {_describe(error)}")
    if len(errors) > _MAX_REPORTED_ERRORS:
        lines.append(f"  ... and {len(errors) - _MAX_REPORTED_ERRORS} more")
    lines.append(f"  object: {_short(obj)}")
    raise OpenAISchemaError(name, "\n".join(lines), errors)


def _short(obj: Any, limit: int = 600) -> str:
    text = json.dumps(obj, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def validate_chat_completion(obj: Any) -> None:
    """A buffered chat completion (``CreateChatCompletionResponse``)."""
    validate(CHAT_COMPLETION, obj)


def validate_chat_chunk(obj: Any) -> None:
    """One streamed ``chat.completion.chunk`` (``CreateChatCompletionStreamResponse``)."""
    validate(CHAT_CHUNK, obj)


def validate_embedding_response(obj: Any) -> None:
    """An embeddings response (``CreateEmbeddingResponse``)."""
    validate(EMBEDDING_RESPONSE, obj)


def validate_error(obj: Any) -> None:
    """An error body (``ErrorResponse``: ``{"error": {message, type, param, code}}``)."""
    validate(ERROR_RESPONSE, obj)


class SSEEvent:
    """One server-sent event: its ``event:`` name (or None) and joined ``data:`` lines."""

    __slots__ = ("event", "data", "id")

    def __init__(self, event: str | None, data: str, event_id: str | None) -> None:
        self.event = event
        self.data = data
        self.id = event_id

    def __repr__(self) -> str:
        return f"SSEEvent(event={self.event!r}, id={self.id!r}, data={self.data[:80]!r})"


def parse_sse_events(raw: bytes | str) -> list[SSEEvent]:
    """Split an SSE body into events (per the WHATWG event-stream rules).

    Lines end with CRLF, LF or CR; an empty line ends an event; lines starting
    with ``:`` are comments; ``data`` lines are joined with ``\\n``; the event
    name resets per event while the last ``id`` persists.  Events
    without any ``data`` line are dropped, as a browser would.
    """
    text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    events: list[SSEEvent] = []
    name: str | None = None
    event_id: str | None = None
    data: list[str] = []
    for line in text.split("\n"):
        if line == "":
            if data:
                events.append(SSEEvent(name, "\n".join(data), event_id))
            name, data = None, []
            continue
        if line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id":
            event_id = value
    if data:
        # A final event without its terminating blank line (stream cut short).
        events.append(SSEEvent(name, "\n".join(data), event_id))
    return events


def validate_sse_stream(raw: bytes | str, *, min_chunks: int = 1) -> list[dict[str, Any]]:
    """Validate a whole ``text/event-stream`` chat completion body.

    Every ``data:`` event before the last must be a JSON object valid against
    ``CreateChatCompletionStreamResponse``; the last must be ``[DONE]`` and the
    body must end with that event's blank line.  Returns the parsed chunks.
    """
    text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    events = parse_sse_events(text)
    if not events:
        raise OpenAISchemaError(CHAT_CHUNK, f"stream has no data events: {text[:200]!r}")
    last = events[-1]
    if last.data.strip() != "[DONE]":
        raise OpenAISchemaError(
            CHAT_CHUNK, f"stream does not end with 'data: [DONE]' (last event data: {last.data[:200]!r})"
        )
    normalized = text.replace("\r\n", "\n").replace("\r", "\n").rstrip(" \t")
    if not normalized.endswith("\n\n"):
        raise OpenAISchemaError(CHAT_CHUNK, "final 'data: [DONE]' event is not terminated by a blank line")
    chunks: list[dict[str, Any]] = []
    for index, event in enumerate(events[:-1]):
        if event.data.strip() == "[DONE]":
            raise OpenAISchemaError(CHAT_CHUNK, f"event #{index} is [DONE] but more events follow it")
        try:
            chunk = json.loads(event.data)
        except json.JSONDecodeError as exc:
            raise OpenAISchemaError(CHAT_CHUNK, f"event #{index} is not JSON ({exc}): {event.data[:200]!r}") from exc
        try:
            validate_chat_chunk(chunk)
        except OpenAISchemaError as exc:
            raise OpenAISchemaError(CHAT_CHUNK, f"event #{index} invalid: {exc}", exc.errors) from exc
        chunks.append(chunk)
    if len(chunks) < min_chunks:
        raise OpenAISchemaError(
            CHAT_CHUNK, f"stream has {len(chunks)} chunk(s) before [DONE], expected >= {min_chunks}"
        )
    return chunks
