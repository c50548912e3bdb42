"""Failover and retries through a real Envoy 1.40 (``failover`` and ``retryOnFailure``).

Its own Envoy and mock provider (module scope), so that token health starts fresh and the faults
injected into the mock (``/__mock/faults``: a token answers 429 / 503 / 400 on demand) touch no
other test.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, TypeVar

import openai
import pytest
from conftest import CLIENT_KEY, marker
from envoy_harness import EnvoyProcess, envoy_config
from mock_provider import MockHandle, start_mock
from pyutil.openai_schema import validate_chat_completion, validate_error, validate_sse_stream

T = TypeVar("T")

GOOD: Final = "sk-failover-good"
BAD: Final = "sk-failover-bad"
RETRY_A: Final = "sk-retry-a"
RETRY_B: Final = "sk-retry-b"
CHECK_INTERVAL_MS: Final = 300
HEALTH_MODEL: Final = "gpt-4o-mini"
HEALTH_PROMPT: Final = "who are you?"

CONFIGS: Final[dict[str, dict[str, Any]]] = {
    # Two tokens; a token leaves after 2 429s in a row and comes back after 1 passed check.
    "failover": {
        "provider": {
            "type": "openai",
            "apiTokens": [GOOD, BAD],
            "failover": {
                "enabled": True,
                "failureThreshold": 2,
                "successThreshold": 1,
                "healthCheckInterval": CHECK_INTERVAL_MS,
                "healthCheckTimeout": 2000,
                "healthCheckModel": HEALTH_MODEL,
                "failoverOnStatus": ["429"],
            },
            "retryOnFailure": {"enabled": True, "maxRetries": 1, "retryOnStatus": ["429"]},
        }
    },
    "retry": {
        "provider": {
            "type": "openai",
            "apiTokens": [RETRY_A, RETRY_B],
            "retryOnFailure": {"enabled": True, "retryOnStatus": ["429", "5.*"]},
        }
    },
}


def eventually(probe: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class Rig:
    def __init__(self, envoy: EnvoyProcess, mock: MockHandle) -> None:
        self.envoy = envoy
        self.mock = mock

    def url(self, listener: str) -> str:
        return f"http://127.0.0.1:{self.envoy.ports[listener]}"

    def client(self, listener: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url(listener)}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20.0)

    def post(self, listener: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(
            f"{self.url(listener)}/v1/chat/completions",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"content-type": "application/json", "authorization": f"Bearer {CLIENT_KEY}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=20.0) as response:  # noqa: S310 - loopback
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()

    def counter(self, name: str) -> int:
        text = self.envoy.admin("/stats/prometheus")
        pattern = rf'^envoy_dynamicmodulescustom_{name}{{provider="openai"}} (\d+)$'
        match = re.search(pattern, text, re.M)
        return int(match.group(1)) if match else 0

    def upstream(self, mark: str) -> list[dict[str, Any]]:
        return [e for e in self.mock.requests() if mark in (e.get("body") or "")]


def token_of(entry: dict[str, Any]) -> str:
    return str(entry["headers"].get("authorization", "")).removeprefix("Bearer ")


def health_checks(rig: Rig) -> list[dict[str, Any]]:
    return [e for e in rig.mock.requests() if HEALTH_PROMPT in (e.get("body") or "")]


@pytest.fixture(scope="module")
def rig(envoy_bin: Path, modules: Path, workdir: Path) -> Iterator[Rig]:
    mock = start_mock()
    configs = {name: json.dumps(cfg) for name, cfg in CONFIGS.items()}
    rendered = envoy_config.render(configs["failover"], listen_port=0, admin_port=0)
    config = envoy_config.route_to_mock(envoy_config.load(rendered), mock.port)
    config = envoy_config.with_listeners(config, configs)
    directory = workdir / "failover"
    directory.mkdir(exist_ok=True)
    envoy = EnvoyProcess(envoy_bin, modules, directory, config, concurrency=2)
    try:
        envoy.start()
        yield Rig(envoy, mock)
    finally:
        envoy.stop()
        mock.close()


def chat(rig: Rig, listener: str, mark: str) -> openai.types.chat.ChatCompletion:
    return rig.client(listener).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": f"hello {mark}"}]
    )


def test_bad_token_leaves_the_rotation_and_returns_after_health_checks(rig: Rig) -> None:
    rig.mock.clear_faults()
    rig.mock.add_fault(BAD, 429)
    retries_before = rig.counter("aiproxy_retries_total")
    try:
        # Every request succeeds: a 429 from the bad token is retried with the good one.
        marks: list[str] = []
        for _ in range(60):
            mark = marker()
            marks.append(mark)
            completion = chat(rig, "failover", mark)
            validate_chat_completion(completion.model_dump(exclude_unset=True))
            assert completion.choices[0].message.content == f"mock reply to: hello {mark}"
            if rig.counter("aiproxy_failovers_total") >= 1:
                break
        assert rig.counter("aiproxy_failovers_total") == 1, "the bad token never left the rotation"
        assert rig.counter("aiproxy_tokens_out") == 1
        live = [e for m in marks for e in rig.upstream(m)]
        bad_live = [e for e in live if token_of(e) == BAD]
        assert len(bad_live) == 2, "leaves after failureThreshold (2) 429s in a row"
        assert all(e["response"]["status"] == 429 for e in bad_live)
        assert rig.counter("aiproxy_retries_total") - retries_before == 2

        # Out of the rotation: live traffic only uses the good token, with no retries.
        later = [marker() for _ in range(12)]
        for mark in later:
            chat(rig, "failover", mark)
        assert {token_of(e) for m in later for e in rig.upstream(m)} == {GOOD}
        assert rig.counter("aiproxy_retries_total") - retries_before == 2

        # Health checks (driven by traffic, one interval apart) go to the bad token and fail.
        def failed_check() -> bool:
            chat(rig, "failover", marker())
            return any(token_of(e) == BAD and e["response"]["status"] == 429 for e in health_checks(rig))

        eventually(failed_check, timeout=10.0, interval=CHECK_INTERVAL_MS / 1000)
        check = next(e for e in health_checks(rig) if token_of(e) == BAD)
        assert check["path"] == "/v1/chat/completions"
        assert check["json"]["model"] == HEALTH_MODEL
        assert check["json"]["messages"] == [{"role": "user", "content": HEALTH_PROMPT}]
        assert rig.counter("aiproxy_tokens_restored_total") == 0
    finally:
        rig.mock.clear_faults()

    # The key works again: the next passed check brings it back.
    def restored() -> bool:
        chat(rig, "failover", marker())
        return rig.counter("aiproxy_tokens_restored_total") == 1

    eventually(restored, timeout=10.0, interval=CHECK_INTERVAL_MS / 1000)
    assert any(token_of(e) == BAD and e["response"]["status"] == 200 for e in health_checks(rig))
    back = [marker() for _ in range(30)]
    for mark in back:
        chat(rig, "failover", mark)
    used = [token_of(e) for m in back for e in rig.upstream(m)]
    assert set(used) == {GOOD, BAD}, "both tokens serve traffic again"
    assert rig.counter("aiproxy_failovers_total") == 1
    assert rig.counter("aiproxy_tokens_out") == 0


def test_retryable_503_on_a_stream_is_retried_into_one_clean_stream(rig: Rig) -> None:
    rig.mock.clear_faults()
    rig.mock.add_fault("*", 503, count=1)
    mark = marker()
    try:
        status, headers, raw = rig.post(
            "retry",
            {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": f"hello {mark}"}]},
        )
    finally:
        rig.mock.clear_faults()
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    chunks = validate_sse_stream(raw, min_chunks=3)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == f"mock reply to: hello {mark}"
    assert raw.count(b"data: [DONE]") == 1
    assert b"overloaded" not in raw and b"error" not in raw
    attempts = rig.upstream(mark)
    assert [e["response"]["status"] for e in attempts] == [503, 200]
    assert token_of(attempts[0]) != token_of(attempts[1])
    assert {token_of(e) for e in attempts} == {RETRY_A, RETRY_B}
    assert attempts[1]["json"]["stream"] is True


def test_retryable_status_on_a_buffered_request_is_retried(rig: Rig) -> None:
    rig.mock.clear_faults()
    rig.mock.add_fault("*", 429, count=1)
    mark = marker()
    try:
        completion = chat(rig, "retry", mark)
    finally:
        rig.mock.clear_faults()
    validate_chat_completion(completion.model_dump(exclude_unset=True))
    assert completion.choices[0].message.content == f"mock reply to: hello {mark}"
    assert [e["response"]["status"] for e in rig.upstream(mark)] == [429, 200]


def test_non_retryable_400_is_passed_through_unchanged(rig: Rig) -> None:
    rig.mock.clear_faults()
    rig.mock.add_fault("*", 400, count=1)
    mark = marker()
    try:
        status, headers, raw = rig.post(
            "retry", {"model": "gpt-4o", "messages": [{"role": "user", "content": f"hello {mark}"}]}
        )
    finally:
        rig.mock.clear_faults()
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    body = json.loads(raw)
    validate_error(body)
    attempts = rig.upstream(mark)
    assert len(attempts) == 1, "a 400 is not retried"
    assert attempts[0]["response"]["status"] == 400
    # The same error the provider sent (the mock's OpenAI-shaped 400).
    assert body["error"]["message"] == "Invalid request (mock error)."
    assert body["error"]["type"] == "invalid_request_error"
    assert CLIENT_KEY not in raw.decode() and RETRY_A not in raw.decode() and RETRY_B not in raw.decode()
