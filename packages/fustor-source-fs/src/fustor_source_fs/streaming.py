"""Run a blocking walk job in a thread and stream its rows to the loop as batches."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable

from fustor_core import Batch, EventType, MessageSource
from fustor_source_fs.channel import Channel, ChannelClosed
from fustor_source_fs.walk import RowSink, WalkCancelled

__all__ = ["WalkJob", "stream_walk"]

log = logging.getLogger(__name__)

WalkJob = Callable[[RowSink, threading.Event], None]
"""Blocking work: add rows to the sink; stop promptly once the event is set."""


async def stream_walk(
    job: WalkJob,
    source: MessageSource,
    *,
    batch_size: int,
    capacity: int,
    name: str,
    on_sink: Callable[[RowSink], None] | None = None,
    stops: set[threading.Event] | None = None,
) -> AsyncIterator[Batch]:
    """Yield the job's rows as ``source`` upsert batches; cancelling stops the job."""
    loop = asyncio.get_running_loop()
    channel = Channel(loop, capacity)
    stop = threading.Event()
    if stops is not None:
        stops.add(stop)

    def emit(rows: list) -> None:
        channel.put(Batch.of(source, EventType.UPDATE, rows))

    sink = RowSink(emit, batch_size)
    if on_sink is not None:
        on_sink(sink)

    def run() -> None:
        try:
            job(sink, stop)
            sink.flush()
        except (ChannelClosed, WalkCancelled):
            pass
        except BaseException as exc:  # raised again on the loop side
            channel.finish(exc)
            return
        channel.finish()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        async for batch in channel:
            yield batch
    finally:
        stop.set()
        channel.close()
        if stops is not None:
            stops.discard(stop)
