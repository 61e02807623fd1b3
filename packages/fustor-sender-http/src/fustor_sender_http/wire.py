"""Encode batches and phase signals as Fusion 0.8.17 ingest bodies (protocol §2, §3.5).

Guarantees, each of which protects a 0.8.17 view from silent poisoning (protocol §5.3, B9, B10):
every event has a lowercase ``event_type``, ``event_schema: "fs"``, ``table: "files"``, the row
keys as ``fields``, a non-empty ``rows`` list and its own ``message_source``; data batches never
carry ``metadata``; upserts without ``modified_time`` are left out (Fusion would store 0.0 or
count a handler error); every string is valid UTF-8, non-UTF-8 names converted by
:func:`fustor_core.paths.wire_path`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import orjson

from fustor_core import Batch, EventType, MessageSource, Row
from fustor_core.paths import wire_path

__all__ = [
    "EncodedBatch",
    "batch_source_type",
    "encode_batch",
    "encode_body",
    "signal_body",
    "wire_event",
    "without_audit_flags",
]

logger = logging.getLogger(__name__)

# The reference agent's batch `source_type` for realtime is "message"; the other tiers use
# their own name. Only "snapshot" and "audit" (with is_end) mean anything to Fusion.
_BATCH_SOURCE_TYPE = {
    MessageSource.REALTIME: "message",
    MessageSource.SNAPSHOT: "snapshot",
    MessageSource.AUDIT: "audit",
    MessageSource.SCAN: "on_demand_job",
}


def batch_source_type(source: MessageSource) -> str:
    return _BATCH_SOURCE_TYPE[source]


@dataclass(slots=True)
class EncodedBatch:
    """Request bodies for one batch, in order, plus what was left out."""

    bodies: list[bytes]
    rows: int
    events: int
    dropped_rows: int


def encode_body(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON; any string Fusion could not take is made wire-safe first."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        # orjson refuses strings that are not valid UTF-8 (names carried with surrogate
        # escapes): the slow path, taken only for the bodies that need it, so valid trees pay
        # nothing for it.
        return orjson.dumps(_wire_safe(payload))


def _wire_safe(value: Any) -> Any:
    if isinstance(value, str):
        return wire_path(value)
    if isinstance(value, dict):
        return {k: _wire_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire_safe(v) for v in value]
    return value


def _all_valid(event_type: EventType, rows: list[Row]) -> bool:
    """Whether every row is fine: checked per batch, the loops in C (``map`` over
    ``dict.get``), so a valid batch, the usual case, costs no Python work per row."""
    try:
        if not all(map(dict.get, rows, repeat("path"))):
            return False
        return event_type is EventType.DELETE or None not in map(
            dict.get, rows, repeat("modified_time")
        )
    except TypeError:  # a row that is not a dict
        return False


def _valid_rows(event_type: EventType, rows: list[Row]) -> tuple[list[Row], int]:
    """The rows Fusion can apply without a handler error, and how many were left out."""
    if _all_valid(event_type, rows):
        return rows, 0
    if event_type is EventType.DELETE:
        good = [r for r in rows if isinstance(r, dict) and r.get("path")]
    else:
        good = [
            r
            for r in rows
            if isinstance(r, dict) and r.get("path") and r.get("modified_time") is not None
        ]
    return good, len(rows) - len(good)


def without_audit_flags(rows: list[Row]) -> list[Row]:
    """``rows`` without ``audit_skipped`` (copies of the rows that have it: a batch's rows
    are shared, with a tap for one)."""
    return [
        {k: v for k, v in r.items() if k != "audit_skipped"} if "audit_skipped" in r else r
        for r in rows
    ]


def _events(
    batch: Batch, max_rows_per_event: int, index: int, strip_audit_flags: bool = False
) -> Iterator[tuple[dict, int]]:
    """Wire events of ``batch`` (rows split by ``max_rows_per_event``) with their row counts."""
    for event in batch.events:
        rows, dropped = _valid_rows(event.event_type, event.rows)
        if strip_audit_flags:
            rows = without_audit_flags(rows)
        if dropped:
            logger.warning(
                "left out %d %s row(s) without path/modified_time (Fusion would count errors)",
                dropped,
                event.message_source.value,
            )
        for start in range(0, len(rows), max_rows_per_event):
            chunk = rows[start : start + max_rows_per_event]
            yield wire_event(event.event_type, chunk, event.message_source, index), len(chunk)


def wire_event(event_type: EventType, rows: list[Row], source: MessageSource, index: int) -> dict:
    """One wire event (protocol §2.2): ``rows`` (not empty) of one type from one tier."""
    return {
        "event_type": event_type.value,
        "event_schema": "fs",
        "table": "files",
        "fields": list(rows[0]),
        "rows": rows,
        "index": index,
        "message_source": source.value,
    }


def encode_batch(
    batch: Batch, *, max_batch_size: int, max_rows_per_event: int, strip_audit_flags: bool = False
) -> EncodedBatch:
    """Bodies of ``POST /ingest/{sid}/events`` for ``batch``, each with ≤ ``max_batch_size`` rows.

    Events keep their order across bodies, so sending the bodies in order keeps capture order.
    ``strip_audit_flags``: rows go without ``audit_skipped`` (a realtime row carries it only
    while the audit that skipped its directory may still be open in Fusion: protocol §5.5,
    see ``FusionSender.send``).
    """
    source_type = batch_source_type(batch.message_source)
    index = int(time.time() * 1000)
    bodies: list[bytes] = []
    pending: list[dict] = []
    pending_rows = total_rows = total_events = 0

    def flush() -> None:
        nonlocal pending, pending_rows
        if pending:
            bodies.append(
                encode_body({"source_type": source_type, "is_end": False, "events": pending})
            )
            pending, pending_rows = [], 0

    per_event = min(max_rows_per_event, max_batch_size)
    for wire_event, n in _events(batch, per_event, index, strip_audit_flags):
        if pending_rows + n > max_batch_size:
            flush()
        pending.append(wire_event)
        pending_rows += n
        total_rows += n
        total_events += 1
    flush()
    return EncodedBatch(bodies, total_rows, total_events, batch.row_count - total_rows)


def signal_body(source_type: str, *, is_end: bool = False, metadata: dict | None = None) -> bytes:
    """An event-less batch: a phase end (``snapshot``/``audit``, ``is_end``) or a job completion."""
    payload: dict[str, Any] = {"source_type": source_type, "is_end": is_end, "events": []}
    if metadata is not None:
        payload["metadata"] = metadata
    return encode_body(payload)
