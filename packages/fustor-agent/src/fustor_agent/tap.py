"""Live copies of the rows pipes send, for ``fustor-agent tap``: bounded, never blocking.

Delivery calls :meth:`TapHub.publish` with every batch a sender accepted. Each tap keeps at
most ``TAP_BUFFER_ROWS`` rows; when its reader falls behind it drops further rows *for
itself*, counts them and says so in its stream. Publishing never waits and costs nothing
when no tap is open.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from fustor_core import Batch, Row
from fustor_core.rowtext import row_message

__all__ = ["MAX_TAP_BUFFER_ROWS", "TAP_BUFFER_ROWS", "Tap", "TapHub"]

logger = logging.getLogger(__name__)

TAP_BUFFER_ROWS = 10_000
MAX_TAP_BUFFER_ROWS = 1_000_000


class Tap:
    """One reader's view: the rows of ``pipes`` (all pipes when None), at most ``capacity``."""

    def __init__(self, pipes: frozenset[str] | None, capacity: int = TAP_BUFFER_ROWS) -> None:
        self.pipes = pipes
        self.capacity = capacity
        self.dropped = 0
        self._rows: deque[tuple[str, str, str, Row]] = deque()
        self._wake = asyncio.Event()
        self.closed = False

    def offer(self, pipe_id: str, batch: Batch) -> None:
        for event in batch.events:
            source, kind = event.message_source.value, event.event_type.value
            room = self.capacity - len(self._rows)
            take = event.rows[: max(0, room)]
            self.dropped += len(event.rows) - len(take)
            self._rows.extend((pipe_id, source, kind, row) for row in take)
        self._wake.set()

    def close(self) -> None:
        """End the stream (the agent stops)."""
        self.closed = True
        self._wake.set()

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Row messages (``fustor_core.rowtext.row_message``), and ``{"dropped": n,
        "dropped_total": t}`` before the rows that follow a loss; ends when closed."""
        reported = 0
        while True:
            while self._rows or self.dropped != reported:
                if self.dropped != reported:
                    yield {"dropped": self.dropped - reported, "dropped_total": self.dropped}
                    reported = self.dropped
                if self._rows:
                    yield row_message(*self._rows.popleft())
            if self.closed:
                return
            self._wake.clear()
            await self._wake.wait()


class TapHub:
    """The agent's open taps."""

    def __init__(self) -> None:
        self._taps: set[Tap] = set()

    def publish(self, pipe_id: str, batch: Batch) -> None:
        """Copy ``batch`` to every tap that wants ``pipe_id``; never raises, never waits."""
        for tap in list(self._taps):
            if tap.pipes is None or pipe_id in tap.pipes:
                try:
                    tap.offer(pipe_id, batch)
                except Exception:  # a tap must never break delivery
                    logger.exception("tap: copying a batch of pipe %s failed", pipe_id)

    async def stream(
        self, pipes: frozenset[str] | None, capacity: int = TAP_BUFFER_ROWS
    ) -> AsyncIterator[dict[str, Any]]:
        """A new tap's messages; the tap exists while the iterator is open."""
        tap = Tap(pipes, capacity)
        self._taps.add(tap)
        try:
            yield {"tap": sorted(pipes) if pipes is not None else None, "buffer_rows": capacity}
            async for message in tap.messages():
                yield message
        finally:
            self._taps.discard(tap)

    def close(self) -> None:
        for tap in self._taps:
            tap.close()

    def __len__(self) -> int:
        return len(self._taps)
