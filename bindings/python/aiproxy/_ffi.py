"""ctypes declarations mirroring ``include/aiproxy.h`` and the loading of ``libaiproxy.so``.

Private: the public API lives in :mod:`aiproxy`. Every structure here has the exact layout of its
C counterpart; input views (``_InStr``/``_InHeader``) use ``c_char_p`` so Python ``bytes`` can be
passed without a copy, output views use ``c_void_p`` so results are read with
:func:`ctypes.string_at` (they may contain NUL bytes and are not NUL-terminated).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from pathlib import Path
from typing import Any, Final, cast

__all__ = [
    "LIB_ENV",
    "PACKAGE_VERSION",
    "LibraryNotFoundError",
    "LibraryVersionError",
    "check_version",
    "library",
    "library_path",
]

LIB_ENV: Final = "AIPROXY_LIB"
"""Environment variable naming the shared library to load (takes precedence)."""

_LIB_NAMES: Final = {
    "linux": "libaiproxy.so",
    "darwin": "libaiproxy.dylib",
    "win32": "aiproxy.dll",
}
LIB_NAME: Final = _LIB_NAMES.get(sys.platform, "libaiproxy.so")

# Constants of include/aiproxy.h.
OK: Final = 0
ERR_NULL_POINTER: Final = 1
ERR_INVALID_UTF8: Final = 2
ERR_CONFIG_JSON: Final = 3
ERR_CONFIG_INVALID: Final = 4
ERR_BAD_STATE: Final = 5
ERR_INTERNAL: Final = 6
ERR_INVALID_ARGUMENT: Final = 7

ACTION_FORWARD: Final = 0
ACTION_LOCAL_REPLY: Final = 1
ACTION_CALLOUT: Final = 2
ACTION_RETRY: Final = 3
ACTION_NO_RETRY: Final = 4

MODE_PASSTHROUGH: Final = 0
MODE_STREAM: Final = 1
MODE_BUFFER: Final = 2

CLIENT_PROTOCOL_OPENAI: Final = 0
CLIENT_PROTOCOL_ANTHROPIC: Final = 1


PACKAGE_VERSION: Final = "0.1.0"
"""This package's version; the library it loads must have the same major.minor."""


class LibraryNotFoundError(OSError):
    """``libaiproxy`` could not be located or loaded."""


class LibraryVersionError(LibraryNotFoundError):
    """The ``libaiproxy`` found is not the version this package was written for."""


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_version(found: str, path: object = "libaiproxy") -> None:
    """Raises :class:`LibraryVersionError` unless ``found`` has this package's major.minor
    (the C ABI may change between minor versions while the major is 0)."""
    if _major_minor(found) != _major_minor(PACKAGE_VERSION):
        raise LibraryVersionError(
            f"{path} is libaiproxy {found or '(unknown)'}, but this aiproxy package is {PACKAGE_VERSION}: "
            f"reinstall the package (it bundles a matching library) or point {LIB_ENV} at a matching build"
        )


# The C structures are declared flat: a nested ``AiproxyStr {ptr, len}`` becomes two fields
# ``<name>_ptr`` and ``<name>_len``. The layout is identical (every member is 8-byte aligned, or
# padded the same way), and reading a flat field allocates one Python object instead of two.

_PTR = ctypes.POINTER(ctypes.c_char)
"""Output pointers: slicing ``ptr[:n]`` copies ``n`` bytes in one C call (several times faster
than ``ctypes.string_at``) and keeps NUL bytes."""


class Str(ctypes.Structure):
    """``AiproxyStr`` for results."""

    _fields_ = [("ptr", _PTR), ("len", ctypes.c_size_t)]


class Header(ctypes.Structure):
    """``AiproxyHeader`` for results."""

    _fields_ = [
        ("name_ptr", _PTR),
        ("name_len", ctypes.c_size_t),
        ("value_ptr", _PTR),
        ("value_len", ctypes.c_size_t),
    ]


class RequestResult(ctypes.Structure):
    """``AiproxyRequestResult``."""

    _fields_ = [
        ("action", ctypes.c_int32),
        ("status", ctypes.c_uint16),
        ("authority_ptr", _PTR),
        ("authority_len", ctypes.c_size_t),
        ("path_ptr", _PTR),
        ("path_len", ctypes.c_size_t),
        ("remove_headers", ctypes.POINTER(Str)),
        ("remove_headers_len", ctypes.c_size_t),
        ("headers", ctypes.POINTER(Header)),
        ("headers_len", ctypes.c_size_t),
        ("body_replaced", ctypes.c_bool),
        ("body_ptr", _PTR),
        ("body_len", ctypes.c_size_t),
        ("model_ptr", _PTR),
        ("model_len", ctypes.c_size_t),
        ("callout_cluster_ptr", _PTR),
        ("callout_cluster_len", ctypes.c_size_t),
        ("callout_port", ctypes.c_uint16),
        ("callout_method_ptr", _PTR),
        ("callout_method_len", ctypes.c_size_t),
        ("timeout_ms", ctypes.c_uint64),
    ]


class ResponseHeadersResult(ctypes.Structure):
    """``AiproxyResponseHeadersResult``."""

    _fields_ = [
        ("mode", ctypes.c_int32),
        ("remove_headers", ctypes.POINTER(Str)),
        ("remove_headers_len", ctypes.c_size_t),
        ("headers", ctypes.POINTER(Header)),
        ("headers_len", ctypes.c_size_t),
    ]


class BodyResult(ctypes.Structure):
    """``AiproxyBodyResult``."""

    _fields_ = [
        ("unchanged", ctypes.c_bool),
        ("data_ptr", _PTR),
        ("data_len", ctypes.c_size_t),
        ("status", ctypes.c_uint16),
    ]


class UsageResult(ctypes.Structure):
    """``AiproxyUsage``."""

    _fields_ = [
        ("present", ctypes.c_bool),
        ("prompt_tokens", ctypes.c_uint64),
        ("completion_tokens", ctypes.c_uint64),
        ("total_tokens", ctypes.c_uint64),
    ]


class UsageDetailsResult(ctypes.Structure):
    """``AiproxyUsageDetails`` (starts with ``struct_size``, set by the caller)."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("cached_tokens_present", ctypes.c_bool),
        ("cached_tokens", ctypes.c_uint64),
        ("reasoning_tokens_present", ctypes.c_bool),
        ("reasoning_tokens", ctypes.c_uint64),
    ]


class HealthCheckResult(ctypes.Structure):
    """``AiproxyHealthCheck``."""

    _fields_ = [
        ("token_index", ctypes.c_size_t),
        ("authority_ptr", _PTR),
        ("authority_len", ctypes.c_size_t),
        ("path_ptr", _PTR),
        ("path_len", ctypes.c_size_t),
        ("headers", ctypes.POINTER(Header)),
        ("headers_len", ctypes.c_size_t),
        ("body_ptr", _PTR),
        ("body_len", ctypes.c_size_t),
        ("timeout_ms", ctypes.c_uint64),
    ]


def read_bytes(ptr: ctypes._Pointer[ctypes.c_char], n: int) -> bytes:
    """Copies ``n`` borrowed bytes into Python ``bytes``."""
    if not n or not ptr:  # the C API promises a pointer with a non-zero length; never read null
        return b""
    return cast(bytes, ptr[:n])


def read_str(ptr: ctypes._Pointer[ctypes.c_char], n: int) -> str:
    if not n or not ptr:
        return ""
    return cast(bytes, ptr[:n]).decode("utf-8", "replace")


def read_names(ptr: ctypes._Pointer[Str], n: int) -> tuple[str, ...]:
    if not n:
        return ()
    out = []
    for i in range(n):
        s = ptr[i]
        out.append(read_str(s.ptr, s.len))
    return tuple(out)


def read_headers(ptr: ctypes._Pointer[Header], n: int) -> tuple[tuple[str, str], ...]:
    if not n:
        return ()
    out = []
    for i in range(n):
        h = ptr[i]
        out.append((read_str(h.name_ptr, h.name_len), read_str(h.value_ptr, h.value_len)))
    return tuple(out)


_address_of = ctypes.c_void_p.from_buffer


def header_array(parts: list[bytes]) -> tuple[ctypes.Array[ctypes.c_size_t], ctypes.c_char_p]:
    """An ``AiproxyHeader[]`` for ``[name0, value0, name1, value1, ...]``.

    All strings are joined into one buffer and the array is filled with ``(ptr, len)`` integer
    pairs pointing into it: an ``AiproxyHeader`` is four pointer-sized words, so a ``size_t[4 * n]``
    has its layout. That is about twice as fast as building ``c_char_p`` structures field by field.
    The returned ``c_char_p`` owns the buffer: keep it alive until the call returns.
    """
    blob = ctypes.c_char_p(b"".join(parts))
    addr: int = _address_of(blob).value or 0
    flat: list[Any] = []
    for part in parts:
        n = len(part)
        flat.append(addr)
        flat.append(n)
        addr += n
    arr = (ctypes.c_size_t * len(flat))()
    arr[:] = flat
    return arr, blob


def library_path() -> Path:
    """Where the library is loaded from: ``$AIPROXY_LIB`` when set, else ``libaiproxy.so`` next to
    this package, else the system loader's ``libaiproxy`` (``ctypes.util.find_library``)."""
    env = os.environ.get(LIB_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise LibraryNotFoundError(f"{LIB_ENV}={env} does not name a file")
        return path
    bundled = Path(__file__).resolve().parent / LIB_NAME
    if bundled.is_file():
        return bundled
    system = ctypes.util.find_library("aiproxy")
    if system:
        return Path(system)
    raise LibraryNotFoundError(
        f"{LIB_NAME} not found: {LIB_ENV} is not set, {bundled} does not exist and the system "
        f"loader knows no libaiproxy; build it with `cargo build --release` and set "
        f"{LIB_ENV}=<repo>/target/release/{LIB_NAME} (or reinstall the package after building)"
    )


def _declare(lib: ctypes.CDLL) -> None:
    c = ctypes
    err_out = c.POINTER(c.c_void_p)
    sigs: dict[str, tuple[type | None, list[type]]] = {
        "aiproxy_version": (c.c_char_p, []),
        "aiproxy_config_new": (c.c_void_p, [c.c_char_p, c.c_size_t, err_out]),
        "aiproxy_config_free": (None, [c.c_void_p]),
        "aiproxy_exchange_new": (c.c_void_p, [c.c_void_p, err_out]),
        "aiproxy_exchange_free": (None, [c.c_void_p]),
        "aiproxy_exchange_on_request": (
            c.c_int32,
            [
                c.c_void_p,
                c.c_char_p,
                c.c_size_t,
                c.c_char_p,
                c.c_size_t,
                c.c_void_p,
                c.c_size_t,
                c.c_char_p,
                c.c_size_t,
                c.POINTER(RequestResult),
                err_out,
            ],
        ),
        "aiproxy_exchange_on_callout_response": (
            c.c_int32,
            [c.c_void_p, c.c_uint16, c.c_char_p, c.c_size_t, c.POINTER(RequestResult), err_out],
        ),
        "aiproxy_exchange_on_response_headers": (
            c.c_int32,
            [c.c_void_p, c.c_uint16, c.c_void_p, c.c_size_t, c.POINTER(ResponseHeadersResult), err_out],
        ),
        "aiproxy_exchange_on_response_body": (
            c.c_int32,
            [c.c_void_p, c.c_char_p, c.c_size_t, c.c_bool, c.POINTER(BodyResult), err_out],
        ),
        "aiproxy_exchange_usage": (c.c_int32, [c.c_void_p, c.POINTER(UsageResult)]),
        "aiproxy_exchange_usage_details": (c.c_int32, [c.c_void_p, c.POINTER(UsageDetailsResult)]),
        "aiproxy_exchange_on_upstream_abort": (c.c_int32, [c.c_void_p, c.POINTER(BodyResult), err_out]),
        "aiproxy_exchange_client_protocol": (c.c_int32, [c.c_void_p, c.POINTER(c.c_int32)]),
        "aiproxy_exchange_retry": (c.c_int32, [c.c_void_p, c.c_uint16, c.POINTER(RequestResult), err_out]),
        "aiproxy_exchange_retry_not_sent": (c.c_int32, [c.c_void_p, err_out]),
        "aiproxy_config_translates": (
            c.c_int32,
            [c.c_void_p, c.c_char_p, c.c_size_t, c.c_char_p, c.c_size_t, c.POINTER(c.c_bool), err_out],
        ),
        "aiproxy_config_needs_request_body": (
            c.c_int32,
            [c.c_void_p, c.c_char_p, c.c_size_t, c.c_char_p, c.c_size_t, c.POINTER(c.c_bool), err_out],
        ),
        "aiproxy_config_first_byte_timeout_ms": (c.c_int32, [c.c_void_p, c.POINTER(c.c_uint64), err_out]),
        "aiproxy_config_warning_count": (c.c_int32, [c.c_void_p, c.POINTER(c.c_size_t), err_out]),
        "aiproxy_config_warning": (c.c_int32, [c.c_void_p, c.c_size_t, c.POINTER(Str), err_out]),
        "aiproxy_config_tokens_out": (c.c_uint64, [c.c_void_p]),
        "aiproxy_config_due_health_checks": (c.c_int32, [c.c_void_p, c.POINTER(c.c_void_p), err_out]),
        "aiproxy_health_checks_len": (c.c_size_t, [c.c_void_p]),
        "aiproxy_health_checks_get": (
            c.c_int32,
            [c.c_void_p, c.c_size_t, c.POINTER(HealthCheckResult), err_out],
        ),
        "aiproxy_health_checks_free": (None, [c.c_void_p]),
        "aiproxy_config_on_health_check_result": (c.c_int32, [c.c_void_p, c.c_size_t, c.c_uint16, err_out]),
        "aiproxy_error_code": (c.c_int32, [c.c_void_p]),
        "aiproxy_error_message": (c.c_char_p, [c.c_void_p]),
        "aiproxy_error_field": (c.c_char_p, [c.c_void_p]),
        "aiproxy_error_free": (None, [c.c_void_p]),
    }
    for name, (restype, argtypes) in sigs.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as exc:
            raise LibraryNotFoundError(f"{lib._name} does not export {name}: not an aiproxy library") from exc
        fn.restype = restype
        fn.argtypes = argtypes


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    """The loaded library (loaded and declared once, on first use; thread-safe)."""
    global _lib
    lib = _lib
    if lib is not None:
        return lib
    with _lock:
        if _lib is None:
            path = library_path()
            try:
                loaded = ctypes.CDLL(str(path))
            except OSError as exc:
                raise LibraryNotFoundError(f"cannot load {path}: {exc}") from exc
            _declare(loaded)
            raw = loaded.aiproxy_version()
            check_version(raw.decode("utf-8", "replace") if raw else "", path)
            _lib = loaded
        return _lib
