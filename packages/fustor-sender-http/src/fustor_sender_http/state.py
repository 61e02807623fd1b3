"""The session id kept in the pipe's state dir, so a restarted agent can close its dead session."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

__all__ = ["SessionStore"]

logger = logging.getLogger(__name__)


class SessionStore:
    """``<state_dir>/fusion-session.json``: the open session id and the endpoint it belongs to.

    The file is private (0600): on Fusion's receiver port a session id is a credential. Calls
    are small synchronous file operations; callers run them off the event loop.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "fusion-session.json"

    def load(self, endpoint: str) -> str | None:
        """The stored session id if it was opened against ``endpoint``."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable %s: %s", self.path, exc)
            return None
        if not isinstance(data, dict) or data.get("endpoint") != endpoint:
            return None
        session_id = data.get("session_id")
        return session_id if isinstance(session_id, str) and session_id else None

    def save(self, endpoint: str, session_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"endpoint": endpoint, "session_id": session_id}, f)
        os.replace(tmp, self.path)

    def clear(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
