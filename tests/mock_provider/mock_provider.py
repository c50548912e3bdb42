#!/usr/bin/env python3
"""One-process impersonation of every LLM provider aiproxy talks to.

Run ``python3 mock_provider.py --port 0`` (stdlib only).  The server binds
127.0.0.1, prints ``LISTENING <port>`` on stdout once it accepts connections,
and serves threaded HTTP/1.1 with keep-alive (buffered replies carry
Content-Length, streams use chunked transfer encoding).  A gateway can route
all provider hostnames to it: it dispatches on the request path, and on the
Host header / ``X-TC-Action`` where the path alone is ambiguous.

Replies are deterministic functions of the request: the assistant text is
``"mock reply to: <last user text>"``; usage counts words (prompt = words of
every system/user/assistant text in the request, completion = words of the
reply); ids are derived from a hash of the request body; ``created`` is the
constant :data:`CREATED`.  Streams carry one content delta per word (at least
three) and are flushed event by event, ``--stream-delay-ms`` apart.  When the
request offers tools (OpenAI/qwen ``tools``, claude ``tools``, gemini
``functionDeclarations``; not with tool choice "none") the reply also calls
the first tool with arguments filled in from its parameter schema (finish
reason ``tool_calls`` / ``tool_use``).  A max-tokens parameter smaller than the
reply's word count cuts the reply to that many words (finish ``length`` /
``max_tokens`` / ``MAX_TOKENS``).

Request headers that steer a reply:

``x-mock-scenario``
    ``error`` (also ``error-429`` / ``error:429``): the provider's documented
    error body and status (401 unless ``x-mock-error-status`` or the suffix
    says otherwise); ``reset``: send part of the reply, then reset the TCP
    connection; ``slow``: sleep ``--slow-ms`` (or ``x-mock-delay-ms``) before
    every stream event / before a buffered reply; ``malformed``: truncated JSON
    body, or a stream with a broken ``data:`` event and a non-SSE line.
    Hostile upstreams (see :func:`hostile_reply`): ``html200`` (an HTML page with status
    200), ``sse-nodata`` (an event stream without a single ``data:`` line), ``truncated`` (the
    stream or body cut after its first part, then closed cleanly), ``empty-json`` (``{}`` with
    status 200), ``text-error`` (503 with a plain-text body), ``html-error`` (502 with an HTML
    page).
``x-mock-delay-ms``
    Per-request delay between stream events (overrides the defaults).

When a gateway does not forward custom headers, the same scenario can be
requested from inside the request body: a marker ``[mock:<scenario>]`` anywhere
in it (e.g. in the user message, ``"[mock:error-429] hi"``) is honoured when no
``x-mock-scenario`` header is present.

Control endpoints (not recorded): ``GET /__mock/health``, ``GET /__mock/requests``
(the request log, JSON), ``DELETE /__mock/requests`` (clear it), and token faults for failover
tests: ``POST /__mock/faults`` with ``{"token": "<api key>" | "*", "status": 429, "count": N}``
makes requests carrying that API key (bearer, ``x-api-key``, ``api-key``, ``x-goog-api-key`` or
``?key=``; ``*``: any request) answer the provider's error with that status, the next ``N`` times
(``count`` absent or null: until cleared); ``GET /__mock/faults`` lists them with their hits,
``DELETE /__mock/faults`` clears them.  Each log entry
has method, host, path (with query), lower-cased headers, raw body text, parsed
JSON (or null), the provider label and scenario, and a ``response`` record
(status, streamed, events_sent, completed, client_disconnected) updated while the
reply is written, so disconnect tests can see that a stream was cut.

Endpoints (shapes cited next to each builder below):

* OpenAI protocol family, any POST path ending ``/chat/completions`` or
  ``/embeddings`` (``/v1/...`` openai, moonshot, deepseek, ollama, ...;
  ``/chat/completions`` github; ``/openai/v1/...`` groq; ``/api/paas/v4/...``
  zhipuai; ``/v2/...`` baidu qianfan v2; ``/compatible-mode/v1/...`` qwen
  compatible; ``/client/v4/accounts/{id}/ai/v1/...`` cloudflare;
  ``/openai/deployments/{dep}/...?api-version=`` azure) plus
  ``/v1/text/chatcompletion_v2`` (minimax v2);
* ``GET /v1/files/{id}/content`` moonshot file extraction;
* ``POST /v1/messages`` claude (a ``thinking`` block first when the request enables
  ``thinking``), ``POST /v1/messages/count_tokens`` claude token counting;
* DeepSeek ``deepseek-reasoner`` (host ``deepseek``, model containing ``reasoner``) answers with
  ``reasoning_content`` before ``content`` (DeepSeek API docs, "Reasoning Model");
* ``POST /v1beta/models/{model}:generateContent | :streamGenerateContent |
  :embedContent | :batchEmbedContents`` gemini (``/v1/models/...`` too);
* ``POST /api/v1/services/aigc/text-generation/generation``,
  ``.../multimodal-generation/generation``,
  ``/api/v1/services/embeddings/text-embedding/text-embedding`` qwen (DashScope);
* ``POST /`` with ``X-TC-Action`` (or a tencentcloudapi.com host) hunyuan;
* ``POST /v1/text/chatcompletion_pro?GroupId=`` minimax pro;
* ``POST /v2/translate`` deepl (free and pro hosts alike);
* ``POST /v2/chat`` and ``POST /v2/embed`` cohere (v2);
* ``POST /v3/chat`` coze (bot chat, for ``protocol: original``; never translated);
* ``POST /model/{id}/converse | /converse-stream`` bedrock (event-stream frames);
* ``POST /v1/[projects/{p}/locations/{r}/]publishers/google/models/{m}:generateContent |
  :streamGenerateContent`` and ``.../publishers/anthropic/models/{m}:rawPredict |
  :streamRawPredict`` vertex; ``POST /token`` Google's OAuth token exchange (JWT bearer grant);
* ``GET /ai/context.txt`` and ``GET /files/...``: :data:`CONTEXT_TEXT`.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Final
from urllib.parse import parse_qs, urlsplit

JSON = Any

CREATED: Final = 1717171717
"""Constant ``created`` timestamp (seconds) used in every reply."""

CONTEXT_TEXT: Final = "Mock context document for aiproxy tests.\n" "The capital of Mockland is Testville.\n"
"""Body of ``GET /ai/context.txt`` and ``GET /files/...``."""

DEFAULT_EMBEDDING_DIMS: Final = 8
DEFAULT_SLOW_MS: Final = 300.0
DEFAULT_ERROR_STATUS: Final = 401
HUNYUAN_NOTE: Final = "以上内容为AI生成，不代表开发者立场，请勿删除或修改本标记"
MINIMAX_DEFAULT_BOT: Final = "MM智能助理"

SSE_TYPE: Final = "text/event-stream; charset=utf-8"
JSON_TYPE: Final = "application/json"


# --------------------------------------------------------------------------
# Request / reply model
# --------------------------------------------------------------------------


@dataclass
class MockRequest:
    method: str
    host: str
    path: str  # with query string
    route: str  # path without query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: JSON

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def qparam(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def obj(self) -> dict[str, Any]:
        """The JSON body if it is an object, else an empty dict."""
        return self.json if isinstance(self.json, dict) else {}

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.method.encode() + self.route.encode() + self.body).hexdigest()


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes = b""
    events: list[bytes] | None = None  # a stream when not None
    headers: list[tuple[str, str]] = field(default_factory=list)


def dumps(obj: JSON) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def json_reply(obj: JSON, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, JSON_TYPE, dumps(obj).encode("utf-8"), None, headers or [])


def sse_data(obj: JSON) -> bytes:
    """``data: <json>`` event (OpenAI, gemini, hunyuan, minimax framing)."""
    payload = obj if isinstance(obj, str) else dumps(obj)
    return f"data: {payload}\n\n".encode("utf-8")


def sse_named(event: str, obj: JSON) -> bytes:
    """``event: <name>`` + ``data: <json>`` event (claude framing)."""
    return f"event: {event}\ndata: {dumps(obj)}\n\n".encode("utf-8")


# --------------------------------------------------------------------------
# Deterministic content helpers
# --------------------------------------------------------------------------


def text_of(content: Any) -> str:
    """Concatenated text of a message content in any provider's shape."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(t for t in (text_of(part) for part in content) if t)
    if isinstance(content, dict):
        for key in ("text", "Text"):
            value = content.get(key)
            if isinstance(value, str):
                return value
        for key in ("content", "Content", "parts"):
            if key in content:
                return text_of(content[key])
    return ""


def word_count(*texts: str) -> int:
    return sum(len(t.split()) for t in texts)


def reply_text(last_user: str) -> str:
    text = last_user.strip() or "(empty)"
    return f"mock reply to: {text}"


def split_pieces(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is ``text`` (>= 3 for any reply)."""
    pieces = re.findall(r"\s*\S+", text)
    if not pieces:
        return [text]
    tail = text[len("".join(pieces)) :]
    if tail:
        pieces[-1] += tail
    return pieces


def truncate_words(text: str, limit: int | None) -> tuple[str, bool]:
    """Cut ``text`` to ``limit`` words (max-tokens emulation); True when cut."""
    if limit is None or limit <= 0:
        return text, False
    pieces = split_pieces(text)
    if len(pieces) <= limit:
        return text, False
    return "".join(pieces[:limit]), True


def sub(obj: Any, key: str) -> dict[str, Any]:
    """``obj[key]`` when both are JSON objects, else an empty dict."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def mock_value(schema: Any) -> JSON:
    """A deterministic value valid for a (JSON/OpenAPI/Gemini) schema."""
    if not isinstance(schema, dict):
        return "mock"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    kind = str(kind).lower()
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return mock_args(schema)
    return "mock"


def mock_args(schema: Any) -> dict[str, JSON]:
    """Arguments for a tool call: every required (else every) property filled in."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    required = schema.get("required")
    names = [n for n in required if isinstance(n, str)] if isinstance(required, list) else list(props)
    return {name: mock_value(props.get(name, {})) for name in names}


def embedding_vector(text: str, dims: int) -> list[float]:
    """Deterministic unit-ish vector in [-1, 1] derived from sha256(text)."""
    values: list[float] = []
    counter = 0
    while len(values) < dims:
        block = hashlib.sha256(f"{counter}:{text}".encode("utf-8")).digest()
        for i in range(0, len(block), 2):
            if len(values) == dims:
                break
            raw = int.from_bytes(block[i : i + 2], "big")
            values.append(round(raw / 32767.5 - 1.0, 6))
        counter += 1
    return values


@dataclass
class Conversation:
    """What every provider request boils down to."""

    prompt_texts: list[str]
    last_user: str
    tool_name: str | None = None
    tool_schema: Any = None
    max_tokens: int | None = None
    # Additive (agent traffic): a structured-output schema makes the reply the JSON document
    # ``mock_args(schema)``; a conversation that ends with a tool result is answered in text
    # (``mock reply to tool result: <result>``) without calling a tool again.
    output_schema: Any = None
    tool_result: str | None = None

    @property
    def prompt_tokens(self) -> int:
        return word_count(*self.prompt_texts)

    def answer(self) -> Answer:
        if self.tool_result is not None:
            return Answer(
                f"mock reply to tool result: {self.tool_result}", False, None, self.prompt_tokens,
                word_count(self.tool_result) + 5,
            )
        if isinstance(self.output_schema, dict):
            text = dumps(mock_args(self.output_schema))
            return Answer(text, False, None, self.prompt_tokens, word_count(text))
        full = reply_text(self.last_user)
        text, truncated = truncate_words(full, self.max_tokens)
        call: ToolCall | None = None
        if self.tool_name and not truncated:
            call = ToolCall(self.tool_name, mock_args(self.tool_schema))
        return Answer(text, truncated, call, self.prompt_tokens, word_count(text))


@dataclass
class ToolCall:
    name: str
    args: dict[str, JSON]

    @property
    def arguments(self) -> str:
        return dumps(self.args)

    def argument_pieces(self) -> list[str]:
        """The JSON arguments split in (at least) two partial strings."""
        raw = self.arguments
        mid = max(1, len(raw) // 2)
        return [raw[:mid], raw[mid:]] if len(raw) > 1 else [raw]


@dataclass
class Answer:
    text: str
    truncated: bool
    tool_call: ToolCall | None
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def pieces(self) -> list[str]:
        return split_pieces(self.text)


def mock_reasoning(answer: Answer) -> str:
    """The reasoning text of reasoning models (DeepSeek ``reasoning_content``, Claude thinking)."""
    return f"mock reasoning about {answer.prompt_tokens} prompt words"


AGENT_MARKER: Final = "[mock:agent]"
"""A request containing this marker gets reasoning and usage details in its provider's documented
shape (reasoning text, cached prompt tokens, reasoning tokens); without it replies are unchanged."""

CACHED_TOKENS: Final = 3
"""Cached prompt tokens reported in agent mode (any provider)."""


def agent_mode(req: MockRequest) -> bool:
    return AGENT_MARKER.encode() in req.body


def reasoning_text(last_user: str) -> str:
    return f"thinking about: {last_user.strip() or '(empty)'}"


def stop_cut(text: str, stops: Any) -> str:
    """Hunyuan keeps the stop sequence it stopped at: the text up to and including the first
    stop sequence found in it (unchanged when none occurs)."""
    if isinstance(stops, str):
        stops = [stops]
    hits = [(text.find(s), s) for s in stops or [] if isinstance(s, str) and s and s in text]
    if not hits:
        return text
    at, stop = min(hits)
    return text[: at + len(stop)]


def last_with_role(messages: list[tuple[str, str]], *roles: str) -> str:
    for role, text in reversed(messages):
        if role in roles:
            return text
    return ""


# --------------------------------------------------------------------------
# OpenAI protocol family
# Shapes: OpenAI API reference, "Chat > The chat completion object" and "The chat
# completion chunk object" (https://platform.openai.com/docs/api-reference/chat),
# "Embeddings > The embedding object" and "Error codes"
# (https://platform.openai.com/docs/guides/error-codes); cross-checked against
# openai/openai-openapi components/schemas CreateChatCompletionResponse,
# CreateChatCompletionStreamResponse, CreateEmbeddingResponse, ErrorResponse
# (shared/spec/openai-openapi.yaml).  Usage-in-final-chunk with an empty
# choices list: same reference, `stream_options.include_usage`.
# --------------------------------------------------------------------------

_OPENAI_HOST_LABELS: Final = (
    ("openai.azure.com", "azure"),
    ("moonshot", "moonshot"),
    ("deepseek", "deepseek"),
    ("groq", "groq"),
    ("mistral", "mistral"),
    ("lingyiwanwu", "yi"),
    ("baichuan", "baichuan"),
    ("stepfun", "stepfun"),
    ("360.cn", "ai360"),
    ("inference.ai.azure.com", "github"),
    ("models.github.ai", "github"),
    ("fireworks.ai", "fireworks"),
    ("x.ai", "grok"),
    ("openrouter.ai", "openrouter"),
    ("together", "together-ai"),
    ("volces.com", "doubao"),
    ("xf-yun", "spark"),
    ("bigmodel", "zhipuai"),
    ("qianfan", "baidu"),
    ("baidubce", "baidu"),
    ("minimax", "minimax"),
    ("cloudflare", "cloudflare"),
    ("dashscope", "qwen"),
    ("ollama", "ollama"),
    (":11434", "ollama"),
    ("openai.com", "openai"),
)


def openai_flavor(req: MockRequest) -> str:
    """Which OpenAI-compatible provider a request is for (path first, then Host)."""
    route = req.route
    if route.startswith("/openai/deployments/"):
        return "azure"
    if route.startswith("/openai/v1/"):
        return "longcat" if "longcat" in req.host.lower() else "groq"
    if route.startswith("/api/paas/v4/"):
        return "zhipuai"
    if route.startswith("/v2/chat/") or route.startswith("/v2/embeddings"):
        return "baidu"
    if route.startswith("/client/v4/accounts/"):
        return "cloudflare"
    if route.startswith("/v1/text/chatcompletion_v2"):
        return "minimax"
    if route.startswith("/compatible-mode/"):
        return "qwen"
    if route.startswith("/api/v3/"):
        return "doubao"
    host = req.host.lower()
    for needle, label in _OPENAI_HOST_LABELS:
        if needle in host:
            return label
    return "openai"


def openai_model(req: MockRequest) -> str:
    model = req.obj.get("model")
    if isinstance(model, str) and model:
        return model
    match = re.match(r"^/openai/deployments/([^/]+)/", req.route)
    return match.group(1) if match else "mock-model"


def openai_conversation(req: MockRequest) -> Conversation:
    body = req.obj
    messages: list[tuple[str, str]] = []
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            messages.append((str(message.get("role", "")), text_of(message.get("content"))))
    tool_name, tool_schema = None, None
    tools = body.get("tools")
    if isinstance(tools, list) and tools and body.get("tool_choice") != "none":
        first = tools[0] if isinstance(tools[0], dict) else {}
        function = sub(first, "function")
        if isinstance(function.get("name"), str):
            tool_name, tool_schema = function["name"], function.get("parameters")
    limit = int_or_none(body.get("max_completion_tokens")) or int_or_none(body.get("max_tokens"))
    fmt = sub(body, "response_format")
    return Conversation(
        prompt_texts=[t for _, t in messages],
        last_user=last_with_role(messages, "user"),
        tool_name=tool_name,
        tool_schema=tool_schema,
        max_tokens=limit,
        output_schema=sub(fmt, "json_schema").get("schema") if fmt.get("type") == "json_schema" else None,
        tool_result=messages[-1][1] if messages and messages[-1][0] == "tool" else None,
    )


def _openai_finish(answer: Answer) -> str:
    if answer.truncated:
        return "length"
    return "tool_calls" if answer.tool_call else "stop"


def _openai_usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.total_tokens,
    }


def _openai_usage_details(flavor: str, answer: Answer, reasoning: int) -> dict[str, Any]:
    """Agent-mode usage: OpenAI's ``prompt_tokens_details.cached_tokens`` and
    ``completion_tokens_details.reasoning_tokens`` (API reference, "The chat completion object",
    usage); DeepSeek adds ``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens``
    (https://api-docs.deepseek.com/api/create-chat-completion, usage)."""
    usage: dict[str, Any] = {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens + reasoning,
        "total_tokens": answer.total_tokens + reasoning,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
    if flavor == "deepseek":
        usage["prompt_cache_hit_tokens"] = CACHED_TOKENS
        usage["prompt_cache_miss_tokens"] = max(0, answer.prompt_tokens - CACHED_TOKENS)
    return usage


def openai_chat(req: MockRequest) -> Reply:
    flavor = openai_flavor(req)
    model = openai_model(req)
    conversation = openai_conversation(req)
    answer = conversation.answer()
    agent = agent_mode(req)
    # Agent mode, reasoning in each flavour's documented place: DeepSeek's (and DashScope
    # compatible-mode's) ``reasoning_content`` beside ``content``
    # (https://api-docs.deepseek.com/guides/reasoning_model); Mistral's content as blocks
    # ``[{"type": "thinking", "thinking": [{"type": "text", ...}]}, {"type": "text", ...}]``
    # (https://docs.mistral.ai/capabilities/reasoning/); OpenAI reports only reasoning tokens.
    thought = reasoning_text(conversation.last_user) if agent and flavor != "openai" else ""
    reasoning_tokens = word_count(reasoning_text(conversation.last_user)) if agent else 0
    cid = f"chatcmpl-{req.digest[:24]}"
    call_id = f"call_{req.digest[24:48]}"
    headers = [("x-request-id", f"req_{req.digest[:16]}")]
    extra: dict[str, Any] = {}
    if flavor == "minimax":
        # MiniMax ChatCompletion v2 adds base_resp / sensitivity flags to the OpenAI shape
        # (https://platform.minimaxi.com/document/guides/chat-model/V2?id=65e0736ab2845de20908e2dd;
        # example response with base_resp at https://platform.minimax.io/docs/api-reference/text-chat).
        extra = {"input_sensitive": False, "output_sensitive": False, "base_resp": {"status_code": 0, "status_msg": ""}}

    reasoning = mock_reasoning(answer) if flavor == "deepseek" and "reasoner" in model else None
    # Mistral's usage has no token details (https://docs.mistral.ai/api/, UsageInfo).
    usage_obj: dict[str, Any] = (
        _openai_usage_details(flavor, answer, reasoning_tokens)
        if agent and flavor != "mistral"
        else _openai_usage(answer)
    )

    if not req.obj.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
        if thought and flavor == "mistral":
            message["content"] = [
                {"type": "thinking", "thinking": [{"type": "text", "text": thought}]},
                {"type": "text", "text": answer.text},
            ]
        elif thought or reasoning:
            message["reasoning_content"] = thought or reasoning
        if answer.tool_call:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": answer.tool_call.name, "arguments": answer.tool_call.arguments},
                }
            ]
        body = {
            "id": cid,
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _openai_finish(answer)}],
            "usage": usage_obj,
            "system_fingerprint": "fp_mock",
            **extra,
        }
        return json_reply(body, headers=headers)

    options = req.obj.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        obj: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            obj["usage"] = None
        return sse_data(obj)

    events = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    if reasoning and not thought:
        events += [chunk({"reasoning_content": piece}, None) for piece in split_pieces(reasoning)]
    for piece in split_pieces(thought) if thought else []:
        if flavor == "mistral":
            events.append(chunk({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": piece}]}]}, None))
        else:
            events.append(chunk({"content": None, "reasoning_content": piece}, None))
    events += [chunk({"content": piece}, None) for piece in answer.pieces]
    if answer.tool_call:
        events.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": answer.tool_call.name, "arguments": ""},
                        }
                    ]
                },
                None,
            )
        )
        events += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}, None)
            for part in answer.tool_call.argument_pieces()
        ]
    finish_chunk = chunk({}, _openai_finish(answer))
    if flavor == "mistral" and not include_usage:
        # Mistral takes no stream_options and puts usage on its finishing chunk
        # (https://docs.mistral.ai/api/#tag/chat/operation/chat_completion_v1_chat_completions_post,
        # CompletionChunk.usage).
        finish_obj = json.loads(finish_chunk[len(b"data: ") :])
        finish_obj["usage"] = usage_obj
        finish_chunk = sse_data(finish_obj)
    events.append(finish_chunk)
    if include_usage:
        events.append(
            sse_data(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": model,
                    "system_fingerprint": "fp_mock",
                    "choices": [],
                    "usage": usage_obj,
                }
            )
        )
    events.append(b"data: [DONE]\n\n")
    return Reply(200, SSE_TYPE, events=events, headers=[*headers, ("cache-control", "no-cache")])


def openai_embeddings(req: MockRequest) -> Reply:
    body = req.obj
    raw_input = body.get("input")
    items: list[Any] = raw_input if isinstance(raw_input, list) else [raw_input]
    if items and all(isinstance(i, int) for i in items):
        items = [items]  # one pre-tokenized input
    dims = int_or_none(body.get("dimensions")) or DEFAULT_EMBEDDING_DIMS
    as_base64 = body.get("encoding_format") == "base64"
    data: list[dict[str, Any]] = []
    tokens = 0
    for index, item in enumerate(items):
        if isinstance(item, list):
            key, tokens = dumps(item), tokens + len(item)
        else:
            key = "" if item is None else str(item)
            tokens += word_count(key)
        vector = embedding_vector(key, dims)
        encoded: Any = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return json_reply(
        {
            "object": "list",
            "data": data,
            "model": openai_model(req),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


_OPENAI_ERRORS: Final[dict[int, tuple[str, str | None, str]]] = {
    400: ("invalid_request_error", None, "Invalid request (mock error)."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-mock***. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported.",
    ),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def openai_error(req: MockRequest, status: int) -> Reply:
    flavor = openai_flavor(req)
    err_type, code, message = _OPENAI_ERRORS.get(status, ("api_error", None, f"Mock error with status {status}."))
    if flavor == "azure":
        # Azure OpenAI REST reference, error response: {"error": {"code", "message"}}
        # (https://learn.microsoft.com/azure/ai-services/openai/reference).
        azure_messages = {
            401: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
            "valid key for an active subscription and use a correct regional API endpoint for your resource.",
            429: "Requests to the ChatCompletions_Create Operation under Azure OpenAI API have exceeded "
            "token rate limit of your current pricing tier. Please retry after 1 second.",
        }
        return json_reply({"error": {"code": str(status), "message": azure_messages.get(status, message)}}, status)
    if flavor == "zhipuai":
        # Zhipu BigModel / Z.ai error codes (https://docs.z.ai/api-reference/api-code):
        # 1002 invalid Authorization token, 1302 concurrency too high, 1214 bad parameter, 500 internal.
        zhipu = {
            401: ("1002", "Authorization Token非法，请确认Authorization Token正确传递。"),
            429: ("1302", "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。"),
            400: ("1214", "参数非法。请检查文档。"),
        }
        zcode, zmsg = zhipu.get(status, ("500", "内部错误。"))
        return json_reply({"error": {"code": zcode, "message": zmsg}}, status)
    if flavor == "baidu":
        # Qianfan v2 (OpenAI-compatible) error object: {"error": {code, message, type}, "id"}
        # (Qianfan "ModelBuilder v2" API error-code page, https://cloud.baidu.com/doc/qianfan-api/index.html;
        # exact code strings not verified against the live docs).
        baidu = {
            401: ("invalid_iam_token", "IAM Certification failed", "invalid_request_error"),
            429: ("rpm_rate_limit_exceeded", "Rate limit reached for RPM", "rate_limit_exceeded"),
        }
        bcode, bmsg, btype = baidu.get(status, (err_type, message, err_type))
        return json_reply(
            {"id": f"as-{req.digest[:10]}", "error": {"code": bcode, "message": bmsg, "type": btype}}, status
        )
    if flavor == "cloudflare":
        # Cloudflare API v4 envelope (https://developers.cloudflare.com/fundamentals/api/how-to/make-api-calls/);
        # assumed (not verified) for Workers AI's OpenAI-compatible /ai/v1/ endpoints.
        cf = {
            401: (10000, "Authentication error"),
            429: (971, "Please wait and consider throttling your request speed"),
        }
        cf_code, cf_msg = cf.get(status, (7000, message))
        return json_reply(
            {"success": False, "errors": [{"code": cf_code, "message": cf_msg}], "messages": [], "result": None}, status
        )
    if flavor == "minimax":
        return minimax_error(req, status)
    return json_reply({"error": {"message": message, "type": err_type, "param": None, "code": code}}, status)


# --------------------------------------------------------------------------
# Moonshot files: GET /v1/files/{id}/content
# Shape: Moonshot platform docs "Files > Get file content" (https://platform.moonshot.cn/docs/api/files);
# the SDK's retrieve_content returns JSON {"content", "file_type", "filename", "title", "type"},
# and gateways read its "content" (alibaba/higress ai-proxy provider/moonshot.go).
# --------------------------------------------------------------------------


def moonshot_file_content(req: MockRequest) -> Reply:
    match = re.match(r"^/v1/files/([^/]+)/content$", req.route)
    file_id = match.group(1) if match else "unknown"
    return json_reply(
        {
            "content": f"Mock file {file_id} content: the capital of Mockland is Testville.",
            "file_type": "application/pdf",
            "filename": f"{file_id}.pdf",
            "title": "",
            "type": "file",
        }
    )


def moonshot_error(req: MockRequest, status: int) -> Reply:
    # Moonshot error body {"error": {"message", "type"}} (https://platform.moonshot.cn/docs/api/chat, "错误说明";
    # type names from memory of that table, not re-verified).
    kinds = {
        401: ("invalid_authentication_error", "Invalid Authentication"),
        404: ("resource_not_found_error", "File not found"),
        429: ("rate_limit_reached_error", "Your account is rate limited"),
    }
    kind, message = kinds.get(status, ("server_error", "Mock error"))
    return json_reply({"error": {"message": message, "type": kind}}, status)


# --------------------------------------------------------------------------
# Claude: POST /v1/messages
# Shapes: Anthropic docs "Messages API" (https://docs.anthropic.com/en/api/messages),
# "Streaming Messages" event flow message_start / content_block_start / ping /
# content_block_delta (text_delta, input_json_delta) / content_block_stop /
# message_delta / message_stop (https://docs.anthropic.com/en/docs/build-with-claude/streaming),
# (also https://platform.claude.com/docs/en/build-with-claude/streaming), and "Errors"
# {"type":"error","error":{"type","message"}} with 400/401/403/404/413/429/500/529
# (https://docs.anthropic.com/en/api/errors).
# --------------------------------------------------------------------------


def claude_conversation(req: MockRequest) -> Conversation:
    body = req.obj
    texts: list[str] = []
    system = text_of(body.get("system"))
    if system:
        texts.append(system)
    messages: list[tuple[str, str]] = []
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            messages.append((str(message.get("role", "")), text_of(message.get("content"))))
    texts += [t for _, t in messages]
    tool_name, tool_schema = None, None
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if isinstance(tools, list) and tools and not (isinstance(choice, dict) and choice.get("type") == "none"):
        first = tools[0] if isinstance(tools[0], dict) else {}
        if isinstance(first.get("name"), str):
            tool_name, tool_schema = first["name"], first.get("input_schema")
    # Structured outputs: ``output_config.format`` {"type": "json_schema", "schema"}
    # (https://docs.claude.com/en/docs/build-with-claude/structured-outputs); a tool result is a
    # user turn whose content holds ``{"type": "tool_result", "tool_use_id", "content"}``
    # (https://docs.claude.com/en/docs/agents-and-tools/tool-use/implement-tool-use).
    fmt = sub(sub(body, "output_config"), "format")
    result: str | None = None
    raw = body.get("messages") or []
    last = raw[-1] if raw and isinstance(raw[-1], dict) else {}
    if last.get("role") == "user" and isinstance(last.get("content"), list):
        results = [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            result = text_of(results[-1].get("content"))
    return Conversation(
        texts,
        last_with_role(messages, "user"),
        tool_name,
        tool_schema,
        int_or_none(body.get("max_tokens")),
        output_schema=fmt.get("schema") if fmt.get("type") == "json_schema" else None,
        tool_result=result,
    )


def claude_messages(req: MockRequest) -> Reply:
    body = req.obj
    model = body.get("model") if isinstance(body.get("model"), str) else "claude-mock"
    conversation = claude_conversation(req)
    answer = conversation.answer()
    # Agent mode: a thinking block first ({"type": "thinking", "thinking", "signature"}; streamed
    # as thinking_delta then signature_delta, https://docs.claude.com/en/docs/build-with-claude/extended-thinking)
    # and usage with cache_read_input_tokens / cache_creation_input_tokens
    # (https://docs.claude.com/en/docs/build-with-claude/prompt-caching).
    agent = agent_mode(req)
    thought = reasoning_text(conversation.last_user) if agent else ""
    signature = f"sig_mock{req.digest[:16]}"
    cache = {"cache_read_input_tokens": CACHED_TOKENS, "cache_creation_input_tokens": 2} if agent else {}
    thought_tokens = word_count(thought)
    msg_id = f"msg_mock{req.digest[:20]}"
    tool_id = f"toolu_mock{req.digest[20:40]}"
    stop_reason = "max_tokens" if answer.truncated else ("tool_use" if answer.tool_call else "end_turn")
    headers = [("request-id", f"req_mock{req.digest[:16]}")]
    thinking_cfg = body.get("thinking")
    thinking = mock_reasoning(answer) if isinstance(thinking_cfg, dict) and thinking_cfg.get("type") == "enabled" else None
    signature = f"mocksig{req.digest[:16]}"
    thinking = thought or thinking
    first = 1 if thinking else 0  # index of the text block

    if not body.get("stream"):
        content: list[dict[str, Any]] = []
        if thinking:
            content.append({"type": "thinking", "thinking": thinking, "signature": signature})
        content.append({"type": "text", "text": answer.text})
        if answer.tool_call:
            content.append(
                {"type": "tool_use", "id": tool_id, "name": answer.tool_call.name, "input": answer.tool_call.args}
            )
        return json_reply(
            {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": answer.prompt_tokens,
                    "output_tokens": answer.completion_tokens + thought_tokens,
                    **cache,
                },
            },
            headers=headers,
        )

    events = [
        sse_named(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": 1, **cache},
                },
            },
        ),
    ]
    if thinking:
        # Streaming Messages reference: thinking_delta events, then one signature_delta.
        events.append(
            sse_named(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
            )
        )
        events += [
            sse_named(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": piece}},
            )
            for piece in split_pieces(thinking)
        ]
        events.append(
            sse_named(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": signature}},
            )
        )
        events.append(sse_named("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        sse_named(
            "content_block_start",
            {"type": "content_block_start", "index": first, "content_block": {"type": "text", "text": ""}},
        )
    )
    events += [
        sse_named(
            "content_block_delta",
            {"type": "content_block_delta", "index": first, "delta": {"type": "text_delta", "text": piece}},
        )
        for piece in answer.pieces
    ]
    events.insert(2, sse_named("ping", {"type": "ping"}))  # after the first content_block_start
    events.append(sse_named("content_block_stop", {"type": "content_block_stop", "index": first}))
    if answer.tool_call:
        events.append(
            sse_named(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": first + 1,
                    "content_block": {"type": "tool_use", "id": tool_id, "name": answer.tool_call.name, "input": {}},
                },
            )
        )
        events += [
            sse_named(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": first + 1,
                    "delta": {"type": "input_json_delta", "partial_json": part},
                },
            )
            for part in answer.tool_call.argument_pieces()
        ]
        events.append(sse_named("content_block_stop", {"type": "content_block_stop", "index": first + 1}))
    events.append(
        sse_named(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": answer.completion_tokens + thought_tokens},
            },
        )
    )
    events.append(sse_named("message_stop", {"type": "message_stop"}))
    return Reply(200, SSE_TYPE, events=events, headers=[*headers, ("cache-control", "no-cache")])


def claude_count_tokens(req: MockRequest) -> Reply:
    """Token counting (Anthropic "Count Message tokens": ``{"input_tokens": N}``)."""
    return json_reply({"input_tokens": claude_conversation(req).prompt_tokens})


def claude_error(req: MockRequest, status: int) -> Reply:
    kinds = {
        400: ("invalid_request_error", "messages: field required"),
        401: ("authentication_error", "invalid x-api-key"),
        403: ("permission_error", "Your API key does not have permission to use the specified resource."),
        404: ("not_found_error", "The requested resource could not be found."),
        413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
        500: ("api_error", "Internal server error"),
        529: ("overloaded_error", "Overloaded"),
    }
    kind, message = kinds.get(status, ("api_error", f"Mock error with status {status}"))
    return json_reply({"type": "error", "error": {"type": kind, "message": message}}, status)


# --------------------------------------------------------------------------
# Gemini: POST /v1beta/models/{model}:generateContent | :streamGenerateContent[?alt=sse]
#         | :embedContent | :batchEmbedContents
# Shapes: Gemini API reference "Generating content" GenerateContentResponse (candidates[].content
# .parts[], finishReason, index; usageMetadata promptTokenCount/candidatesTokenCount/
# totalTokenCount; modelVersion, responseId) (https://ai.google.dev/api/generate-content),
# function calling parts {"functionCall": {"name", "args"}} (https://ai.google.dev/gemini-api/docs/function-calling),
# "Embeddings" batchEmbedContents -> {"embeddings": [{"values"}]}, embedContent -> {"embedding": {"values"}}
# (https://ai.google.dev/api/embeddings), and the Google API error model
# {"error": {"code", "message", "status"}} (https://ai.google.dev/gemini-api/docs/troubleshooting).
# Streaming: with alt=sse each GenerateContentResponse is a "data: {...}" event terminated by CRLF CRLF,
# no [DONE] sentinel, usageMetadata cumulative on every chunk (observed wire behaviour reported in
# nyroway/nyro#265 "Vertex AI emits SSE frames with CRLF terminators", mokksy/ai-mocks#703, and
# ankit373/hydra#855); without alt=sse the body is a streamed JSON array of responses.
# --------------------------------------------------------------------------

GEMINI_ROUTE: Final = re.compile(r"^/(v1beta|v1|v1alpha)/models/([^/:]+):([A-Za-z]+)$")


def gemini_conversation(req: MockRequest) -> Conversation:
    body = req.obj
    texts: list[str] = []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if system:
        texts.append(text_of(system))
    messages: list[tuple[str, str]] = []
    for content in body.get("contents") or []:
        if isinstance(content, dict):
            messages.append((str(content.get("role", "user")), text_of(content.get("parts"))))
    texts += [t for _, t in messages]
    tool_name, tool_schema = None, None
    config = sub(body, "toolConfig") or sub(body, "tool_config")
    mode = (sub(config, "functionCallingConfig") or sub(config, "function_calling_config")).get("mode")
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict) or mode == "NONE":
            continue
        decls = tool.get("functionDeclarations") or tool.get("function_declarations") or []
        if decls and isinstance(decls[0], dict) and isinstance(decls[0].get("name"), str):
            # Gemini takes the OpenAPI-subset `parameters` or JSON Schema `parametersJsonSchema`.
            decl = decls[0]
            tool_name = decl["name"]
            tool_schema = decl.get("parametersJsonSchema") or decl.get("parameters")
            break
    gen = sub(body, "generationConfig") or sub(body, "generation_config")
    limit = int_or_none(gen.get("maxOutputTokens"))
    # Structured output: generationConfig.responseJsonSchema (or the OpenAPI-subset
    # responseSchema) with responseMimeType application/json
    # (https://ai.google.dev/gemini-api/docs/structured-output); a tool result is a user turn
    # with a ``functionResponse`` {"name", "response"} part
    # (https://ai.google.dev/gemini-api/docs/function-calling).
    schema = gen.get("responseJsonSchema") or gen.get("responseSchema")
    result: str | None = None
    contents = body.get("contents") or []
    last = contents[-1] if contents and isinstance(contents[-1], dict) else {}
    for part in last.get("parts") or []:
        if isinstance(part, dict) and isinstance(part.get("functionResponse"), dict):
            result = dumps(part["functionResponse"].get("response"))
    return Conversation(
        texts, last_with_role(messages, "user"), tool_name, tool_schema, limit, output_schema=schema, tool_result=result
    )


def gemini_generate(req: MockRequest, model: str, stream: bool) -> Reply:
    conversation = gemini_conversation(req)
    answer = conversation.answer()
    # Agent mode: a thought summary part {"text", "thought": true} first and usageMetadata
    # thoughtsTokenCount / cachedContentTokenCount (https://ai.google.dev/gemini-api/docs/thinking,
    # https://ai.google.dev/api/generate-content#UsageMetadata).
    thought = reasoning_text(conversation.last_user) if agent_mode(req) else ""
    thought_part = [{"text": thought, "thought": True}] if thought else []
    details = {"thoughtsTokenCount": word_count(thought), "cachedContentTokenCount": CACHED_TOKENS} if thought else {}
    finish = "MAX_TOKENS" if answer.truncated else "STOP"
    response_id = f"mock{req.digest[:20]}"
    call_part = (
        {"functionCall": {"name": answer.tool_call.name, "args": answer.tool_call.args}} if answer.tool_call else None
    )

    def response(parts: list[dict[str, Any]], final: bool, completion: int) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if final:
            candidate["finishReason"] = finish
        return {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": answer.prompt_tokens,
                "candidatesTokenCount": completion,
                "totalTokenCount": answer.prompt_tokens + completion + details.get("thoughtsTokenCount", 0),
                **details,
            },
            "modelVersion": model,
            "responseId": response_id,
        }

    if not stream:
        parts: list[dict[str, Any]] = [*thought_part, {"text": answer.text}]
        if call_part:
            parts.append(call_part)
        return json_reply(response(parts, True, answer.completion_tokens))

    pieces = answer.pieces
    objects = [response(thought_part, False, 0)] if thought_part else []
    objects += [response([{"text": p}], False, i + 1) for i, p in enumerate(pieces[:-1])]
    last_parts: list[dict[str, Any]] = [{"text": pieces[-1]}]
    if call_part:
        last_parts.append(call_part)
    objects.append(response(last_parts, True, answer.completion_tokens))
    if req.qparam("alt") == "sse":
        events = [f"data: {dumps(o)}\r\n\r\n".encode("utf-8") for o in objects]
        return Reply(200, "text/event-stream", events=events, headers=[("cache-control", "no-cache")])
    array_events = [("[" if i == 0 else ",\r\n").encode() + dumps(o).encode("utf-8") for i, o in enumerate(objects)]
    array_events.append(b"]")
    return Reply(200, "application/json; charset=UTF-8", events=array_events)


def gemini_embed(req: MockRequest, batch: bool) -> Reply:
    body = req.obj
    requests = body.get("requests") if batch else [body]
    embeddings: list[dict[str, Any]] = []
    for item in requests if isinstance(requests, list) else []:
        item = item if isinstance(item, dict) else {}
        dims = int_or_none(item.get("outputDimensionality")) or DEFAULT_EMBEDDING_DIMS
        embeddings.append({"values": embedding_vector(text_of(item.get("content")), dims)})
    if batch:
        return json_reply({"embeddings": embeddings})
    return json_reply({"embedding": embeddings[0] if embeddings else {"values": []}})


def gemini_dispatch(req: MockRequest) -> Reply:
    match = GEMINI_ROUTE.match(req.route)
    assert match is not None
    model, method = match.group(2), match.group(3)
    if method == "generateContent":
        return gemini_generate(req, model, stream=False)
    if method == "streamGenerateContent":
        return gemini_generate(req, model, stream=True)
    if method == "batchEmbedContents":
        return gemini_embed(req, batch=True)
    if method == "embedContent":
        return gemini_embed(req, batch=False)
    return gemini_error(req, 404)


def gemini_error(req: MockRequest, status: int) -> Reply:
    kinds = {
        400: ("INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
        401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
        403: ("PERMISSION_DENIED", "Permission denied: Consumer has been suspended."),
        404: ("NOT_FOUND", "models/unknown is not found for API version v1beta."),
        429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        500: ("INTERNAL", "An internal error has occurred."),
        503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    }
    state, message = kinds.get(status, ("UNKNOWN", f"Mock error with status {status}"))
    return json_reply({"error": {"code": status, "message": message, "status": state}}, status)


# --------------------------------------------------------------------------
# Vertex AI: Gemini and Claude, and the OAuth token exchange of a service account
# Paths: Vertex AI REST reference "projects.locations.publishers.models.generateContent" /
# "streamGenerateContent" (https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent),
# express mode "publishers.models.generateContent" with an API key
# (https://cloud.google.com/vertex-ai/generative-ai/docs/start/express-mode/vertex-ai-express-mode-api-reference),
# Claude on Vertex ".../publishers/anthropic/models/{model}:rawPredict | :streamRawPredict" with
# Anthropic's Messages body, no "model", "anthropic_version": "vertex-2023-10-16" and Anthropic's
# answers (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude).
# Bodies and errors are Gemini's (above) resp. Claude's. The token endpoint follows Google Identity
# "Using OAuth 2.0 for Server to Server Applications"
# (https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests):
# POST application/x-www-form-urlencoded grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer
# &assertion=<RS256 JWT {iss, scope, aud, iat, exp}> -> {"access_token", "expires_in",
# "token_type": "Bearer"}; errors {"error": "invalid_grant", "error_description"} with 400.
# The mock checks the JWT's form and claims (an ``iss`` starting with ``revoked`` is refused as a
# disabled key; one starting with ``ttl<N>-`` gets ``expires_in`` N); the signature is checked
# by the tests (they hold the public key). Service-account requests must carry a token this mock issued.
# --------------------------------------------------------------------------

VERTEX_GEMINI_ROUTE: Final = re.compile(
    r"^/v1/(?:projects/([a-z0-9-]+)/locations/([a-z0-9-]+)/)?publishers/google/models/([^/:]+):([A-Za-z]+)$"
)
VERTEX_CLAUDE_ROUTE: Final = re.compile(
    r"^/v1/projects/[a-z0-9-]+/locations/([a-z0-9-]+)/publishers/anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$"
)
OAUTH_TOKEN_PATH: Final = "/token"
JWT_BEARER_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
VERTEX_TOKEN_PREFIX: Final = "ya29.mock-"
CLOUD_PLATFORM_SCOPE: Final = "https://www.googleapis.com/auth/cloud-platform"


def b64url_json(part: str) -> JSON:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def oauth_token(req: MockRequest) -> Reply:
    form = parse_qs(req.body.decode("utf-8", "replace"))
    if req.header("content-type").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return oauth_error(req, 400, "invalid_request", "content-type must be application/x-www-form-urlencoded")
    if form.get("grant_type") != [JWT_BEARER_GRANT]:
        return oauth_error(req, 400, "unsupported_grant_type", "Invalid grant_type")
    parts = form.get("assertion", [""])[0].split(".")
    try:
        header, claims = b64url_json(parts[0]), b64url_json(parts[1])
        base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except (IndexError, ValueError):
        return oauth_error(req, 400, "invalid_grant", "Invalid JWT: malformed")
    now = time.time()
    problems = [
        header.get("alg") != "RS256" and "alg",
        not isinstance(claims.get("iss"), str) and "iss",
        claims.get("scope") != CLOUD_PLATFORM_SCOPE and "scope",
        claims.get("aud") != f"https://{req.host}{req.route}" and "aud",
        not (isinstance(claims.get("iat"), int) and abs(claims["iat"] - now) < 300) and "iat",
        not (isinstance(claims.get("exp"), int) and 0 < claims["exp"] - claims.get("iat", 0) <= 3600) and "exp",
    ]
    bad = [p for p in problems if p]
    if bad:
        return oauth_error(req, 400, "invalid_grant", f"Invalid JWT claims: {', '.join(bad)}")
    if str(claims["iss"]).startswith("revoked"):
        # Google's answer for a deleted or disabled key.
        return oauth_error(req, 400, "invalid_grant", "Invalid JWT Signature.")
    # A service account named "ttl<N>-..." gets tokens that expire in N seconds (refresh tests).
    short = re.match(r"^ttl(\d+)-", str(claims["iss"]))
    expires_in = int(short.group(1)) if short else 3599
    return json_reply(
        {"access_token": f"{VERTEX_TOKEN_PREFIX}{req.digest[:24]}", "expires_in": expires_in, "token_type": "Bearer"}
    )


def oauth_error(req: MockRequest, status: int, code: str = "invalid_grant", why: str = "Invalid JWT Signature.") -> Reply:
    return json_reply({"error": code, "error_description": why}, status)


def vertex_auth_problem(req: MockRequest, express: bool) -> bool:
    if express:
        return not req.header("x-goog-api-key")
    return not req.header("authorization").startswith(f"Bearer {VERTEX_TOKEN_PREFIX}")


def vertex_gemini(req: MockRequest) -> Reply:
    match = VERTEX_GEMINI_ROUTE.match(req.route)
    assert match is not None
    if vertex_auth_problem(req, express=match.group(1) is None):
        return gemini_error(req, 401)
    model, method = match.group(3), match.group(4)
    if method == "generateContent":
        return gemini_generate(req, model, stream=False)
    if method == "streamGenerateContent":
        return gemini_generate(req, model, stream=True)
    return gemini_error(req, 404)


def vertex_claude(req: MockRequest) -> Reply:
    match = VERTEX_CLAUDE_ROUTE.match(req.route)
    assert match is not None
    if vertex_auth_problem(req, express=False):
        return claude_error(req, 401)
    body = req.obj
    streamed = match.group(3) == "streamRawPredict"
    if "model" in body or body.get("anthropic_version") != "vertex-2023-10-16" or bool(body.get("stream")) != streamed:
        return claude_error(req, 400)
    return claude_messages(dataclasses.replace(req, json={**body, "model": match.group(2)}))


# --------------------------------------------------------------------------
# Qwen (DashScope native)
# Shapes: Alibaba Cloud Model Studio "Qwen API reference" (DashScope HTTP):
# POST /api/v1/services/aigc/text-generation/generation, result_format "message" ->
# output.choices[].message + finish_reason, result_format "text" -> output.text; usage
# input_tokens/output_tokens/total_tokens; request_id
# (https://help.aliyun.com/zh/model-studio/use-qwen-by-calling-api); streaming with header
# X-DashScope-SSE: enable, events "id:N / event:result / :HTTP_STATUS/200 / data:{...}",
# finish_reason "null" until the last event, cumulative usage, incremental_output
# (https://www.alibabacloud.com/help/en/model-studio/stream); multimodal-generation content
# is a list [{"text": ...}] (https://help.aliyun.com/zh/model-studio/qwen-vl-api);
# text-embedding output.embeddings[{text_index, embedding}], usage.total_tokens
# (https://help.aliyun.com/zh/model-studio/text-embedding-synchronous-api); errors
# {"code", "message", "request_id"} (https://help.aliyun.com/zh/model-studio/error-code).
# --------------------------------------------------------------------------

QWEN_TEXT_GEN: Final = "/api/v1/services/aigc/text-generation/generation"
QWEN_MULTIMODAL: Final = "/api/v1/services/aigc/multimodal-generation/generation"
QWEN_EMBEDDING: Final = "/api/v1/services/embeddings/text-embedding/text-embedding"


def qwen_request_id(req: MockRequest) -> str:
    d = req.digest
    return f"{d[0:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:32]}"


def qwen_conversation(req: MockRequest) -> Conversation:
    body = req.obj
    inp = sub(body, "input")
    params = sub(body, "parameters")
    messages: list[tuple[str, str]] = []
    for message in inp.get("messages") or []:
        if isinstance(message, dict):
            messages.append((str(message.get("role", "")), text_of(message.get("content"))))
    for turn in inp.get("history") or []:
        if isinstance(turn, dict):
            messages += [("user", str(turn.get("user", ""))), ("assistant", str(turn.get("bot", "")))]
    if isinstance(inp.get("prompt"), str):
        messages.append(("user", inp["prompt"]))
    tool_name, tool_schema = None, None
    tools = params.get("tools")
    if isinstance(tools, list) and tools and params.get("tool_choice") != "none":
        function = tools[0].get("function") if isinstance(tools[0], dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            tool_name, tool_schema = function["name"], function.get("parameters")
    # Structured output: parameters.response_format {"type": "json_schema", "json_schema": {"schema"}}
    # (Model Studio "Structured output", https://help.aliyun.com/zh/model-studio/json-mode);
    # a tool result is a {"role": "tool", "content"} message (Model Studio "Function calling").
    fmt = sub(params, "response_format")
    return Conversation(
        [t for _, t in messages],
        last_with_role(messages, "user"),
        tool_name,
        tool_schema,
        int_or_none(params.get("max_tokens")),
        output_schema=sub(fmt, "json_schema").get("schema") if fmt.get("type") == "json_schema" else None,
        tool_result=messages[-1][1] if messages and messages[-1][0] == "tool" else None,
    )


def qwen_generation(req: MockRequest) -> Reply:
    body = req.obj
    params = sub(body, "parameters")
    multimodal = req.route == QWEN_MULTIMODAL
    result_format = "message" if multimodal else str(params.get("result_format") or "text")
    incremental = params.get("incremental_output") is True
    conversation = qwen_conversation(req)
    answer = conversation.answer()
    # Agent mode: message.reasoning_content (thinking models, streamed before the answer), usage
    # output_tokens_details.reasoning_tokens and prompt_tokens_details.cached_tokens
    # (https://help.aliyun.com/zh/model-studio/deep-thinking, .../context-cache).
    thought = reasoning_text(conversation.last_user) if agent_mode(req) and result_format == "message" else ""
    if result_format != "message":
        answer.tool_call = None  # tool calls exist only in the message format
    request_id = qwen_request_id(req)
    finish = "length" if answer.truncated else ("tool_calls" if answer.tool_call else "stop")
    tool_calls = (
        [
            {
                "index": 0,
                "id": f"call_{req.digest[:24]}",
                "type": "function",
                "function": {"name": answer.tool_call.name, "arguments": answer.tool_call.arguments},
            }
        ]
        if answer.tool_call
        else None
    )

    def output(text: str, finish_reason: str, with_tools: bool, reasoning: str = "") -> dict[str, Any]:
        if result_format != "message":
            return {"text": text, "finish_reason": finish_reason}
        content: Any = [{"text": text}] if multimodal else text
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reasoning:
            message["reasoning_content"] = reasoning
        if with_tools and tool_calls:
            message["tool_calls"] = tool_calls
        return {"choices": [{"finish_reason": finish_reason, "message": message}]}

    def usage(completion: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input_tokens": answer.prompt_tokens,
            "output_tokens": completion,
            "total_tokens": answer.prompt_tokens + completion,
        }
        if thought:
            out["output_tokens"] += word_count(thought)
            out["total_tokens"] += word_count(thought)
            out["output_tokens_details"] = {"reasoning_tokens": word_count(thought)}
            out["prompt_tokens_details"] = {"cached_tokens": CACHED_TOKENS}
        return out

    if req.header("x-dashscope-sse").lower() != "enable":
        return json_reply(
            {
                "output": output(answer.text, finish, True, thought),
                "usage": usage(answer.completion_tokens),
                "request_id": request_id,
            }
        )

    events: list[bytes] = []
    pieces = answer.pieces
    so_far = ""
    for index, piece in enumerate(split_pieces(thought) if thought else []):
        data = {"output": output("", "null", False, piece), "usage": usage(0), "request_id": request_id}
        events.append(f"id:r{index + 1}\nevent:result\n:HTTP_STATUS/200\ndata:{dumps(data)}\n\n".encode("utf-8"))
    for index, piece in enumerate(pieces):
        so_far += piece
        last = index == len(pieces) - 1
        data = {
            "output": output(piece if incremental else so_far, finish if last else "null", last),
            "usage": usage(word_count(so_far)),
            "request_id": request_id,
        }
        events.append(f"id:{index + 1}\nevent:result\n:HTTP_STATUS/200\ndata:{dumps(data)}\n\n".encode("utf-8"))
    return Reply(200, "text/event-stream;charset=UTF-8", events=events, headers=[("cache-control", "no-cache")])


def qwen_embedding(req: MockRequest) -> Reply:
    body = req.obj
    inp = sub(body, "input")
    params = sub(body, "parameters")
    texts = inp.get("texts")
    texts = [texts] if isinstance(texts, str) else (texts if isinstance(texts, list) else [])
    dims = int_or_none(params.get("dimension")) or DEFAULT_EMBEDDING_DIMS
    embeddings = [{"text_index": i, "embedding": embedding_vector(str(t), dims)} for i, t in enumerate(texts)]
    tokens = word_count(*(str(t) for t in texts))
    return json_reply(
        {"output": {"embeddings": embeddings}, "usage": {"total_tokens": tokens}, "request_id": qwen_request_id(req)}
    )


def qwen_error(req: MockRequest, status: int) -> Reply:
    kinds = {
        400: ("InvalidParameter", "Input validation error (mock)."),
        401: ("InvalidApiKey", "Invalid API-key provided."),
        403: ("AccessDenied", "Access denied."),
        404: ("ModelNotFound", "Model not exist."),
        429: ("Throttling.RateQuota", "Requests rate limit exceeded, please try again later."),
        500: ("InternalError", "An internal error has occured, please try again later or contact service support."),
    }
    code, message = kinds.get(status, ("InternalError", f"Mock error with status {status}"))
    return json_reply({"code": code, "message": message, "request_id": qwen_request_id(req)}, status)


# --------------------------------------------------------------------------
# Hunyuan (Tencent Cloud API 3.0): POST / on hunyuan.tencentcloudapi.com, X-TC-Action: ChatCompletions
# Shapes: Tencent Cloud API docs, hunyuan ChatCompletions (https://cloud.tencent.com/document/api/1729/105701):
# non-streaming {"Response": {Choices[].Message{Role,Content}, FinishReason, Usage{PromptTokens,
# CompletionTokens,TotalTokens}, Id, Created, Note, RequestId}}; streaming SSE "data: {...}" with
# Choices[].Delta, FinishReason "" until "stop" (event sample in alibaba/higress ai-proxy
# provider/hunyuan.go); API 3.0 errors are HTTP 200 {"Response": {"Error": {Code, Message},
# RequestId}} (Tencent Cloud API 3.0 common error format, e.g. https://cloud.tencent.com/document/product/1388/114322
# with codes AuthFailure.SignatureFailure, InvalidAction, InvalidParameter, InternalError, RequestLimitExceeded).
# Whether a hunyuan stream ends with a "data: [DONE]" event is not documented there; none is sent here.
# --------------------------------------------------------------------------


def hunyuan_request_id(req: MockRequest) -> str:
    d = req.digest
    return f"{d[32:40]}-{d[40:44]}-{d[44:48]}-{d[48:52]}-{d[52:64]}"


def hunyuan_embedding(req: MockRequest) -> Reply:
    """GetEmbedding (Tencent Cloud hunyuan 2023-09-01): ``Input`` or ``InputList`` →
    ``Response.Data[{Embedding, Index, Object}]`` and ``Response.Usage{PromptTokens, TotalTokens}``."""
    body = req.obj
    texts = body.get("InputList") or ([body["Input"]] if "Input" in body else [])
    texts = [str(t) for t in texts]
    tokens = word_count(*texts)
    data = [{"Embedding": embedding_vector(t, 8), "Index": i, "Object": "embedding"} for i, t in enumerate(texts)]
    return json_reply(
        {
            "Response": {
                "Data": data,
                "Usage": {"PromptTokens": tokens, "TotalTokens": tokens},
                "RequestId": hunyuan_request_id(req),
            }
        },
        200,
    )


def hunyuan_chat(req: MockRequest) -> Reply:
    action = req.header("x-tc-action")
    if action and action.lower() == "getembedding":
        return hunyuan_embedding(req)
    if action and action.lower() != "chatcompletions":
        return _hunyuan_error_body(req, "InvalidAction", f"The action `{action}` is not supported (mock).")
    body = req.obj
    messages: list[tuple[str, str]] = []
    for message in body.get("Messages") or []:
        if isinstance(message, dict):
            content = message.get("Content")
            if content is None and "Contents" in message:
                content = message.get("Contents")
            messages.append((str(message.get("Role", "")), text_of(content)))
    # Tools (ChatCompletions request Tools[{Type, Function{Name, Parameters (a JSON string)}}],
    # ToolChoice; reply Message.ToolCalls[{Id, Type, Function{Name, Arguments}}], streamed as
    # Delta.ToolCalls with Index; tool results are {"Role": "tool", "ToolCallId", "Content"}),
    # Stop (the reply keeps the stop sequence it ended at) and Hunyuan-T1's ReasoningContent
    # (https://cloud.tencent.com/document/api/1729/105701, data structures Tool, ToolCall, Message, Delta).
    tool_name, tool_schema = None, None
    tools = body.get("Tools")
    if isinstance(tools, list) and tools and body.get("ToolChoice") != "none":
        function = sub(tools[0], "Function")
        if isinstance(function.get("Name"), str):
            tool_name = function["Name"]
            try:
                tool_schema = json.loads(function.get("Parameters") or "{}")
            except ValueError:
                tool_schema = {}
    conversation = Conversation(
        [t for _, t in messages],
        last_with_role(messages, "user"),
        tool_name,
        tool_schema,
        tool_result=messages[-1][1] if messages and messages[-1][0] == "tool" else None,
    )
    answer = conversation.answer()
    if body.get("Stop"):
        answer.text = stop_cut(answer.text, body.get("Stop"))
    thought = reasoning_text(conversation.last_user) if agent_mode(req) else ""
    call_id = f"call_{req.digest[:20]}"
    calls = (
        [
            {
                "Id": call_id,
                "Type": "function",
                "Function": {"Name": answer.tool_call.name, "Arguments": answer.tool_call.arguments},
            }
        ]
        if answer.tool_call
        else None
    )
    finish = "tool_calls" if calls else "stop"
    request_id = hunyuan_request_id(req)
    usage = {
        "PromptTokens": answer.prompt_tokens,
        "CompletionTokens": answer.completion_tokens,
        "TotalTokens": answer.total_tokens,
    }
    chat_id = request_id
    if not body.get("Stream"):
        return json_reply(
            {
                "Response": {
                    "RequestId": request_id,
                    "Note": HUNYUAN_NOTE,
                    "Choices": [
                        {
                            "Index": 0,
                            "Message": {
                                "Role": "assistant",
                                "Content": answer.text,
                                **({"ReasoningContent": thought} if thought else {}),
                                **({"ToolCalls": calls} if calls else {}),
                            },
                            "FinishReason": finish,
                        }
                    ],
                    "Created": CREATED,
                    "Id": chat_id,
                    "Usage": usage,
                }
            },
            headers=[("x-tc-requestid", request_id)],
        )
    events: list[bytes] = []
    for piece in split_pieces(thought) if thought else []:
        events.append(
            sse_data(
                {
                    "Note": HUNYUAN_NOTE,
                    "Choices": [
                        {"Index": 0, "Delta": {"Role": "assistant", "Content": "", "ReasoningContent": piece}, "FinishReason": ""}
                    ],
                    "Created": CREATED,
                    "Id": chat_id,
                    "Usage": {"PromptTokens": answer.prompt_tokens, "CompletionTokens": 0, "TotalTokens": answer.prompt_tokens},
                }
            )
        )
    so_far = ""
    for piece in answer.pieces:
        so_far += piece
        n = word_count(so_far)
        events.append(
            sse_data(
                {
                    "Note": HUNYUAN_NOTE,
                    "Choices": [{"Index": 0, "Delta": {"Role": "assistant", "Content": piece}, "FinishReason": ""}],
                    "Created": CREATED,
                    "Id": chat_id,
                    "Usage": {
                        "PromptTokens": answer.prompt_tokens,
                        "CompletionTokens": n,
                        "TotalTokens": answer.prompt_tokens + n,
                    },
                }
            )
        )
    events.append(
        sse_data(
            {
                "Note": HUNYUAN_NOTE,
                "Choices": [
                    {
                        "Index": 0,
                        "Delta": {
                            "Role": "assistant",
                            "Content": "",
                            **({"ToolCalls": [{"Index": 0, **calls[0]}]} if calls else {}),
                        },
                        "FinishReason": finish,
                    }
                ],
                "Created": CREATED,
                "Id": chat_id,
                "Usage": usage,
            }
        )
    )
    return Reply(
        200, "text/event-stream", events=events, headers=[("x-tc-requestid", request_id), ("cache-control", "no-cache")]
    )


def _hunyuan_error_body(req: MockRequest, code: str, message: str) -> Reply:
    return json_reply(
        {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": hunyuan_request_id(req)}}, 200
    )


def hunyuan_error(req: MockRequest, status: int) -> Reply:
    kinds = {
        400: ("InvalidParameter", "The parameter is invalid (mock)."),
        401: (
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        ),
        403: ("UnauthorizedOperation", "The request is not authorized."),
        429: (
            "RequestLimitExceeded",
            "Your current request times equals to `21` in a second, which exceeds the frequency limit "
            "`20` for a second. Please reduce the frequency of calls.",
        ),
        500: ("InternalError", "An internal error has occurred. Retry your request."),
    }
    code, message = kinds.get(status, ("InternalError", f"Mock error with status {status}"))
    return _hunyuan_error_body(req, code, message)


# --------------------------------------------------------------------------
# MiniMax ChatCompletion Pro: POST /v1/text/chatcompletion_pro?GroupId=...
# Shapes: MiniMax docs "ChatCompletion Pro" (https://platform.minimaxi.com/document/guides/chat-model/pro/api):
# request messages[{sender_type USER|BOT, sender_name, text}], bot_setting, reply_constraints;
# response {created, model, reply, choices[{finish_reason, messages[{sender_type "BOT", sender_name,
# text}]}], usage{total_tokens}, input_sensitive, output_sensitive, id, base_resp{status_code,
# status_msg}}; streamed "data: {...}" events with incremental choices[].messages[].text and a final
# event carrying reply/usage/base_resp (samples quoted in alibaba/higress ai-proxy provider/minimax.go).
# Errors: HTTP 200 with base_resp.status_code != 0 (1002 rate limit, 1004 auth failure, 1013 internal,
# 2013 invalid params) per the docs' "错误码" table.
# --------------------------------------------------------------------------


def minimax_pro(req: MockRequest) -> Reply:
    if not req.qparam("GroupId"):
        return _minimax_error_body(req, 2013, "invalid params, missing GroupId")
    body = req.obj
    model = body.get("model") if isinstance(body.get("model"), str) else "abab6.5s-chat"
    texts: list[str] = []
    for setting in body.get("bot_setting") or []:
        if isinstance(setting, dict):
            texts.append(str(setting.get("content", "")))
    messages: list[tuple[str, str]] = []
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            messages.append((str(message.get("sender_type", "")), str(message.get("text", ""))))
    texts += [t for _, t in messages]
    limit = int_or_none(body.get("tokens_to_generate"))
    answer = Conversation(texts, last_with_role(messages, "USER"), max_tokens=limit).answer()
    constraints = sub(body, "reply_constraints")
    bot_name = str(constraints.get("sender_name") or MINIMAX_DEFAULT_BOT)
    finish = "length" if answer.truncated else "stop"
    chat_id = f"mock{req.digest[:28]}"

    def final() -> dict[str, Any]:
        return {
            "created": CREATED,
            "model": model,
            "reply": answer.text,
            "choices": [
                {
                    "finish_reason": finish,
                    "index": 0,
                    "messages": [{"sender_type": "BOT", "sender_name": bot_name, "text": answer.text}],
                }
            ],
            "usage": {"total_tokens": answer.total_tokens},
            "input_sensitive": False,
            "output_sensitive": False,
            "id": chat_id,
            "base_resp": {"status_code": 0, "status_msg": ""},
        }

    if not body.get("stream"):
        return json_reply(final())
    events = [
        sse_data(
            {
                "created": CREATED,
                "model": model,
                "reply": "",
                "choices": [{"index": 0, "messages": [{"sender_type": "BOT", "sender_name": bot_name, "text": piece}]}],
                "output_sensitive": False,
            }
        )
        for piece in answer.pieces
    ]
    events.append(sse_data(final()))
    return Reply(200, "text/event-stream", events=events, headers=[("cache-control", "no-cache")])


def _minimax_error_body(req: MockRequest, code: int, message: str) -> Reply:
    return json_reply(
        {
            "created": 0,
            "model": "",
            "reply": "",
            "choices": None,
            "id": f"mock{req.digest[:28]}",
            "base_resp": {"status_code": code, "status_msg": message},
        },
        200,
    )


def minimax_error(req: MockRequest, status: int) -> Reply:
    kinds = {
        400: (2013, "invalid params"),
        401: (1004, "login fail: Please carry the API secret key in the 'Authorization' field of the request header"),
        429: (1002, "rate limit exceeded(RPM)"),
        500: (1013, "internal service error"),
    }
    code, message = kinds.get(status, (1000, "unknown error"))
    return _minimax_error_body(req, code, message)


# --------------------------------------------------------------------------
# DeepL: POST /v2/translate (api-free.deepl.com and api.deepl.com)
# Shapes: DeepL API reference "Translate text" -> {"translations": [{"detected_source_language", "text"}]}
# (https://developers.deepl.com/api-reference/translate), JSON or form-encoded request bodies
# (https://developers.deepl.com/docs/getting-started/auth); errors are {"message": "..."} with
# 400/403/413/429/456/5xx (https://developers.deepl.com/docs/best-practices/error-handling).
# --------------------------------------------------------------------------


def deepl_translate(req: MockRequest) -> Reply:
    fields: dict[str, Any]
    if isinstance(req.json, dict):
        fields = dict(req.json)
    else:
        form = parse_qs(req.body.decode("utf-8", "replace"))
        fields = {k: (v if k == "text" else v[0]) for k, v in form.items()}
    target = str(fields.get("target_lang") or "").upper()
    if not target:
        return json_reply({"message": "Value for 'target_lang' not supported."}, 400)
    texts = fields.get("text")
    texts = [texts] if isinstance(texts, str) else (texts if isinstance(texts, list) else [])
    source = str(fields.get("source_lang") or "EN").upper()
    return json_reply(
        {
            "translations": [
                {"detected_source_language": source, "text": f"mock translation ({target}): {t}"} for t in texts
            ]
        }
    )


def deepl_error(req: MockRequest, status: int) -> Reply:
    messages = {
        400: "Bad request. Please check error message and your parameters.",
        403: "Authorization failed. Please supply a valid auth_key parameter.",
        429: "Too many requests. Please wait and resend your request.",
        456: "Quota exceeded. The character limit has been reached.",
        500: "Internal server error.",
    }
    status = 403 if status == 401 else status  # DeepL reports bad keys as 403
    return json_reply({"message": messages.get(status, f"Mock error with status {status}")}, status)


# --------------------------------------------------------------------------
# Plain files for gateway "context" tests
# --------------------------------------------------------------------------


def context_file(req: MockRequest) -> Reply:
    return Reply(200, "text/plain; charset=utf-8", CONTEXT_TEXT.encode("utf-8"))


def context_error(req: MockRequest, status: int) -> Reply:
    return Reply(status, "text/plain; charset=utf-8", f"mock error {status}\n".encode())


# --------------------------------------------------------------------------
# Cohere v2: POST /v2/chat (buffered or stream) and POST /v2/embed
# Shapes: Chat API reference {id, finish_reason COMPLETE|MAX_TOKENS|TOOL_CALL, message:{role,
# content:[{type:text,text}], tool_plan, tool_calls:[{id,type:function,function:{name,arguments}}]},
# usage:{billed_units:{input_tokens,output_tokens}, tokens:{input_tokens,output_tokens}}}
# (https://docs.cohere.com/v2/reference/chat); stream events message-start, content-start,
# content-delta, content-end, tool-plan-delta, tool-call-start/-delta/-end, message-end with
# delta.finish_reason and delta.usage ("Streaming" https://docs.cohere.com/v2/docs/streaming and
# "Streaming for tool use" https://docs.cohere.com/v2/docs/tool-use-streaming); Embed API v2
# {id, embeddings:{float:[[...]]}, texts, meta:{billed_units:{input_tokens}},
# response_type:"embeddings_by_type"} (https://docs.cohere.com/v2/reference/embed); errors
# {"id", "message"} with the HTTP status (https://docs.cohere.com/reference/errors).
# --------------------------------------------------------------------------


def cohere_conversation(req: MockRequest) -> Conversation:
    body = req.obj
    messages: list[tuple[str, str]] = []
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            messages.append((str(message.get("role", "")), text_of(message.get("content"))))
    tool_name, tool_schema = None, None
    tools = body.get("tools")
    if isinstance(tools, list) and tools and body.get("tool_choice") != "NONE":
        first = sub(tools[0] if isinstance(tools[0], dict) else {}, "function")
        if isinstance(first.get("name"), str):
            tool_name, tool_schema = first["name"], first.get("parameters")
    return Conversation(
        [t for _, t in messages],
        last_with_role(messages, "user"),
        tool_name,
        tool_schema,
        int_or_none(body.get("max_tokens")),
    )


def cohere_chat(req: MockRequest) -> Reply:
    body = req.obj
    answer = cohere_conversation(req).answer()
    msg_id = f"cohere-mock-{req.digest[:24]}"
    tool_id = f"{answer.tool_call.name}_mock{req.digest[24:36]}" if answer.tool_call else ""
    finish = "MAX_TOKENS" if answer.truncated else ("TOOL_CALL" if answer.tool_call else "COMPLETE")
    usage = {
        "billed_units": {"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens},
        "tokens": {"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens},
    }
    plan = "I will call the tool." if answer.tool_call else ""
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": [{"type": "text", "text": answer.text}]}
        if answer.tool_call:
            message["tool_plan"] = plan
            message["tool_calls"] = [
                {
                    "id": tool_id,
                    "type": "function",
                    "function": {"name": answer.tool_call.name, "arguments": answer.tool_call.arguments},
                }
            ]
        return json_reply({"id": msg_id, "finish_reason": finish, "message": message, "usage": usage})

    start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    events = [sse_named("message-start", {"id": msg_id, "type": "message-start", "delta": {"message": start}})]
    if answer.tool_call:
        events.append(
            sse_named("tool-plan-delta", {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": plan}}})
        )
    events.append(
        sse_named(
            "content-start",
            {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}},
        )
    )
    events += [
        sse_named(
            "content-delta",
            {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}},
        )
        for piece in answer.pieces
    ]
    events.append(sse_named("content-end", {"type": "content-end", "index": 0}))
    if answer.tool_call:
        call = {"id": tool_id, "type": "function", "function": {"name": answer.tool_call.name, "arguments": ""}}
        events.append(
            sse_named("tool-call-start", {"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": call}}})
        )
        events += [
            sse_named(
                "tool-call-delta",
                {
                    "type": "tool-call-delta",
                    "index": 0,
                    "delta": {"message": {"tool_calls": {"function": {"arguments": part}}}},
                },
            )
            for part in answer.tool_call.argument_pieces()
        ]
        events.append(sse_named("tool-call-end", {"type": "tool-call-end", "index": 0}))
    events.append(
        sse_named("message-end", {"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}})
    )
    return Reply(200, SSE_TYPE, events=events, headers=[("cache-control", "no-cache")])


def cohere_embed(req: MockRequest) -> Reply:
    body = req.obj
    texts = [str(t) for t in body.get("texts") or []]
    dims = int_or_none(body.get("output_dimension")) or DEFAULT_EMBEDDING_DIMS
    return json_reply(
        {
            "id": f"cohere-mock-{req.digest[:24]}",
            "embeddings": {"float": [embedding_vector(t, dims) for t in texts]},
            "texts": texts,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": word_count(*texts)}},
            "response_type": "embeddings_by_type",
        }
    )


def cohere_error(req: MockRequest, status: int) -> Reply:
    messages = {
        400: "invalid request: message must be at least 1 token long.",
        401: "invalid api token",
        404: "model 'x' not found, make sure the correct model ID was used and that you have access to the model.",
        429: "You are using a Trial key, which is limited to 10 API calls / minute.",
        500: "internal server error, this has been reported to our developers.",
    }
    message = messages.get(status, f"Mock error with status {status}")
    return json_reply({"id": f"cohere-mock-{req.digest[:24]}", "message": message}, status)


# --------------------------------------------------------------------------
# Coze bot chat (v3), reached only through `protocol: original` (aiproxy does not translate it)
# Shapes: "发起对话" (https://docs.coze.cn/developer_guides/chat_v3): POST /v3/chat with
# {bot_id, user_id, stream, additional_messages:[{role, content, content_type}]}, Bearer token.
# Not streamed: {"code": 0, "msg": "", "data": {id, conversation_id, bot_id, created_at,
# last_error:{code,msg}, status:"in_progress"}} (the answer is read later with other calls).
# Streamed: "event:<name>" / "data:<json>" lines (no space after the colon):
# conversation.chat.created, conversation.message.delta (type "answer", a content piece),
# conversation.message.completed (the whole content), conversation.chat.completed (usage
# {token_count, output_count, input_count}), then "done" with data "[DONE]".
# Errors: {"code": <nonzero>, "msg"}.
# --------------------------------------------------------------------------

COZE_CHAT: Final = "/v3/chat"


def coze_event(name: str, obj: JSON) -> bytes:
    payload = obj if isinstance(obj, str) else dumps(obj)
    return f"event:{name}\ndata:{payload}\n\n".encode("utf-8")


def coze_chat(req: MockRequest) -> Reply:
    body = req.obj
    if not credential(req):
        return coze_error(req, 401)
    messages = [m for m in body.get("additional_messages") or [] if isinstance(m, dict)]
    last_user = last_with_role([(str(m.get("role", "")), text_of(m.get("content"))) for m in messages], "user")
    chat = {
        "id": f"coze-chat-{req.digest[:16]}",
        "conversation_id": f"coze-conv-{req.digest[16:32]}",
        "bot_id": str(body.get("bot_id", "")),
        "created_at": CREATED,
        "last_error": {"code": 0, "msg": ""},
    }
    if not body.get("stream"):
        return json_reply({"code": 0, "msg": "", "data": {**chat, "status": "in_progress"}})
    text = reply_text(last_user)
    message = {
        "id": f"coze-msg-{req.digest[32:48]}",
        "conversation_id": chat["conversation_id"],
        "bot_id": chat["bot_id"],
        "chat_id": chat["id"],
        "role": "assistant",
        "type": "answer",
        "content_type": "text",
    }
    prompt, completion = word_count(last_user), word_count(text)
    usage = {"token_count": prompt + completion, "output_count": completion, "input_count": prompt}
    events = [coze_event("conversation.chat.created", {**chat, "status": "created"})]
    events += [coze_event("conversation.message.delta", {**message, "content": p}) for p in split_pieces(text)]
    events.append(coze_event("conversation.message.completed", {**message, "content": text}))
    done = {**chat, "status": "completed", "completed_at": CREATED + 1, "usage": usage}
    events.append(coze_event("conversation.chat.completed", done))
    events.append(coze_event("done", '"[DONE]"'))
    return Reply(200, SSE_TYPE, events=events, headers=[("cache-control", "no-cache")])


def coze_error(req: MockRequest, status: int) -> Reply:
    return json_reply({"code": 4100, "msg": f"mock Coze error (HTTP {status})"}, status)


def not_found(req: MockRequest) -> Reply:
    return json_reply(
        {
            "error": {
                "message": f"mock_provider: no route for {req.method} {req.route}",
                "type": "invalid_request_error",
                "param": None,
                "code": "not_found",
            }
        },
        404,
    )


# --------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------

Handler = Callable[[MockRequest], Reply]
ErrorHandler = Callable[[MockRequest, int], Reply]


# --------------------------------------------------------------------------
# Bedrock (Converse / ConverseStream)
# Shapes: AWS Bedrock API reference "Converse" and "ConverseStream"
# (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html and
# API_runtime_ConverseStream.html: output.message.content, stopReason,
# usage{inputTokens, outputTokens, totalTokens}, metrics{latencyMs}; stream events messageStart,
# contentBlockDelta{delta{text}}, contentBlockStop, messageStop{stopReason}, metadata{usage,
# metrics}) in the AWS event-stream binary framing ("Event stream encoding",
# https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html: prelude total/headers length
# + CRC32, string headers (type 7), payload, message CRC32). Errors: {"message"} with the
# x-amzn-ErrorType header ("Common Errors" of the Bedrock API reference).
# Auth: SigV4 ("Create a signed AWS API request",
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html) or a
# Bedrock API key as a bearer token ("Use an Amazon Bedrock API key",
# https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-use.html). The mock checks the
# Authorization header's form (scope, signed headers, x-amz-date); the signature itself is checked
# by the tests, which know the secret.
# --------------------------------------------------------------------------

BEDROCK_ROUTE: Final = re.compile(r"^/model/([^/]+)/(converse|converse-stream)$")
EVENTSTREAM_TYPE: Final = "application/vnd.amazon.eventstream"


def eventstream_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One AWS event-stream message with string headers (CRC32 from zlib)."""
    hb = b""
    for name, value in headers:
        n, v = name.encode(), value.encode()
        hb += bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 16 + len(hb) + len(payload)
    prelude = struct.pack(">II", total, len(hb))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + hb + payload
    return message + struct.pack(">I", zlib.crc32(message))


def bedrock_event(event_type: str, obj: JSON) -> bytes:
    headers = [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")]
    return eventstream_message(headers, dumps(obj).encode("utf-8"))


SIGV4_AUTH: Final = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<akid>[A-Za-z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/bedrock/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9-]+(?:;[a-z0-9-]+)*), Signature=(?P<sig>[0-9a-f]{64})$"
)
AMZ_DATE: Final = re.compile(r"^\d{8}T\d{6}Z$")


def bedrock_auth_problem(req: MockRequest) -> str:
    """Why the request's credentials are malformed ('' when they are well formed)."""
    auth = req.header("authorization")
    if not auth:
        return "Missing Authentication Token"
    if auth.startswith("Bearer "):
        return "" if auth[7:].strip() else "Empty API key"
    match = SIGV4_AUTH.match(auth)
    if match is None:
        return "Authorization header is not a well-formed AWS4-HMAC-SHA256 signature"
    signed = match.group("signed").split(";")
    if signed != sorted(signed) or not {"host", "x-amz-date"} <= set(signed):
        return "SignedHeaders must be sorted and include host and x-amz-date"
    if any(name not in req.headers for name in signed):
        return "a signed header is missing from the request"
    amz_date = req.header("x-amz-date")
    if not AMZ_DATE.match(amz_date) or amz_date[:8] != match.group("date"):
        return "x-amz-date is missing or disagrees with the credential scope"
    if f"bedrock-runtime.{match.group('region')}.amazonaws.com" != req.host.lower():
        return "the credential scope's region is not the host's"
    return ""


def bedrock_converse(req: MockRequest) -> Reply:
    match = BEDROCK_ROUTE.match(req.route)
    assert match is not None
    body = req.obj
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    problem = bedrock_auth_problem(req)
    if problem:
        return bedrock_error(req, 403, problem)
    if not messages:
        return bedrock_error(req, 400)
    last_user = ""
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "user":
            last_user = " ".join(
                b["text"] for b in m.get("content", []) if isinstance(b, dict) and isinstance(b.get("text"), str)
            )
    prompt_words = word_count(last_user, *(s.get("text", "") for s in body.get("system", []) if isinstance(s, dict)))
    text = reply_text(last_user)
    usage = {"inputTokens": prompt_words, "outputTokens": word_count(text), "totalTokens": prompt_words + word_count(text)}
    if match.group(2) == "converse":
        return json_reply(
            {
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": "end_turn",
                "usage": usage,
                "metrics": {"latencyMs": 12},
            }
        )
    events = [bedrock_event("messageStart", {"role": "assistant"})]
    if req.header("x-mock-scenario").lower() == "exception" or body_scenario(req.body.decode("utf-8", "replace")) == "exception":
        # A modeled error after the 200 ("ConverseStream" Errors): an exception message, then
        # the stream ends.
        events.append(bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "partial"}}))
        headers = [
            (":exception-type", "throttlingException"),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ]
        events.append(eventstream_message(headers, dumps({"message": "Too many tokens, please wait."}).encode()))
        return Reply(200, EVENTSTREAM_TYPE, events=events)
    for piece in split_pieces(text):
        events.append(bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}))
    events.append(bedrock_event("contentBlockStop", {"contentBlockIndex": 0}))
    events.append(bedrock_event("messageStop", {"stopReason": "end_turn"}))
    events.append(bedrock_event("metadata", {"usage": usage, "metrics": {"latencyMs": 12}}))
    return Reply(200, EVENTSTREAM_TYPE, events=events)


def bedrock_error(req: MockRequest, status: int, detail: str = "") -> Reply:
    kinds = {
        400: ("ValidationException", "The provided model identifier is invalid."),
        401: ("UnrecognizedClientException", "The security token included in the request is invalid."),
        403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
        404: ("ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier."),
        429: ("ThrottlingException", "Too many requests, please wait before trying again."),
        500: ("InternalServerException", "The server encountered an internal error."),
        503: ("ServiceUnavailableException", "The service is temporarily unavailable."),
    }
    kind, message = kinds.get(status, ("InternalServerException", f"Mock error with status {status}"))
    if detail:
        kind, message = "IncompleteSignatureException", detail
    return json_reply({"message": message}, status, [("x-amzn-errortype", f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/")])


@dataclass(frozen=True)
class Route:
    provider: str
    handle: Handler
    error: ErrorHandler


def resolve(req: MockRequest) -> Route:
    """Pick the impersonated provider for a request."""
    route, method = req.route, req.method
    if method == "GET":
        if route == "/ai/context.txt" or route.startswith("/files/"):
            return Route("context", context_file, context_error)
        if re.match(r"^/v1/files/[^/]+/content$", route):
            return Route("moonshot", moonshot_file_content, moonshot_error)
        return Route("unknown", not_found, lambda r, s: not_found(r))
    if method != "POST":
        return Route("unknown", not_found, lambda r, s: not_found(r))
    if route == "/v1/messages":
        return Route("claude", claude_messages, claude_error)
    if route == "/v1/messages/count_tokens":
        return Route("claude", claude_count_tokens, claude_error)
    if BEDROCK_ROUTE.match(route):
        return Route("bedrock", bedrock_converse, bedrock_error)
    if VERTEX_GEMINI_ROUTE.match(route):
        return Route("vertex", vertex_gemini, gemini_error)
    if VERTEX_CLAUDE_ROUTE.match(route):
        return Route("vertex", vertex_claude, claude_error)
    if route == OAUTH_TOKEN_PATH:
        return Route("google-oauth", oauth_token, oauth_error)
    if GEMINI_ROUTE.match(route):
        return Route("gemini", gemini_dispatch, gemini_error)
    if route in (QWEN_TEXT_GEN, QWEN_MULTIMODAL):
        return Route("qwen", qwen_generation, qwen_error)
    if route == QWEN_EMBEDDING:
        return Route("qwen", qwen_embedding, qwen_error)
    if route == "/v1/text/chatcompletion_pro":
        return Route("minimax", minimax_pro, minimax_error)
    if route == "/v2/translate":
        return Route("deepl", deepl_translate, deepl_error)
    if route == "/v2/chat":
        return Route("cohere", cohere_chat, cohere_error)
    if route == "/v2/embed":
        return Route("cohere", cohere_embed, cohere_error)
    if route == COZE_CHAT:
        return Route("coze", coze_chat, coze_error)
    if route == "/" and (req.header("x-tc-action") or "tencentcloudapi" in req.host.lower()):
        return Route("hunyuan", hunyuan_chat, hunyuan_error)
    if route.endswith("/chat/completions") or route == "/v1/text/chatcompletion_v2":
        return Route(openai_flavor(req), openai_chat, openai_error)
    if route.endswith("/embeddings"):
        return Route(openai_flavor(req), openai_embeddings, openai_error)
    return Route("unknown", not_found, lambda r, s: not_found(r))


def hostile_reply(scenario: str, reply: Reply) -> Reply | None:
    """The reply of a hostile-upstream scenario (replacing the normal ``reply``), or None."""
    if scenario == "html200":
        return Reply(200, "text/html; charset=utf-8", b"<html><body><h1>Welcome to nginx!</h1></body></html>\n")
    if scenario == "sse-nodata":
        events = [b": keep-alive\n\n", b"event: ping\n\n", b"id: 7\nretry: 100\n\n"]
        return Reply(200, SSE_TYPE, events=events, headers=[("cache-control", "no-cache")])
    if scenario == "truncated":
        if reply.events is not None:
            return Reply(reply.status, reply.content_type, events=reply.events[:2], headers=reply.headers)
        return Reply(reply.status, reply.content_type, reply.body[: max(1, len(reply.body) // 2)], None, reply.headers)
    if scenario == "empty-json":
        return json_reply({})
    if scenario == "text-error":
        return Reply(503, "text/plain; charset=utf-8", b"upstream overloaded, try again later\n")
    if scenario == "html-error":
        return Reply(502, "text/html", b"<html><head><title>502 Bad Gateway</title></head><body>bad gateway</body></html>")
    return None


SCENARIO_MARKER: Final = re.compile(r"\[mock:([A-Za-z0-9:_-]+)\]")


def body_scenario(body_text: str) -> str:
    """Scenario named by a ``[mock:<scenario>]`` marker in the request body, or ''."""
    match = SCENARIO_MARKER.search(body_text)
    return match.group(1).lower() if match else ""


# --------------------------------------------------------------------------
# Request log
# --------------------------------------------------------------------------


class RequestLog:
    """Thread-safe in-memory log of every non-control request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._seq = 0

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)
            return entry

    def update(self, entry: dict[str, Any], **response: Any) -> None:
        with self._lock:
            entry["response"].update(response)

    def snapshot(self) -> str:
        with self._lock:
            return dumps(self._entries)

    def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count


# --------------------------------------------------------------------------
# Token faults
# --------------------------------------------------------------------------


def credential(req: MockRequest) -> str:
    """The API key a request carries, in whichever header or parameter its provider uses."""
    auth = req.header("authorization")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    for name in ("x-api-key", "api-key", "x-goog-api-key"):
        value = req.header(name)
        if value:
            return value.strip()
    return req.qparam("key")


class FaultTable:
    """Thread-safe list of injected faults: ``{"token", "status", "count", "hits"}``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[dict[str, Any]] = []

    def add(self, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise ValueError("fault must be a JSON object")
        token, status, count = spec.get("token"), spec.get("status"), spec.get("count")
        if not isinstance(token, str) or not token:
            raise ValueError("'token' must be a non-empty string")
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError("'status' must be an HTTP status")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("'count' must be a positive integer or null")
        fault = {"token": token, "status": status, "count": count, "hits": 0}
        with self._lock:
            self._faults.append(fault)
        return dict(fault)

    def take(self, token: str) -> int | None:
        """The status of the first fault matching ``token``, consuming one of its uses."""
        with self._lock:
            for fault in self._faults:
                if fault["token"] not in ("*", token):
                    continue
                if fault["count"] is not None and fault["hits"] >= fault["count"]:
                    continue
                fault["hits"] += 1
                return int(fault["status"])
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(f) for f in self._faults]

    def clear(self) -> int:
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
            return count


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------


@dataclass
class MockConfig:
    stream_delay_ms: float = 0.0
    slow_ms: float = DEFAULT_SLOW_MS
    verbose: bool = False


class ClientGone(Exception):
    """The peer closed the connection while we were writing."""


class MockServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self) -> tuple[Any, Any]:
        conn, addr = super().get_request()
        # Headers and body go out as separate writes: without this, Nagle + delayed ACK add ~40 ms.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr

    def __init__(self, address: tuple[str, int], config: MockConfig) -> None:
        super().__init__(address, MockHandler)
        self.config = config
        self.log = RequestLog()
        self.faults = FaultTable()


class MockHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-provider/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are dropped after this
    server: MockServer

    # -- plumbing ---------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.config.verbose:
            sys.stderr.write("mock_provider: " + (format % args) + "\n")

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                if not size_line:
                    raise ClientGone()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)  # CRLF after the chunk
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_head(self, status: int, content_type: str, extra: list[tuple[str, str]], length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in extra:
            self.send_header(name, value)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError as exc:  # BrokenPipe, ConnectionReset, timeout, closed socket
            raise ClientGone() from exc

    def _write_chunk(self, data: bytes) -> None:
        if data:
            self._write(b"%X\r\n%s\r\n" % (len(data), data))

    def _reset_connection(self) -> None:
        """Abort the TCP connection with an RST (no FIN, no final chunk)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def _simple(self, status: int, obj: JSON) -> None:
        data = dumps(obj).encode("utf-8")
        self._send_head(status, JSON_TYPE, [], len(data))
        self._write(data)

    # -- dispatch -----------------------------------------------------------

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except (ClientGone, ValueError):
            self.close_connection = True
            return
        split = urlsplit(self.path)
        route = split.path or "/"

        if route.startswith("/__mock/"):
            self._control(route, body)
            return

        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        text = body.decode("utf-8", "replace")
        try:
            parsed: JSON = json.loads(body) if body.strip() else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        req = MockRequest(
            method=self.command,
            host=headers.get("host", ""),
            path=self.path,
            route=route,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=body,
            json=parsed,
        )
        target = resolve(req)
        scenario = req.header("x-mock-scenario").strip().lower() or body_scenario(text)
        fault = self.server.faults.take(credential(req))
        if fault is not None:
            scenario = f"error-{fault}"
        entry = self.server.log.add(
            {
                "time": time.time(),
                "method": req.method,
                "host": req.host,
                "path": req.path,
                "headers": headers,
                "body": text,
                "json": parsed,
                "provider": target.provider,
                "scenario": scenario or None,
                "response": {
                    "status": None,
                    "streamed": False,
                    "events_sent": 0,
                    "completed": False,
                    "client_disconnected": False,
                },
            }
        )
        try:
            if scenario.startswith("error"):
                reply = target.error(req, self._error_status(req, scenario))
            else:
                reply = target.handle(req)
                reply = hostile_reply(scenario, reply) or reply
        except Exception as exc:  # a mock bug must not kill the connection silently
            reply = json_reply(
                {
                    "error": {
                        "message": f"mock_provider internal error: {exc!r}",
                        "type": "mock_error",
                        "param": None,
                        "code": None,
                    }
                },
                500,
            )
        try:
            self._send(reply, scenario, req, entry)
        except (ClientGone, OSError):
            self.close_connection = True
            self.server.log.update(entry, client_disconnected=True)

    @staticmethod
    def _error_status(req: MockRequest, scenario: str) -> int:
        match = re.match(r"^error[-:_ ]?(\d{3})$", scenario)
        if match:
            return int(match.group(1))
        override = req.header("x-mock-error-status")
        return int(override) if override.isdigit() else DEFAULT_ERROR_STATUS

    def _delay_s(self, req: MockRequest, scenario: str) -> float:
        override = req.header("x-mock-delay-ms")
        try:
            if override:
                return max(0.0, float(override)) / 1000.0
        except ValueError:
            pass
        config = self.server.config
        return (config.slow_ms if scenario == "slow" else config.stream_delay_ms) / 1000.0

    def _send(self, reply: Reply, scenario: str, req: MockRequest, entry: dict[str, Any]) -> None:
        log = self.server.log
        headers = list(reply.headers)
        if reply.events is None:
            body = reply.body
            if scenario == "malformed" and reply.content_type.startswith(JSON_TYPE):
                body = body[: max(1, len(body) // 2)]  # truncated JSON
            if scenario == "slow":
                time.sleep(self._delay_s(req, scenario))
            self._send_head(reply.status, reply.content_type, headers, len(body))
            log.update(entry, status=reply.status)
            if scenario == "reset":
                self._write(body[: len(body) // 2])
                self._reset_connection()
                log.update(entry, reset=True)
                return
            self._write(body)
            log.update(entry, completed=True)
            return

        events = list(reply.events)
        if scenario == "malformed":
            events[1:1] = [b'data: {"malformed": tru\n\n', b"this line is not server-sent-events framing\n\n"]
        cut = max(1, min(3, len(events) - 2)) if scenario == "reset" else None
        delay = self._delay_s(req, scenario)
        self._send_head(reply.status, reply.content_type, headers, None)
        log.update(entry, status=reply.status, streamed=True)
        for index, event in enumerate(events):
            if cut is not None and index == cut:
                self._reset_connection()
                log.update(entry, reset=True)
                return
            if index > 0 and delay > 0:
                time.sleep(delay)
            self._write_chunk(event)
            log.update(entry, events_sent=index + 1)
        self._write(b"0\r\n\r\n")
        log.update(entry, completed=True)

    def _control(self, route: str, body: bytes = b"") -> None:
        log = self.server.log
        faults = self.server.faults
        if route == "/__mock/faults" and self.command == "POST":
            try:
                added = faults.add(json.loads(body or b"null"))
            except ValueError as exc:
                self._simple(400, {"error": {"message": str(exc), "type": "mock_error", "param": None, "code": None}})
                return
            self._simple(200, added)
        elif route == "/__mock/faults" and self.command == "GET":
            self._simple(200, faults.snapshot())
        elif route == "/__mock/faults" and self.command == "DELETE":
            self._simple(200, {"cleared": faults.clear()})
        elif route == "/__mock/health" and self.command == "GET":
            self._simple(200, {"status": "ok"})
        elif route == "/__mock/requests" and self.command == "GET":
            data = log.snapshot().encode("utf-8")
            self._send_head(200, JSON_TYPE, [], len(data))
            self._write(data)
        elif route == "/__mock/requests" and self.command == "DELETE":
            self._simple(200, {"cleared": log.clear()})
        else:
            self._simple(
                404,
                {
                    "error": {
                        "message": f"unknown control endpoint {self.command} {route}",
                        "type": "mock_error",
                        "param": None,
                        "code": None,
                    }
                },
            )


def make_server(port: int = 0, config: MockConfig | None = None, host: str = "127.0.0.1") -> MockServer:
    """Bind (but do not start) a mock server; ``server.server_address[1]`` is the port."""
    return MockServer((host, port), config or MockConfig())


def _watch_stdin_eof() -> None:
    """Exit when stdin closes: the launching test process is gone."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mock of every LLM provider's native API (127.0.0.1 only).")
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0 = ephemeral)")
    parser.add_argument("--stream-delay-ms", type=float, default=0.0, help="delay between stream events")
    parser.add_argument("--slow-ms", type=float, default=DEFAULT_SLOW_MS, help="per-event delay of the 'slow' scenario")
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true", help="exit when stdin is closed (used by start_mock)"
    )
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)

    server = make_server(args.port, MockConfig(args.stream_delay_ms, args.slow_ms, args.verbose))

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_on_stdin_eof:
        threading.Thread(target=_watch_stdin_eof, name="stdin-eof", daemon=True).start()
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        server.server_close()
    if args.exit_on_stdin_eof:
        # The stdin watcher thread is blocked in a read; a normal interpreter shutdown would abort
        # on its buffered stdin lock ("_enter_buffered_busy"). Nothing is left to flush but stdout.
        sys.stdout.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
