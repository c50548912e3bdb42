"""The C API's failover, retry and query functions through the binding: ``Exchange.retry`` /
``retry_not_sent`` / ``on_upstream_abort`` / ``client_protocol`` and ``Config.tokens_out`` /
``due_health_checks`` / ``on_health_check_result`` / ``warnings`` / ``translates`` /
``needs_request_body`` / ``first_byte_timeout_ms``, each with real values."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from aiproxy_testutil import CLIENT_HEADERS, chat_body, sse_payloads

import aiproxy
from aiproxy import ClientProtocol, ClosedError, InvalidArgumentError, ResponseMode, StateError

CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream"}
TOKENS = ["tok-a", "tok-b"]


def two_tokens(**extra: Any) -> aiproxy.Config:
    return aiproxy.Config.from_dict({"provider": {"type": "openai", "apiTokens": TOKENS, **extra}})


def bearer(headers: aiproxy.HeaderPairs) -> str:
    return next(v for n, v in headers if n.lower() == "authorization")


def forward(config: aiproxy.Config, *, stream: bool = False) -> tuple[aiproxy.Exchange, aiproxy.Forward]:
    ex = config.exchange()
    body = chat_body(stream=True) if stream else chat_body()
    action = ex.on_request("POST", CHAT, CLIENT_HEADERS, body)
    assert isinstance(action, aiproxy.Forward)
    return ex, action


# Failover: token tok-a fails twice in a row (failureThreshold 2) and leaves the rotation; its
# health checks go out every millisecond (healthCheckInterval 1) as `probe`, mapped to gpt-4o-mini.
FAILOVER = {
    "failover": {
        "enabled": True,
        "healthCheckModel": "probe",
        "failureThreshold": 2,
        "healthCheckInterval": 1,
        "healthCheckTimeout": 2500,
    },
    "modelMapping": {"probe": "gpt-4o-mini"},
}


def take_tok_a_out(config: aiproxy.Config) -> None:
    """Drives exchanges, answering 429 for tok-a and 200 for tok-b, until tok-a is out."""
    assert config.tokens_out == 0
    for _ in range(200):
        with config.exchange() as ex:
            action = ex.on_request("POST", CHAT, CLIENT_HEADERS, chat_body())
            assert isinstance(action, aiproxy.Forward)
            status = 429 if bearer(action.set_headers) == "Bearer tok-a" else 200
            ex.on_response_headers(status, JSON)
        if config.tokens_out:
            break
    assert config.tokens_out == 1


def due_checks(config: aiproxy.Config) -> tuple[aiproxy.HealthCheck, ...]:
    """The checks due once the 1 ms interval has certainly passed."""
    time.sleep(0.02)
    return config.due_health_checks()


def test_retry_returns_a_request_with_the_other_token() -> None:
    with two_tokens(retryOnFailure={"enabled": True, "maxRetries": 3, "retryTimeout": 7000}) as config:
        ex, first = forward(config)
        retry = ex.retry(429)
        assert isinstance(retry, aiproxy.Forward)
        assert {bearer(first.set_headers), bearer(retry.set_headers)} == {"Bearer tok-a", "Bearer tok-b"}
        assert (retry.authority, retry.path, retry.body) == (first.authority, first.path, first.body)
        assert retry.timeout_ms == 7000  # retryTimeout, not the upstream timeout
        # Both tokens tried: no third attempt although maxRetries allows it.
        assert ex.retry(429) is None
        assert ex.on_response_headers(429, JSON).mode is ResponseMode.BUFFER
        last = ex.on_response_body(b'{"error": {"message": "slow down"}}', True)
        assert last.status == 429
        # After the response headers there is nothing left to retry.
        assert ex.retry(503) is None


def test_retry_is_none_for_a_status_not_retried_or_without_retry_on_failure() -> None:
    with two_tokens(retryOnFailure={"enabled": True, "retryOnStatus": ["5.*"]}) as config:
        ex, _ = forward(config)
        assert ex.retry(400) is None
        assert ex.retry(200) is None
    with two_tokens() as config:
        ex, _ = forward(config)
        assert ex.retry(503) is None
    with pytest.raises(InvalidArgumentError):
        ex.retry(70000)


@pytest.mark.parametrize("sent", [True, False])
def test_retry_not_sent_keeps_the_retry_token_out_of_the_report(sent: bool) -> None:
    # failureThreshold 1: every failover status reported for a token takes it out. retry(503)
    # reports the first token; the answer then given to on_response_headers is charged to the
    # retry's token only if the retry was sent.
    failover = {"enabled": True, "healthCheckModel": "probe", "failureThreshold": 1}
    with two_tokens(retryOnFailure={"enabled": True}, failover=failover) as config:
        ex, _ = forward(config)
        assert isinstance(ex.retry(503), aiproxy.Forward)
        assert config.tokens_out == 1
        if not sent:
            ex.retry_not_sent()
        ex.on_response_headers(503, JSON)
        assert config.tokens_out == (2 if sent else 1)
        assert ex.on_response_body(b'{"error": {"message": "busy"}}', True).status == 503


def test_tokens_out_counts_the_token_past_the_failover_threshold() -> None:
    with two_tokens(**FAILOVER) as config:
        take_tok_a_out(config)
        # Every new request now goes to tok-b.
        for _ in range(10):
            _, action = forward(config)
            assert bearer(action.set_headers) == "Bearer tok-b"


def test_due_health_checks_describe_the_check_of_the_out_token() -> None:
    with two_tokens(**FAILOVER) as config:
        assert config.due_health_checks() == ()
        take_tok_a_out(config)
        (check,) = due_checks(config)
        assert isinstance(check, aiproxy.HealthCheck)
        assert check.token_index == TOKENS.index("tok-a")
        assert check.method == "POST"
        assert (check.authority, check.path) == ("api.openai.com", CHAT)
        assert bearer(check.headers) == "Bearer tok-a"
        assert ("content-type", "application/json") in check.headers
        body = json.loads(check.body)
        assert body["model"] == "gpt-4o-mini"  # healthCheckModel after modelMapping
        assert body["messages"][0]["role"] == "user"
        assert check.timeout_ms == 2500
        # Claimed: not handed out again before its result or its timeout.
        assert config.due_health_checks() == ()


def test_every_health_check_list_is_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = aiproxy._ffi.library()
    real_free = lib.aiproxy_health_checks_free
    freed: list[int] = []

    def free(handle: Any) -> None:
        freed.append(handle.value)
        real_free(handle)

    monkeypatch.setattr(lib, "aiproxy_health_checks_free", free)
    with two_tokens(**FAILOVER) as config:
        assert config.due_health_checks() == ()
        take_tok_a_out(config)
        assert len(due_checks(config)) == 1
    assert len(freed) == 2 and all(freed), "the empty list and the one with a check"


def test_on_health_check_result_restores_the_token_only_on_200() -> None:
    with two_tokens(**FAILOVER) as config:
        take_tok_a_out(config)
        (check,) = due_checks(config)
        config.on_health_check_result(check.token_index, 503)
        assert config.tokens_out == 1
        (check,) = due_checks(config)  # failed: due again after the interval
        config.on_health_check_result(check.token_index, 0)  # no status at all
        assert config.tokens_out == 1
        (check,) = due_checks(config)
        config.on_health_check_result(check.token_index, 200)
        assert config.tokens_out == 0
        assert due_checks(config) == ()
        with pytest.raises(InvalidArgumentError):
            config.on_health_check_result(len(TOKENS), 200)
        with pytest.raises(InvalidArgumentError):
            config.on_health_check_result(-1, 200)


def test_warnings_name_ignored_fields() -> None:
    with two_tokens() as config:
        assert config.warnings == ()
    with two_tokens(typoField=1, subPath="/x") as config:
        warnings = config.warnings
        assert isinstance(warnings, tuple)
        assert len(warnings) == 2
        assert any("provider.typoField" in w and "unknown field" in w for w in warnings)
        assert any("provider.subPath" in w and "does not implement" in w for w in warnings)
        assert not any("/x" in w for w in warnings), "a warning names the field, never its value"


def test_translates() -> None:
    with two_tokens() as config:
        assert config.translates("POST", CHAT)
        assert config.translates("POST", "/v1/chat/completions?x=1")
        assert config.translates(b"POST", b"/v1/embeddings")
        assert not config.translates("GET", "/v1/models")
        assert not config.translates("", "")


def test_needs_request_body() -> None:
    with two_tokens() as config:
        assert config.needs_request_body("POST", CHAT)
        assert not config.needs_request_body("GET", "/v1/models")
    # Hunyuan signs every request over its body bytes.
    hunyuan = {"provider": {"type": "hunyuan", "hunyuanAuthId": "id", "hunyuanAuthKey": "key"}}
    with aiproxy.Config.from_dict(hunyuan) as config:
        assert not config.translates("GET", "/v1/models")
        assert config.needs_request_body("GET", "/v1/models")


def test_first_byte_timeout_ms() -> None:
    with two_tokens(firstByteTimeout=1500) as config:
        assert config.first_byte_timeout_ms == 1500
    with two_tokens() as config:
        assert config.first_byte_timeout_ms is None


def test_client_protocol_follows_the_request_path() -> None:
    def protocol(ex: aiproxy.Exchange) -> ClientProtocol:
        return ex.client_protocol  # a call, so mypy does not narrow the property across steps

    with two_tokens() as config:
        ex = config.exchange()
        assert protocol(ex) is ClientProtocol.OPENAI  # before the request
        body = json.dumps({"model": "gpt-4o", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
        assert isinstance(ex.on_request("POST", "/v1/messages", JSON, body), aiproxy.Forward)
        assert protocol(ex) is ClientProtocol.ANTHROPIC
        ex, _ = forward(config)
        assert protocol(ex) is ClientProtocol.OPENAI


def test_upstream_abort_mid_stream_yields_the_error_event() -> None:
    with two_tokens() as config:
        ex, _ = forward(config, stream=True)
        assert ex.on_response_headers(200, SSE).mode is ResponseMode.STREAM
        event = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o",
            "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}],
        }
        out = ex.on_response_body(b"data: " + json.dumps(event).encode() + b"\n\n", False)
        assert "Hel" in (out.data or b"").decode()
        abort = ex.on_upstream_abort()
        assert abort.status is None  # the headers are already out: append to the stream
        assert abort.data is not None
        payloads = sse_payloads(abort.data)
        assert payloads[-1] == "[DONE]"
        error = json.loads(payloads[0])["error"]
        assert error["code"] == "upstream_reset"
        assert ex.on_upstream_abort().data is None  # nothing more to add
        with pytest.raises(StateError):
            ex.on_response_body(b"", True)


def test_upstream_abort_before_the_headers_is_a_502_and_before_the_request_an_error() -> None:
    with two_tokens() as config:
        ex, _ = forward(config)
        abort = ex.on_upstream_abort()
        assert abort.status == 502
        assert json.loads(abort.data or b"")["error"]["code"] == "upstream_reset"
        with pytest.raises(StateError):
            config.exchange().on_upstream_abort()


CONFIG_CALLS = {
    "translates": lambda c: c.translates("POST", CHAT),
    "needs_request_body": lambda c: c.needs_request_body("POST", CHAT),
    "first_byte_timeout_ms": lambda c: c.first_byte_timeout_ms,
    "warnings": lambda c: c.warnings,
    "tokens_out": lambda c: c.tokens_out,
    "due_health_checks": lambda c: c.due_health_checks(),
    "on_health_check_result": lambda c: c.on_health_check_result(0, 200),
}


@pytest.mark.parametrize("call", CONFIG_CALLS.values(), ids=CONFIG_CALLS.keys())
def test_config_calls_after_close_raise(call: Any) -> None:
    config = two_tokens()
    config.close()
    with pytest.raises(ClosedError):
        call(config)
