"""The local control channel: a unix socket in $FUSTOR_HOME speaking JSON lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fustor_core import FustorError

__all__ = ["NotRunning", "request", "serve"]

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_REQUEST = 64 * 1024


class NotRunning(FustorError):
    def __init__(self, home: Path) -> None:
        super().__init__(f"not running (no agent answers for FUSTOR_HOME={home})")
        self.home = home


async def serve(path: Path, handler: Handler) -> asyncio.AbstractServer:
    """Listen on ``path`` (owner-only); one JSON request line, one JSON response line."""

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            try:
                req = json.loads(line)
                response = await handler(req if isinstance(req, dict) else {})
            except ValueError:
                response = {"error": "invalid request"}
            writer.write(json.dumps(response, default=str).encode() + b"\n")
            await writer.drain()
        except Exception:
            logger.exception("control request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a stale socket of a dead agent; the instance lock is already ours
    server = await asyncio.start_unix_server(on_client, path=str(path), limit=MAX_REQUEST)
    os.chmod(path, 0o600)
    return server


def request(path: Path, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Ask the running agent; raises :class:`NotRunning` when nothing answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise NotRunning(path.parent) from None
        chunks = []
        try:
            sock.sendall(json.dumps(payload).encode() + b"\n")
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except TimeoutError:
            raise FustorError(f"the agent did not answer on {path} within {timeout:.0f}s") from None
    data = json.loads(b"".join(chunks) or b"{}")
    if not isinstance(data, dict):
        raise FustorError("the agent answered the control request with something unexpected")
    return data
