"""Python binding of aiproxy: translate OpenAI-API traffic to and from LLM providers.

Loads ``libaiproxy.so`` with ctypes, from ``$AIPROXY_LIB`` when set, else from next to this
package (where an install copies it when it was built first). Typical use::

    import aiproxy

    config = aiproxy.Config.from_dict({"provider": {"type": "openai", "apiTokens": ["sk-..."]}})
    with config.exchange() as ex:
        action = ex.on_request("POST", "/v1/chat/completions", headers, body)
        if isinstance(action, aiproxy.LocalReply):
            ...  # answer the client with action.status / headers / body
        elif isinstance(action, aiproxy.Forward):
            ...  # send upstream to action.authority + action.path
            start = ex.on_response_headers(status, upstream_headers)
            for chunk in upstream_chunks:
                out = ex.on_response_body(chunk, end_of_stream=False)
            last = ex.on_response_body(b"", end_of_stream=True)
            print(ex.usage)
"""

from __future__ import annotations

from . import _ffi
from ._core import Config, Exchange, version
from ._errors import (
    AiproxyError,
    ClosedError,
    ConfigError,
    ErrorCode,
    InternalError,
    InvalidArgumentError,
    StateError,
)
from ._ffi import LIB_ENV, LibraryNotFoundError, LibraryVersionError, library_path
from ._types import (
    BodyChunk,
    Callout,
    ClientProtocol,
    Forward,
    HeaderPairs,
    HeadersLike,
    HealthCheck,
    LocalReply,
    RequestAction,
    ResponseMode,
    ResponseStart,
    Usage,
    edit_headers,
)

__version__ = _ffi.PACKAGE_VERSION

# Check the library's version now, so a mismatched library fails the import rather than a later
# call. A library that cannot be found yet is reported on first use (AIPROXY_LIB may be set later).
try:
    _ffi.library()
except LibraryVersionError:
    raise
except LibraryNotFoundError:
    pass

__all__ = [
    "LIB_ENV",
    "AiproxyError",
    "BodyChunk",
    "Callout",
    "ClientProtocol",
    "ClosedError",
    "Config",
    "ConfigError",
    "ErrorCode",
    "Exchange",
    "Forward",
    "HeaderPairs",
    "HeadersLike",
    "HealthCheck",
    "InternalError",
    "InvalidArgumentError",
    "LibraryNotFoundError",
    "LibraryVersionError",
    "LocalReply",
    "RequestAction",
    "ResponseMode",
    "ResponseStart",
    "StateError",
    "Usage",
    "__version__",
    "edit_headers",
    "library_path",
    "version",
]
