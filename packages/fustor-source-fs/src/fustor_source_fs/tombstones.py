"""Which existing paths Fusion may be hiding behind a tombstone, and when an audit restores them.

Fusion 0.8.17 stamps a tombstone on every path a realtime delete names (docs/fusion-protocol.md
§5.4; docs/CONSISTENCY_DESIGN.md section 8). Until it is purged, any upsert of that path (every
tier, realtime included) whose ``modified_time`` is not newer than the deletion time is dropped.
Fusion purges a tombstone only at the end of an audit, once it is older than the server's
``tombstone_ttl_seconds`` (docs/fusion-protocol.md §5.5). The realtime emitter avoids most
tombstones on paths that exist (deletes are held briefly and checked against the disk before
they go out); this tracker
covers the rest: a path deleted by us and seen again (by realtime or by an audit listing) with
an mtime that is not newer than the deletion is *hidden*. Its directory is then listed by every
audit (never skipped by the mtime cache), and once an audit end has happened past the tombstone's
TTL, the next audit's listing re-sends the path and Fusion accepts it.

The audits that purge may be another agent's: a follower runs none, and on a network file system
the leader may never have seen the delete (another client made it). So realtime also sends each
hidden path again at the steps of :data:`RESEND_AFTER_SEC` after its tombstone's TTL: a realtime
upsert of a path without a tombstone is applied whatever its mtime (docs/fusion-protocol.md
§5.4), and one sent while the tombstone is still there is dropped and costs nothing.

Memory: one entry per path deleted within the last ``2 * ttl`` (at most ``limit``, oldest
forgotten first), and one per hidden path until it is restored or its re-sends are done.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["TombstoneTracker"]

LAG_SLACK_SEC = 5.0
"""How much later than our emission Fusion may stamp a delete (lane queue, network, its own
queue). A re-creation within this of our delete counts as hidden; a purge counts as done only
this long after the TTL."""


RESEND_AFTER_SEC = (10.0, 30.0, 90.0, 270.0, 810.0, 2430.0)
"""When realtime sends a hidden path again, in seconds after its deletion + TTL + slack: growing
steps, so that audits up to ~40 minutes apart (whoever runs them) have purged the tombstone
before one of them."""


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


class TombstoneTracker:
    """Thread-safe record of sent deletes and of the existing paths they may hide.

    Times are wall-clock seconds (``time.time()``), as Fusion's tombstone purge uses its own
    wall clock; only differences are compared, so clock offset between hosts does not matter.
    """

    def __init__(self, ttl: float, *, limit: int = 500_000) -> None:
        self.ttl = ttl
        self.limit = limit
        self._lock = threading.Lock()
        self._deleted: OrderedDict[str, float] = OrderedDict()
        self._hidden: dict[str, float] = {}
        self._resent: dict[str, int] = {}
        """Hidden path -> how many steps of ``RESEND_AFTER_SEC`` it has been sent again."""
        self._soon: list[str] = []
        """Paths an audit found hidden: realtime sends them again at once."""
        self._next_resend = 0.0
        """No re-send is due before this wall time (``due`` scans the hidden paths then)."""
        self._purged_before = 0.0
        """Tombstones stamped before this wall time are surely purged (an audit end past TTL)."""
        self.restored = 0
        """Hidden paths re-sent by an audit after their tombstone was purged."""

    # -- realtime --------------------------------------------------------------------------

    def deleted(self, path: str, now: float | None = None) -> None:
        """A realtime delete of ``path`` was emitted (Fusion will stamp a tombstone on it)."""
        now = time.time() if now is None else now
        with self._lock:
            self._deleted.pop(path, None)
            self._deleted[path] = now
            self._hidden.pop(path, None)
            self._resent.pop(path, None)
            while len(self._deleted) > self.limit:
                self._deleted.popitem(last=False)
            if len(self._deleted) > 1:
                self._expire(now)

    def seen(self, path: str, mtime: float, *, resend: bool = False) -> bool:
        """``path`` exists with ``mtime`` and a row for it goes out now. Return True when
        Fusion may drop that row because of our earlier delete (the path is then hidden).
        ``resend``: the row is not realtime's (an audit's listing), so realtime sends the
        path again at once when it becomes hidden: a sender that clears the tombstones of
        its own deletes (the fusion sender does) puts it back then, not after the TTL."""
        if path not in self._deleted and path not in self._hidden:
            return False  # lock-free fast path: almost every row
        with self._lock:
            at = self._deleted.get(path, self._hidden.get(path))
            if at is None:
                return False
            if mtime > at + LAG_SLACK_SEC:
                # Newer than any stamp Fusion can have given it: accepted, tombstone consumed.
                del self._deleted[path]
                self._hidden.pop(path, None)
                self._resent.pop(path, None)
                return False
            if path not in self._hidden:
                self._hidden[path] = at
                self._next_resend = min(self._next_resend, self._resend_at(at, 0))
                if resend:
                    self._soon.append(path)
            return True

    # -- realtime re-sends -----------------------------------------------------------------

    def _resend_at(self, at: float, step: int) -> float:
        return at + self.ttl + LAG_SLACK_SEC + RESEND_AFTER_SEC[step]

    def due(self, now: float | None = None) -> list[str]:
        """Hidden paths for realtime to send again now (those an audit found at once, then
        each once per step of :data:`RESEND_AFTER_SEC`); cheap when none is due."""
        now = time.time() if now is None else now
        if not self._soon and (not self._hidden or now < self._next_resend):
            return []
        with self._lock:
            out, self._soon = self._soon, []
            steps = len(RESEND_AFTER_SEC)
            upcoming = float("inf")
            for path, at in self._hidden.items():
                step = self._resent.get(path, 0)
                if step >= steps:
                    continue
                when = self._resend_at(at, step)
                if now >= when:
                    out.append(path)
                    self._resent[path] = step = step + 1
                    if step >= steps:
                        continue
                    when = self._resend_at(at, step)
                upcoming = min(upcoming, when)
            self._next_resend = upcoming
        return out

    # -- audit -----------------------------------------------------------------------------

    def holding_dirs(self) -> set[str]:
        """Directories the audit lists (never skips): those holding hidden paths, and hidden
        directories themselves. Fusion drops a hidden directory's skipped row (its
        tombstone), keeps the ``audit_skipped: false`` of its placeholder, and at the audit
        end would delete every child not listed (protocol §5.5)."""
        with self._lock:
            return {_parent(p) for p in self._hidden} | set(self._hidden)

    def audit_started(self) -> float:
        """Call when an audit starts; pass the result to :meth:`audit_ended`."""
        with self._lock:
            return self._purged_before

    def audit_ended(
        self, purged_at_start: float, listed: set[str], now: float | None = None
    ) -> None:
        """An audit ended (its end is sent right after). Its listing of the directories in
        ``listed`` re-sent every hidden path whose tombstone was purged before it started;
        those are done. This end in turn purges tombstones older than the TTL."""
        now = time.time() if now is None else now
        with self._lock:
            for path, at in list(self._hidden.items()):
                if at < purged_at_start and _parent(path) in listed:
                    del self._hidden[path]
                    self._deleted.pop(path, None)
                    self._resent.pop(path, None)
                    self.restored += 1
            self._purged_before = max(self._purged_before, now - self.ttl - LAG_SLACK_SEC)
            self._expire(now)

    # -- figures ---------------------------------------------------------------------------

    @property
    def hidden(self) -> int:
        return len(self._hidden)

    @property
    def tracked(self) -> int:
        return len(self._deleted)

    def is_hidden(self, path: str) -> bool:
        return path in self._hidden

    def _expire(self, now: float) -> None:
        """Forget deletes whose tombstone is purged or old enough to be (lock held). Hidden
        paths stay until an audit restores them or their last re-send is done."""
        horizon = max(self._purged_before, now - 2 * self.ttl - LAG_SLACK_SEC)
        deleted = self._deleted
        while deleted:
            path, at = next(iter(deleted.items()))
            if at >= horizon:
                break
            del deleted[path]
        stale = now - self.ttl - LAG_SLACK_SEC - RESEND_AFTER_SEC[-1] - 60.0
        if self._hidden and min(self._hidden.values()) < stale:
            self._hidden = {p: at for p, at in self._hidden.items() if at >= stale}
            self._resent = {p: n for p, n in self._resent.items() if p in self._hidden}
