"""Events and batches: what a source produces and a sender delivers.

Rows are plain ``dict`` objects (the hot path handles millions of them, so no per-row model
object). The keys follow the Fusion fs row (docs/fusion-protocol.md §2.3): ``path``
(root-relative, leading ``/``), ``size``, ``modified_time``, ``created_time``,
``is_directory`` and, depending on the phase, ``is_atomic_write``, ``parent_path``,
``parent_mtime``, ``audit_skipped``. Delete rows need only ``path``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Batch", "Event", "EventType", "MessageSource", "Row", "split_batch"]

Row = dict[str, Any]


class EventType(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


class MessageSource(StrEnum):
    """The arbitration tier of a row; Fusion merges rows by it.

    The values are the tier names of the Fusion protocol and the keys of a pipe's
    ``rows_sent`` in status and metrics, so they stay as they are; the member names are the
    concept names used across the SDK, core and host.
    """

    REALTIME = "realtime"
    SNAPSHOT = "snapshot"
    AUDIT = "audit"
    SCAN = "on_demand_job"
    """Rows of an on-demand scan (``SourceDriver.scan``), asked for by the peer."""
    ON_DEMAND_JOB = "on_demand_job"
    """Deprecated alias of :attr:`SCAN` (SDK 1.0 name); the same member."""


@dataclass(slots=True)
class Event:
    """Rows of one type from one tier, in order. ``rows`` is never empty when sent."""

    event_type: EventType
    rows: list[Row]
    message_source: MessageSource


@dataclass(slots=True)
class Batch:
    """What a source phase yields: events in capture order, all of one message source.

    ``rescan`` is set by a realtime source when it knows it lost events (an inotify queue
    overflow): the paths (root-relative) whose state is unknown, ``["/"]`` for everything.
    The host then runs the recovery (the leader audits at once with a forgotten cache). A
    batch may carry only a ``rescan`` and no events.
    """

    message_source: MessageSource
    events: list[Event] = field(default_factory=list)
    rescan: list[str] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return sum(len(e.rows) for e in self.events)

    @classmethod
    def of(cls, source: MessageSource, event_type: EventType, rows: list[Row]) -> Batch:
        """A batch with one event (the common case for snapshot and audit)."""
        return cls(source, [Event(event_type, rows, source)])


def split_batch(batch: Batch, max_rows: int) -> Iterator[Batch]:
    """``batch`` cut into batches of at most ``max_rows`` rows (``max_rows`` ≥ 1), events and
    rows in order; an event that fits is passed on as it is (no copy of its rows). The host's
    delivery and the testing kit's runner both split with this."""
    if batch.row_count <= max_rows:
        yield batch
        return
    events: list[Event] = []
    count = 0
    for event in batch.events:
        start = 0
        while start < len(event.rows):
            take = min(max_rows - count, len(event.rows) - start)
            rows = event.rows if take == len(event.rows) else event.rows[start : start + take]
            events.append(Event(event.event_type, rows, event.message_source))
            count += take
            start += take
            if count == max_rows:
                yield Batch(batch.message_source, events)
                events, count = [], 0
    if events:
        yield Batch(batch.message_source, events)
