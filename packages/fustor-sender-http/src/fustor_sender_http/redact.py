"""Keep session ids (credentials on Fusion's receiver port) out of logs and status."""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "install_http_log_filter", "redact", "short_id"]

_UUID = re.compile(
    r"\b([0-9a-fA-F]{8})-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)


def short_id(session_id: str | None) -> str | None:
    """The 8-character prefix shown for a session id, or ``None``."""
    return f"{session_id[:8]}…" if session_id else None


def redact(text: str) -> str:
    """``text`` with every UUID (Fusion session ids, in URLs or error bodies) cut to 8 chars."""
    return _UUID.sub(r"\1…", text)


class RedactingFilter(logging.Filter):
    """Rewrites records so that no full session id reaches a handler.

    httpx logs every request URL at INFO, and ingest/heartbeat URLs carry the session id.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_FILTER = RedactingFilter()


def install_http_log_filter() -> None:
    """Attach the filter to the loggers of the HTTP stack (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
