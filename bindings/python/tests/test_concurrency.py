"""One Config shared by many threads: every exchange gets its own correct translation."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from aiproxy_testutil import CLIENT_HEADERS, chat_body, openai_sse, provider, sse_payloads

import aiproxy

THREADS = 16
PER_THREAD = 150
TIMEOUT_S = 120


def stream_for(n: int) -> bytes:
    words = [f"w{n}-{i}" for i in range(4)]
    events = [
        {
            "id": f"c{n}",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": "stop" if last else None}],
        }
        for w, last in zip(words, [False, False, False, True])
    ]
    events.append(
        {
            "id": f"c{n}",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [],
            "usage": {"prompt_tokens": n, "completion_tokens": 4, "total_tokens": n + 4},
        }
    )
    return openai_sse(events)


def one_exchange(config: aiproxy.Config, n: int) -> None:
    """A full chat exchange whose request and answer both depend on ``n``."""
    with config.exchange() as ex:
        fwd = ex.on_request(
            "POST",
            "/v1/chat/completions",
            CLIENT_HEADERS,
            chat_body(f"question {n}", model=f"model-{n % 7}", stream=True, stream_options={"include_usage": True}),
        )
        assert isinstance(fwd, aiproxy.Forward) and fwd.body is not None
        sent = json.loads(fwd.body)
        assert sent["messages"][0]["content"] == f"question {n}"
        assert fwd.model == sent["model"] == ("mapped" if n % 7 == 0 else f"model-{n % 7}")
        assert ex.on_response_headers(200, {"content-type": "text/event-stream"}).mode is aiproxy.ResponseMode.STREAM
        raw = stream_for(n)
        out = bytearray()
        for i in range(0, len(raw), 50):
            out += ex.on_response_body(raw[i : i + 50], False).output(b"")
        out += ex.on_response_body(b"", True).output(b"")
        payloads = sse_payloads(bytes(out))
        assert payloads[-1] == "[DONE]"
        text = "".join(
            (json.loads(p)["choices"] or [{"delta": {}}])[0]["delta"].get("content") or "" for p in payloads[:-1]
        )
        assert text == "".join(f"w{n}-{i}" for i in range(4))
        assert ex.usage == aiproxy.Usage(n, 4, n + 4)


def test_one_config_shared_by_many_threads() -> None:
    with aiproxy.Config.from_dict(provider("openai", modelMapping={"model-0": "mapped"})) as config:

        def worker(t: int) -> int:
            for i in range(PER_THREAD):
                one_exchange(config, t * PER_THREAD + i)
            return PER_THREAD

        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(worker, t) for t in range(THREADS)]
            assert sum(f.result(timeout=TIMEOUT_S) for f in futures) == THREADS * PER_THREAD


def test_exchanges_move_between_threads() -> None:
    """An exchange created on one thread may be continued on others (one at a time)."""
    with aiproxy.Config.from_dict(provider("openai")) as config:
        exchanges = [config.exchange() for _ in range(64)]
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda ex: ex.on_request("POST", "/v1/chat/completions", CLIENT_HEADERS, chat_body()),
                    exchanges,
                    timeout=TIMEOUT_S,
                )
            )
            list(
                pool.map(
                    lambda ex: ex.on_response_headers(200, {"content-type": "application/json"}),
                    exchanges,
                    timeout=TIMEOUT_S,
                )
            )
        for ex in exchanges:
            reply = b'{"choices":[{"index":0,"message":{"content":"ok"},"finish_reason":"stop"}]}'
            assert ex.on_response_body(reply, True).status == 200
            ex.close()


def test_closing_the_config_while_threads_create_exchanges() -> None:
    """Racing ``close()`` with ``exchange()`` on other threads gives ClosedError, never a crash."""
    for _ in range(10):
        config = aiproxy.Config.from_dict(provider("openai"))
        start = threading.Barrier(5)
        outcomes: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            start.wait(timeout=10)
            for _ in range(200):
                try:
                    with config.exchange() as ex:
                        ex.on_request("POST", "/v1/chat/completions", CLIENT_HEADERS, chat_body())
                    outcome = "ok"
                except aiproxy.ClosedError:
                    outcome = "closed"
                with lock:
                    outcomes.append(outcome)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        start.wait(timeout=10)
        config.close()
        for t in threads:
            t.join(timeout=TIMEOUT_S)
        assert len(outcomes) == 800
        assert set(outcomes) <= {"ok", "closed"}
        assert outcomes.count("closed") > 0
