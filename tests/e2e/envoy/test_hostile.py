"""Hostile input through the real Envoy 1.40 with the aiproxy module (issue 12's matrix).

Client side: what a hostile or careless client sends. Upstream side: what a broken provider
answers (the mock's hostile scenarios, see ``hostile_reply`` in tests/mock_provider). Every case
states its exact status and OpenAI error shape, and is followed by a normal request on the same
listener that must still be served. The last test greps every body this file received and every
line Envoy logged for the configured tokens and keys.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

import httpx
import pytest
from conftest import CLIENT_KEY, SMALL_BUFFER_BYTES, Proxy, marker
from pyutil.openai_schema import parse_sse_events, validate_chat_chunk, validate_chat_completion, validate_error

CHAT: Final = "/v1/chat/completions"

SEEN: list[bytes] = []
"""Every response body this module received, for the secrets test."""


def send(
    proxy: Proxy,
    body: bytes | dict[str, Any],
    *,
    listener: str = "openai",
    method: str = "POST",
    path: str = CHAT,
    scenario: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = {"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json", **(headers or {})}
    if scenario:
        hdrs["x-mock-scenario"] = scenario
    with httpx.Client(timeout=20.0) as client:
        response = client.request(method, f"{proxy.base_url(listener)}{path}", content=data, headers=hdrs)
    SEEN.append(response.content)
    return response


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


def openai_error(response: httpx.Response, status: int, kind: str, code: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with an OpenAI error body of type ``kind`` (and ``code``)."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    validate_error(body)
    assert body["error"]["type"] == kind, body
    if code is not None:
        assert body["error"]["code"] == code, body
    assert body["error"]["message"], body
    return body


def stream_events(raw: bytes) -> list[dict[str, Any]]:
    """The JSON events of an OpenAI SSE body: each a valid chunk or a valid error event, and the
    body ends with exactly one ``data: [DONE]``."""
    text = raw.decode("utf-8")
    assert text.endswith("data: [DONE]\n\n"), text[-300:]
    events = parse_sse_events(text)
    assert [e.data.strip() for e in events].count("[DONE]") == 1, text[-300:]
    out: list[dict[str, Any]] = []
    for event in events[:-1]:
        obj = json.loads(event.data)
        if "error" in obj:
            validate_error(obj)
        else:
            validate_chat_chunk(obj)
        out.append(obj)
    return out


def still_serving(proxy: Proxy, listener: str = "openai") -> None:
    """Envoy is alive and the next request on the listener gets a normal completion."""
    assert proxy.envoy.alive(), proxy.envoy.log()[-3000:]
    word = marker()
    response = send(proxy, chat_body(f"next {word}"), listener=listener)
    assert response.status_code == 200, response.text[:500]
    completion = response.json()
    validate_chat_completion(completion)
    assert word in completion["choices"][0]["message"]["content"]


# ---------------------------------------------------------------------------------------------
# Client side
# ---------------------------------------------------------------------------------------------

CLIENT_CASES: Final[list[tuple[str, bytes, int, str, str | None]]] = [
    # (name, body, status, error type, param)
    ("invalid_json", b'{"model": "gpt-4o", "messages": [', 400, "invalid_request_error", None),
    ("not_utf8", b'{"model": "gpt-4o\xff\xfe"}', 400, "invalid_request_error", None),
    ("not_an_object", b'[{"role": "user"}]', 400, "invalid_request_error", None),
    ("model_wrong_type", b'{"model": 42, "messages": []}', 400, "invalid_request_error", "model"),
    ("messages_wrong_type", b'{"model": "gpt-4o", "messages": "hi"}', 400, "invalid_request_error", "messages"),
    ("model_missing", b'{"messages": [{"role": "user", "content": "hi"}]}', 400, "invalid_request_error", "model"),
    ("empty_body", b"", 400, "invalid_request_error", None),
]


@pytest.mark.parametrize(("name", "body", "status", "kind", "param"), CLIENT_CASES, ids=[c[0] for c in CLIENT_CASES])
def test_client_garbage_is_an_openai_400(
    proxy: Proxy, name: str, body: bytes, status: int, kind: str, param: str | None
) -> None:
    word = marker()
    response = send(proxy, body.replace(b"gpt-4o", f"gpt-4o-{word}".encode()) if name != "not_utf8" else body)
    error = openai_error(response, status, kind)
    assert error["error"]["param"] == param, error
    assert not proxy.upstream(word), "a rejected request must not reach the provider"
    still_serving(proxy)


def test_oversized_body_is_a_413(proxy: Proxy) -> None:
    word = marker()
    big = chat_body(f"{word} " + "x" * (SMALL_BUFFER_BYTES * 2))
    response = send(proxy, big, listener="small_buffer")
    openai_error(response, 413, "invalid_request_error", "request_too_large")
    assert not proxy.upstream(word)
    still_serving(proxy, "small_buffer")


def test_unknown_fields_are_passed_to_an_openai_provider(proxy: Proxy) -> None:
    word = marker()
    response = send(proxy, chat_body(f"hello {word}", x_unknown_field={"nested": [1, 2]}, frobnicate=True))
    assert response.status_code == 200, response.text[:500]
    validate_chat_completion(response.json())
    sent = proxy.one_upstream(word)["json"]
    assert sent["frobnicate"] is True and sent["x_unknown_field"] == {"nested": [1, 2]}
    still_serving(proxy)


def test_wrong_method_is_not_translated(proxy: Proxy) -> None:
    # GET on the chat path is not an OpenAI call the core translates: it goes upstream as is
    # (with the provider's credentials), and the provider's own answer comes back.
    word = marker()
    response = send(proxy, b"", method="GET", path=f"{CHAT}?probe={word}")
    assert response.status_code == 404, response.text[:500]
    validate_error(response.json())
    entry = [e for e in proxy.mock.requests() if word in e.get("path", "")]
    assert len(entry) == 1 and entry[0]["method"] == "GET"
    assert entry[0]["headers"].get("authorization") != f"Bearer {CLIENT_KEY}"
    still_serving(proxy)


# ---------------------------------------------------------------------------------------------
# Upstream side
# ---------------------------------------------------------------------------------------------


def test_html_with_200_for_a_stream_is_a_502(proxy: Proxy) -> None:
    response = send(proxy, chat_body(f"page {marker()}", stream=True), scenario="html200")
    error = openai_error(response, 502, "upstream_error", "upstream_bad_content_type")
    assert "text/html" in error["error"]["message"]
    still_serving(proxy)


def test_html_with_200_for_a_buffered_request_is_a_502(proxy: Proxy) -> None:
    response = send(proxy, chat_body(f"page {marker()}"), scenario="html200")
    openai_error(response, 502, "upstream_error")
    still_serving(proxy)


def test_truncated_json_body_is_a_502(proxy: Proxy) -> None:
    response = send(proxy, chat_body(f"cut {marker()}"), scenario="truncated")
    openai_error(response, 502, "upstream_error")
    still_serving(proxy)


def test_empty_json_object_is_a_502(proxy: Proxy) -> None:
    response = send(proxy, chat_body(f"empty {marker()}"), scenario="empty-json")
    openai_error(response, 502, "upstream_error")
    still_serving(proxy)


@pytest.mark.parametrize("scenario", ["sse-nodata", "truncated"])
def test_stream_without_a_finish_ends_with_an_error_event(proxy: Proxy, scenario: str) -> None:
    """An event stream without data lines, or one that stops before its finish: well-formed
    chunks (if any), then an OpenAI error event, then exactly one ``[DONE]``."""
    response = send(proxy, chat_body(f"broken {marker()} a b c d", stream=True), scenario=scenario)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = stream_events(response.content)
    assert events and "error" in events[-1], events
    assert all("error" not in e for e in events[:-1]), events
    still_serving(proxy)


ERROR_CASES: Final[list[tuple[str, int, str]]] = [
    # (scenario, status the client gets, OpenAI error type)
    ("error-400", 400, "invalid_request_error"),
    ("error-401", 401, "authentication_error"),
    ("error-403", 403, "permission_error"),
    ("error-429", 429, "rate_limit_error"),
    ("error-500", 500, "api_error"),
    ("error-503", 503, "api_error"),
    ("text-error", 503, "api_error"),
    ("html-error", 502, "api_error"),
]


@pytest.mark.parametrize(("scenario", "status", "kind"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "stream"])
def test_upstream_errors_keep_their_status_in_openai_shape(
    proxy: Proxy, scenario: str, status: int, kind: str, stream: bool
) -> None:
    response = send(proxy, chat_body(f"fail {marker()}", stream=stream), scenario=scenario)
    openai_error(response, status, kind)
    still_serving(proxy)


@pytest.mark.parametrize("listener", ["openai", "claude"])
def test_upstream_errors_of_a_translating_provider(proxy: Proxy, listener: str) -> None:
    for scenario, status in (("error-429", 429), ("text-error", 503), ("html-error", 502)):
        response = send(proxy, chat_body(f"fail {marker()}"), listener=listener, scenario=scenario)
        assert response.status_code == status, (scenario, response.text[:300])
        validate_error(response.json())
    still_serving(proxy, listener)


def test_reset_mid_stream_ends_with_an_error_event(proxy: Proxy) -> None:
    """Envoy resets the client's stream when its upstream resets after the headers went out; the
    module writes an OpenAI error event and ``[DONE]`` first, so a client reading events learns
    why (the transport then breaks off: Envoy's reset cannot be turned into a clean end)."""
    word = marker()
    body = chat_body(f"reset {word} one two three four", stream=True)
    headers = {"authorization": f"Bearer {CLIENT_KEY}", "x-mock-scenario": "reset", "x-mock-delay-ms": "100"}
    raw = b""
    status = 0
    with httpx.Client(timeout=20.0) as client:
        try:
            with client.stream("POST", f"{proxy.base_url('openai')}{CHAT}", json=body, headers=headers) as response:
                status = response.status_code
                for piece in response.iter_raw():
                    raw += piece
        except httpx.RemoteProtocolError:
            pass  # the reset that follows the error event
    SEEN.append(raw)
    if status != 200:
        # The reset beat the response headers: an OpenAI error status instead.
        assert status in (502, 503), (status, raw[:300])
        validate_error(json.loads(raw))
    else:
        events = stream_events(raw)
        assert events[-1]["error"]["code"] == "upstream_reset", events[-1]
        assert events[-1]["error"]["type"] == "upstream_error"
        assert any(e.get("choices") for e in events[:-1]), "chunks before the reset reach the client"
    assert proxy.one_upstream(word)["response"].get("reset")
    still_serving(proxy)


def test_reset_of_a_buffered_reply_is_an_openai_error(proxy: Proxy) -> None:
    response = send(proxy, chat_body(f"reset {marker()}"), scenario="reset")
    assert response.status_code in (502, 503), response.text[:300]
    validate_error(response.json())
    still_serving(proxy)


# ---------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------


def test_no_secret_in_any_body_or_log_line(proxy: Proxy) -> None:
    """Runs last in this module: every body above and all of Envoy's logs so far."""
    assert len(SEEN) > 40, f"the matrix ran only {len(SEEN)} requests"
    time.sleep(0.5)  # let the access log flush
    secrets = [s for s in proxy.secrets if s] + [CLIENT_KEY]
    assert len(secrets) > 5
    bodies = b"\n".join(SEEN).decode("utf-8", "replace")
    logs = proxy.envoy.log() + proxy.envoy.access_log()
    assert logs
    for secret in secrets:
        assert secret not in bodies, f"a configured secret appeared in a response body: {secret[:6]}..."
        assert secret not in logs, f"a configured secret appeared in Envoy's logs: {secret[:6]}..."
