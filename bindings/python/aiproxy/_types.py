"""The values the exchange returns: immutable dataclasses holding copies of the core's results."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Union

from . import _ffi

__all__ = [
    "BodyChunk",
    "Callout",
    "ClientProtocol",
    "Forward",
    "HeaderPairs",
    "HealthCheck",
    "HeadersLike",
    "LocalReply",
    "RequestAction",
    "ResponseMode",
    "ResponseStart",
    "Usage",
    "edit_headers",
]

HeaderPairs = tuple[tuple[str, str], ...]
"""Headers as ``(name, value)`` pairs, in order; names as the core wrote them (lower case)."""

HeadersLike = Union[Mapping[str, str], Iterable[tuple[str, str]]]
"""What the exchange accepts as headers: a mapping (``dict``, aiohttp's ``CIMultiDict``; its
``items()`` are used, so repeated names are kept) or an iterable of ``(name, value)`` pairs."""


def edit_headers(
    headers: HeadersLike, remove: Iterable[str], set_: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Applies a header edit: drop every header named in ``remove`` or ``set_`` (case-insensitive),
    then append ``set_``. Returns a new list; ``headers`` is not modified."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    set_list = list(set_)
    drop = {n.lower() for n in remove} | {n.lower() for n, _ in set_list}
    out = [(n, v) for n, v in pairs if n.lower() not in drop]
    out.extend(set_list)
    return out


@dataclass(frozen=True, slots=True)
class Forward:
    """Send the request upstream to ``authority`` + ``path`` after editing its headers (remove
    ``remove_headers``, then set ``set_headers``). ``body`` replaces the client's body, or is
    ``None`` to leave it unchanged. ``model`` is the model sent upstream after ``modelMapping``
    (``""`` when the request is passed through untranslated); ``timeout_ms`` is the configured
    upstream timeout."""

    authority: str
    path: str
    remove_headers: tuple[str, ...]
    set_headers: HeaderPairs
    body: bytes | None
    model: str
    timeout_ms: int

    def headers_for(self, client_headers: HeadersLike) -> list[tuple[str, str]]:
        """The client's headers with this request's edits applied."""
        return edit_headers(client_headers, self.remove_headers, self.set_headers)


@dataclass(frozen=True, slots=True)
class LocalReply:
    """Answer the client directly (an OpenAI-shaped error); do not go upstream."""

    status: int
    headers: HeaderPairs
    body: bytes


@dataclass(frozen=True, slots=True)
class Callout:
    """Perform this HTTP request first, then pass its result to
    :meth:`Exchange.on_callout_response`. ``cluster`` and ``port`` name the host-side service
    (an Envoy cluster, or simply the host to connect to); ``authority`` and ``path`` are the
    request's ``Host`` and path; send ``method``, ``headers`` and ``body`` (empty for a GET; a
    Vertex service account's token exchange is a form-encoded POST)."""

    cluster: str
    port: int
    authority: str
    path: str
    method: str
    headers: HeaderPairs
    timeout_ms: int
    body: bytes = b""


RequestAction = Union[Forward, LocalReply, Callout]
"""What :meth:`Exchange.on_request` and :meth:`Exchange.on_callout_response` return."""


class ResponseMode(enum.IntEnum):
    """How the response body is handled (``AIPROXY_MODE_*``)."""

    PASSTHROUGH = _ffi.MODE_PASSTHROUGH
    """Forward the body unchanged."""
    STREAM = _ffi.MODE_STREAM
    """SSE: send the headers now and each chunk's translated bytes as they come."""
    BUFFER = _ffi.MODE_BUFFER
    """Hold the headers and body until the end of the stream, then send the returned status and
    body."""


@dataclass(frozen=True, slots=True)
class ResponseStart:
    """The body mode and the response header edits (remove first, then set)."""

    mode: ResponseMode
    remove_headers: tuple[str, ...]
    set_headers: HeaderPairs

    def headers_for(self, upstream_headers: HeadersLike) -> list[tuple[str, str]]:
        """The upstream's headers with these edits applied."""
        return edit_headers(upstream_headers, self.remove_headers, self.set_headers)


@dataclass(frozen=True, slots=True)
class BodyChunk:
    """What to send for one upstream body chunk: ``data`` (``None``: the input chunk, unchanged;
    ``b""``: nothing for now) and, in BUFFER mode at the end of the stream, the response
    ``status`` to send (``None`` otherwise)."""

    data: bytes | None
    status: int | None = None

    def output(self, chunk: bytes) -> bytes:
        """The bytes to send: ``data``, or ``chunk`` itself when unchanged."""
        return chunk if self.data is None else self.data


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage reported by the upstream (complete after the last body chunk)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int | None = None
    """Prompt tokens served from the provider's cache, when it reported them."""
    reasoning_tokens: int | None = None
    """Completion tokens spent on reasoning, when the provider reported them."""


class ClientProtocol(enum.IntEnum):
    """The API dialect the client spoke (``AIPROXY_CLIENT_PROTOCOL_*``), decided by the request
    path: ``/v1/messages`` is Anthropic's Messages API, everything else OpenAI's."""

    OPENAI = _ffi.CLIENT_PROTOCOL_OPENAI
    ANTHROPIC = _ffi.CLIENT_PROTOCOL_ANTHROPIC


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A health check to send for an API token out of the rotation (``failover``): ``POST``
    ``body`` with ``headers`` to ``authority`` + ``path`` (through the host's route to the
    provider) within ``timeout_ms``, then report the status with
    :meth:`Config.on_health_check_result` (``token_index``, status or 0 when it failed)."""

    method: ClassVar[str] = "POST"
    token_index: int
    authority: str
    path: str
    headers: HeaderPairs
    body: bytes
    timeout_ms: int
