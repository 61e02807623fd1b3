"""``fustor-agent tap``: print the rows a running agent's pipes send, as they are accepted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fustor_agent import control
from fustor_agent.home import Home
from fustor_core import FustorError
from fustor_core.rowtext import json_line, text_row

__all__ = ["follow"]

Out = Callable[[str], None]


def _render(message: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json_line(message)
    return text_row(
        message["pipe_id"], message["message_source"], message["event_type"], message["row"]
    )


def follow(
    home: Home,
    pipes: list[str],
    limit: int | None,
    fmt: str,
    out: Out,
    note: Out,
    buffer_rows: int | None = None,
) -> int:
    """Print rows (``fmt`` ``text`` or ``json``: the echo sender's line formats) to ``out``
    until ``limit`` rows or the agent stops; losses and the end go to ``note``.

    Returns the number of rows printed. Raises :class:`control.NotRunning` when no agent
    runs and :class:`FustorError` for an unknown pipe.
    """
    printed = 0
    if limit is not None and limit <= 0:
        return 0
    stream = control.stream(
        home.control_socket, {"cmd": "tap", "pipes": pipes, "buffer_rows": buffer_rows}
    )
    try:
        for message in stream:
            if "error" in message:
                raise FustorError(str(message["error"]))
            if "tap" in message:
                which = ", ".join(message["tap"]) if message["tap"] else "every pipe"
                note(f"tap: {which} (Ctrl-C to stop)")
            elif "dropped" in message:
                note(
                    f"tap: {message['dropped']} rows not shown: this tap fell behind "
                    f"({message['dropped_total']} so far; delivery is not affected)"
                )
            else:
                out(_render(message, fmt))
                printed += 1
                if limit is not None and printed >= limit:
                    return printed
        note("tap: the agent stopped")
        return printed
    except control.NotRunning:
        raise control.NotRunning(home.root) from None  # named by its home, not its socket
    finally:
        stream.close()
