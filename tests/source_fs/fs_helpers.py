"""Helpers for the fs source tests: build a driver over a directory and drive its phases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fustor_core import Batch, EventType, Row
from fustor_source_fs import FsSource, FsSourceConfig

DEFAULT_PARAMS: dict[str, Any] = {}
"""Parameters every :func:`make_source` starts from (the ``watch_backend`` fixture sets one)."""


def make_source(root: os.PathLike[str] | str, **params: Any) -> FsSource:
    params = {**DEFAULT_PARAMS, **params}
    return FsSource("test", FsSourceConfig(uri=str(root), driver_params=params))


def rows_of(batches: list[Batch]) -> list[Row]:
    return [row for b in batches for e in b.events for row in e.rows]


async def collect(iterator: AsyncIterator[Batch]) -> list[Batch]:
    return [batch async for batch in iterator]


def run_phase(source: FsSource, phase: str, *args: Any) -> list[Batch]:
    async def main() -> list[Batch]:
        await source.start()
        try:
            return await collect(getattr(source, phase)(*args))
        finally:
            await source.stop()

    return asyncio.run(main())


def write(path: os.PathLike[str] | str, data: bytes = b"x") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


class Live:
    """A running realtime phase: every row it yields, as (event type, row)."""

    def __init__(self, source: FsSource) -> None:
        self.source = source
        self.events: list[tuple[str, Row]] = []
        self.rescans: list[list[str]] = []
        self.times: list[float] = []
        self.walls: list[float] = []
        """Wall-clock arrival time of each row (what Fusion stamps a tombstone with)."""
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Live:
        await self.source.start()
        self._task = asyncio.create_task(self._pump())
        await self.wait(
            lambda: self.source._realtime is not None and self.source._realtime.ready.is_set()
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.source.stop()

    async def _pump(self) -> None:
        async for batch in self.source.realtime():
            now, wall = time.perf_counter(), time.time()
            if batch.rescan:
                self.rescans.append(batch.rescan)
            for event in batch.events:
                for row in event.rows:
                    self.events.append((event.event_type.value, row))
                    self.times.append(now)
                    self.walls.append(wall)

    def upserts(self, path: str) -> list[Row]:
        return [r for t, r in self.events if t == EventType.UPDATE.value and r["path"] == path]

    def deleted(self, path: str) -> bool:
        return any(t == "delete" and r["path"] == path for t, r in self.events)

    def paths(self, kind: str = "update") -> set[str]:
        return {r["path"] for t, r in self.events if t == kind}

    async def wait(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got {self.events[-20:]!r}")
            await asyncio.sleep(0.01)

    async def settle(self, quiet: float = 0.3) -> None:
        """Wait until no new row arrived for ``quiet`` seconds."""
        count = -1
        while count != len(self.events):
            count = len(self.events)
            await asyncio.sleep(quiet)
