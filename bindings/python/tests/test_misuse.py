"""Misuse gives exceptions, never a crash: use after close, calls out of order, bad arguments,
forgotten handles (finalizers)."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from aiproxy_testutil import CLIENT_HEADERS, chat_body, provider

import aiproxy
from aiproxy import ClosedError, ErrorCode, InvalidArgumentError, StateError

CHAT = "/v1/chat/completions"


def forwarded(config: aiproxy.Config) -> aiproxy.Exchange:
    ex = config.exchange()
    assert isinstance(ex.on_request("POST", CHAT, CLIENT_HEADERS, chat_body()), aiproxy.Forward)
    return ex


CALLS: dict[str, Callable[[aiproxy.Exchange], Any]] = {
    "on_request": lambda ex: ex.on_request("POST", CHAT, CLIENT_HEADERS, chat_body()),
    "on_callout_response": lambda ex: ex.on_callout_response(200, b"x"),
    "on_response_headers": lambda ex: ex.on_response_headers(200, {"content-type": "application/json"}),
    "on_response_body": lambda ex: ex.on_response_body(b"{}", True),
    "usage": lambda ex: ex.usage,
    "retry": lambda ex: ex.retry(503),
    "retry_not_sent": lambda ex: ex.retry_not_sent(),
    "on_upstream_abort": lambda ex: ex.on_upstream_abort(),
    "client_protocol": lambda ex: ex.client_protocol,
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_every_call_after_close_raises(openai_config: aiproxy.Config, call: Callable[[aiproxy.Exchange], Any]) -> None:
    ex = forwarded(openai_config)
    ex.close()
    assert ex.closed
    with pytest.raises(ClosedError) as info:
        call(ex)
    assert isinstance(info.value, StateError) and isinstance(info.value, aiproxy.AiproxyError)
    assert info.value.code is ErrorCode.BAD_STATE
    ex.close()  # idempotent


def test_context_manager_closes(openai_config: aiproxy.Config) -> None:
    with openai_config.exchange() as ex:
        pass
    assert ex.closed
    with pytest.raises(ClosedError):
        ex.on_request("POST", CHAT, None, chat_body())


def test_closed_config_refuses_new_exchanges_but_old_ones_work() -> None:
    config = aiproxy.Config.from_dict(provider("openai"))
    ex = config.exchange()
    config.close()
    config.close()
    assert config.closed and "closed" in repr(config)
    with pytest.raises(ClosedError, match="config is closed"):
        config.exchange()
    # The exchange holds its own reference to the C config.
    assert isinstance(ex.on_request("POST", CHAT, CLIENT_HEADERS, chat_body()), aiproxy.Forward)
    ex.on_response_headers(200, {"content-type": "application/json"})
    ex.close()


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (["on_response_headers"], "before the request was forwarded"),
        (["on_response_body"], "before response headers"),
        (["on_callout_response"], "no callout is outstanding"),
        (["on_request", "on_request"], "already processed"),
        (["on_request", "on_callout_response"], "no callout is outstanding"),
        (["on_request", "on_response_body"], "before response headers"),
        (["on_request", "on_response_headers", "on_response_headers"], "twice"),
        (["on_request", "on_response_headers", "on_response_body", "on_response_body"], "already ended"),
    ],
)
def test_wrong_order_is_a_state_error(openai_config: aiproxy.Config, steps: list[str], message: str) -> None:
    with openai_config.exchange() as ex:
        for step in steps[:-1]:
            CALLS[step](ex)
        with pytest.raises(StateError, match=message) as info:
            CALLS[steps[-1]](ex)
        assert info.value.code is ErrorCode.BAD_STATE
        assert type(info.value) is StateError


def test_state_error_does_not_break_the_exchange(openai_config: aiproxy.Config) -> None:
    with openai_config.exchange() as ex:
        with pytest.raises(StateError):
            ex.on_response_body(b"x", False)
        assert isinstance(ex.on_request("POST", CHAT, CLIENT_HEADERS, chat_body()), aiproxy.Forward)
        with pytest.raises(StateError):
            ex.on_request("POST", CHAT, CLIENT_HEADERS, chat_body())
        ex.on_response_headers(200, {"content-type": "application/json"})
        out = ex.on_response_body(b'{"choices":[{"index":0,"message":{"content":"ok"},"finish_reason":"stop"}]}', True)
        assert out.status == 200


@pytest.mark.parametrize("status", [-1, 65536, 10**20])
def test_out_of_range_status(openai_config: aiproxy.Config, status: int) -> None:
    with forwarded(openai_config) as ex:
        with pytest.raises(InvalidArgumentError) as info:
            ex.on_response_headers(status, {})
        assert info.value.code is ErrorCode.INVALID_ARGUMENT
        assert isinstance(info.value, ValueError)
        ex.on_response_headers(200, {})  # still usable


def test_wrong_argument_types(openai_config: aiproxy.Config) -> None:
    with openai_config.exchange() as ex:
        with pytest.raises(TypeError):
            ex.on_request(None, CHAT, {}, b"")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ex.on_request("POST", CHAT, {}, 12)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ex.on_request("POST", CHAT, [("only-a-name",)], b"")  # type: ignore[list-item]
        with pytest.raises(TypeError):
            ex.on_request("POST", CHAT, [("x", 1)], b"")  # type: ignore[list-item]
        with pytest.raises(TypeError):
            ex.on_response_headers("200", {})  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ex.on_response_headers(True, {})
        with pytest.raises(TypeError):
            aiproxy.Exchange(object())  # type: ignore[arg-type]
        # Nothing above reached the core: the request can still be made.
        assert isinstance(ex.on_request("POST", CHAT, CLIENT_HEADERS, chat_body()), aiproxy.Forward)


def test_invalid_utf8(openai_config: aiproxy.Config) -> None:
    with openai_config.exchange() as ex:
        with pytest.raises(InvalidArgumentError) as info:
            ex.on_request("POST", CHAT, {"x-bad": "\udcff"}, chat_body())  # lone surrogate: not encodable
        assert info.value.code is ErrorCode.INVALID_UTF8
        with pytest.raises(InvalidArgumentError) as info:
            ex.on_request("POST", b"/v1/\xff", {}, chat_body())  # raw bytes checked by the core
        assert info.value.code is ErrorCode.INVALID_UTF8
        assert "path" in info.value.message
        # Bytes for method, path and header values are accepted when they are UTF-8.
        pairs = [(b"x-y", b"z")]
        assert isinstance(ex.on_request(b"POST", CHAT.encode(), pairs, chat_body()), aiproxy.Forward)  # type: ignore[arg-type]


def test_forgotten_exchange_is_freed_by_its_finalizer(openai_config: aiproxy.Config) -> None:
    ex = forwarded(openai_config)
    finalizer = ex._finalizer
    ref = weakref.ref(ex)
    assert finalizer.alive
    del ex
    gc.collect()
    assert ref() is None
    assert not finalizer.alive


def test_forgotten_config_is_freed_after_its_exchanges() -> None:
    config = aiproxy.Config.from_dict(provider("openai"))
    finalizer = config._finalizer
    ex = config.exchange()
    del config
    gc.collect()
    assert finalizer.alive, "an exchange keeps its Config alive"
    assert isinstance(ex.on_request("POST", CHAT, CLIENT_HEADERS, chat_body()), aiproxy.Forward)
    del ex
    gc.collect()
    assert not finalizer.alive


def test_many_forgotten_exchanges(openai_config: aiproxy.Config) -> None:
    finalizers = []
    for _ in range(2000):
        ex = forwarded(openai_config)
        ex.on_response_headers(200, {"content-type": "text/event-stream"})
        ex.on_response_body(b"data: {}\n\n", False)
        finalizers.append(ex._finalizer)
    del ex
    gc.collect()
    assert not any(f.alive for f in finalizers)


def test_one_exchange_used_by_two_threads_at_once(openai_config: aiproxy.Config) -> None:
    """Concurrent calls on one exchange are serialised: exactly one request wins, the rest get
    StateError, and closing while others call is safe."""
    for _ in range(20):
        ex = openai_config.exchange()
        barrier = threading.Barrier(8)
        results: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            barrier.wait(timeout=10)
            try:
                ex.on_request("POST", CHAT, CLIENT_HEADERS, chat_body())
                outcome = "ok"
            except ClosedError:
                outcome = "closed"
            except StateError:
                outcome = "state"
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=worker) for _ in range(7)]
        for t in threads:
            t.start()
        barrier.wait(timeout=10)
        ex.close()
        for t in threads:
            t.join(timeout=10)
        assert len(results) == 7
        assert results.count("ok") <= 1
        assert set(results) <= {"ok", "closed", "state"}
