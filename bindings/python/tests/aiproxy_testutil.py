"""Helpers shared by the binding's tests (configurations, request bodies, SSE parsing)."""

from __future__ import annotations

import json
from typing import Any

UPSTREAM_TOKEN = "sk-upstream-test-0123456789"
"""The provider token the test configurations hold (never the client's)."""

AZURE_URL = (
    "https://myres.openai.azure.com/openai/deployments/gpt4o-dep/chat/completions?api-version=2024-02-15-preview"
)


def provider(kind: str, **extra: Any) -> dict[str, Any]:
    """A valid ``{"provider": {...}}`` configuration for ``kind``."""
    p: dict[str, Any] = {"type": kind, "apiTokens": [UPSTREAM_TOKEN]}
    if kind == "azure":
        p["azureServiceUrl"] = AZURE_URL
    p.update(extra)
    return {"provider": p}


def chat_body(text: str = "hello there", *, model: str = "gpt-4o", **extra: Any) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": text}], **extra}).encode()


def embeddings_body(inputs: str | list[str] = "hello", *, model: str = "text-embedding-3-small") -> bytes:
    return json.dumps({"model": model, "input": inputs}).encode()


CLIENT_HEADERS = (
    ("content-type", "application/json"),
    ("authorization", "Bearer client-key"),
    ("content-length", "123"),
    ("accept-encoding", "gzip"),
    ("x-client-trace", "abc"),
)


def sse_payloads(raw: bytes) -> list[str]:
    """The ``data:`` payloads of an SSE byte stream, in order."""
    out = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                out.append(line[5:].strip().decode())
    return out


def openai_sse(events: list[dict[str, Any]]) -> bytes:
    """An OpenAI-style SSE body (``data: {...}`` events and ``data: [DONE]``)."""
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return body + b"data: [DONE]\n\n"
