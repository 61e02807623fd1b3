"""How the echo sender renders rows and signals: one line each, text or JSON.

Rows are rendered by :mod:`fustor_core.rowtext`, shared with ``fustor-agent tap`` so that
both print a row the same way.
"""

from __future__ import annotations

import json
from typing import Any

from fustor_core.rowtext import json_row, text_row, wire_row

__all__ = ["json_row", "json_signal", "text_row", "text_signal", "wire_row"]


def json_signal(pipe_id: str, signal: str, details: dict[str, Any]) -> str:
    return json.dumps({"pipe_id": pipe_id, "signal": signal, **details}, ensure_ascii=False)


def text_signal(pipe_id: str, signal: str, details: dict[str, Any]) -> str:
    extras = "".join(f" {k}={v}" for k, v in details.items())
    return f"[{pipe_id}] signal {signal}{extras}"
