"""Logging of the agent process: text or JSON lines to the rotated file, stderr or journald.

Under systemd (``JOURNAL_STREAM`` names our stderr) each line goes to stderr with a syslog
priority prefix (``<3>``) and no timestamp of its own, so ``journalctl -p err`` works.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.handlers
import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fustor_agent.home import Home

__all__ = [
    "LEVELS",
    "LogSetup",
    "current_pipe",
    "journald_stderr",
    "problem_lines",
    "setup_logging",
]

LEVELS = ("debug", "info", "warning", "error", "critical")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
CHATTY_LIBRARIES = ("httpx", "httpcore")
"""Their INFO lines are one per request (heartbeats included): logged at DEBUG here."""

_PRIORITY = {  # syslog priorities, as journald reads them from a "<N>" prefix
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}

current_pipe: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fustor_current_pipe", default=None
)
"""The pipe a task works for; tasks (and ``to_thread`` calls) inherit it when created."""


@dataclass(frozen=True, slots=True)
class LogSetup:
    """Where and how the agent process logs."""

    level: str = "info"
    """One of :data:`LEVELS`."""
    format: Literal["text", "json"] = "text"
    file: bool | None = None
    """Write ``$FUSTOR_HOME/logs/agent.log``; ``None``: yes, except under journald."""
    stderr: bool = True
    """Mirror to stderr (a foreground agent); always on under journald."""


def journald_stderr() -> bool:
    """Whether stderr is connected to the journal (systemd sets ``JOURNAL_STREAM=dev:ino``)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in value.split(":"))
        stat = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == (device, inode)


class _ContextFilter(logging.Filter):
    """Adds ``pipe_id`` to every record and moves chatty library INFO lines to DEBUG."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "pipe_id", None) is None:
            record.pipe_id = current_pipe.get()
        if record.levelno == logging.INFO and record.name.startswith(CHATTY_LIBRARIES):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self.threshold


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, and ``pipe_id`` / ``exception`` when there is one."""

    def __init__(self, *, timestamp: bool = True) -> None:
        super().__init__()
        self.timestamp = timestamp

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {}
        if self.timestamp:
            when = datetime.fromtimestamp(record.created, UTC)
            entry["timestamp"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        entry.update(level=record.levelname, logger=record.name, message=record.getMessage())
        pipe_id = getattr(record, "pipe_id", None)
        if pipe_id is not None:
            entry["pipe_id"] = pipe_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class JournalFormatter(logging.Formatter):
    """Each line prefixed with its syslog priority; journald adds the time itself."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in self.inner.format(record).splitlines())


_TEXT_PROBLEM = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (WARNING|ERROR|CRITICAL) (.*)$")
"""A warning or worse written with :data:`TEXT_FORMAT` (asctime, level, then the rest)."""


def problem_lines(data: bytes) -> list[str]:
    """``LEVEL logger: message`` of each warning or worse in log file content written by
    :func:`setup_logging`, text or JSON lines; a traceback's further lines are left out."""
    found = []
    for line in data.splitlines():
        if line.startswith(b"{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            level = str(entry.get("level", "")).upper()
            if level in ("WARNING", "ERROR", "CRITICAL"):
                found.append(f"{level} {entry.get('logger', '')}: {entry.get('message', '')}")
        elif match := _TEXT_PROBLEM.match(line):
            found.append(f"{match[1].decode()} {match[2].decode('utf-8', 'replace')}")
    return found


def _formatter(form: str, *, journal: bool) -> logging.Formatter:
    if form == "json":
        inner: logging.Formatter = JsonFormatter(timestamp=not journal)
    else:
        inner = logging.Formatter("%(name)s: %(message)s" if journal else TEXT_FORMAT)
    return JournalFormatter(inner) if journal else inner


def setup_logging(home: Home, setup: LogSetup) -> None:
    """Replace the agent's handlers on the root logger according to ``setup``.

    The file is appended to (never truncated) and rotated at 10 MB, 5 kept. Raises
    ``ValueError`` for a level not in :data:`LEVELS`.
    """
    if setup.level.lower() not in LEVELS:
        raise ValueError(f"unknown log level {setup.level!r} (one of: {', '.join(LEVELS)})")
    threshold = logging.getLevelName(setup.level.upper())
    journal = journald_stderr()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_fustor", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[tuple[logging.Handler, logging.Formatter]] = []
    if setup.file if setup.file is not None else not journal:
        home.log_dir.mkdir(parents=True, exist_ok=True)
        # backslashreplace: a name that is not valid UTF-8 (surrogate escapes) is written
        # escaped, as on stderr, instead of its whole line being lost to a logging error.
        file_handler = logging.handlers.RotatingFileHandler(
            home.log_file,
            mode="a",
            maxBytes=MAX_BYTES,
            backupCount=BACKUPS,
            encoding="utf-8",
            errors="backslashreplace",
        )
        handlers.append((file_handler, _formatter(setup.format, journal=False)))
    if setup.stderr or journal:
        handlers.append(
            (logging.StreamHandler(sys.stderr), _formatter(setup.format, journal=journal))
        )
    for handler, formatter in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_ContextFilter(threshold))
        handler._fustor = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(threshold)
