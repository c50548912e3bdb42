"""``Config`` and ``Exchange``: owners of the C handles."""

from __future__ import annotations

import ctypes
import json
import os
import threading
import weakref
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Union

from . import _ffi
from ._errors import AiproxyError, ClosedError, ErrorCode, InternalError, InvalidArgumentError, error_for
from ._types import (
    BodyChunk,
    Callout,
    ClientProtocol,
    Forward,
    HeadersLike,
    HealthCheck,
    LocalReply,
    RequestAction,
    ResponseMode,
    ResponseStart,
    Usage,
)

__all__ = ["Config", "Exchange", "version"]

BytesLike = Union[bytes, bytearray, memoryview]
BodyLike = Union[bytes, bytearray, memoryview, str]
StrLike = Union[str, bytes]

_MODES = {int(m): m for m in ResponseMode}
_PROTOCOLS = {int(p): p for p in ClientProtocol}


def version() -> str:
    """The version of the loaded ``libaiproxy``."""
    raw = _ffi.library().aiproxy_version()
    return raw.decode("utf-8") if raw else ""


def _take_error(lib: ctypes.CDLL, rc: int, err: ctypes.c_void_p) -> AiproxyError:
    """Turns the ``AiproxyError*`` the core stored into an exception and frees it."""
    ptr = err.value
    if not ptr:
        return error_for(rc, f"aiproxy call failed with code {rc}")
    try:
        code = lib.aiproxy_error_code(ptr)
        message = (lib.aiproxy_error_message(ptr) or b"").decode("utf-8", "replace")
        field = (lib.aiproxy_error_field(ptr) or b"").decode("utf-8", "replace")
    finally:
        lib.aiproxy_error_free(ptr)
    return error_for(code, message, field)


def _utf8(value: StrLike, what: str) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgumentError(ErrorCode.INVALID_UTF8, f"{what} is not valid UTF-8") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str, not {type(value).__name__}")


def _data(value: BodyLike | None, what: str) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return _utf8(value, what)
    raise TypeError(f"{what} must be bytes or str, not {type(value).__name__}")


def _index(value: int, what: str) -> int:
    # ctypes would wrap a negative int into a huge size_t; refuse it here instead.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value < 1 << (8 * ctypes.sizeof(ctypes.c_size_t)):
        raise InvalidArgumentError(ErrorCode.INVALID_ARGUMENT, f"{what} {value} is out of range")
    return value


def _status(value: int, what: str = "status") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value <= 0xFFFF:
        raise InvalidArgumentError(ErrorCode.INVALID_ARGUMENT, f"{what} {value} is out of range 0..65535")
    return value


_HeaderArgs = tuple[Union[ctypes.Array[ctypes.c_size_t], None], Union[ctypes.c_char_p, None], int]


def _headers(headers: HeadersLike | None) -> _HeaderArgs:
    """Encodes headers (a mapping, whose ``items()`` are used, or ``(name, value)`` pairs) into an
    ``AiproxyHeader[]``: ``(array, buffer to keep alive during the call, count)``."""
    if not headers:
        return None, None, 0
    items = getattr(headers, "items", None)
    pairs: Iterable[Any] = items() if items is not None else headers
    parts: list[bytes] = []
    for pair in pairs:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError(f"headers must be a mapping or (name, value) pairs, got item {pair!r}") from None
        parts.append(name.encode() if type(name) is str and name.isascii() else _utf8(name, "header name"))
        parts.append(value.encode() if type(value) is str and value.isascii() else _utf8(value, "header value"))
    if not parts:
        return None, None, 0
    arr, keep = _ffi.header_array(parts)
    return arr, keep, len(parts) // 2


_read_str = _ffi.read_str
_read_bytes = _ffi.read_bytes


def _forward(r: _ffi.RequestResult) -> Forward:
    return Forward(
        _read_str(r.authority_ptr, r.authority_len),
        _read_str(r.path_ptr, r.path_len),
        _ffi.read_names(r.remove_headers, r.remove_headers_len),
        _ffi.read_headers(r.headers, r.headers_len),
        _read_bytes(r.body_ptr, r.body_len) if r.body_replaced else None,
        _read_str(r.model_ptr, r.model_len),
        r.timeout_ms,
    )


def _request_action(r: _ffi.RequestResult) -> RequestAction:
    action = r.action
    if action == _ffi.ACTION_FORWARD:
        return _forward(r)
    if action == _ffi.ACTION_LOCAL_REPLY:
        return LocalReply(
            status=r.status,
            headers=_ffi.read_headers(r.headers, r.headers_len),
            body=_read_bytes(r.body_ptr, r.body_len),
        )
    if action == _ffi.ACTION_CALLOUT:
        return Callout(
            cluster=_read_str(r.callout_cluster_ptr, r.callout_cluster_len),
            port=r.callout_port,
            authority=_read_str(r.authority_ptr, r.authority_len),
            path=_read_str(r.path_ptr, r.path_len),
            method=_read_str(r.callout_method_ptr, r.callout_method_len),
            headers=_ffi.read_headers(r.headers, r.headers_len),
            timeout_ms=r.timeout_ms,
            body=_read_bytes(r.body_ptr, r.body_len),
        )
    raise InternalError(ErrorCode.INTERNAL, f"the library returned an unknown request action {action}")


class Config:
    """A loaded, validated configuration (the plugin's ``{"provider": {...}}`` form).

    Immutable and thread-safe: share one ``Config`` among any number of threads and create an
    :class:`Exchange` per client request with :meth:`exchange`. The C handle is released by
    :meth:`close` (or the ``with`` block, or the garbage collector as a fallback); exchanges already
    created keep working after that.
    """

    __slots__ = ("__weakref__", "_finalizer", "_lock", "_ptr")

    def __init__(self, json_text: StrLike) -> None:
        """Loads a configuration from JSON text; raises :class:`ConfigError` (with ``code`` and
        ``field``) when it is not valid. Prefer :meth:`from_json` / :meth:`from_dict`."""
        data = _utf8(json_text, "configuration") if isinstance(json_text, str) else json_text
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"configuration must be str or bytes, not {type(json_text).__name__}")
        data = bytes(data)
        lib = _ffi.library()
        err = ctypes.c_void_p()
        ptr = lib.aiproxy_config_new(data, len(data), ctypes.byref(err))
        if not ptr:
            raise _take_error(lib, ErrorCode.CONFIG_INVALID, err)
        self._ptr: int | None = ptr
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, lib.aiproxy_config_free, ptr)

    @classmethod
    def from_json(cls, text: StrLike) -> Config:
        """From JSON text (``str`` or UTF-8 ``bytes``)."""
        return cls(text)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> Config:
        """From a dict (``{"provider": {"type": "openai", "apiTokens": [...], ...}}``)."""
        if not isinstance(config, Mapping):
            raise TypeError(f"configuration must be a mapping, not {type(config).__name__}")
        try:
            text = json.dumps(config, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"configuration is not JSON-serialisable: {exc}") from exc
        return cls(text.encode("utf-8"))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Config:
        """From a JSON file."""
        with open(path, "rb") as handle:
            return cls(handle.read())

    def exchange(self) -> Exchange:
        """A new :class:`Exchange` for one client request and its response."""
        return Exchange(self)

    def _new_exchange(self) -> int:
        lib = _ffi.library()
        err = ctypes.c_void_p()
        with self._lock:
            if self._ptr is None:
                raise ClosedError("config")
            ptr = lib.aiproxy_exchange_new(self._ptr, ctypes.byref(err))
        if not ptr:
            raise _take_error(lib, ErrorCode.INTERNAL, err)
        return int(ptr)

    def _live(self) -> int:
        ptr = self._ptr
        if ptr is None:
            raise ClosedError("config")
        return ptr

    def _route_flag(self, fn_name: str, method: StrLike, path: StrLike) -> bool:
        m = _utf8(method, "method")
        p = _utf8(path, "path")
        lib = _ffi.library()
        out = ctypes.c_bool()
        err = ctypes.c_void_p()
        # The lock only keeps close() from freeing the handle during the call.
        with self._lock:
            rc = getattr(lib, fn_name)(self._live(), m, len(m), p, len(p), ctypes.byref(out), ctypes.byref(err))
        if rc:
            raise _take_error(lib, rc, err)
        return bool(out.value)

    def translates(self, method: StrLike, path: StrLike) -> bool:
        """Whether requests with this method and path (with query) are translated: their OpenAI
        body is read and rewritten. An empty method or path is never translated."""
        return self._route_flag("aiproxy_config_translates", method, path)

    def needs_request_body(self, method: StrLike, path: StrLike) -> bool:
        """Whether the core needs this request's body to decide (it translates it, or the provider
        signs every request over its bytes). ``False``: :meth:`Exchange.on_request` may be called
        as soon as the headers arrive, with an empty body."""
        return self._route_flag("aiproxy_config_needs_request_body", method, path)

    @property
    def first_byte_timeout_ms(self) -> int | None:
        """``firstByteTimeout`` in milliseconds, ``None`` when unset: how long to wait for the first
        byte of a streamed upstream response (the library applies no timers itself)."""
        lib = _ffi.library()
        out = ctypes.c_uint64()
        err = ctypes.c_void_p()
        with self._lock:
            rc = lib.aiproxy_config_first_byte_timeout_ms(self._live(), ctypes.byref(out), ctypes.byref(err))
        if rc:
            raise _take_error(lib, rc, err)
        return out.value or None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Fields that were accepted but have no effect (unknown names, Higress fields aiproxy does
        not implement), one sentence each naming the field (never its value); log them at load."""
        lib = _ffi.library()
        count = ctypes.c_size_t()
        item = _ffi.Str()
        err = ctypes.c_void_p()
        out: list[str] = []
        with self._lock:
            ptr = self._live()
            rc = lib.aiproxy_config_warning_count(ptr, ctypes.byref(count), ctypes.byref(err))
            for i in range(count.value if not rc else 0):
                rc = lib.aiproxy_config_warning(ptr, i, ctypes.byref(item), ctypes.byref(err))
                if rc:
                    break
                # Owned by the config: copy while the lock keeps it from being freed.
                out.append(_read_str(item.ptr, item.len))
        if rc:
            raise _take_error(lib, rc, err)
        return tuple(out)

    @property
    def tokens_out(self) -> int:
        """How many API tokens are currently out of the rotation (``failover``)."""
        lib = _ffi.library()
        with self._lock:
            return int(lib.aiproxy_config_tokens_out(self._live()))

    def due_health_checks(self) -> tuple[HealthCheck, ...]:
        """Claims the health checks due now (one per out token whose ``healthCheckInterval``
        passed; often none). Each is returned once until its result or its timeout; report every
        one with :meth:`on_health_check_result`. Calling this tells the core that the host sends
        checks, which turns half-open trials on live traffic off."""
        lib = _ffi.library()
        handle = ctypes.c_void_p()
        err = ctypes.c_void_p()
        with self._lock:
            rc = lib.aiproxy_config_due_health_checks(self._live(), ctypes.byref(handle), ctypes.byref(err))
        if rc:
            raise _take_error(lib, rc, err)
        # The list is owned by the caller and independent of the config: copy it, then free it.
        try:
            checks = []
            item = _ffi.HealthCheckResult()
            for i in range(lib.aiproxy_health_checks_len(handle)):
                rc = lib.aiproxy_health_checks_get(handle, i, ctypes.byref(item), ctypes.byref(err))
                if rc:
                    raise _take_error(lib, rc, err)
                checks.append(
                    HealthCheck(
                        token_index=item.token_index,
                        authority=_read_str(item.authority_ptr, item.authority_len),
                        path=_read_str(item.path_ptr, item.path_len),
                        headers=_ffi.read_headers(item.headers, item.headers_len),
                        body=_read_bytes(item.body_ptr, item.body_len),
                        timeout_ms=item.timeout_ms,
                    )
                )
            return tuple(checks)
        finally:
            lib.aiproxy_health_checks_free(handle)

    def on_health_check_result(self, token_index: int, status: int) -> None:
        """Reports the HTTP status of the :class:`HealthCheck` of token ``token_index`` (0: it
        failed without a status). Only 200 passes; ``successThreshold`` passes bring the token
        back into the rotation."""
        i = _index(token_index, "token_index")
        s = _status(status)
        lib = _ffi.library()
        err = ctypes.c_void_p()
        with self._lock:
            rc = lib.aiproxy_config_on_health_check_result(self._live(), i, s, ctypes.byref(err))
        if rc:
            raise _take_error(lib, rc, err)

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        """Releases the C handle (idempotent). Exchanges created before stay usable."""
        with self._lock:
            self._ptr = None
            self._finalizer()

    def __enter__(self) -> Config:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<aiproxy.Config {'closed' if self._ptr is None else 'open'}>"


class Exchange:
    """One client request and its response, driven step by step:

    1. :meth:`on_request` → :class:`Forward`, :class:`LocalReply` or :class:`Callout` (for a callout,
       fetch it and call :meth:`on_callout_response`, which answers the same way);
    2. with ``retryOnFailure``, :meth:`retry` with the upstream status → a :class:`Forward` to send
       instead (repeat with its status) or ``None``;
    3. :meth:`on_response_headers` with the upstream status and headers → :class:`ResponseStart`;
    4. :meth:`on_response_body` for every chunk, ``end_of_stream=True`` on the last (possibly empty)
       → :class:`BodyChunk`; if the upstream connection fails first, :meth:`on_upstream_abort`;
    5. :attr:`usage`.

    Calls out of that order raise :class:`StateError`; any call after :meth:`close` raises
    :class:`ClosedError`. Results are copies: they stay valid after later calls. An exchange may
    move between threads; concurrent calls on one exchange are serialised.
    """

    __slots__ = ("__weakref__", "_config", "_finalizer", "_lib", "_lock", "_ptr")

    def __init__(self, config: Config) -> None:
        if not isinstance(config, Config):
            raise TypeError(f"config must be an aiproxy.Config, not {type(config).__name__}")
        ptr = config._new_exchange()
        self._ptr: int | None = ptr
        self._config = config  # keeps the Config object alive as long as its exchanges
        self._lib = lib = _ffi.library()
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, lib.aiproxy_exchange_free, ptr)

    @property
    def config(self) -> Config:
        return self._config

    def on_request(
        self,
        method: StrLike,
        path: StrLike,
        headers: HeadersLike | None = None,
        body: BodyLike | None = b"",
    ) -> RequestAction:
        """Feeds the client's request (``path`` with its query, the whole ``body``)."""
        m = _utf8(method, "method")
        p = _utf8(path, "path")
        harr, _keep, hlen = _headers(headers)
        b = _data(body, "body")
        lib = self._lib
        out = _ffi.RequestResult()
        err = ctypes.c_void_p()
        with self._lock:
            ptr = self._live()
            rc = lib.aiproxy_exchange_on_request(
                ptr, m, len(m), p, len(p), harr, hlen, b, len(b), ctypes.byref(out), ctypes.byref(err)
            )
            if rc:
                raise _take_error(lib, rc, err)
            return _request_action(out)

    def on_callout_response(self, status: int, body: BodyLike | None = b"") -> RequestAction:
        """Feeds the result of the :class:`Callout` (``status`` 0 when it failed)."""
        s = _status(status)
        b = _data(body, "body")
        lib = self._lib
        out = _ffi.RequestResult()
        err = ctypes.c_void_p()
        with self._lock:
            ptr = self._live()
            rc = lib.aiproxy_exchange_on_callout_response(ptr, s, b, len(b), ctypes.byref(out), ctypes.byref(err))
            if rc:
                raise _take_error(lib, rc, err)
            return _request_action(out)

    def on_response_headers(self, status: int, headers: HeadersLike | None = None) -> ResponseStart:
        """Feeds the upstream's status and headers; returns the body mode and header edits."""
        s = _status(status)
        harr, _keep, hlen = _headers(headers)
        lib = self._lib
        out = _ffi.ResponseHeadersResult()
        err = ctypes.c_void_p()
        with self._lock:
            ptr = self._live()
            rc = lib.aiproxy_exchange_on_response_headers(ptr, s, harr, hlen, ctypes.byref(out), ctypes.byref(err))
            if rc:
                raise _take_error(lib, rc, err)
            mode = _MODES.get(out.mode)
            if mode is None:
                raise InternalError(ErrorCode.INTERNAL, f"the library returned an unknown response mode {out.mode}")
            return ResponseStart(
                mode=mode,
                remove_headers=_ffi.read_names(out.remove_headers, out.remove_headers_len),
                set_headers=_ffi.read_headers(out.headers, out.headers_len),
            )

    def on_response_body(self, chunk: BodyLike | None, end_of_stream: bool = False) -> BodyChunk:
        """Feeds one upstream body chunk (``end_of_stream=True`` on the last, which may be empty)."""
        c = _data(chunk, "chunk")
        lib = self._lib
        out = _ffi.BodyResult()
        err = ctypes.c_void_p()
        with self._lock:
            ptr = self._live()
            rc = lib.aiproxy_exchange_on_response_body(
                ptr, c, len(c), bool(end_of_stream), ctypes.byref(out), ctypes.byref(err)
            )
            if rc:
                raise _take_error(lib, rc, err)
            if out.unchanged:
                return BodyChunk(None, None)
            return BodyChunk(_read_bytes(out.data_ptr, out.data_len), out.status or None)

    def retry(self, status: int) -> Forward | None:
        """With ``retryOnFailure``: call with the upstream's status before
        :meth:`on_response_headers`, while nothing of the response reached the client. Returns a
        :class:`Forward` to send instead (another API token; edits apply to the request that went
        upstream; ``timeout_ms`` is ``retryTimeout``), then call ``retry`` again with its status;
        or ``None``: go on with :meth:`on_response_headers`. If the retry cannot be sent, call
        :meth:`retry_not_sent` and go on with the answer at hand."""
        s = _status(status)
        lib = self._lib
        out = _ffi.RequestResult()
        err = ctypes.c_void_p()
        with self._lock:
            rc = lib.aiproxy_exchange_retry(self._live(), s, ctypes.byref(out), ctypes.byref(err))
            if rc:
                raise _take_error(lib, rc, err)
            if out.action == _ffi.ACTION_NO_RETRY:
                return None
            if out.action != _ffi.ACTION_RETRY:
                raise InternalError(ErrorCode.INTERNAL, f"the library returned an unknown retry action {out.action}")
            return _forward(out)

    def retry_not_sent(self) -> None:
        """The :class:`Forward` from :meth:`retry` could not be sent: the answer at hand (already
        reported) is the one to go on with."""
        lib = self._lib
        err = ctypes.c_void_p()
        with self._lock:
            rc = lib.aiproxy_exchange_retry_not_sent(self._live(), ctypes.byref(err))
            if rc:
                raise _take_error(lib, rc, err)

    def on_upstream_abort(self) -> BodyChunk:
        """The upstream connection failed (reset, timeout) before its body ended; ends the
        exchange. Returns what to send to finish the client's response: when streaming, an
        in-stream error event and ``[DONE]`` to append (``status`` ``None``); when buffering or
        before the response headers, an error body with ``status`` 502; ``data is None`` when
        there is nothing to add (passthrough, or the response already ended). Safe to repeat."""
        lib = self._lib
        out = _ffi.BodyResult()
        err = ctypes.c_void_p()
        with self._lock:
            rc = lib.aiproxy_exchange_on_upstream_abort(self._live(), ctypes.byref(out), ctypes.byref(err))
            if rc:
                raise _take_error(lib, rc, err)
            if out.unchanged:
                return BodyChunk(None, None)
            return BodyChunk(_read_bytes(out.data_ptr, out.data_len), out.status or None)

    @property
    def client_protocol(self) -> ClientProtocol:
        """The API dialect the client spoke, decided by :meth:`on_request`'s path
        (:attr:`ClientProtocol.OPENAI` before it)."""
        out = ctypes.c_int32()
        with self._lock:
            rc = self._lib.aiproxy_exchange_client_protocol(self._live(), ctypes.byref(out))
        if rc:
            raise error_for(rc, f"reading the client protocol failed with code {rc}")
        protocol = _PROTOCOLS.get(out.value)
        if protocol is None:
            raise InternalError(ErrorCode.INTERNAL, f"the library returned an unknown client protocol {out.value}")
        return protocol

    @property
    def usage(self) -> Usage | None:
        """Token usage seen so far (complete after the last body chunk); ``None`` when the
        response carried none (or the request was not translated)."""
        lib = self._lib
        out = _ffi.UsageResult()
        details = _ffi.UsageDetailsResult(struct_size=ctypes.sizeof(_ffi.UsageDetailsResult))
        with self._lock:
            rc = lib.aiproxy_exchange_usage(self._live(), ctypes.byref(out))
            if not rc:
                rc = lib.aiproxy_exchange_usage_details(self._live(), ctypes.byref(details))
        if rc:
            raise error_for(rc, f"reading usage failed with code {rc}")
        if not out.present:
            return None
        return Usage(
            out.prompt_tokens,
            out.completion_tokens,
            out.total_tokens,
            details.cached_tokens if details.cached_tokens_present else None,
            details.reasoning_tokens if details.reasoning_tokens_present else None,
        )

    def _live(self) -> int:
        ptr = self._ptr
        if ptr is None:
            raise ClosedError("exchange")
        return ptr

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        """Releases the C handle (idempotent); waits for a call in progress on another thread."""
        with self._lock:
            self._ptr = None
            self._finalizer()

    def __enter__(self) -> Exchange:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<aiproxy.Exchange {'closed' if self._ptr is None else 'open'}>"
