"""Until when realtime covered the tree, kept on disk: what changed while no agent watched.

A file put back to an older version while the agent was down (``cp -p``, ``tar x``, ``rsync
-a`` of a backup) is sent by the next snapshot with its older mtime, and Fusion keeps the newer
one it holds whenever the view outlived the agent (a restart within the session timeout, a
follower holding the view): snapshot and audit rows win only with a strictly newer mtime
(protocol §5.4). Realtime rows are applied whatever their mtime. So realtime writes here, every
few seconds while it is healthy and every directory is watched, the time up to which it saw
everything; the next process's first snapshot notes each entry whose ctime (which a put-back
sets to the time it happened) is newer than that, less ``recovery_ctime_slack_sec``, and
realtime sends those entries again, read from the disk, once the snapshot is over.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

__all__ = ["WATCHED_FILE", "WatchedUntil"]

log = logging.getLogger(__name__)

WATCHED_FILE = "watched-until.json"
_CLOCK_SLACK_SEC = 300.0
"""A time written this far ahead of the clock is still taken (the clock was set back a
little since); one further ahead is treated as damaged."""
WRITE_EVERY_SEC = 5.0
"""How often the time is written while realtime covers the tree: after a crash, entries
changed this much before it are sent again too (harmless)."""


class WatchedUntil:
    """``{"root": <the watched root>, "until": <wall time, seconds>}`` in ``state_dir``.

    ``state_dir`` ``None`` (a host that keeps nothing): nothing is read or written. Write
    errors are logged once and otherwise ignored: the file only saves work after a restart.
    """

    def __init__(self, state_dir: Path | None, root: str) -> None:
        self.path = None if state_dir is None else state_dir / WATCHED_FILE
        self.root = root
        self._written = 0.0
        self._failed = False
        self.held: float | None = None
        """While the time loaded at start has not been caught up on (the first snapshot's
        re-sends not queued yet), it is written instead of a later one: a process that dies
        before its catch-up leaves it to the next."""

    def load(self) -> float | None:
        """The last time written for this root; ``None`` when there is none (or it is
        another root's); ``0.0`` when the file is damaged (unreadable, not a past time):
        then everything the first snapshot finds goes again, since what changed while no
        agent watched cannot be told (helper 33)."""
        if self.path is None:
            return None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data["root"] != self.root:
                return None
            until = float(data["until"])
            if not 0.0 <= until <= time.time() + _CLOCK_SLACK_SEC:  # NaN included
                raise ValueError(f"until {data['until']!r} is not a past time")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning(
                "ignoring %s: %s; the first snapshot's entries all go again", self.path, exc
            )
            return 0.0
        return until

    def note(self, now: float | None = None, *, force: bool = False) -> None:
        """Realtime has seen everything up to ``now``: written at most every
        :data:`WRITE_EVERY_SEC` unless ``force``."""
        if self.path is None:
            return
        now = time.time() if now is None else now
        if not force and now - self._written < WRITE_EVERY_SEC:
            return
        self._written = now
        until = now if self.held is None else min(now, self.held)
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"root": self.root, "until": until}), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            if not self._failed:
                log.warning(
                    "cannot write %s: %s (changes made while no agent runs may be "
                    "missed after a restart)",
                    self.path,
                    exc,
                )
            self._failed = True
        else:
            self._failed = False
