#!/usr/bin/env python3
"""A small async HTTP proxy that speaks OpenAI's API to clients and the configured provider's API
upstream, through the ``aiproxy`` Python binding (aiohttp server + aiohttp client).

    AIPROXY_LIB=target/release/libaiproxy.so \\
    python examples/python/proxy.py --config provider.json --port 8080

    # then point any OpenAI client at it:
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 python -c '...'

Per client request it creates one :class:`aiproxy.Exchange` and follows it:

* ``LocalReply``: answers the client directly (an OpenAI-shaped error);
* ``Callout``: fetches it (e.g. a ``context.fileUrl`` document) and feeds the result back;
* ``Forward``: sends the rewritten request to ``https://<authority><path>`` and translates the
  response: STREAM mode writes each chunk's translated bytes as soon as the chunk arrives, BUFFER
  mode answers at the end with the translated body and status, PASSTHROUGH copies the body.

``--upstream-override HOST:PORT`` (or ``$AIPROXY_UPSTREAM_OVERRIDE``) sends every upstream request
and callout to that address over plain HTTP instead, with the provider's host in ``Host``: tests
use it to put a loopback mock behind every provider hostname. ``--usage-log FILE`` appends one JSON
line per finished exchange (status, mode, model, usage).

The proxy prints ``LISTENING <port>`` on stdout once it accepts connections (``--port 0`` picks a
free port), stops on SIGTERM/SIGINT, and with ``--exit-on-stdin-eof`` also when its stdin closes
(so a test that dies does not leave it behind).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

import aiproxy

LOG = logging.getLogger("aiproxy.example")

OVERRIDE_ENV = "AIPROXY_UPSTREAM_OVERRIDE"
CONFIG_ENV = "AIPROXY_CONFIG"
MAX_REQUEST_BYTES = 64 << 20
"""Larger than the core's limit (32 MiB) so that the core, not aiohttp, answers oversized bodies."""

# Connection-level headers are never copied between the two hops (RFC 9110 §7.6.1); aiohttp sets
# Host, Content-Length and Transfer-Encoding itself for each side.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True)
class Settings:
    config: aiproxy.Config
    upstream_override: str | None = None
    upstream_scheme: str = "https"
    usage_log: TextIO | None = None


SETTINGS = web.AppKey("settings", Settings)
SESSION = web.AppKey("session", aiohttp.ClientSession)


def without_hop_by_hop(headers: Iterable[tuple[str, str]]) -> CIMultiDict[str]:
    return CIMultiDict((n, v) for n, v in headers if n.lower() not in HOP_BY_HOP)


def error_response(status: int, message: str, code: str, kind: str = "upstream_error") -> web.Response:
    """An OpenAI-shaped error body, for failures of the proxy itself (the core makes the rest)."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


def upstream_target(settings: Settings, scheme: str, authority: str) -> tuple[str, str | None]:
    """The base URL to connect to and the ``Host`` header to send (``None``: the URL's)."""
    if settings.upstream_override:
        return f"http://{settings.upstream_override}", authority
    return f"{scheme}://{authority}", None


async def perform_callout(
    session: aiohttp.ClientSession, settings: Settings, callout: aiproxy.Callout
) -> tuple[int, bytes]:
    """Fetches a callout; ``(0, b"")`` when it could not be made (the core turns that into 502)."""
    if settings.upstream_override:
        base, host = upstream_target(settings, "http", callout.authority)
    elif callout.port == 443:
        base, host = f"https://{callout.authority}", None
    else:
        # Envoy sends a callout to the cluster; here the cluster name is the host to connect to.
        base, host = f"http://{callout.cluster}:{callout.port}", callout.authority
    headers = CIMultiDict(callout.headers)
    if host is not None:
        headers["Host"] = host
    timeout = aiohttp.ClientTimeout(total=callout.timeout_ms / 1000)
    try:
        async with session.request(
            callout.method,
            base + callout.path,
            headers=headers,
            data=callout.body or None,
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            return response.status, await response.read()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        LOG.warning("callout to %s%s failed: %s", base, callout.path, exc)
        return 0, b""


def log_usage(settings: Settings, request: web.Request, ex: aiproxy.Exchange, record: dict[str, Any]) -> None:
    usage = ex.usage
    record.update(
        method=request.method,
        path=request.path,
        usage=None
        if usage is None
        else {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    )
    LOG.info("%s", json.dumps(record))
    if settings.usage_log is not None:
        settings.usage_log.write(json.dumps(record) + "\n")
        settings.usage_log.flush()


async def handle(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    session = request.app[SESSION]
    body = await request.read()
    with settings.config.exchange() as ex:
        try:
            action = ex.on_request(request.method, request.raw_path, request.headers.items(), body)
            while isinstance(action, aiproxy.Callout):
                status, callout_body = await perform_callout(session, settings, action)
                action = ex.on_callout_response(status, callout_body)
        except aiproxy.InvalidArgumentError as exc:  # e.g. a header that is not UTF-8
            return error_response(400, f"aiproxy: {exc.message}", "invalid_request", "invalid_request_error")
        except aiproxy.AiproxyError as exc:
            LOG.error("aiproxy rejected the request: %r", exc)
            return error_response(500, f"aiproxy: {exc.message}", "aiproxy_error", "server_error")
        if isinstance(action, aiproxy.LocalReply):
            log_usage(settings, request, ex, {"status": action.status, "local_reply": True})
            return web.Response(status=action.status, headers=CIMultiDict(action.headers), body=action.body)
        return await forward(request, settings, session, ex, action, body)


async def forward(
    request: web.Request,
    settings: Settings,
    session: aiohttp.ClientSession,
    ex: aiproxy.Exchange,
    action: aiproxy.Forward,
    client_body: bytes,
) -> web.StreamResponse:
    base, host = upstream_target(settings, settings.upstream_scheme, action.authority)
    headers = without_hop_by_hop(action.headers_for(request.headers.items()))
    if host is not None:
        headers["Host"] = host
    data = client_body if action.body is None else action.body
    timeout_s = action.timeout_ms / 1000
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
    started = time.monotonic()
    response: web.StreamResponse | None = None
    try:
        async with session.request(
            request.method, base + action.path, headers=headers, data=data, timeout=timeout, allow_redirects=False
        ) as upstream:
            start = ex.on_response_headers(upstream.status, upstream.headers.items())
            out_headers = without_hop_by_hop(start.headers_for(upstream.headers.items()))
            record: dict[str, Any] = {"upstream": action.authority, "model": action.model, "mode": start.mode.name}
            if start.mode is aiproxy.ResponseMode.BUFFER:
                async for chunk in upstream.content.iter_any():
                    ex.on_response_body(chunk, False)  # buffered by the core: nothing to send yet
                last = ex.on_response_body(b"", True)
                status = last.status or upstream.status
                record.update(status=status, upstream_status=upstream.status, ms=_ms(started))
                log_usage(settings, request, ex, record)
                return web.Response(status=status, headers=out_headers, body=last.output(b""))
            # STREAM (translated per chunk) and PASSTHROUGH (unchanged): send as they arrive.
            response = web.StreamResponse(status=upstream.status, headers=out_headers)
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                out = ex.on_response_body(chunk, False).output(chunk)
                if out:
                    await response.write(out)
            tail = ex.on_response_body(b"", True).output(b"")
            if tail:
                await response.write(tail)
            await response.write_eof()
            record.update(status=upstream.status, upstream_status=upstream.status, ms=_ms(started))
            log_usage(settings, request, ex, record)
            return response
    except asyncio.TimeoutError:
        return _failed(request, response, 504, f"upstream {action.authority} timed out", "upstream_timeout")
    except (aiohttp.ClientError, ConnectionResetError) as exc:
        return _failed(request, response, 502, f"upstream {action.authority} failed: {exc!r}", "upstream_unreachable")


def _failed(
    request: web.Request, response: web.StreamResponse | None, status: int, message: str, code: str
) -> web.StreamResponse:
    """An error reply, or, once a streamed response has started, a cut connection: after the
    headers are out, closing it is the only signal left (the client may also be the one gone)."""
    if response is not None and response.prepared:
        LOG.info("%s %s: stream ended early: %s", request.method, request.path, message)
        if request.transport is not None:
            request.transport.close()
        return response
    LOG.warning("%s %s: %s", request.method, request.path, message)
    return error_response(status, message, code)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


async def _session_ctx(app: web.Application) -> Any:
    connector = aiohttp.TCPConnector(limit=256, ttl_dns_cache=300)
    # auto_decompress=False: bytes reach the core as the upstream sent them, so it can tell an
    # encoding it cannot translate; no automatic Accept-Encoding for the same reason.
    async with aiohttp.ClientSession(
        connector=connector, auto_decompress=False, skip_auto_headers=("Accept-Encoding",)
    ) as session:
        app[SESSION] = session
        yield


def make_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_session_ctx)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def load_config(args: argparse.Namespace) -> aiproxy.Config:
    if args.config_json:
        return aiproxy.Config.from_json(args.config_json)
    source = args.config or os.environ.get(CONFIG_ENV)
    if not source:
        raise SystemExit(f"give --config FILE, --config-json TEXT or ${CONFIG_ENV}")
    if source.lstrip().startswith("{"):
        return aiproxy.Config.from_json(source)
    return aiproxy.Config.from_file(Path(source))


async def serve(args: argparse.Namespace, settings: Settings) -> None:
    runner = web.AppRunner(make_app(settings), access_log=LOG if args.verbose else None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = runner.addresses[0][1]  # the port actually bound, for --port 0
    print(f"LISTENING {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_on_stdin_eof:
        _watch_stdin(loop, stop)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Sets ``stop`` when stdin reaches end of file (the parent closed the pipe or died)."""
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    try:
        loop.add_reader(fd, readable)
    except (OSError, ValueError, NotImplementedError):
        # Not pollable (a regular file): a daemon thread reading the raw descriptor instead.
        def drain() -> None:
            with contextlib.suppress(OSError):
                while os.read(fd, 4096):
                    pass
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=drain, daemon=True).start()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--config", help=f"configuration JSON file (or ${CONFIG_ENV}: a file or JSON text)")
    p.add_argument("--config-json", help="configuration as JSON text")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (0: any free port)")
    p.add_argument(
        "--upstream-override",
        default=os.environ.get(OVERRIDE_ENV) or None,
        metavar="HOST:PORT",
        help=f"send every upstream request there over plain HTTP (or ${OVERRIDE_ENV})",
    )
    p.add_argument("--upstream-scheme", choices=("https", "http"), default="https")
    p.add_argument("--usage-log", help="append one JSON line per exchange to this file")
    p.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin closes")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args)
    except aiproxy.ConfigError as exc:
        raise SystemExit(f"invalid configuration: {exc.message} (field {exc.field or '-'})") from None
    with contextlib.ExitStack() as stack:
        usage_log = stack.enter_context(open(args.usage_log, "a", encoding="utf-8")) if args.usage_log else None
        stack.enter_context(config)
        settings = Settings(config, args.upstream_override, args.upstream_scheme, usage_log)
        asyncio.run(serve(args, settings))


if __name__ == "__main__":
    main()
