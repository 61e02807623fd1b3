"""One row as one line of text or JSON: what the echo sender prints and ``tap`` shows."""

from __future__ import annotations

import json

from fustor_core.events import Row
from fustor_core.paths import wire_path

__all__ = ["json_row", "row_message", "text_row", "wire_row"]


def wire_row(row: Row) -> Row:
    """The row as it would go on the wire (paths that are not valid UTF-8 escaped)."""
    out = dict(row)
    for key in ("path", "parent_path"):
        value = out.get(key)
        if isinstance(value, str):
            out[key] = wire_path(value)
    return out


def row_message(pipe_id: str, message_source: str, event_type: str, row: Row) -> dict[str, object]:
    """``{"pipe_id", "message_source", "event_type", "row"}``: the JSON shape of one row."""
    return {
        "pipe_id": pipe_id,
        "message_source": message_source,
        "event_type": event_type,
        "row": wire_row(row),
    }


def json_row(pipe_id: str, message_source: str, event_type: str, row: Row) -> str:
    return json.dumps(row_message(pipe_id, message_source, event_type, row), ensure_ascii=False)


def text_row(pipe_id: str, message_source: str, event_type: str, row: Row) -> str:
    """``[pipe] source event kind "path" size=… mtime=…``; a delete shows only the path."""
    path = json.dumps(wire_path(row.get("path", "")), ensure_ascii=False)
    if event_type == "delete":
        return f"[{pipe_id}] {message_source:<13} delete {path}"
    kind = "dir " if row.get("is_directory") else "file"
    extras = "".join(
        f" {key}={row[key]}" for key in ("is_atomic_write", "audit_skipped") if key in row
    )
    return (
        f"[{pipe_id}] {message_source:<13} {event_type} {kind} {path} "
        f"size={row.get('size', 0)} mtime={row.get('modified_time', 0.0):.3f}{extras}"
    )
