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
from typing import Final

__all__ = ["LIB_ENV", "LibraryNotFoundError", "library", "library_path"]

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

MODE_PASSTHROUGH: Final = 0
MODE_STREAM: Final = 1
MODE_BUFFER: Final = 2


class LibraryNotFoundError(OSError):
    """``libaiproxy`` could not be located or loaded."""


class _InStr(ctypes.Structure):
    """``AiproxyStr`` for arguments: ``ptr`` takes a ``bytes`` object directly."""

    _fields_ = [("ptr", ctypes.c_char_p), ("len", ctypes.c_size_t)]


class _InHeader(ctypes.Structure):
    _fields_ = [("name", _InStr), ("value", _InStr)]


class Str(ctypes.Structure):
    """``AiproxyStr`` for results: read with :func:`read_bytes`."""

    _fields_ = [("ptr", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class Header(ctypes.Structure):
    _fields_ = [("name", Str), ("value", Str)]


class RequestResult(ctypes.Structure):
    _fields_ = [
        ("action", ctypes.c_int32),
        ("status", ctypes.c_uint16),
        ("authority", Str),
        ("path", Str),
        ("remove_headers", ctypes.POINTER(Str)),
        ("remove_headers_len", ctypes.c_size_t),
        ("headers", ctypes.POINTER(Header)),
        ("headers_len", ctypes.c_size_t),
        ("body_replaced", ctypes.c_bool),
        ("body", Str),
        ("model", Str),
        ("callout_cluster", Str),
        ("callout_port", ctypes.c_uint16),
        ("callout_method", Str),
        ("timeout_ms", ctypes.c_uint64),
    ]


class ResponseHeadersResult(ctypes.Structure):
    _fields_ = [
        ("mode", ctypes.c_int32),
        ("remove_headers", ctypes.POINTER(Str)),
        ("remove_headers_len", ctypes.c_size_t),
        ("headers", ctypes.POINTER(Header)),
        ("headers_len", ctypes.c_size_t),
    ]


class BodyResult(ctypes.Structure):
    _fields_ = [
        ("unchanged", ctypes.c_bool),
        ("data", Str),
        ("status", ctypes.c_uint16),
    ]


class UsageResult(ctypes.Structure):
    _fields_ = [
        ("present", ctypes.c_bool),
        ("prompt_tokens", ctypes.c_uint64),
        ("completion_tokens", ctypes.c_uint64),
        ("total_tokens", ctypes.c_uint64),
    ]


_string_at = ctypes.string_at


def read_bytes(s: Str) -> bytes:
    """Copies a borrowed ``AiproxyStr`` into Python ``bytes``."""
    n = s.len
    if not n:
        return b""
    ptr = s.ptr
    if not ptr:  # the C API promises a pointer with a non-zero length; never dereference null
        return b""
    return _string_at(ptr, n)


def read_str(s: Str) -> str:
    return read_bytes(s).decode("utf-8", "replace")


def read_names(ptr: ctypes._Pointer[Str], n: int) -> tuple[str, ...]:
    if not n:
        return ()
    return tuple(read_str(ptr[i]) for i in range(n))


def read_headers(ptr: ctypes._Pointer[Header], n: int) -> tuple[tuple[str, str], ...]:
    if not n:
        return ()
    out = []
    for i in range(n):
        h = ptr[i]
        out.append((read_str(h.name), read_str(h.value)))
    return tuple(out)


def make_headers(pairs: list[tuple[bytes, bytes]]) -> ctypes.Array[_InHeader] | None:
    """An ``AiproxyHeader[]`` pointing into the given ``bytes`` (kept alive by the array)."""
    if not pairs:
        return None
    arr = (_InHeader * len(pairs))()
    for i, (name, value) in enumerate(pairs):
        h = arr[i]
        h.name.ptr = name
        h.name.len = len(name)
        h.value.ptr = value
        h.value.len = len(value)
    return arr


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
            _lib = loaded
        return _lib
