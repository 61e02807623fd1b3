"""Logging of the agent process: ``$FUSTOR_HOME/logs/agent.log`` (rotated) and stderr."""

from __future__ import annotations

import logging
import logging.handlers
import sys

from fustor_agent.home import Home

__all__ = ["setup_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


def setup_logging(home: Home, *, to_stderr: bool, level: int = logging.INFO) -> None:
    """Append to the log file (never truncated on start) and optionally mirror to stderr."""
    home.log_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_fustor", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(
            home.log_file, mode="a", maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    ]
    if to_stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    formatter = logging.Formatter(FORMAT)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._fustor = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
