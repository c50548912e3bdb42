"""The exception hierarchy: one class per family of ``AIPROXY_ERR_*`` codes."""

from __future__ import annotations

import enum

from . import _ffi

__all__ = [
    "AiproxyError",
    "ClosedError",
    "ConfigError",
    "ErrorCode",
    "InternalError",
    "InvalidArgumentError",
    "StateError",
]


class ErrorCode(enum.IntEnum):
    """The core's error codes (``AIPROXY_ERR_*`` in ``aiproxy.h``)."""

    NULL_POINTER = _ffi.ERR_NULL_POINTER
    INVALID_UTF8 = _ffi.ERR_INVALID_UTF8
    CONFIG_JSON = _ffi.ERR_CONFIG_JSON
    CONFIG_INVALID = _ffi.ERR_CONFIG_INVALID
    BAD_STATE = _ffi.ERR_BAD_STATE
    INTERNAL = _ffi.ERR_INTERNAL
    INVALID_ARGUMENT = _ffi.ERR_INVALID_ARGUMENT


class AiproxyError(Exception):
    """An error reported by the core (or detected by the binding before calling it).

    ``code`` is the core's :class:`ErrorCode`, ``message`` its message and ``field`` the
    configuration path the error is about (``""`` when it is about no field).
    """

    def __init__(self, code: int, message: str, field: str = "") -> None:
        super().__init__(message)
        try:
            self.code: ErrorCode | int = ErrorCode(code)
        except ValueError:  # a newer library with a code this binding does not know yet
            self.code = code
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, field={self.field!r})"

    def __reduce__(self) -> tuple[type[AiproxyError], tuple[int, str, str]]:
        return (type(self), (int(self.code), self.message, self.field))


class ConfigError(AiproxyError, ValueError):
    """The configuration is not valid JSON (``CONFIG_JSON``) or not valid (``CONFIG_INVALID``;
    ``field`` names the offending path, e.g. ``provider.azureServiceUrl``)."""


class StateError(AiproxyError, RuntimeError):
    """A call that does not fit the exchange's state: a response before the request, a second
    request, a body before the response headers, anything after the end (``BAD_STATE``)."""


class ClosedError(StateError):
    """The object was closed (or its finalizer ran); it can no longer be used."""

    def __init__(self, what: str) -> None:
        super().__init__(ErrorCode.BAD_STATE, f"{what} is closed")
        self.what = what

    def __reduce__(self) -> tuple[type[ClosedError], tuple[str]]:  # type: ignore[override]
        return (type(self), (self.what,))


class InvalidArgumentError(AiproxyError, ValueError):
    """An argument the core rejects: out of range, not UTF-8, or missing
    (``INVALID_ARGUMENT``, ``INVALID_UTF8``, ``NULL_POINTER``)."""


class InternalError(AiproxyError):
    """A panic was caught inside the library; the exchange can no longer be used (``INTERNAL``)."""


_BY_CODE: dict[int, type[AiproxyError]] = {
    ErrorCode.NULL_POINTER: InvalidArgumentError,
    ErrorCode.INVALID_UTF8: InvalidArgumentError,
    ErrorCode.CONFIG_JSON: ConfigError,
    ErrorCode.CONFIG_INVALID: ConfigError,
    ErrorCode.BAD_STATE: StateError,
    ErrorCode.INTERNAL: InternalError,
    ErrorCode.INVALID_ARGUMENT: InvalidArgumentError,
}


def error_for(code: int, message: str, field: str = "") -> AiproxyError:
    """The exception instance for a core error code."""
    return _BY_CODE.get(code, AiproxyError)(code, message, field)
