"""A loopback TCP proxy that delays, resets or blackholes connections on demand (fault tests)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import Counter
from typing import Any

from ports import free_port

__all__ = ["MODES", "FaultProxy"]

MODES = ("pass", "delay", "reset", "blackhole")


class _Link:
    """One client connection and its upstream; ``dead`` links never forward again."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.blackholed = False

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is None:
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # Linger 0: close() sends a RST instead of a FIN, as a crashed peer would.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()


class FaultProxy:
    """Listens on ``127.0.0.1:port`` and forwards to ``target_port`` unless told otherwise.

    Modes: ``pass``; ``delay`` (every chunk, both ways, waits ``delay_sec``); ``reset`` (open
    and new connections are torn down with a RST); ``blackhole`` (open and new connections
    swallow everything and never answer, like a dropped route; they stay dead afterwards, as
    the client must give up on them). Runs its own event loop in a thread.
    """

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.mode = "pass"
        self.delay_sec = 0.0
        self.counts: Counter[str] = Counter()
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy")
        self._server: asyncio.AbstractServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def set_mode(self, mode: str, delay_sec: float = 0.0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r}")
        self._call(self._switch(mode, delay_sec))

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.reset()

    async def _switch(self, mode: str, delay_sec: float) -> None:
        self.mode, self.delay_sec = mode, delay_sec
        self.counts[f"mode:{mode}"] += 1
        for link in list(self._links):
            if mode == "reset":
                self.counts["reset"] += 1
                link.reset()
            elif mode == "blackhole":
                self.counts["blackholed"] += 1
                link.blackholed = True

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        self._links.add(link)
        self.counts["connections"] += 1
        try:
            if self.mode == "reset":
                self.counts["reset"] += 1
                link.reset()
                return
            if self.mode == "blackhole":
                self.counts["blackholed"] += 1
                link.blackholed = True
            else:
                up_reader, link.upstream = await asyncio.open_connection(
                    "127.0.0.1", self.target_port
                )
            if link.blackholed or link.upstream is None:
                await self._swallow(reader)
                return
            await asyncio.gather(
                self._pump(reader, link.upstream, link),
                self._pump(up_reader, writer, link),
            )
        except OSError:
            link.reset()
        finally:
            self._links.discard(link)
            for w in (writer, link.upstream):
                if w is not None:
                    w.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(65536):
                pass

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                if self.mode == "delay" and self.delay_sec > 0:
                    self.counts["delayed_chunks"] += 1
                    await asyncio.sleep(self.delay_sec)
                if link.blackholed:
                    continue
                writer.write(chunk)
                await writer.drain()
        except OSError:
            link.reset()
        finally:
            if not link.blackholed and writer.can_write_eof():
                with contextlib.suppress(OSError):
                    writer.write_eof()
