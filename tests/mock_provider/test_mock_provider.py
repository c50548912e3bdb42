"""Tests of the provider mock, run against a real subprocess on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from mock_provider import MOCK_SCRIPT, MockHandle, start_mock  # noqa: E402
from mock_provider import mock_provider as mp  # noqa: E402

TIMEOUT = 10.0


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, arrivals: list[tuple[float, bytes]]) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.arrivals = arrivals

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        arrivals: list[tuple[float, bytes]] = []
        chunks: list[bytes] = []
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            arrivals.append((time.monotonic(), chunk))
            chunks.append(chunk)
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, b"".join(chunks), arrivals)
    finally:
        conn.close()


def post(port: int, path: str, body: Any, headers: dict[str, str] | None = None) -> Response:
    return request(port, "POST", path, body, headers)


def sse_events(body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) pairs of an SSE body (comments, id lines ignored)."""
    from pyutil.openai_schema import parse_sse_events

    return [(e.event, e.data) for e in parse_sse_events(body)]


def words(*texts: str) -> int:
    return sum(len(t.split()) for t in texts)


USER = "hello mock world"
REPLY = f"mock reply to: {USER}"
OPENAI_MESSAGES = [
    {"role": "system", "content": "you are terse"},
    {"role": "user", "content": [{"type": "text", "text": USER}]},
]
PROMPT_WORDS = words("you are terse", USER)
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "integer"},
            },
            "required": ["city", "unit"],
        },
    },
}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockHandle]:
    with start_mock() as handle:
        yield handle


def entry_for(mock: MockHandle, marker: str, wait_for: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """The recorded request carrying header x-test-id == marker (optionally once response[wait_for] is truthy)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in mock.requests() if e["headers"].get("x-test-id") == marker]
        if found and (wait_for is None or found[-1]["response"].get(wait_for)):
            return found[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no recorded request {marker} (wait_for={wait_for}): {found}")
        time.sleep(0.05)


# --------------------------------------------------------------------------
# unit tests of the pure helpers
# --------------------------------------------------------------------------


def test_split_pieces_reassembles_and_has_three_pieces() -> None:
    for text in ["mock reply to: (empty)", "mock reply to: a  b\nc ", REPLY]:
        pieces = mp.split_pieces(text)
        assert "".join(pieces) == text
        assert len(pieces) >= 3


def test_mock_args_fill_required_properties_from_schema() -> None:
    args = mp.mock_args(WEATHER_TOOL["function"]["parameters"])
    assert args == {"city": "mock", "unit": "c"}
    assert mp.mock_args({"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}}) == {"n": 1}


def test_embedding_vector_is_deterministic() -> None:
    assert mp.embedding_vector("x", 5) == mp.embedding_vector("x", 5)
    assert mp.embedding_vector("x", 5) != mp.embedding_vector("y", 5)
    assert all(-1.0 <= v <= 1.0 for v in mp.embedding_vector("x", 40))


# --------------------------------------------------------------------------
# process, control endpoints, recording
# --------------------------------------------------------------------------


def test_script_prints_listening_and_stops_on_sigterm() -> None:
    process = subprocess.Popen([sys.executable, str(MOCK_SCRIPT), "--port", "0"], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("LISTENING ")
        port = int(line.split()[1])
        assert request(port, "GET", "/__mock/health").json() == {"status": "ok"}
    finally:
        process.terminate()
        assert process.wait(timeout=TIMEOUT) == 0
        assert process.stdout is not None
        process.stdout.close()


def test_start_mock_exits_when_parent_closes_stdin() -> None:
    handle = start_mock()
    try:
        assert handle.healthy()
        assert handle.process.stdin is not None
        handle.process.stdin.close()
        assert handle.process.wait(timeout=TIMEOUT) == 0
    finally:
        handle.close()


def test_health_and_unknown_routes(mock: MockHandle) -> None:
    assert mock.healthy()
    resp = post(mock.port, "/v9/nothing/here", {})
    assert resp.status == 404
    assert "no route" in resp.json()["error"]["message"]
    assert request(mock.port, "GET", "/__mock/nope").status == 404


def test_requests_are_recorded_and_cleared(mock: MockHandle) -> None:
    mock.clear()
    marker = uuid.uuid4().hex
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "record me"}]}
    post(
        mock.port,
        "/openai/deployments/dep1/chat/completions?api-version=2024-02-01",
        body,
        {"Host": "res.openai.azure.com", "x-test-id": marker, "Authorization": "Bearer k"},
    )
    entries = mock.requests()
    assert len(entries) == 1
    entry = entries[0]
    assert entry["method"] == "POST"
    assert entry["host"] == "res.openai.azure.com"
    assert entry["path"] == "/openai/deployments/dep1/chat/completions?api-version=2024-02-01"
    assert entry["headers"]["authorization"] == "Bearer k"
    assert entry["headers"]["x-test-id"] == marker
    assert json.loads(entry["body"]) == body
    assert entry["json"] == body
    assert entry["provider"] == "azure"
    assert entry["response"]["status"] == 200 and entry["response"]["completed"] is True
    # control endpoints are not recorded
    mock.requests()
    assert len(mock.requests()) == 1
    mock.clear()
    assert mock.requests() == []


def test_chunked_request_body_and_keep_alive(mock: MockHandle) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=TIMEOUT)
    try:
        payload = json.dumps({"model": "m", "messages": [{"role": "user", "content": "chunked body"}]}).encode()
        parts = [payload[:10], payload[10:]]
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=iter(parts),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        first = conn.getresponse()
        assert first.status == 200
        assert json.loads(first.read())["choices"][0]["message"]["content"] == "mock reply to: chunked body"
        # second request on the same connection
        conn.request("POST", "/v1/chat/completions", body=payload, headers={"Content-Type": "application/json"})
        second = conn.getresponse()
        assert second.status == 200
        second.read()
    finally:
        conn.close()


def test_context_files(mock: MockHandle) -> None:
    for path in ["/ai/context.txt", "/files/some/doc.txt"]:
        resp = request(mock.port, "GET", path)
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/plain")
        assert resp.text == mp.CONTEXT_TEXT


# --------------------------------------------------------------------------
# OpenAI protocol family
# --------------------------------------------------------------------------

CHAT_PATHS = [
    "/v1/chat/completions",
    "/chat/completions",
    "/openai/v1/chat/completions",
    "/api/paas/v4/chat/completions",
    "/v2/chat/completions",
    "/v1/text/chatcompletion_v2",
    "/client/v4/accounts/acc123/ai/v1/chat/completions",
    "/openai/deployments/my-dep/chat/completions?api-version=2024-06-01",
    "/compatible-mode/v1/chat/completions",
]
EMBEDDING_PATHS = [
    "/v1/embeddings",
    "/embeddings",
    "/openai/v1/embeddings",
    "/api/paas/v4/embeddings",
    "/v2/embeddings",
    "/client/v4/accounts/acc123/ai/v1/embeddings",
    "/openai/deployments/emb/embeddings?api-version=2024-06-01",
]


@pytest.mark.parametrize("path", CHAT_PATHS)
def test_openai_chat_buffered(mock: MockHandle, path: str) -> None:
    from pyutil.openai_schema import validate_chat_completion

    resp = post(mock.port, path, {"model": "gpt-4o", "messages": OPENAI_MESSAGES})
    assert resp.status == 200
    obj = resp.json()
    validate_chat_completion(obj)
    assert obj["choices"][0]["message"]["content"] == REPLY
    assert obj["choices"][0]["finish_reason"] == "stop"
    assert obj["usage"] == {
        "prompt_tokens": PROMPT_WORDS,
        "completion_tokens": words(REPLY),
        "total_tokens": PROMPT_WORDS + words(REPLY),
    }
    assert obj["model"] == "gpt-4o"
    # deterministic
    assert post(mock.port, path, {"model": "gpt-4o", "messages": OPENAI_MESSAGES}).json() == obj


@pytest.mark.parametrize("path", CHAT_PATHS)
def test_openai_chat_streamed_with_usage(mock: MockHandle, path: str) -> None:
    from pyutil.openai_schema import validate_sse_stream

    body = {"model": "gpt-4o", "messages": OPENAI_MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    resp = post(mock.port, path, body)
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert "content-length" not in resp.headers
    chunks = validate_sse_stream(resp.body)
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    content = [d for d in deltas if d]
    assert len(content) >= 3
    assert "".join(content) == REPLY
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == words(REPLY)
    assert all(c["usage"] is None for c in chunks[:-1])
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"


def test_openai_stream_without_usage_has_no_usage_field(mock: MockHandle) -> None:
    from pyutil.openai_schema import validate_sse_stream

    resp = post(mock.port, "/v1/chat/completions", {"model": "m", "messages": OPENAI_MESSAGES, "stream": True})
    chunks = validate_sse_stream(resp.body)
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_openai_tool_calls_buffered_and_streamed(mock: MockHandle) -> None:
    from pyutil.openai_schema import validate_chat_completion, validate_sse_stream

    body = {"model": "gpt-4o", "messages": OPENAI_MESSAGES, "tools": [WEATHER_TOOL]}
    obj = post(mock.port, "/v1/chat/completions", body).json()
    validate_chat_completion(obj)
    choice = obj["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "mock", "unit": "c"}

    chunks = validate_sse_stream(post(mock.port, "/v1/chat/completions", {**body, "stream": True}).body)
    args = "".join(
        tc["function"].get("arguments", "") for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])
    )
    assert json.loads(args) == {"city": "mock", "unit": "c"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"

    none = post(mock.port, "/v1/chat/completions", {**body, "tool_choice": "none"}).json()
    assert "tool_calls" not in none["choices"][0]["message"]


def test_openai_max_tokens_truncates_with_length(mock: MockHandle) -> None:
    obj = post(mock.port, "/v1/chat/completions", {"model": "m", "messages": OPENAI_MESSAGES, "max_tokens": 2}).json()
    assert obj["choices"][0]["message"]["content"] == "mock reply"
    assert obj["choices"][0]["finish_reason"] == "length"


def test_minimax_v2_carries_base_resp(mock: MockHandle) -> None:
    obj = post(mock.port, "/v1/text/chatcompletion_v2", {"model": "abab6.5s-chat", "messages": OPENAI_MESSAGES}).json()
    assert obj["base_resp"] == {"status_code": 0, "status_msg": ""}


def test_azure_model_defaults_to_deployment(mock: MockHandle) -> None:
    obj = post(
        mock.port, "/openai/deployments/dep-x/chat/completions?api-version=2024-06-01", {"messages": OPENAI_MESSAGES}
    ).json()
    assert obj["model"] == "dep-x"


@pytest.mark.parametrize("path", EMBEDDING_PATHS)
def test_openai_embeddings(mock: MockHandle, path: str) -> None:
    from pyutil.openai_schema import validate_embedding_response

    obj = post(
        mock.port, path, {"model": "text-embedding-3-small", "input": ["one two", "three"], "dimensions": 4}
    ).json()
    validate_embedding_response(obj)
    assert [d["index"] for d in obj["data"]] == [0, 1]
    assert all(len(d["embedding"]) == 4 for d in obj["data"])
    assert obj["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


def test_openai_embeddings_base64(mock: MockHandle) -> None:
    import base64
    import struct

    obj = post(mock.port, "/v1/embeddings", {"model": "e", "input": "x", "encoding_format": "base64"}).json()
    raw = base64.b64decode(obj["data"][0]["embedding"])
    assert len(struct.unpack(f"<{len(raw) // 4}f", raw)) == mp.DEFAULT_EMBEDDING_DIMS


def test_moonshot_file_content(mock: MockHandle) -> None:
    resp = request(mock.port, "GET", "/v1/files/cn-file-1/content", headers={"Host": "api.moonshot.cn"})
    assert resp.status == 200
    obj = resp.json()
    assert set(obj) == {"content", "file_type", "filename", "title", "type"}
    assert "cn-file-1" in obj["content"] and obj["type"] == "file"


# --------------------------------------------------------------------------
# Claude
# --------------------------------------------------------------------------

CLAUDE_BODY: dict[str, Any] = {
    "model": "claude-3-5-sonnet-20241022",
    "max_tokens": 256,
    "system": "you are terse",
    "messages": [{"role": "user", "content": [{"type": "text", "text": USER}]}],
}
CLAUDE_TOOL = {"name": "get_weather", "description": "w", "input_schema": WEATHER_TOOL["function"]["parameters"]}


def test_claude_buffered(mock: MockHandle) -> None:
    obj = post(mock.port, "/v1/messages", CLAUDE_BODY, {"anthropic-version": "2023-06-01"}).json()
    assert obj["type"] == "message" and obj["role"] == "assistant"
    assert obj["content"] == [{"type": "text", "text": REPLY}]
    assert obj["stop_reason"] == "end_turn" and obj["stop_sequence"] is None
    assert obj["usage"] == {"input_tokens": PROMPT_WORDS, "output_tokens": words(REPLY)}
    assert obj["id"].startswith("msg_")


def test_claude_buffered_tool_use(mock: MockHandle) -> None:
    obj = post(mock.port, "/v1/messages", {**CLAUDE_BODY, "tools": [CLAUDE_TOOL]}).json()
    assert obj["stop_reason"] == "tool_use"
    tool = obj["content"][1]
    assert tool["type"] == "tool_use" and tool["name"] == "get_weather"
    assert tool["input"] == {"city": "mock", "unit": "c"}
    assert tool["id"].startswith("toolu_")


def test_claude_streamed_with_tool_use(mock: MockHandle) -> None:
    resp = post(mock.port, "/v1/messages", {**CLAUDE_BODY, "stream": True, "tools": [CLAUDE_TOOL]})
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
    events = sse_events(resp.body)
    names = [name for name, _ in events]
    datas = [json.loads(data) for _, data in events]
    assert all(d["type"] == n for n, d in zip(names, datas))
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    text = [
        d["delta"]["text"] for d in datas if d["type"] == "content_block_delta" and d["delta"]["type"] == "text_delta"
    ]
    assert len(text) >= 3 and "".join(text) == REPLY
    starts = [d for d in datas if d["type"] == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["text", "tool_use"]
    partial = [
        d["delta"]["partial_json"]
        for d in datas
        if d["type"] == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    ]
    assert len(partial) >= 2 and json.loads("".join(partial)) == {"city": "mock", "unit": "c"}
    assert [d["index"] for d in datas if d["type"] == "content_block_stop"] == [0, 1]
    start = datas[0]["message"]
    assert start["usage"]["input_tokens"] == PROMPT_WORDS and start["stop_reason"] is None
    delta = datas[-2]
    assert delta["delta"]["stop_reason"] == "tool_use" and delta["usage"]["output_tokens"] == words(REPLY)


def test_claude_stream_without_tools_has_one_block(mock: MockHandle) -> None:
    events = sse_events(post(mock.port, "/v1/messages", {**CLAUDE_BODY, "stream": True}).body)
    datas = [json.loads(d) for _, d in events]
    assert [d["index"] for d in datas if d["type"] == "content_block_start"] == [0]
    assert datas[-2]["delta"]["stop_reason"] == "end_turn"


# --------------------------------------------------------------------------
# Gemini
# --------------------------------------------------------------------------

GEMINI_BODY = {
    "systemInstruction": {"parts": [{"text": "you are terse"}]},
    "contents": [{"role": "user", "parts": [{"text": USER}]}],
}
GEMINI_TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "get_weather",
                "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
            }
        ]
    }
]


def test_gemini_generate_content(mock: MockHandle) -> None:
    obj = post(mock.port, "/v1beta/models/gemini-1.5-flash:generateContent?key=k", GEMINI_BODY).json()
    candidate = obj["candidates"][0]
    assert candidate["content"] == {"parts": [{"text": REPLY}], "role": "model"}
    assert candidate["finishReason"] == "STOP"
    assert obj["usageMetadata"] == {
        "promptTokenCount": PROMPT_WORDS,
        "candidatesTokenCount": words(REPLY),
        "totalTokenCount": PROMPT_WORDS + words(REPLY),
    }
    assert obj["modelVersion"] == "gemini-1.5-flash"


def test_gemini_function_call(mock: MockHandle) -> None:
    obj = post(mock.port, "/v1beta/models/gemini-pro:generateContent", {**GEMINI_BODY, "tools": GEMINI_TOOLS}).json()
    parts = obj["candidates"][0]["content"]["parts"]
    assert parts[-1] == {"functionCall": {"name": "get_weather", "args": {"city": "mock"}}}


def test_gemini_stream_sse(mock: MockHandle) -> None:
    resp = post(
        mock.port, "/v1beta/models/gemini-pro:streamGenerateContent?alt=sse", {**GEMINI_BODY, "tools": GEMINI_TOOLS}
    )
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert b"\r\n\r\n" in resp.body and b"[DONE]" not in resp.body
    objs = [json.loads(d) for _, d in sse_events(resp.body)]
    texts = [p["text"] for o in objs for p in o["candidates"][0]["content"]["parts"] if "text" in p]
    assert len(texts) >= 3 and "".join(texts) == REPLY
    assert [o["candidates"][0].get("finishReason") for o in objs][-1] == "STOP"
    assert all("finishReason" not in o["candidates"][0] for o in objs[:-1])
    assert objs[-1]["usageMetadata"]["candidatesTokenCount"] == words(REPLY)
    assert "functionCall" in objs[-1]["candidates"][0]["content"]["parts"][-1]


def test_gemini_stream_json_array(mock: MockHandle) -> None:
    resp = post(mock.port, "/v1beta/models/gemini-pro:streamGenerateContent", GEMINI_BODY)
    arr = resp.json()
    assert isinstance(arr, list) and len(arr) >= 3
    assert "".join(o["candidates"][0]["content"]["parts"][0]["text"] for o in arr) == REPLY


def test_gemini_embeddings(mock: MockHandle) -> None:
    body = {
        "requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 3},
        ]
    }
    obj = post(mock.port, "/v1beta/models/text-embedding-004:batchEmbedContents", body).json()
    assert [len(e["values"]) for e in obj["embeddings"]] == [mp.DEFAULT_EMBEDDING_DIMS, 3]
    single = post(
        mock.port, "/v1beta/models/text-embedding-004:embedContent", {"content": {"parts": [{"text": "a"}]}}
    ).json()
    assert single["embedding"]["values"] == obj["embeddings"][0]["values"]


# --------------------------------------------------------------------------
# Qwen (DashScope native)
# --------------------------------------------------------------------------

QWEN_GEN = "/api/v1/services/aigc/text-generation/generation"
QWEN_BODY = {"model": "qwen-max", "input": {"messages": OPENAI_MESSAGES}, "parameters": {"result_format": "message"}}


def test_qwen_buffered_message_and_text_formats(mock: MockHandle) -> None:
    obj = post(mock.port, QWEN_GEN, QWEN_BODY).json()
    assert obj["output"]["choices"][0] == {"finish_reason": "stop", "message": {"role": "assistant", "content": REPLY}}
    assert obj["usage"] == {
        "input_tokens": PROMPT_WORDS,
        "output_tokens": words(REPLY),
        "total_tokens": PROMPT_WORDS + words(REPLY),
    }
    assert obj["request_id"]
    text = post(mock.port, QWEN_GEN, {**QWEN_BODY, "parameters": {}}).json()
    assert text["output"] == {"text": REPLY, "finish_reason": "stop"}


def test_qwen_tool_calls(mock: MockHandle) -> None:
    body = {**QWEN_BODY, "parameters": {"result_format": "message", "tools": [WEATHER_TOOL]}}
    choice = post(mock.port, QWEN_GEN, body).json()["output"]["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {"city": "mock", "unit": "c"}


@pytest.mark.parametrize("incremental", [True, False])
def test_qwen_stream(mock: MockHandle, incremental: bool) -> None:
    body = {**QWEN_BODY, "parameters": {"result_format": "message", "incremental_output": incremental}}
    resp = post(mock.port, QWEN_GEN, body, {"X-DashScope-SSE": "enable"})
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.text.startswith("id:1\nevent:result\n:HTTP_STATUS/200\ndata:{")
    events = sse_events(resp.body)
    assert all(name == "result" for name, _ in events)
    objs = [json.loads(d) for _, d in events]
    contents = [o["output"]["choices"][0]["message"]["content"] for o in objs]
    finishes = [o["output"]["choices"][0]["finish_reason"] for o in objs]
    assert len(objs) >= 3
    assert finishes[:-1] == ["null"] * (len(objs) - 1) and finishes[-1] == "stop"
    assert ("".join(contents) if incremental else contents[-1]) == REPLY
    if not incremental:
        assert all(REPLY.startswith(c) for c in contents)
    assert objs[-1]["usage"]["output_tokens"] == words(REPLY)


def test_qwen_multimodal_and_embedding(mock: MockHandle) -> None:
    body = {
        "model": "qwen-vl-plus",
        "input": {
            "messages": [{"role": "user", "content": [{"image": "https://example.invalid/a.png"}, {"text": USER}]}]
        },
    }
    obj = post(mock.port, "/api/v1/services/aigc/multimodal-generation/generation", body).json()
    assert obj["output"]["choices"][0]["message"]["content"] == [{"text": REPLY}]
    emb = post(
        mock.port,
        "/api/v1/services/embeddings/text-embedding/text-embedding",
        {"model": "text-embedding-v1", "input": {"texts": ["a b", "c"]}},
    ).json()
    assert [e["text_index"] for e in emb["output"]["embeddings"]] == [0, 1]
    assert emb["usage"] == {"total_tokens": 3}


# --------------------------------------------------------------------------
# Hunyuan, MiniMax Pro, DeepL
# --------------------------------------------------------------------------

HUNYUAN_HEADERS = {
    "Host": "hunyuan.tencentcloudapi.com",
    "X-TC-Action": "ChatCompletions",
    "X-TC-Version": "2023-09-01",
}
HUNYUAN_BODY = {
    "Model": "hunyuan-lite",
    "Messages": [{"Role": "system", "Content": "you are terse"}, {"Role": "user", "Content": USER}],
}


def test_hunyuan_buffered(mock: MockHandle) -> None:
    obj = post(mock.port, "/", HUNYUAN_BODY, HUNYUAN_HEADERS).json()["Response"]
    assert obj["Choices"][0]["Message"] == {"Role": "assistant", "Content": REPLY}
    assert obj["Choices"][0]["FinishReason"] == "stop"
    assert obj["Usage"] == {
        "PromptTokens": PROMPT_WORDS,
        "CompletionTokens": words(REPLY),
        "TotalTokens": PROMPT_WORDS + words(REPLY),
    }
    assert obj["Id"] and obj["RequestId"] and obj["Created"] == mp.CREATED


def test_hunyuan_streamed(mock: MockHandle) -> None:
    resp = post(mock.port, "/", {**HUNYUAN_BODY, "Stream": True}, HUNYUAN_HEADERS)
    objs = [json.loads(d) for _, d in sse_events(resp.body)]
    text = "".join(o["Choices"][0]["Delta"]["Content"] for o in objs)
    assert text == REPLY and len(objs) >= 4
    assert [o["Choices"][0]["FinishReason"] for o in objs][-1] == "stop"
    assert all(o["Choices"][0]["FinishReason"] == "" for o in objs[:-1])


def test_hunyuan_error_is_http_200(mock: MockHandle) -> None:
    resp = post(mock.port, "/", HUNYUAN_BODY, {**HUNYUAN_HEADERS, "x-mock-scenario": "error"})
    assert resp.status == 200
    err = resp.json()["Response"]
    assert err["Error"]["Code"] == "AuthFailure.SignatureFailure" and err["RequestId"]
    other = post(mock.port, "/", HUNYUAN_BODY, {**HUNYUAN_HEADERS, "X-TC-Action": "Nope"}).json()
    assert other["Response"]["Error"]["Code"] == "InvalidAction"


MINIMAX_PRO = "/v1/text/chatcompletion_pro?GroupId=g1"
MINIMAX_BODY = {
    "model": "abab6.5s-chat",
    "bot_setting": [{"bot_name": "Bot", "content": "you are terse"}],
    "reply_constraints": {"sender_type": "BOT", "sender_name": "Bot"},
    "messages": [{"sender_type": "USER", "sender_name": "me", "text": USER}],
}


def test_minimax_pro_buffered_and_streamed(mock: MockHandle) -> None:
    obj = post(mock.port, MINIMAX_PRO, MINIMAX_BODY).json()
    assert obj["reply"] == REPLY
    assert obj["choices"][0]["messages"] == [{"sender_type": "BOT", "sender_name": "Bot", "text": REPLY}]
    assert obj["usage"] == {"total_tokens": PROMPT_WORDS + words(REPLY)}
    assert obj["base_resp"] == {"status_code": 0, "status_msg": ""}
    objs = [json.loads(d) for _, d in sse_events(post(mock.port, MINIMAX_PRO, {**MINIMAX_BODY, "stream": True}).body)]
    pieces = [o["choices"][0]["messages"][0]["text"] for o in objs[:-1]]
    assert len(pieces) >= 3 and "".join(pieces) == REPLY
    assert objs[-1]["reply"] == REPLY and objs[-1]["choices"][0]["finish_reason"] == "stop"
    assert objs[-1]["base_resp"]["status_code"] == 0


def test_minimax_pro_requires_group_id(mock: MockHandle) -> None:
    resp = post(mock.port, "/v1/text/chatcompletion_pro", MINIMAX_BODY)
    assert resp.status == 200 and resp.json()["base_resp"]["status_code"] == 2013


@pytest.mark.parametrize("host", ["api-free.deepl.com", "api.deepl.com"])
def test_deepl_json_and_form(mock: MockHandle, host: str) -> None:
    obj = post(mock.port, "/v2/translate", {"text": ["Hello", "World"], "target_lang": "de"}, {"Host": host}).json()
    assert obj == {
        "translations": [
            {"detected_source_language": "EN", "text": "mock translation (DE): Hello"},
            {"detected_source_language": "EN", "text": "mock translation (DE): World"},
        ]
    }
    form = request(
        mock.port,
        "POST",
        "/v2/translate",
        raw=b"text=Bonjour&source_lang=FR&target_lang=EN-US",
        headers={"Host": host, "Content-Type": "application/x-www-form-urlencoded"},
    ).json()
    assert form == {"translations": [{"detected_source_language": "FR", "text": "mock translation (EN-US): Bonjour"}]}


# --------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------

ERROR_CASES: list[tuple[str, str, Any, dict[str, str], int, Any]] = [
    # (name, path, body, headers, expected status, check(obj))
    ("openai", "/v1/chat/completions", {"messages": []}, {}, 401, lambda o: o["error"]["code"] == "invalid_api_key"),
    (
        "azure",
        "/openai/deployments/d/chat/completions?api-version=1",
        {},
        {},
        401,
        lambda o: o["error"]["code"] == "401" and o["error"]["message"],
    ),
    ("zhipuai", "/api/paas/v4/chat/completions", {}, {}, 401, lambda o: o["error"]["code"] == "1002"),
    ("baidu", "/v2/chat/completions", {}, {}, 401, lambda o: o["error"]["code"] == "invalid_iam_token"),
    (
        "cloudflare",
        "/client/v4/accounts/a/ai/v1/chat/completions",
        {},
        {},
        401,
        lambda o: o["success"] is False and o["errors"][0]["code"] == 10000,
    ),
    ("minimax-v2", "/v1/text/chatcompletion_v2", {}, {}, 200, lambda o: o["base_resp"]["status_code"] == 1004),
    ("minimax-pro", MINIMAX_PRO, MINIMAX_BODY, {}, 200, lambda o: o["base_resp"]["status_code"] == 1004),
    (
        "claude",
        "/v1/messages",
        CLAUDE_BODY,
        {},
        401,
        lambda o: o == {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
    ),
    (
        "gemini",
        "/v1beta/models/g:generateContent",
        GEMINI_BODY,
        {},
        401,
        lambda o: o["error"]["code"] == 401 and o["error"]["status"] == "UNAUTHENTICATED",
    ),
    ("qwen", QWEN_GEN, QWEN_BODY, {}, 401, lambda o: o["code"] == "InvalidApiKey" and o["request_id"]),
    ("hunyuan", "/", HUNYUAN_BODY, HUNYUAN_HEADERS, 200, lambda o: "Error" in o["Response"]),
    ("deepl", "/v2/translate", {"text": ["x"], "target_lang": "DE"}, {}, 403, lambda o: "message" in o),
    ("cohere", "/v2/chat", {"model": "c", "messages": []}, {}, 401, lambda o: o["message"] and o["id"]),
    (
        "moonshot-files",
        "/v1/files/f/content",
        None,
        {},
        401,
        lambda o: o["error"]["type"] == "invalid_authentication_error",
    ),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_scenario(mock: MockHandle, case: tuple[str, str, Any, dict[str, str], int, Any]) -> None:
    name, path, body, headers, status, check = case
    method = "GET" if name == "moonshot-files" else "POST"
    resp = request(mock.port, method, path, body, {**headers, "x-mock-scenario": "error"})
    assert resp.status == status, resp.text
    assert check(resp.json()), resp.text


def test_openai_error_bodies_match_the_spec(mock: MockHandle) -> None:
    from pyutil.openai_schema import validate_error

    for scenario, status in [("error", 401), ("error-429", 429), ("error:500", 500)]:
        resp = post(mock.port, "/v1/chat/completions", {}, {"x-mock-scenario": scenario})
        assert resp.status == status
        validate_error(resp.json())
    resp = post(mock.port, "/v1/messages", CLAUDE_BODY, {"x-mock-scenario": "error", "x-mock-error-status": "529"})
    assert resp.status == 529 and resp.json()["error"]["type"] == "overloaded_error"
    resp = post(mock.port, "/v1beta/models/g:generateContent", GEMINI_BODY, {"x-mock-scenario": "error-429"})
    assert resp.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_scenario_marker_in_body(mock: MockHandle) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "[mock:error-429] hello"}]}
    resp = post(mock.port, "/v1/chat/completions", body)
    assert resp.status == 429 and resp.json()["error"]["code"] == "rate_limit_exceeded"
    hunyuan = {"Model": "m", "Messages": [{"Role": "user", "Content": "[mock:error] hi"}]}
    err = post(mock.port, "/", hunyuan, HUNYUAN_HEADERS).json()["Response"]["Error"]
    assert err["Code"] == "AuthFailure.SignatureFailure"
    # an explicit header wins over the marker
    assert post(mock.port, "/v1/chat/completions", body, {"x-mock-scenario": "none"}).status == 200


def test_error_scenario_on_stream_request_is_plain_json(mock: MockHandle) -> None:
    resp = post(
        mock.port,
        "/v1/chat/completions",
        {"messages": OPENAI_MESSAGES, "stream": True},
        {"x-mock-scenario": "error-429"},
    )
    assert resp.status == 429 and resp.headers["content-type"] == "application/json"
    assert resp.json()["error"]["code"] == "rate_limit_exceeded"


def test_reset_scenario_stream(mock: MockHandle) -> None:
    marker = uuid.uuid4().hex
    conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=TIMEOUT)
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=json.dumps({"messages": OPENAI_MESSAGES, "stream": True}),
            headers={"x-mock-scenario": "reset", "x-test-id": marker},
        )
        resp = conn.getresponse()
        assert resp.status == 200
        received = b""
        with pytest.raises((http.client.HTTPException, OSError)):
            while chunk := resp.read1(65536):
                received += chunk
            pytest.fail(f"stream ended cleanly instead of being reset: {received!r}")
        assert received.count(b"data: ") >= 1 and b"[DONE]" not in received
    finally:
        conn.close()
    record = entry_for(mock, marker, wait_for="reset")["response"]
    assert record["completed"] is False and record["events_sent"] >= 1


def test_reset_scenario_buffered(mock: MockHandle) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=TIMEOUT)
    try:
        conn.request("POST", "/v1/messages", body=json.dumps(CLAUDE_BODY), headers={"x-mock-scenario": "reset"})
        resp = conn.getresponse()
        with pytest.raises((http.client.HTTPException, OSError)):
            resp.read()
    finally:
        conn.close()


def test_malformed_scenario(mock: MockHandle) -> None:
    from pyutil.openai_schema import OpenAISchemaError, validate_sse_stream

    buffered = post(mock.port, "/v1/chat/completions", {"messages": OPENAI_MESSAGES}, {"x-mock-scenario": "malformed"})
    assert buffered.status == 200
    with pytest.raises(json.JSONDecodeError):
        buffered.json()
    streamed = post(
        mock.port,
        "/v1/chat/completions",
        {"messages": OPENAI_MESSAGES, "stream": True},
        {"x-mock-scenario": "malformed"},
    )
    assert b'data: {"malformed": tru\n' in streamed.body
    with pytest.raises(OpenAISchemaError):
        validate_sse_stream(streamed.body)
    claude = post(mock.port, "/v1/messages", {**CLAUDE_BODY, "stream": True}, {"x-mock-scenario": "malformed"})
    assert b"not server-sent-events" in claude.body and claude.body.endswith(b'message_stop"}\n\n')


def test_slow_scenario_spaces_events(mock: MockHandle) -> None:
    start = time.monotonic()
    resp = post(
        mock.port,
        "/v1/chat/completions",
        {"messages": OPENAI_MESSAGES, "stream": True},
        {"x-mock-scenario": "slow", "x-mock-delay-ms": "60"},
    )
    elapsed = time.monotonic() - start
    events = resp.body.count(b"data: ")
    assert elapsed >= 0.06 * (events - 1) * 0.9
    assert len(resp.arrivals) >= 3  # flushed one by one, not in one write
    buffered_start = time.monotonic()
    post(mock.port, "/v1/messages", CLAUDE_BODY, {"x-mock-scenario": "slow", "x-mock-delay-ms": "150"})
    assert time.monotonic() - buffered_start >= 0.14


def test_slow_stream_client_disconnect_is_recorded(mock: MockHandle) -> None:
    marker = uuid.uuid4().hex
    sock = socket.create_connection(("127.0.0.1", mock.port), timeout=TIMEOUT)
    try:
        body = json.dumps({"messages": OPENAI_MESSAGES, "stream": True}).encode()
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\n"
            + f"x-mock-scenario: slow\r\nx-mock-delay-ms: 100\r\nx-test-id: {marker}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
    finally:
        sock.close()
    record = entry_for(mock, marker, wait_for="client_disconnected")["response"]
    assert record["completed"] is False
    assert record["streamed"] is True


def test_stream_delay_flag_flushes_events_separately() -> None:
    with start_mock(stream_delay_ms=40) as handle:
        resp = post(handle.port, "/v1/messages", {**CLAUDE_BODY, "stream": True})
        assert resp.status == 200
        assert len(resp.arrivals) >= 5
        span = resp.arrivals[-1][0] - resp.arrivals[0][0]
        assert span >= 0.04 * 4


def test_hostile_scenarios(mock: MockHandle) -> None:
    stream_body = {"messages": OPENAI_MESSAGES, "stream": True}
    html = post(mock.port, "/v1/chat/completions", stream_body, {"x-mock-scenario": "html200"})
    assert html.status == 200 and html.headers["content-type"].startswith("text/html") and b"<html>" in html.body
    nodata = post(mock.port, "/v1/chat/completions", stream_body, {"x-mock-scenario": "sse-nodata"})
    assert nodata.status == 200 and nodata.headers["content-type"].startswith("text/event-stream")
    assert nodata.body and b"data:" not in nodata.body
    whole = post(mock.port, "/v1/chat/completions", stream_body)
    cut = post(mock.port, "/v1/chat/completions", stream_body, {"x-mock-scenario": "truncated"})
    assert cut.status == 200 and 0 < len(cut.body) < len(whole.body) and b"[DONE]" not in cut.body
    cut_json = post(mock.port, "/v1/chat/completions", {"messages": OPENAI_MESSAGES}, {"x-mock-scenario": "truncated"})
    with pytest.raises(json.JSONDecodeError):
        cut_json.json()
    empty = post(mock.port, "/v1/chat/completions", {"messages": OPENAI_MESSAGES}, {"x-mock-scenario": "empty-json"})
    assert empty.status == 200 and empty.json() == {}
    text = post(mock.port, "/v1/chat/completions", {"messages": OPENAI_MESSAGES}, {"x-mock-scenario": "text-error"})
    assert text.status == 503 and text.headers["content-type"].startswith("text/plain")
    page = post(mock.port, "/v1/chat/completions", {"messages": OPENAI_MESSAGES}, {"x-mock-scenario": "html-error"})
    assert page.status == 502 and b"Bad Gateway" in page.body


# --------------------------------------------------------------------------
# token faults (failover tests)
# --------------------------------------------------------------------------


def test_token_faults_answer_the_provider_error_for_that_key_only(mock: MockHandle) -> None:
    mock.clear_faults()
    try:
        mock.add_fault("sk-bad", 429)
        mock.add_fault("*", 503, count=1)
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        # The wildcard fault is listed second: the key-specific one wins for sk-bad...
        bad = post(mock.port, "/v1/chat/completions", body, {"Authorization": "Bearer sk-bad"})
        assert bad.status == 429 and "error" in bad.json()
        # ...and the next other request takes the one-shot wildcard, then the key is healthy.
        first = post(mock.port, "/v1/chat/completions", body, {"Authorization": "Bearer sk-good"})
        assert first.status == 503
        good = post(mock.port, "/v1/chat/completions", body, {"Authorization": "Bearer sk-good"})
        assert good.status == 200
        # Claude's x-api-key carries the key too.
        claude = post(
            mock.port,
            "/v1/messages",
            {"model": "claude-3", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
            {"x-api-key": "sk-bad"},
        )
        assert claude.status == 429 and claude.json()["type"] == "error"
        hits = {(f["token"], f["status"]): f["hits"] for f in mock.faults()}
        assert hits == {("sk-bad", 429): 2, ("*", 503): 1}
        assert request(mock.port, "POST", "/__mock/faults", {"token": "", "status": 429}).status == 400
    finally:
        mock.clear_faults()
    assert mock.faults() == []
    ok = post(mock.port, "/v1/chat/completions", {"model": "m", "messages": []}, {"Authorization": "Bearer sk-bad"})
    assert ok.status == 200


# --------------------------------------------------------------------------
# Cohere v2
# --------------------------------------------------------------------------

COHERE_BODY: dict[str, Any] = {
    "model": "command-a-03-2025",
    "messages": [{"role": "system", "content": "you are terse"}, {"role": "user", "content": USER}],
}


def test_cohere_chat_buffered_and_tool_call(mock: MockHandle) -> None:
    obj = post(mock.port, "/v2/chat", COHERE_BODY).json()
    assert obj["finish_reason"] == "COMPLETE"
    assert obj["message"]["content"] == [{"type": "text", "text": REPLY}]
    assert obj["usage"]["tokens"] == {"input_tokens": PROMPT_WORDS, "output_tokens": words(REPLY)}
    obj = post(mock.port, "/v2/chat", {**COHERE_BODY, "tools": [WEATHER_TOOL]}).json()
    assert obj["finish_reason"] == "TOOL_CALL"
    call = obj["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"])


def test_cohere_chat_stream_events(mock: MockHandle) -> None:
    resp = post(mock.port, "/v2/chat", {**COHERE_BODY, "stream": True, "tools": [WEATHER_TOOL]})
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
    events = [(name, json.loads(data)) for name, data in sse_events(resp.body)]
    assert all(d["type"] == n for n, d in events)
    names = [n for n, _ in events]
    assert names[0] == "message-start" and names[-1] == "message-end"
    assert {"content-delta", "tool-plan-delta", "tool-call-start", "tool-call-delta", "tool-call-end"} <= set(names)
    text = "".join(d["delta"]["message"]["content"]["text"] for n, d in events if n == "content-delta")
    assert text == REPLY
    assert events[-1][1]["delta"]["finish_reason"] == "TOOL_CALL"


COZE_BODY: dict[str, Any] = {
    "bot_id": "7342000000000000001",
    "user_id": "u-1",
    "additional_messages": [{"role": "user", "content": USER, "content_type": "text"}],
}


def test_coze_chat_buffered_and_stream(mock: MockHandle) -> None:
    auth = {"authorization": "Bearer pat_mock"}
    assert post(mock.port, "/v3/chat", COZE_BODY).status == 401
    obj = post(mock.port, "/v3/chat", COZE_BODY, auth).json()
    assert obj["code"] == 0 and obj["data"]["status"] == "in_progress" and obj["data"]["bot_id"] == COZE_BODY["bot_id"]
    resp = post(mock.port, "/v3/chat", {**COZE_BODY, "stream": True}, auth)
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
    assert b"event:conversation.chat.created\ndata:{" in resp.body
    events = sse_events(resp.body)
    names = [n for n, _ in events]
    assert names[0] == "conversation.chat.created" and names[-2:] == ["conversation.chat.completed", "done"]
    assert events[-1][1] == '"[DONE]"'
    text = "".join(json.loads(d)["content"] for n, d in events if n == "conversation.message.delta")
    assert text == REPLY
    assert json.loads(events[-2][1])["usage"]["output_count"] == words(REPLY)


def test_cohere_embed(mock: MockHandle) -> None:
    obj = post(
        mock.port,
        "/v2/embed",
        {"model": "embed-v4.0", "texts": ["a b", "c"], "input_type": "search_document", "embedding_types": ["float"]},
    ).json()
    assert obj["response_type"] == "embeddings_by_type"
    assert len(obj["embeddings"]["float"]) == 2 and obj["meta"]["billed_units"]["input_tokens"] == 3


# --------------------------------------------------------------------------
# Bedrock (Converse / ConverseStream; shapes from the AWS Bedrock API reference)
# --------------------------------------------------------------------------

BEDROCK_BODY = {
    "system": [{"text": "you are terse"}],
    "messages": [{"role": "user", "content": [{"text": USER}]}],
}
BEDROCK_AUTH = {"authorization": "Bearer bedrock-key"}


def eventstream_messages(body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Decodes AWS event-stream messages, checking both CRCs (independent of the mock's encoder)."""
    import struct
    import zlib

    out: list[tuple[dict[str, str], bytes]] = []
    at = 0
    while at < len(body):
        total, hlen, pcrc = struct.unpack(">III", body[at : at + 12])
        assert zlib.crc32(body[at : at + 8]) == pcrc
        msg = body[at : at + total]
        assert zlib.crc32(msg[:-4]) == struct.unpack(">I", msg[-4:])[0]
        headers: dict[str, str] = {}
        h = msg[12 : 12 + hlen]
        while h:
            n = h[0]
            name = h[1 : 1 + n].decode()
            assert h[1 + n] == 7
            vlen = struct.unpack(">H", h[2 + n : 4 + n])[0]
            headers[name] = h[4 + n : 4 + n + vlen].decode()
            h = h[4 + n + vlen :]
        out.append((headers, msg[12 + hlen : -4]))
        at += total
    return out


def test_bedrock_converse(mock: MockHandle) -> None:
    obj = post(mock.port, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", BEDROCK_BODY, BEDROCK_AUTH).json()
    assert obj["output"]["message"] == {"role": "assistant", "content": [{"text": REPLY}]}
    assert obj["stopReason"] == "end_turn"
    assert obj["usage"] == {
        "inputTokens": PROMPT_WORDS,
        "outputTokens": words(REPLY),
        "totalTokens": PROMPT_WORDS + words(REPLY),
    }


def test_bedrock_converse_stream(mock: MockHandle) -> None:
    resp = post(mock.port, "/model/m/converse-stream", BEDROCK_BODY, BEDROCK_AUTH)
    assert resp.headers["content-type"] == "application/vnd.amazon.eventstream"
    msgs = eventstream_messages(resp.body)
    kinds = [h[":event-type"] for h, _ in msgs]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(json.loads(p)["delta"]["text"] for h, p in msgs if h[":event-type"] == "contentBlockDelta")
    assert text == REPLY
    assert json.loads(msgs[-1][1])["usage"]["outputTokens"] == words(REPLY)


def test_bedrock_errors(mock: MockHandle) -> None:
    resp = post(mock.port, "/model/m/converse", BEDROCK_BODY)
    assert resp.status == 403 and "message" in resp.json()
    resp = post(mock.port, "/model/m/converse", {"messages": []}, BEDROCK_AUTH)
    assert resp.status == 400
    assert resp.headers["x-amzn-errortype"].startswith("ValidationException")


def test_bedrock_checks_the_sigv4_header_form(mock: MockHandle) -> None:
    host = "bedrock-runtime.us-east-1.amazonaws.com"
    good = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "ab" * 32
    )
    headers = {"Host": host, "x-amz-date": "20261130T101010Z", "authorization": good}
    assert post(mock.port, "/model/m/converse", BEDROCK_BODY, headers).status == 200
    broken = [
        {**headers, "authorization": good.replace("Signature=" + "ab" * 32, "Signature=xyz")},
        {**headers, "authorization": good.replace("host;x-amz-date", "x-amz-date")},
        {**headers, "x-amz-date": "20261201T101010Z"},
        {**headers, "Host": "bedrock-runtime.eu-west-1.amazonaws.com"},
        {**headers, "authorization": "Bearer "},
    ]
    for bad in broken:
        resp = post(mock.port, "/model/m/converse", BEDROCK_BODY, bad)
        assert resp.status == 403, bad
        assert resp.headers["x-amzn-errortype"].startswith("IncompleteSignatureException"), resp.headers


# --------------------------------------------------------------------------
# Vertex AI and Google's OAuth token endpoint
# --------------------------------------------------------------------------


def _jwt(claims: dict[str, Any]) -> str:
    import base64

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


def _token_request(mock: MockHandle, claims: dict[str, Any], grant: str = "urn:ietf:params:oauth:grant-type:jwt-bearer") -> Response:
    import urllib.parse

    form = urllib.parse.urlencode({"grant_type": grant, "assertion": _jwt(claims)}).encode()
    headers = {"Host": "oauth2.googleapis.com", "Content-Type": "application/x-www-form-urlencoded"}
    return request(mock.port, "POST", "/token", headers=headers, raw=form)


def test_oauth_token_exchange(mock: MockHandle) -> None:
    now = int(time.time())
    claims = {"iss": "svc@p.iam.gserviceaccount.com", "scope": "https://www.googleapis.com/auth/cloud-platform",
              "aud": "https://oauth2.googleapis.com/token", "iat": now, "exp": now + 3600}
    obj = _token_request(mock, claims).json()
    assert obj["access_token"].startswith("ya29.mock-") and obj["token_type"] == "Bearer" and obj["expires_in"] > 0
    for bad in ({**claims, "aud": "https://example.com/token"}, {**claims, "exp": now + 7200}, {**claims, "iss": "revoked@p"}):
        resp = _token_request(mock, bad)
        assert resp.status == 400 and resp.json()["error"] == "invalid_grant", bad
    assert _token_request(mock, claims, grant="password").json()["error"] == "unsupported_grant_type"
    assert obj["expires_in"] == 3599
    # A "ttl<N>-" account gets tokens that expire in N seconds.
    assert _token_request(mock, {**claims, "iss": "ttl4-svc@p.iam.gserviceaccount.com"}).json()["expires_in"] == 4


def test_vertex_routes_check_auth_and_body(mock: MockHandle) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": USER}]}]}
    sa = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent"
    assert post(mock.port, sa, body, {"authorization": "Bearer not-issued-here"}).status == 401
    resp = post(mock.port, sa, body, {"authorization": "Bearer ya29.mock-abc"})
    assert resp.status == 200 and REPLY in json.dumps(resp.json())
    express = "/v1/publishers/google/models/gemini-2.0-flash:generateContent"
    assert post(mock.port, express, body).status == 401
    assert post(mock.port, express, body, {"x-goog-api-key": "k"}).status == 200
    claude = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict"
    msg = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 64, "messages": [{"role": "user", "content": USER}]}
    auth = {"authorization": "Bearer ya29.mock-abc"}
    resp = post(mock.port, claude, msg, auth)
    assert resp.status == 200 and resp.json()["content"][0]["text"] == REPLY
    assert resp.json()["model"] == "claude-sonnet-4@20250514"
    assert post(mock.port, claude, {**msg, "model": "claude"}, auth).status == 400
    assert post(mock.port, claude, {**msg, "stream": True}, auth).status == 400  # rawPredict is not the stream
