"""A deliberately tiny HTTP/1.1 server on asyncio streams: GET/HEAD, one request a connection.

The console serves a handful of small, read-only resources to a browser and a metrics
scraper. Running it on ``asyncio.start_server`` inside the agent's loop keeps it from ever
blocking the pipes (no threads, no framework) and costs no dependency. Every connection is
bounded: the request head must fit in ``MAX_HEAD_BYTES`` and arrive within
``REQUEST_TIMEOUT_SEC``; request bodies are never read.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

__all__ = ["MAX_HEAD_BYTES", "REQUEST_TIMEOUT_SEC", "HttpServer", "Request", "Response"]

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 16 * 1024
REQUEST_TIMEOUT_SEC = 10.0
_ALLOWED_METHODS = ("GET", "HEAD")


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str = ""
    host: str | None = None
    """The ``Host`` header without the port, lower-case; None when the client sent none."""
    authorization: str | None = None
    """The ``Authorization`` header as sent; None when absent."""


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(status, text.encode("utf-8"))


Handler = Callable[[Request], Response]


class HttpServer:
    """Serves ``handler`` (synchronous and cheap: it runs on the event loop) over HTTP/1.1."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(
        self, host: str, port: int, tls: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        """Listen on ``host:port`` (HTTPS with ``tls``); returns the bound address. Raises
        ``OSError`` on failure."""
        self._server = await asyncio.start_server(
            self._on_connection,
            host,
            port,
            limit=MAX_HEAD_BYTES,
            ssl=tls,
            ssl_handshake_timeout=REQUEST_TIMEOUT_SEC if tls else None,
        )
        bound = self._server.sockets[0].getsockname()
        return bound[0], bound[1]

    async def close(self) -> None:
        """Stop listening and drop open connections. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            response, method = await self._read_and_dispatch(reader)
            if response is not None:
                writer.write(_encode(response, head_only=method == "HEAD"))
                async with asyncio.timeout(REQUEST_TIMEOUT_SEC):
                    await writer.drain()
        except (ConnectionError, TimeoutError, ssl.SSLError):
            pass  # the client went away, stalled or spoke no TLS: nothing to answer
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):  # ssl.SSLError is an OSError
                pass

    async def _read_and_dispatch(self, reader: asyncio.StreamReader) -> tuple[Response | None, str]:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SEC):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return Response.text(431, "request head too large\n"), "GET"
        except asyncio.IncompleteReadError:
            return None, "GET"  # closed before a full request: nobody to answer
        request = _parse_head(head)
        if request is None:
            return Response.text(400, "bad request\n"), "GET"
        if request.method not in _ALLOWED_METHODS:
            response = Response.text(405, "method not allowed\n")
            response.headers["Allow"] = ", ".join(_ALLOWED_METHODS)
            return response, request.method
        try:
            return self._handler(request), request.method
        except Exception:
            logger.exception("console: %s %s failed", request.method, request.path)
            return Response.text(500, "internal error (see the agent log)\n"), request.method


def _parse_head(head: bytes) -> Request | None:
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        return None
    if not version.startswith("HTTP/1.") or not target.startswith("/"):
        return None
    host = authorization = None
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if sep and name == "host":
            host = _host_without_port(value.strip().lower())
        elif sep and name == "authorization":
            authorization = value.strip()
    parts = urlsplit(target)
    return Request(
        method=method,
        path=unquote(parts.path),
        query=parts.query,
        host=host,
        authorization=authorization,
    )


def _host_without_port(host: str) -> str:
    if host.startswith("["):  # [::1]:8100
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _encode(response: Response, *, head_only: bool) -> bytes:
    reason = HTTPStatus(response.status).phrase
    headers = {
        "Content-Type": response.content_type,
        "Content-Length": str(len(response.body)),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Connection": "close",
        **response.headers,
    }
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body
