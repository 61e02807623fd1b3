"""A bounded hand-off of batches from worker threads to the event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

__all__ = ["Channel", "ChannelClosed"]

_END = object()


class ChannelClosed(Exception):
    """The consumer went away (the phase was cancelled): the producing thread must stop."""


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Channel:
    """Threads ``put`` (blocking while ``capacity`` items are unconsumed); the loop ``get``s,
    or iterates with ``async for`` until the producer finishes.

    One ``call_soon_threadsafe`` per item, so items should be whole batches, never rows.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self._loop = loop
        self._slots = threading.Semaphore(capacity)
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = threading.Event()
        self._count_lock = threading.Lock()
        self.unconsumed = 0
        """Items put and not taken by the consumer yet."""

    def put(self, item: Any) -> None:
        """Hand one item over; raise :class:`ChannelClosed` once the consumer is gone."""
        while not self._slots.acquire(timeout=0.05):
            if self.closed.is_set():
                raise ChannelClosed
        if self.closed.is_set():
            raise ChannelClosed
        with self._count_lock:
            self.unconsumed += 1
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError as exc:  # the loop is closed
            self.closed.set()
            raise ChannelClosed from exc

    def finish(self, error: BaseException | None = None) -> None:
        """Tell the consumer the producer is done (with an error to raise there, or not)."""
        try:
            self._loop.call_soon_threadsafe(
                self._queue.put_nowait, _END if error is None else _Failure(error)
            )
        except RuntimeError:
            pass

    async def get(self) -> Any:
        """The next item; raises ``StopAsyncIteration`` at the end, or the producer's error."""
        item = await self._queue.get()
        if item is _END:
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            raise item.error
        self._slots.release()
        with self._count_lock:
            self.unconsumed -= 1
        return item

    def __aiter__(self) -> Channel:
        return self

    __anext__ = get

    def close(self) -> None:
        """The consumer stops: producers blocked in ``put`` give up within 50 ms."""
        self.closed.set()
