"""Changes waiting to be turned into rows: bounded, merged per path, never blocking the reader."""

from __future__ import annotations

import math
import threading
import time
from enum import IntEnum
from typing import NamedTuple

__all__ = ["DELETES", "Change", "Pending", "Work", "merge"]


class Change(IntEnum):
    UPSERT = 1
    """Created, written and closed, attributes changed, moved in: ``is_atomic_write: true``."""
    PARTIAL = 2
    """Being written (IN_MODIFY): ``is_atomic_write: false``."""
    DELETE = 3
    DELETE_DIR = 4
    """A directory went away (deleted or moved): its whole subtree is gone with it."""
    REPLACE = 5
    """A directory went away and something new appeared at its path: both must be sent,
    since an upsert alone would leave the old directory's subtree in place."""


DELETES = frozenset({Change.DELETE, Change.DELETE_DIR})
"""Changes that end with the path gone (held back briefly before they are sent)."""


def merge(old: Change, new: Change) -> Change:
    """What one pending change of a path becomes when a newer event for it arrives.

    State, not history: a file deleted and created again is one upsert (the node is replaced,
    and no delete means no tombstone in Fusion to reject a re-creation with an old mtime); a
    directory that went away stays a replacement whatever appears at its path next.
    """
    if new is Change.PARTIAL and old is Change.UPSERT:
        # Still unsent news of a complete file: keep it (a new file's first write would
        # otherwise mark every new file as being written).
        return old
    if old is Change.DELETE_DIR or old is Change.REPLACE:
        if new is Change.DELETE or new is Change.DELETE_DIR:
            return Change.DELETE_DIR
        return Change.REPLACE
    return new


class Work(NamedTuple):
    changes: dict[str, Change]
    rescans: list[str]
    subtrees: list[str]
    overflow_since: float | None


class Pending:
    """Path -> latest change, in the order of each path's latest event.

    The inotify reader only ever adds (cheap, under a short lock); the emitter swaps the
    whole content out. Once ``limit`` paths wait, a new path is not stored: its directory
    goes into ``rescans`` instead (at most one entry per directory), which the emitter
    answers by listing that directory again. The reader therefore never waits, which is
    what keeps the kernel queue from overflowing.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.changes: dict[str, Change] = {}
        self.rescans: dict[str, None] = {}
        self.subtrees: dict[str, None] = {}
        self.overflow_since: float | None = None
        """Set after a kernel queue overflow: changes after this wall time may be lost."""
        self.lock = threading.Lock()
        self.ready = threading.Condition(self.lock)
        self.degraded = 0
        """Changes turned into directory rescans because the structure was full."""
        self.since: float | None = None
        """When (monotonic s) the oldest change still waiting here was added; ``None`` when
        nothing waits; ``-inf`` while a change of unknown age waits (``resent=True``: a
        path sent again, whose change may be hours old)."""
        self.taken_since: float | None = None
        """``since`` of the work :meth:`take` handed out, until its taker is done with it
        (it sets this back to ``None``): read after ``since``, the two leave no gap."""

    def _added(self, resent: bool = False) -> None:
        """Lock held: something was added; note when, if it is the oldest that waits."""
        if resent:
            self.since = -math.inf
        elif self.since is None:
            self.since = time.monotonic()
        self.ready.notify()

    def add(self, path: str, change: Change, parent: str, resent: bool = False) -> Change | None:
        """Record a change; return what is now pending for ``path`` (``None``: degraded).
        ``resent``: not a change seen just now but one sent again (see :attr:`since`)."""
        with self.lock:
            changes = self.changes
            old = changes.pop(path, None)
            if old is None and len(changes) >= self.limit:
                self.degraded += 1
                self.rescans[parent] = None
                self._added(resent)
                return None
            if old is not None:
                change = merge(old, change)
            changes[path] = change
            self._added(resent)
            return change

    def add_rescan(self, rel_dir: str) -> None:
        with self.lock:
            self.rescans[rel_dir] = None
            self._added()

    def add_subtree(self, rel_dir: str, resent: bool = False) -> None:
        """A directory appeared (created or moved in): list all of it, watching as we go."""
        with self.lock:
            self.subtrees[rel_dir] = None
            self._added(resent)

    def set_overflow(self, since: float) -> None:
        with self.lock:
            if self.overflow_since is None or since < self.overflow_since:
                self.overflow_since = since
            self.ready.notify()

    def wake(self) -> None:
        with self.lock:
            self.ready.notify()

    def take(self, timeout: float) -> Work:
        """Wait up to ``timeout`` for work; return and clear everything that waits."""
        with self.lock:
            if not (
                self.changes or self.rescans or self.subtrees or self.overflow_since is not None
            ):
                self.ready.wait(timeout)
            work = Work(self.changes, list(self.rescans), list(self.subtrees), self.overflow_since)
            self.changes, self.rescans, self.subtrees = {}, {}, {}
            self.overflow_since = None
            if self.since is not None:
                self.taken_since = self.since
            self.since = None
            return work

    def __len__(self) -> int:
        return len(self.changes)
