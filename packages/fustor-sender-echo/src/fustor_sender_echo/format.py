"""How the echo sender renders rows and signals: one line each, text or JSON."""

from __future__ import annotations

import json
from typing import Any

from fustor_core import Row
from fustor_core.paths import wire_path

__all__ = ["json_row", "json_signal", "text_row", "text_signal", "wire_row"]


def wire_row(row: Row) -> Row:
    """The row as it would go on the wire (paths that are not valid UTF-8 escaped)."""
    out = dict(row)
    for key in ("path", "parent_path"):
        value = out.get(key)
        if isinstance(value, str):
            out[key] = wire_path(value)
    return out


def json_row(pipe_id: str, message_source: str, event_type: str, row: Row) -> str:
    return json.dumps(
        {"pipe_id": pipe_id, "message_source": message_source, "event_type": event_type,
         "row": wire_row(row)},
        ensure_ascii=False,
    )


def json_signal(pipe_id: str, signal: str, details: dict[str, Any]) -> str:
    return json.dumps({"pipe_id": pipe_id, "signal": signal, **details}, ensure_ascii=False)


def text_row(pipe_id: str, message_source: str, event_type: str, row: Row) -> str:
    path = json.dumps(wire_path(row.get("path", "")), ensure_ascii=False)
    if event_type == "delete":
        return f"[{pipe_id}] {message_source:<13} delete {path}"
    kind = "dir " if row.get("is_directory") else "file"
    extras = "".join(
        f" {key}={row[key]}"
        for key in ("is_atomic_write", "audit_skipped")
        if key in row
    )
    return (
        f"[{pipe_id}] {message_source:<13} {event_type} {kind} {path} "
        f"size={row.get('size', 0)} mtime={row.get('modified_time', 0.0):.3f}{extras}"
    )


def text_signal(pipe_id: str, signal: str, details: dict[str, Any]) -> str:
    extras = "".join(f" {k}={v}" for k, v in details.items())
    return f"[{pipe_id}] signal {signal}{extras}"
