"""Request and response translation through the binding: chat and embeddings, buffered and
streamed responses, usage, local replies, callouts and passthrough."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from aiproxy_testutil import (
    CLIENT_HEADERS,
    UPSTREAM_TOKEN,
    chat_body,
    embeddings_body,
    openai_sse,
    provider,
    sse_payloads,
)
from pyutil.openai_schema import (
    validate_chat_completion,
    validate_embedding_response,
    validate_error,
    validate_sse_stream,
)

import aiproxy
from aiproxy import BodyChunk, Forward, LocalReply, ResponseMode

CONTEXT = {"fileUrl": "http://file.default.svc.cluster.local/ai/context.txt", "serviceName": "file.dns", "servicePort": 80}


def forward(config: aiproxy.Config, path: str, body: bytes, headers: Any = CLIENT_HEADERS) -> Forward:
    with config.exchange() as ex:
        action = ex.on_request("POST", path, headers, body)
    assert isinstance(action, Forward), action
    return action


def completion(text: str = "hi there", *, model: str = "gpt-4o", usage: tuple[int, int] = (3, 2)) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1717171717,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1717171717,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


WORDS = ["mock", " reply", " to:", " hello", " there"]
STREAM = openai_sse(
    [chunk({"role": "assistant", "content": ""})]
    + [chunk({"content": w}) for w in WORDS]
    + [chunk({}, "stop")]
    + [{**chunk({}), "choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}}]
)


# ------------------------------------------------------------------------------------------------
# Requests
# ------------------------------------------------------------------------------------------------


def test_openai_chat_request(openai_config: aiproxy.Config) -> None:
    fwd = forward(openai_config, "/v1/chat/completions", chat_body(temperature=0.5))
    assert (fwd.authority, fwd.path, fwd.model) == ("api.openai.com", "/v1/chat/completions", "gpt-4o")
    assert {"authorization", "content-length", "accept-encoding"} <= set(fwd.remove_headers)
    assert ("authorization", f"Bearer {UPSTREAM_TOKEN}") in fwd.set_headers
    assert fwd.timeout_ms == 120_000
    assert fwd.body is not None
    assert json.loads(fwd.body) == json.loads(chat_body(temperature=0.5))
    # The edits applied to the client's headers: the client's key and length are gone.
    edited = dict(fwd.headers_for(CLIENT_HEADERS))
    assert edited["authorization"] == f"Bearer {UPSTREAM_TOKEN}"
    assert "content-length" not in edited and "accept-encoding" not in edited
    assert edited["x-client-trace"] == "abc"


def test_model_mapping_and_timeout() -> None:
    with aiproxy.Config.from_dict(
        provider("deepseek", modelMapping={"gpt-4*": "deepseek-chat", "*": "deepseek-reasoner"}, timeout=5000)
    ) as config:
        fwd = forward(config, "/v1/chat/completions", chat_body(model="gpt-4o-mini"))
        assert (fwd.authority, fwd.path, fwd.model, fwd.timeout_ms) == (
            "api.deepseek.com",
            "/chat/completions",
            "deepseek-chat",
            5000,
        )
        assert fwd.body is not None and json.loads(fwd.body)["model"] == "deepseek-chat"
        assert forward(config, "/v1/chat/completions", chat_body(model="o1")).model == "deepseek-reasoner"


def test_azure_chat_and_embeddings() -> None:
    with aiproxy.Config.from_dict(provider("azure")) as config:
        chat = forward(config, "/v1/chat/completions", chat_body())
        assert chat.authority == "myres.openai.azure.com"
        assert chat.path == "/openai/deployments/gpt4o-dep/chat/completions?api-version=2024-02-15-preview"
        assert ("api-key", UPSTREAM_TOKEN) in chat.set_headers
        assert "authorization" in chat.remove_headers
        emb = forward(config, "/v1/embeddings", embeddings_body(["a", "b"]))
        assert emb.path == "/openai/deployments/gpt4o-dep/embeddings?api-version=2024-02-15-preview"
        assert emb.body is not None and json.loads(emb.body)["input"] == ["a", "b"]


@pytest.mark.parametrize(
    ("kind", "authority", "path"),
    [
        ("openai", "api.openai.com", "/v1/embeddings"),
        ("mistral", "api.mistral.ai", "/v1/embeddings"),
        ("zhipuai", "open.bigmodel.cn", "/api/paas/v4/embeddings"),
        ("baidu", "qianfan.baidubce.com", "/v2/embeddings"),
    ],
)
def test_embeddings_request(kind: str, authority: str, path: str) -> None:
    with aiproxy.Config.from_dict(provider(kind)) as config:
        fwd = forward(config, "/v1/embeddings?trace=1", embeddings_body())
        assert (fwd.authority, fwd.path, fwd.model) == (authority, path, "text-embedding-3-small")


def test_unsupported_api_is_a_local_reply() -> None:
    with aiproxy.Config.from_dict(provider("groq")) as config, config.exchange() as ex:
        reply = ex.on_request("POST", "/v1/embeddings", CLIENT_HEADERS, embeddings_body())
        assert isinstance(reply, LocalReply)
        assert reply.status == 400
        error = json.loads(reply.body)
        validate_error(error)
        assert error["error"]["code"] == "unsupported_feature"
        assert ex.usage is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[]", None),
        (json.dumps({"model": 7, "messages": []}).encode(), "model"),
        (json.dumps({"model": "gpt-4o"}).encode(), "messages"),
    ],
)
def test_bad_client_body_is_a_400_local_reply(openai_config: aiproxy.Config, body: bytes, param: str | None) -> None:
    with openai_config.exchange() as ex:
        reply = ex.on_request("POST", "/v1/chat/completions", CLIENT_HEADERS, body)
        assert isinstance(reply, LocalReply)
        assert reply.status == 400
        assert ("content-type", "application/json") in reply.headers
        error = json.loads(reply.body)
        validate_error(error)
        assert error["error"]["param"] == param
        # After a local reply the response side is a passthrough of what the host sends.
        assert ex.on_response_headers(reply.status, reply.headers).mode is ResponseMode.PASSTHROUGH
        assert ex.on_response_body(reply.body, True) == BodyChunk(None, None)


def test_untranslated_path_and_original_protocol_pass_through(openai_config: aiproxy.Config) -> None:
    with openai_config.exchange() as ex:
        fwd = ex.on_request("GET", "/v1/models", CLIENT_HEADERS, b"")
        assert isinstance(fwd, Forward)
        assert (fwd.authority, fwd.path, fwd.body, fwd.model) == ("api.openai.com", "/v1/models", None, "")
        assert ("authorization", f"Bearer {UPSTREAM_TOKEN}") in fwd.set_headers
        start = ex.on_response_headers(200, {"content-type": "application/json"})
        assert start == aiproxy.ResponseStart(ResponseMode.PASSTHROUGH, (), ())
        out = ex.on_response_body(b'{"data":[]}', True)
        assert out.data is None and out.output(b'{"data":[]}') == b'{"data":[]}'
        assert ex.usage is None
    with aiproxy.Config.from_dict(provider("mistral", protocol="original")) as config:
        fwd = forward(config, "/v1/chat/completions", chat_body())
        assert fwd.body is None and fwd.authority == "api.mistral.ai"


def test_callout_then_forward_with_context() -> None:
    with aiproxy.Config.from_dict(provider("openai", context=CONTEXT)) as config:
        with config.exchange() as ex:
            callout = ex.on_request("POST", "/v1/chat/completions", CLIENT_HEADERS, chat_body())
            assert callout == aiproxy.Callout(
                cluster="file.dns",
                port=80,
                authority="file.default.svc.cluster.local",
                path="/ai/context.txt",
                method="GET",
                headers=(),
                timeout_ms=120_000,
            )
            fwd = ex.on_callout_response(200, "The capital of Mockland is Testville.\n")
            assert isinstance(fwd, Forward) and fwd.body is not None
            messages = json.loads(fwd.body)["messages"]
            assert messages[0] == {"role": "system", "content": "The capital of Mockland is Testville.\n"}
            assert messages[1]["role"] == "user"
        with config.exchange() as ex:
            ex.on_request("POST", "/v1/chat/completions", CLIENT_HEADERS, chat_body())
            failed = ex.on_callout_response(0, None)
            assert isinstance(failed, LocalReply) and failed.status == 502
            validate_error(json.loads(failed.body))
        # Embeddings need no context: no callout.
        assert isinstance(forward(config, "/v1/embeddings", embeddings_body()), Forward)


def test_utf8_and_large_bodies(openai_config: aiproxy.Config) -> None:
    text = "héllo wörld 你好 🎉 " * 40_000  # ~1 MB of multi-byte UTF-8
    fwd = forward(openai_config, "/v1/chat/completions", chat_body(text), {"x-note": "café ☕"})
    assert fwd.body is not None
    assert json.loads(fwd.body)["messages"][0]["content"] == text
    assert dict(fwd.headers_for({"x-note": "café ☕"}))["x-note"] == "café ☕"


# ------------------------------------------------------------------------------------------------
# Responses
# ------------------------------------------------------------------------------------------------


def start_exchange(config: aiproxy.Config, body: bytes, path: str = "/v1/chat/completions") -> aiproxy.Exchange:
    ex = config.exchange()
    assert isinstance(ex.on_request("POST", path, CLIENT_HEADERS, body), Forward)
    return ex


def test_buffered_chat_response_in_chunks(openai_config: aiproxy.Config) -> None:
    upstream = json.dumps(completion("hi there", usage=(11, 4))).encode()
    with start_exchange(openai_config, chat_body()) as ex:
        start = ex.on_response_headers(200, {"content-type": "application/json", "content-length": str(len(upstream))})
        assert start.mode is ResponseMode.BUFFER
        assert set(start.remove_headers) == {"content-length", "content-encoding"}
        assert ("content-type", "application/json") in start.set_headers
        assert ex.usage is None
        pieces = [upstream[i : i + 7] for i in range(0, len(upstream), 7)]
        for piece in pieces:
            assert ex.on_response_body(piece, False) == BodyChunk(b"", None)  # held until the end
        last = ex.on_response_body(b"", True)
        assert last.status == 200 and last.data is not None
        body = json.loads(last.data)
        validate_chat_completion(body)
        assert body["choices"][0]["message"]["content"] == "hi there"
        assert ex.usage == aiproxy.Usage(prompt_tokens=11, completion_tokens=4, total_tokens=15)


def test_buffered_embeddings_response(openai_config: aiproxy.Config) -> None:
    upstream = {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": [0.1 * i, 0.2, -0.3]} for i in range(2)],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    with start_exchange(openai_config, embeddings_body(["a", "b"]), "/v1/embeddings") as ex:
        assert ex.on_response_headers(200, [("Content-Type", "application/json")]).mode is ResponseMode.BUFFER
        last = ex.on_response_body(json.dumps(upstream), True)
        assert last.status == 200 and last.data is not None
        body = json.loads(last.data)
        validate_embedding_response(body)
        assert len(body["data"]) == 2
        assert ex.usage == aiproxy.Usage(2, 0, 2)


def test_upstream_error_becomes_an_openai_error(openai_config: aiproxy.Config) -> None:
    upstream = b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}'
    with start_exchange(openai_config, chat_body()) as ex:
        assert ex.on_response_headers(401, {"content-type": "application/json"}).mode is ResponseMode.BUFFER
        last = ex.on_response_body(upstream, True)
        assert last.status == 401 and last.data is not None
        error = json.loads(last.data)
        validate_error(error)
        assert "Incorrect API key" in error["error"]["message"]


@pytest.mark.parametrize("piece_size", [1, 7, 64, 100_000])
def test_streamed_chat_response_chunk_by_chunk(openai_config: aiproxy.Config, piece_size: int) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    with start_exchange(openai_config, body) as ex:
        start = ex.on_response_headers(200, {"content-type": "text/event-stream; charset=utf-8"})
        assert start.mode is ResponseMode.STREAM
        assert ("content-type", "text/event-stream") in start.set_headers
        out = bytearray()
        first_event_end = STREAM.index(b"\n\n") + 2
        for i in range(0, len(STREAM), piece_size):
            piece = STREAM[i : i + piece_size]
            result = ex.on_response_body(piece, False)
            assert result.data is not None and result.status is None
            out += result.data
            if i + len(piece) >= first_event_end:
                assert out, "a complete upstream event must be translated before the stream ends"
        tail = ex.on_response_body(b"", True)
        assert tail.data is not None
        out += tail.data
    chunks = validate_sse_stream(bytes(out))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "".join(WORDS)
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
    assert sse_payloads(bytes(out))[-1] == "[DONE]"


def test_streamed_usage_is_reported(openai_config: aiproxy.Config) -> None:
    with start_exchange(openai_config, chat_body(stream=True, stream_options={"include_usage": True})) as ex:
        ex.on_response_headers(200, {"content-type": "text/event-stream"})
        ex.on_response_body(STREAM, True)
        assert ex.usage == aiproxy.Usage(2, 5, 7)


def test_malformed_stream_ends_cleanly(openai_config: aiproxy.Config) -> None:
    with start_exchange(openai_config, chat_body(stream=True)) as ex:
        ex.on_response_headers(200, {"content-type": "text/event-stream"})
        out = ex.on_response_body(b"data: {broken json\n\n", False).output(b"")
        out += ex.on_response_body(b"", True).output(b"")
        assert sse_payloads(out)[-1] == "[DONE]"
        assert b"error" in out


def test_results_are_copies(openai_config: aiproxy.Config) -> None:
    """Values returned earlier stay intact after later calls reuse the core's buffers."""
    with start_exchange(openai_config, chat_body(stream=True)) as ex:
        ex.on_response_headers(200, {"content-type": "text/event-stream"})
        first = ex.on_response_body(STREAM[: STREAM.index(b"\n\n") + 2], False)
        snapshot = bytes(first.data or b"")
        ex.on_response_body(STREAM[STREAM.index(b"\n\n") + 2 :], True)
        assert first.data == snapshot and snapshot.startswith(b"data: ")


def test_edit_headers_helper() -> None:
    edited = aiproxy.edit_headers(
        [("Content-Length", "5"), ("X-A", "1"), ("Authorization", "old"), ("x-a", "2")],
        remove=["content-length"],
        set_=[("authorization", "new")],
    )
    assert edited == [("X-A", "1"), ("x-a", "2"), ("authorization", "new")]


def test_usage_details_are_reported(openai_config: aiproxy.Config) -> None:
    reply = completion("hi there", usage=(11, 4))
    reply["usage"]["prompt_tokens_details"] = {"cached_tokens": 6}
    reply["usage"]["completion_tokens_details"] = {"reasoning_tokens": 3}
    upstream = json.dumps(reply).encode()
    with start_exchange(openai_config, chat_body()) as ex:
        ex.on_response_headers(200, {"content-type": "application/json"})
        assert ex.on_response_body(upstream, True).status == 200
        assert ex.usage == aiproxy.Usage(11, 4, 15, cached_tokens=6, reasoning_tokens=3)
    # Without details, both stay None.
    with start_exchange(openai_config, chat_body()) as ex:
        ex.on_response_headers(200, {"content-type": "application/json"})
        ex.on_response_body(json.dumps(completion("hi", usage=(1, 1))).encode(), True)
        usage = ex.usage
        assert usage is not None and usage.cached_tokens is None and usage.reasoning_tokens is None


def test_vertex_token_callout_carries_its_body(tmp_path: Path) -> None:
    """A Vertex service account's token exchange is a POST with a form body: the binding exposes
    the body (with method and headers) and passes the endpoint's answer back to the core."""
    key = tmp_path / "sa.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    account = {
        "type": "service_account",
        "private_key_id": "k1",
        "private_key": key.read_text(),
        "client_email": "svc@p.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    config = {
        "provider": {
            "type": "vertex",
            "vertexAuthKey": json.dumps(account),
            "vertexRegion": "us-central1",
            "vertexProjectId": "p",
            "vertexAuthServiceName": "google-oauth",
        }
    }
    body = chat_body(model="gemini-2.0-flash")
    with aiproxy.Config.from_dict(config) as cfg:
        with cfg.exchange() as ex:
            callout = ex.on_request("POST", "/v1/chat/completions", CLIENT_HEADERS, body)
            assert isinstance(callout, aiproxy.Callout), callout
            assert (callout.cluster, callout.authority, callout.path, callout.method) == (
                "google-oauth",
                "oauth2.googleapis.com",
                "/token",
                "POST",
            )
            assert ("content-type", "application/x-www-form-urlencoded") in callout.headers
            form = urllib.parse.parse_qs(callout.body.decode())
            assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"], form
            head, claims, sig = form["assertion"][0].split(".")
            assert json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["iss"] == account["client_email"]
            # The JWT verifies with openssl against the key's public half.
            pub = tmp_path / "sa.pub.pem"
            subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True, timeout=60)
            (tmp_path / "in").write_bytes(f"{head}.{claims}".encode())
            (tmp_path / "sig").write_bytes(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
            check = subprocess.run(
                ["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature", str(tmp_path / "sig"), str(tmp_path / "in")],
                capture_output=True,
                timeout=60,
            )
            assert check.returncode == 0, check.stdout
            answer = b'{"access_token": "ya29.from-the-callout", "expires_in": 3600, "token_type": "Bearer"}'
            fwd = ex.on_callout_response(200, answer)
            assert isinstance(fwd, Forward), fwd
            assert fwd.authority == "us-central1-aiplatform.googleapis.com"
            assert ("authorization", "Bearer ya29.from-the-callout") in fwd.set_headers
        # The token is cached: the next request goes straight out with it.
        with cfg.exchange() as ex:
            again = ex.on_request("POST", "/v1/chat/completions", CLIENT_HEADERS, body)
            assert isinstance(again, Forward) and ("authorization", "Bearer ya29.from-the-callout") in again.set_headers
