"""How the echo sender renders rows and signals: one line each, text or JSON.

Rows are rendered by :mod:`fustor_core.rowtext`, shared with ``fustor-agent tap`` so that
both print a row the same way. JSON lines are encoded with orjson (compact separators), a
batch at a time: each event's line head once, then each row as it is (the wire form of a
valid UTF-8 row is the row itself), which is what a snapshot's millions of rows pay for.
"""

from __future__ import annotations

from typing import Any

import orjson

from fustor_core.events import Batch, Row
from fustor_core.rowtext import json_line, one_line, one_line_bytes, row_message, text_row
from fustor_core.rowtext import json_row as _stdlib_json_row

__all__ = ["json_lines", "json_row", "json_signal", "text_lines", "text_row", "text_signal"]


def json_row(pipe_id: str, message_source: str, event_type: str, row: Row) -> str:
    """``{"pipe_id", "message_source", "event_type", "row"}`` as one compact JSON line."""
    try:
        line = orjson.dumps(row_message(pipe_id, message_source, event_type, row)).decode()
        return one_line(line)
    except TypeError:
        # A value orjson refuses (a third-party driver's own type, a lone surrogate outside
        # the escaped path fields): the standard library's rendering, as before.
        return _stdlib_json_row(pipe_id, message_source, event_type, row)


def json_lines(pipe_id: str, batch: Batch) -> bytes:
    """Every row of ``batch`` as a :func:`json_row` line (UTF-8, each ending in a newline).

    A row orjson refuses (a name that is not valid UTF-8, a value of a third-party driver's
    own type) takes :func:`json_row`'s way, alone; the other rows of the batch do not.
    """
    dumps = orjson.dumps
    out: list[bytes] = []
    for event in batch.events:
        source, kind = event.message_source.value, event.event_type.value
        head = dumps({"pipe_id": pipe_id, "message_source": source, "event_type": kind})
        head = head[:-1] + b',"row":'
        for row in event.rows:
            try:
                out.append(head + dumps(row) + b"}\n")
            except TypeError:
                line = json_row(pipe_id, source, kind, row)
                out.append(line.encode("utf-8", "backslashreplace") + b"\n")
    return one_line_bytes(b"".join(out))


def text_lines(pipe_id: str, batch: Batch) -> bytes:
    """Every row of ``batch`` as a :func:`text_row` line (UTF-8, each ending in a newline)."""
    lines = [
        text_row(pipe_id, event.message_source.value, event.event_type.value, row) + "\n"
        for event in batch.events
        for row in event.rows
    ]
    return "".join(lines).encode("utf-8", "backslashreplace")


def json_signal(pipe_id: str, signal: str, details: dict[str, Any]) -> str:
    return json_line({"pipe_id": pipe_id, "signal": signal, **details})


def text_signal(pipe_id: str, signal: str, details: dict[str, Any]) -> str:
    extras = "".join(f" {k}={v}" for k, v in details.items())
    return one_line(f"[{pipe_id}] signal {signal}{extras}")
