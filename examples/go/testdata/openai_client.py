"""Drive the Go example proxy with the official ``openai`` SDK and check every answer.

Invoked by proxy_test.go (``python openai_client.py --base-url http://127.0.0.1:PORT/v1 ...``)
with the repository's venv. Raw bodies are validated against the OpenAI OpenAPI spec with
``tests/pyutil/openai_schema.py``; the parsed SDK objects are checked against the mock provider's
deterministic replies ("mock reply to: <last user text>"). Prints one line per check and exits
non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

import openai  # noqa: E402

from tests.pyutil import openai_schema  # noqa: E402

PROMPT = "what is the capital of Mockland"
EXPECTED = f"mock reply to: {PROMPT}"


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def chat_buffered(client: openai.OpenAI, model: str) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": PROMPT}]
    )
    check(raw.status_code == 200, f"status {raw.status_code}")
    check(raw.headers.get("content-type", "").startswith("application/json"), f"content-type {raw.headers}")
    openai_schema.validate_chat_completion(json.loads(raw.http_response.content))
    completion = raw.parse()
    check(completion.object == "chat.completion", f"object {completion.object!r}")
    text = completion.choices[0].message.content
    check(text == EXPECTED, f"buffered text {text!r}")
    check(completion.choices[0].finish_reason == "stop", f"finish_reason {completion.choices[0].finish_reason!r}")
    u = completion.usage
    check(u is not None and u.total_tokens > 0, f"usage {u}")
    # MiniMax Pro reports only a total; otherwise the parts add up.
    parts = u.prompt_tokens + u.completion_tokens
    check(parts in (0, u.total_tokens), f"usage total {u}")
    print(f"ok chat buffered: {text!r} usage={u.total_tokens}")


def chat_stream(client: openai.OpenAI, model: str, want_usage: bool = True) -> None:
    # The SDK's own stream parser assembles the answer.
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )
    parts: list[str] = []
    finish = None
    usage = None
    chunks = 0
    for chunk in stream:
        chunks += 1
        check(chunk.object == "chat.completion.chunk", f"chunk object {chunk.object!r}")
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
        if chunk.usage is not None:
            usage = chunk.usage
    text = "".join(parts)
    check(text == EXPECTED, f"streamed text {text!r}")
    check(finish == "stop", f"finish_reason {finish!r}")
    check(chunks >= len(EXPECTED.split()), f"only {chunks} chunks: not streamed per word")
    if want_usage:
        check(usage is not None and usage.total_tokens > 0, f"stream usage {usage}")

    # The raw event stream, as the proxy sent it, against the spec.
    with client.chat.completions.with_streaming_response.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], stream=True
    ) as resp:
        check(resp.headers.get("content-type", "").startswith("text/event-stream"), f"content-type {resp.headers}")
        raw = b"".join(resp.iter_bytes())
    validated = openai_schema.validate_sse_stream(raw, min_chunks=3)
    print(f"ok chat stream: {text!r} chunks={chunks} raw_chunks={len(validated)} usage={usage and usage.total_tokens}")


def embeddings(client: openai.OpenAI, model: str) -> None:
    inputs = ["first text", "second text"]
    # Floats, as the spec describes them.
    raw = client.embeddings.with_raw_response.create(model=model, input=inputs, encoding_format="float")
    check(raw.status_code == 200, f"status {raw.status_code}")
    openai_schema.validate_embedding_response(json.loads(raw.http_response.content))
    resp = raw.parse()
    check(len(resp.data) == 2 and [d.index for d in resp.data] == [0, 1], f"embeddings data {resp.data}")
    check(all(len(d.embedding) > 0 for d in resp.data), "empty embedding")
    # Some providers (Gemini) report no token counts for embeddings: usage is then zero.
    check(resp.usage is not None and resp.usage.total_tokens >= resp.usage.prompt_tokens >= 0, f"usage {resp.usage}")
    # The SDK's default (base64 on the wire, decoded by the SDK) gives the same vectors.
    default = client.embeddings.create(model=model, input=inputs)
    check(len(default.data) == 2, f"default-encoding data {default.data}")
    for a, b in zip(resp.data, default.data):
        check(len(a.embedding) == len(b.embedding), "vector sizes differ between encodings")
        check(all(abs(x - y) < 1e-6 for x, y in zip(a.embedding, b.embedding)), "vectors differ between encodings")
    print(f"ok embeddings: {len(resp.data)} vectors of {len(resp.data[0].embedding)} (float and base64)")


def errors(client: openai.OpenAI, model: str) -> None:
    # Answered by the core without going upstream: messages that are not an array.
    try:
        client.chat.completions.create(model=model, messages="not a list")  # type: ignore[arg-type]
    except openai.BadRequestError as exc:
        body = exc.response.json()
        openai_schema.validate_error(body)
        check(body["error"]["param"] == "messages", f"local reply {body}")
        print(f"ok local reply: {exc.status_code} {body['error']['message']!r}")
    else:
        raise AssertionError("a request with invalid messages succeeded")

    # The provider answers 401 in its own error shape; the client gets OpenAI's.
    try:
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": PROMPT}],
            extra_headers={"x-mock-scenario": "error"},
        )
    except openai.AuthenticationError as exc:
        openai_schema.validate_error(exc.response.json())
        print(f"ok upstream error: {exc.status_code} {exc.response.json()['error']['type']!r}")
    else:
        raise AssertionError("the mock's error scenario succeeded")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--embedding-model", default="", help="also check embeddings with this model")
    ap.add_argument("--skip-errors", action="store_true")
    ap.add_argument("--no-stream-usage", action="store_true", help="the provider's stream carries no usage")
    args = ap.parse_args()
    client = openai.OpenAI(base_url=args.base_url, api_key="sk-client-key-not-forwarded", max_retries=0, timeout=30)
    chat_buffered(client, args.model)
    chat_stream(client, args.model, want_usage=not args.no_stream_usage)
    if args.embedding_model:
        embeddings(client, args.embedding_model)
    if not args.skip_errors:
        errors(client, args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
