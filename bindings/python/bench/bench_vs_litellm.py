#!/usr/bin/env python3
"""The aiproxy binding's request + response translation against LiteLLM's own transformation of
the same requests for the same providers, measured in one run, in one process, without network.

    .venv/bin/pip install -r bindings/python/bench/requirements.txt
    cargo build --release
    AIPROXY_LIB=target/release/libaiproxy.so .venv/bin/python bindings/python/bench/bench_vs_litellm.py

What one operation is, for each side:

* **aiproxy** (``libaiproxy`` through ctypes): a new ``Exchange``; ``on_request`` with the
  client's method, path, headers and JSON body bytes (out: the upstream authority, path, header
  edits and body bytes); ``on_response_headers``; ``on_response_body`` with the upstream body (one
  call, buffered) or with each upstream SSE event as its own chunk (streamed); ``usage``; ``close``.
  Bytes in, bytes out: JSON parsing and serialisation are part of the work.
* **LiteLLM** (its per-provider config class from ``ProviderConfigManager.get_provider_chat_config``,
  the objects ``litellm.completion`` itself uses): ``map_openai_params``, ``validate_environment``
  and ``get_complete_url`` where the config implements them, ``transform_request``;
  then ``transform_response`` on an ``httpx.Response`` (buffered) or the config's
  ``get_model_response_iterator`` over the SSE lines (streamed). Logging is a no-op stub, so only
  the transformation is timed. Two figures: *transform* (dict in, objects out; the inputs are
  pre-parsed and the ``httpx.Response`` objects pre-built outside the timed loop) and
  *bytes→bytes* (plus ``json.loads`` of the client body, ``json.dumps`` of the upstream body and
  the JSON the client gets: ``model_dump_json`` of the response / of every stream chunk), which is
  the same work the aiproxy figure covers.

The upstream answers come from the repository's provider mock (``tests/mock_provider``), called
in-process on the request each side produced for the provider. Before timing, both outputs are
checked to carry the same answer text and token usage.

Providers: those both implement (OpenAI-protocol ones, plus Claude and Gemini when this build of
libaiproxy translates them; a provider it answers with 501 is reported and skipped).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

# LiteLLM fetches its model-cost map from the network at import unless told otherwise.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOG", "ERROR")

REPO = Path(__file__).resolve().parents[3]
for _path in (REPO / "bindings" / "python", REPO / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
if not os.environ.get("AIPROXY_LIB") and (REPO / "target" / "release" / "libaiproxy.so").is_file():
    os.environ["AIPROXY_LIB"] = str(REPO / "target" / "release" / "libaiproxy.so")

import httpx  # noqa: E402
import litellm  # noqa: E402
from litellm.litellm_core_utils.llm_response_utils.convert_dict_to_response import (  # noqa: E402
    convert_to_model_response_object,
)
from litellm.llms.openai.chat.gpt_transformation import OpenAIChatCompletionStreamingHandler  # noqa: E402
from litellm.types.utils import LlmProviders, ModelResponse  # noqa: E402
from litellm.utils import ProviderConfigManager  # noqa: E402
from mock_provider import mock_provider as mock  # noqa: E402

import aiproxy  # noqa: E402

litellm.suppress_debug_info = True  # no "Provider List" banners from probing optional steps

TOKEN = "sk-bench-0123456789abcdef"
AZURE_URL = "https://bench.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
AZURE_API_VERSION = "2024-10-21"

MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a concise assistant. Answer in one short paragraph."},
    {"role": "user", "content": "What is the capital of France, and why is it famous?"},
    {"role": "assistant", "content": "Paris. It is known for art, fashion, food and the Eiffel Tower."},
    {"role": "user", "content": "Name three museums there and say what each is best known for, briefly please."},
]
PARAMS: dict[str, Any] = {"temperature": 0.7, "max_tokens": 256, "top_p": 0.9}


def _groq_service_tier(body: bytes) -> bytes:
    """Groq's answers carry ``service_tier`` (LiteLLM's Groq config fails without it); the mock's
    do not, so both sides get it added."""
    obj = json.loads(body)
    obj["service_tier"] = "on_demand"
    return json.dumps(obj).encode()


@dataclass(frozen=True)
class Provider:
    name: str  # aiproxy's provider type
    litellm_provider: str
    model: str
    config: dict[str, Any]
    litellm_params: dict[str, Any] = field(default_factory=dict)
    api_base: str | None = None
    patch_buffered: Callable[[bytes], bytes] | None = None
    handler_url: Callable[[bool], str] | None = None
    """Where LiteLLM's request goes (by ``stream``) when its config leaves the URL to the code
    around it (Azure: the OpenAI SDK; Gemini: the Vertex/AI Studio handler)."""
    stream_iterator: Callable[[Iterator[str]], Iterator[Any]] | None = None
    """LiteLLM's stream parser when the config does not return it (its handler builds it)."""
    request_transform: Callable[[str, list[Any], dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None
    """LiteLLM's request transformation when the config delegates it (Gemini)."""


def _anthropic_stream(lines: Iterator[str]) -> Iterator[Any]:
    from litellm.llms.anthropic.chat.handler import ModelResponseIterator

    iterator: Iterator[Any] = ModelResponseIterator(streaming_response=lines, sync_stream=True, json_mode=False)
    return iterator


def _gemini_request(model: str, messages: list[Any], optional: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """What Gemini's sync handler calls (``sync_transform_request_body``) minus its context-cache
    lookup, which may go to the network."""
    from litellm.llms.vertex_ai.gemini.transformation import transform_request_body

    # LiteLLM types the body as its own TypedDict (when its types are installed): a plain dict here.
    body = transform_request_body(
        messages=messages,
        model=model,
        optional_params=optional,
        custom_llm_provider="gemini",
        litellm_params=params,
        cached_content=None,
    )
    return cast(dict[str, Any], body)


def _gemini_stream(lines: Iterator[str]) -> Iterator[Any]:
    from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import ModelResponseIterator

    no_logging: Any = _NoLogging()
    iterator: Iterator[Any] = ModelResponseIterator(streaming_response=lines, sync_stream=True, logging_obj=no_logging)
    return iterator


PROVIDERS = [
    Provider("openai", "openai", "gpt-4o", {"type": "openai", "apiTokens": [TOKEN]}),
    Provider(
        "azure",
        "azure",
        "gpt-4o",
        {"type": "azure", "apiTokens": [TOKEN], "azureServiceUrl": AZURE_URL},
        {"api_version": AZURE_API_VERSION},
        "https://bench.openai.azure.com",
        handler_url=lambda stream: AZURE_URL,
    ),
    Provider("mistral", "mistral", "mistral-large-latest", {"type": "mistral", "apiTokens": [TOKEN]}),
    Provider("deepseek", "deepseek", "deepseek-chat", {"type": "deepseek", "apiTokens": [TOKEN]}),
    Provider(
        "groq", "groq", "llama-3.3-70b-versatile", {"type": "groq", "apiTokens": [TOKEN]}, patch_buffered=_groq_service_tier
    ),
    Provider(
        "claude",
        "anthropic",
        "claude-3-5-sonnet-20241022",
        {"type": "claude", "apiTokens": [TOKEN]},
        api_base="https://api.anthropic.com/v1/messages",
        stream_iterator=_anthropic_stream,
    ),
    Provider(
        "gemini",
        "gemini",
        "gemini-1.5-pro",
        {"type": "gemini", "apiTokens": [TOKEN]},
        handler_url=lambda stream: "https://generativelanguage.googleapis.com/v1beta/models/gemini-1.5-pro:"
        + ("streamGenerateContent?alt=sse" if stream else "generateContent"),
        stream_iterator=_gemini_stream,
        request_transform=_gemini_request,
    ),
]


# ------------------------------------------------------------------------------------------------
# Upstream answers from the mock, for the request a side produced
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upstream:
    status: int
    content_type: str
    body: bytes  # buffered body, or the whole SSE stream
    events: list[bytes]  # the SSE events (one network chunk each); empty when buffered


class NotTranslated(Exception):
    """This libaiproxy build answers the provider with a local error (e.g. 501)."""


def mock_answer(
    provider: Provider, method: str, authority: str, path: str, headers: dict[str, str], body: bytes
) -> Upstream:
    split = urlsplit(path)
    parsed: Any
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    req = mock.MockRequest(
        method=method,
        host=authority,
        path=path,
        route=split.path,
        query=parse_qs(split.query, keep_blank_values=True),
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
        json=parsed,
    )
    reply = mock.resolve(req).handle(req)
    if reply.events is None:
        patched = provider.patch_buffered(reply.body) if provider.patch_buffered else reply.body
        return Upstream(reply.status, reply.content_type, patched, [])
    return Upstream(reply.status, reply.content_type, b"".join(reply.events), list(reply.events))


# ------------------------------------------------------------------------------------------------
# aiproxy
# ------------------------------------------------------------------------------------------------


class AiproxySide:
    def __init__(self, provider: Provider, stream: bool) -> None:
        self.config = aiproxy.Config.from_dict({"provider": provider.config})
        self.stream = stream
        payload: dict[str, Any] = {"model": provider.model, "messages": MESSAGES, **PARAMS}
        if stream:
            payload.update(stream=True, stream_options={"include_usage": True})
        self.body = json.dumps(payload).encode()
        self.headers = [("content-type", "application/json"), ("authorization", "Bearer client-key")]
        with self.config.exchange() as ex:
            action = ex.on_request("POST", "/v1/chat/completions", self.headers, self.body)
        if isinstance(action, aiproxy.LocalReply):
            raise NotTranslated(f"{action.status}: {json.loads(action.body)['error']['message']}")
        assert isinstance(action, aiproxy.Forward) and action.body is not None
        headers = dict(action.headers_for(self.headers))
        self.upstream = mock_answer(provider, "POST", action.authority, action.path, headers, action.body)
        self.upstream_headers = [("content-type", self.upstream.content_type)]

    def run(self) -> tuple[bytes, aiproxy.Usage | None]:
        with self.config.exchange() as ex:
            ex.on_request("POST", "/v1/chat/completions", self.headers, self.body)
            ex.on_response_headers(self.upstream.status, self.upstream_headers)
            if self.stream:
                out = [ex.on_response_body(event, False).data or b"" for event in self.upstream.events]
                out.append(ex.on_response_body(b"", True).data or b"")
                return b"".join(out), ex.usage
            last = ex.on_response_body(self.upstream.body, True)
            return last.data or b"", ex.usage

    def answer(self) -> tuple[str, int]:
        data, usage = self.run()
        if self.stream:
            text = ""
            for line in data.split(b"\n"):
                if line.startswith(b"data: {"):
                    for choice in json.loads(line[6:]).get("choices") or []:
                        text += choice.get("delta", {}).get("content") or ""
        else:
            text = json.loads(data)["choices"][0]["message"]["content"]
        return text, usage.total_tokens if usage else -1


# ------------------------------------------------------------------------------------------------
# LiteLLM
# ------------------------------------------------------------------------------------------------


class _NoLogging:
    """Stands in for LiteLLM's logging object: only the transformation is timed."""

    model_call_details: dict[str, Any] = {}
    litellm_params: dict[str, Any] = {}
    optional_params: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class LiteLLMSide:
    def __init__(self, provider: Provider, stream: bool) -> None:
        self.p = provider
        self.stream = stream
        config = ProviderConfigManager.get_provider_chat_config(provider.model, LlmProviders(provider.litellm_provider))
        assert config is not None, provider.litellm_provider
        self.config: Any = config  # called with plain dicts, as litellm.completion does
        payload: dict[str, Any] = {"model": provider.model, "messages": MESSAGES, **PARAMS}
        if stream:
            payload.update(stream=True, stream_options={"include_usage": True})
        self.client_body = json.dumps(payload).encode()
        self.logging = _NoLogging()
        # Which optional steps this provider's config implements (Azure goes through the OpenAI
        # SDK and implements neither).
        self.has_env = self._implements(lambda: self._environment(payload))
        self.has_url = provider.handler_url is None and self._implements(lambda: self._url(self._optional(payload)))
        data, headers = self.request(payload)
        url = self._url(self._optional(payload)) if self.has_url or provider.handler_url is None else provider.handler_url(stream)
        split = urlsplit(url)
        path = split.path + (f"?{split.query}" if split.query else "")
        self.upstream = mock_answer(provider, "POST", split.netloc, path, headers, json.dumps(data).encode())
        self.sse_lines = [line.decode() for line in self.upstream.body.splitlines()]
        self.request_data = data
        # Azure's config leaves the response to the OpenAI SDK: LiteLLM then converts the SDK's
        # result with convert_to_model_response_object / parses chunks with the OpenAI handler.
        # Timed here is that conversion only (not the SDK's own parsing), in LiteLLM's favour.
        if stream and provider.stream_iterator is not None:
            self.sdk_path = False
        elif stream:
            probe = self.config.get_model_response_iterator(streaming_response=iter([]), sync_stream=True, json_mode=False)
            self.sdk_path = probe is None
        else:
            self.sdk_path = not self._implements(
                lambda: self.config.transform_response(**self._response_kwargs(self.make_response(), payload))
            )
        self.notes: list[str] = []
        if provider.handler_url is not None:
            self.notes.append("LiteLLM builds the URL outside the provider config (not timed)")
        if not self.has_env:
            self.notes.append("LiteLLM sets the auth headers outside the provider config (not timed)")
        if self.sdk_path:
            self.notes.append("response via LiteLLM's conversion of the OpenAI SDK's result (SDK parsing not timed)")

    @staticmethod
    def _implements(step: Callable[[], object]) -> bool:
        try:
            step()
        except NotImplementedError:
            return False
        return True

    def _optional(self, payload: dict[str, Any]) -> dict[str, Any]:
        non_default = {k: v for k, v in payload.items() if k not in ("model", "messages")}
        kwargs: dict[str, Any] = {}
        if self.p.litellm_provider == "azure":
            kwargs["api_version"] = AZURE_API_VERSION
        optional: dict[str, Any] = self.config.map_openai_params(
            non_default_params=non_default, optional_params={}, model=self.p.model, drop_params=False, **kwargs
        )
        return optional

    def _environment(self, payload: dict[str, Any]) -> dict[str, Any]:
        headers: dict[str, Any] = self.config.validate_environment(
            headers={},
            model=self.p.model,
            messages=payload["messages"],
            optional_params={},
            litellm_params=dict(self.p.litellm_params),
            api_key=TOKEN,
            api_base=self.p.api_base,
        )
        return headers

    def _url(self, optional: dict[str, Any]) -> str:
        url: str = self.config.get_complete_url(
            api_base=self.p.api_base,
            api_key=TOKEN,
            model=self.p.model,
            optional_params=optional,
            litellm_params=dict(self.p.litellm_params),
            stream=self.stream,
        )
        return url

    def request(self, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        optional = self._optional(payload)
        headers = self._environment(payload) if self.has_env else {}
        if self.has_url:
            self._url(optional)
        messages = [dict(m) for m in payload["messages"]]
        if self.p.request_transform is not None:
            return self.p.request_transform(self.p.model, messages, optional, dict(self.p.litellm_params)), headers
        data: dict[str, Any] = self.config.transform_request(
            model=self.p.model,
            messages=messages,
            optional_params=optional,
            litellm_params=dict(self.p.litellm_params),
            headers=headers,
        )
        return data, headers

    def make_response(self) -> httpx.Response:
        return httpx.Response(
            self.upstream.status,
            content=self.upstream.body,
            headers={"content-type": self.upstream.content_type},
            request=httpx.Request("POST", "https://upstream.invalid/"),
        )

    def _response_kwargs(self, raw: httpx.Response, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": self.p.model,
            "raw_response": raw,
            "model_response": ModelResponse(),
            "logging_obj": self.logging,
            "request_data": self.request_data,
            "messages": payload["messages"],
            "optional_params": {},
            "litellm_params": dict(self.p.litellm_params),
            "encoding": None,
            "api_key": TOKEN,
            "json_mode": None,
        }

    def response(self, raw: httpx.Response, payload: dict[str, Any]) -> ModelResponse:
        if self.sdk_path:
            converted: ModelResponse = convert_to_model_response_object(
                response_object=raw.json(), model_response_object=ModelResponse()
            )
            return converted
        result: ModelResponse = self.config.transform_response(**self._response_kwargs(raw, payload))
        return result

    def stream_chunks(self) -> Iterator[Any]:
        if self.p.stream_iterator is not None:
            return self.p.stream_iterator(iter(self.sse_lines))
        iterator: Iterator[Any] | None = self.config.get_model_response_iterator(
            streaming_response=iter(self.sse_lines), sync_stream=True, json_mode=False
        )
        if iterator is None:  # Azure: the OpenAI SDK stream, parsed as LiteLLM's OpenAI handler does
            iterator = OpenAIChatCompletionStreamingHandler(
                streaming_response=iter(self.sse_lines), sync_stream=True, json_mode=False
            )
        return iterator

    # One operation. ``full``: bytes in and bytes out, as the aiproxy side does.
    def run(self, raw: httpx.Response | None, full: bool, payload: dict[str, Any]) -> Any:
        if full:
            payload = json.loads(self.client_body)
        data, _headers = self.request(payload)
        if full:
            json.dumps(data).encode()
        if self.stream:
            chunks = list(self.stream_chunks())
            if full:
                return b"".join(b"data: " + _chunk_json(c) + b"\n\n" for c in chunks if c is not None)
            return chunks
        assert raw is not None
        response = self.response(raw, payload)
        if full:
            return response.model_dump_json(exclude_none=True).encode()
        return response

    def answer(self) -> tuple[str, int]:
        payload = json.loads(self.client_body)
        if self.stream:
            text, total = "", -1
            for c in self.stream_chunks():
                for choice in getattr(c, "choices", None) or []:
                    text += getattr(choice.delta, "content", None) or ""
                usage = getattr(c, "usage", None)
                if usage:
                    total = usage.total_tokens
            return text, total
        response = self.response(self.make_response(), payload)
        first: Any = response.choices[0]
        final_usage: Any = getattr(response, "usage", None)
        return first.message.content or "", final_usage.total_tokens if final_usage else -1


def _chunk_json(chunk: Any) -> bytes:
    """What a LiteLLM proxy writes for one stream chunk (pydantic chunks, or plain dicts for the
    generic ones such as the end marker)."""
    if isinstance(chunk, dict):
        return json.dumps(chunk).encode()
    data: bytes = chunk.model_dump_json(exclude_none=True).encode()
    return data


# ------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------


def time_op(op: Callable[[int], object], iterations: int, rounds: int) -> float:
    """The best (lowest), over ``rounds``, of the mean µs per call of ``op(i)`` over ``iterations``
    calls: as ``timeit`` advises, the minimum is the figure least disturbed by other load."""
    per_op = []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter_ns()
        for i in range(iterations):
            op(i)
        per_op.append((time.perf_counter_ns() - start) / iterations / 1000)
    return min(per_op)


@dataclass
class Row:
    provider: str
    mode: str
    aiproxy_us: float
    litellm_transform_us: float
    litellm_bytes_us: float
    notes: list[str] = field(default_factory=list)

    @property
    def ratio_bytes(self) -> float:
        return self.litellm_bytes_us / self.aiproxy_us

    @property
    def ratio_transform(self) -> float:
        return self.litellm_transform_us / self.aiproxy_us


def bench_one(provider: Provider, stream: bool, iterations: int, rounds: int) -> Row:
    ours = AiproxySide(provider, stream)
    theirs = LiteLLMSide(provider, stream)
    # Same answer on both sides, or the comparison means nothing.
    our_answer, their_answer = ours.answer(), theirs.answer()
    if our_answer[0] != their_answer[0] or our_answer[1] != their_answer[1]:
        raise AssertionError(f"{provider.name}: aiproxy {our_answer!r} != litellm {their_answer!r}")
    payload = json.loads(theirs.client_body)
    warm = max(10, iterations // 10)
    for _ in range(warm):
        ours.run()
        theirs.run(theirs.make_response(), True, payload)
    responses = [theirs.make_response() for _ in range(iterations)] if not stream else []

    def litellm_transform(i: int) -> object:
        return theirs.run(None if stream else responses[i], False, payload)

    def litellm_bytes(i: int) -> object:
        return theirs.run(None if stream else responses[i], True, payload)

    t_ours = time_op(lambda i: ours.run(), iterations, rounds)
    t_transform = time_op(litellm_transform, iterations, rounds)
    responses = [theirs.make_response() for _ in range(iterations)] if not stream else []
    t_bytes = time_op(litellm_bytes, iterations, rounds)
    ours.config.close()
    return Row(provider.name, "stream" if stream else "buffered", t_ours, t_transform, t_bytes, theirs.notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=500, help="operations per round (default 500)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best is reported (default 5)")
    parser.add_argument("--providers", help="comma-separated subset, e.g. openai,azure")
    parser.add_argument("--json", dest="json_out", help="also write the results as JSON to this file")
    args = parser.parse_args(argv)

    wanted = set(args.providers.split(",")) if args.providers else None
    print(
        f"aiproxy {aiproxy.version()} (ctypes, {aiproxy.library_path()}) vs litellm {litellm_version()}; "
        f"Python {platform.python_version()} on {platform.machine()}; "
        f"{args.iterations} ops x {args.rounds} rounds, best round"
    )
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    for provider in PROVIDERS:
        if wanted is not None and provider.name not in wanted:
            continue
        for stream in (False, True):
            try:
                rows.append(bench_one(provider, stream, args.iterations, args.rounds))
            except NotTranslated as exc:
                skipped[provider.name] = f"not translated by this libaiproxy build ({exc})"
                break
            r = rows[-1]
            print(
                f"  {r.provider:<9} {r.mode:<9} aiproxy {r.aiproxy_us:8.1f} µs/op   litellm {r.litellm_transform_us:8.1f} "
                f"(transform) {r.litellm_bytes_us:8.1f} (bytes→bytes) µs/op",
                flush=True,
            )
    print()
    print("| provider | response | aiproxy µs/op | LiteLLM transform µs/op | LiteLLM bytes→bytes µs/op | ratio (bytes→bytes) | ratio (transform) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.provider} | {r.mode} | {r.aiproxy_us:.1f} | {r.litellm_transform_us:.1f} | {r.litellm_bytes_us:.1f} "
            f"| {r.ratio_bytes:.1f}x | {r.ratio_transform:.1f}x |"
        )
    if rows:
        geo_bytes = statistics.geometric_mean([r.ratio_bytes for r in rows])
        geo_transform = statistics.geometric_mean([r.ratio_transform for r in rows])
        print(f"\ngeometric mean: aiproxy is {geo_bytes:.1f}x faster than LiteLLM bytes→bytes, {geo_transform:.1f}x than its transform alone")
    for name, note in sorted({(r.provider, n) for r in rows for n in r.notes}):
        print(f"note {name}: {note}")
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    "aiproxy": aiproxy.version(),
                    "litellm": litellm_version(),
                    "python": platform.python_version(),
                    "iterations": args.iterations,
                    "rounds": args.rounds,
                    "rows": [r.__dict__ for r in rows],
                    "skipped": skipped,
                },
                indent=2,
            )
        )
    return 0


def litellm_version() -> str:
    try:
        from importlib.metadata import version

        return version("litellm")
    except Exception:  # noqa: BLE001 - informational only
        return getattr(litellm, "__version__", "?")


if __name__ == "__main__":
    sys.exit(main())
