"""Re-creations that Fusion's tombstones would drop, made to land in the same send (B15).

Fusion 0.8.17 stamps a tombstone on each path a realtime delete names. Until an audit end purges
it (past ``tombstone_ttl_seconds``, an hour by default; never with audits off), every upsert of
that path, realtime included, whose ``modified_time`` is not newer than the stamp is dropped
(protocol §5.4 and §5.5). ``rm f; cp -p saved f``, ``tar x`` or ``git checkout`` after a delete
went out, a directory moved out and back: each puts an older mtime at a deleted path, and the
path was missing from Fusion for that long.

Two rows in one request undo it. A snapshot-tier row whose ``modified_time`` is newer than
the stamp consumes the tombstone; Fusion's clock does not sample the snapshot tier (protocol
§5.8), so the watermark does not move. The realtime row right after it, as read from the disk,
is applied whatever its mtime (realtime rows are never compared, protocol §5.4). One request is
one item of Fusion's queue, applied in order, so the node ends as the disk has it. So for each
path this sender deleted by realtime and now sends as an upsert, :func:`clearing_bodies` makes
one more request, after the batch: ``[snapshot: the row, mtime a day past the watermark]``
``+ [realtime: the row]``. After the batch, not before: a delete of the path earlier in the
same batch would stamp it again.

Fusion's other tiers are not replayed this way (an audit row sent as realtime would hide a blind
spot); a path an audit finds hidden goes out again through realtime (the fs source's tombstone
tracker), and then comes here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rbloom import Bloom

from fustor_core import Batch, EventType, MessageSource, Row
from fustor_sender_http.wire import encode_body, wire_event

__all__ = ["CLEAR_AHEAD_SEC", "DeletedPaths", "clearing_bodies"]

logger = logging.getLogger(__name__)

CLEAR_AHEAD_SEC = 86400.0
"""How far past the row's times (and now) the clearing row's ``modified_time`` is at least. A
tombstone carries Fusion's watermark, which follows the storage clock to within a second while
the realtime mtimes are current; a day covers any clock that is not broken. Rows with mtimes
in the future pull the watermark ahead: the sender adds how far (``watermark.py``)."""


_key = hash
"""A path's key in :class:`DeletedPaths` and its filters (str hashes are salted per process:
the log keeps paths, not keys; tests put a fixed function here)."""


class DeletedPaths:
    """Paths whose realtime delete Fusion acknowledged and no upsert has followed since.

    The newest ``limit`` are kept exactly, as hashes (about 140 bytes each). Older ones go
    into a Bloom filter (about 1.2 bytes each at a 1% false-positive rate; two generations
    of ``evicted_capacity`` paths, the older dropped when the newer fills): 60,000 files
    deleted one by one and then restored with their old mtimes left 9,100 of them missing
    when only the exact part existed (helper 32). A false positive costs one needless
    clearing pair, once: a path cleared through the filter is noted (``limit`` of them at
    most) and not cleared again until it is deleted again. With ``log``, each delete is
    also appended there (one JSON string a line; the file is started again past ``limit``
    lines, the previous one kept as ``.old``) and both are read back at start: a process
    that crashed after a delete still clears the tombstone when the path comes back (helper
    31); deletes older than the two files are not known after a restart. A path remembered
    after Fusion lost the tombstone (a view wiped) costs one needless pair. Not thread-safe:
    the sender's calls come from one event loop.
    """

    def __init__(
        self, limit: int = 50_000, log: Path | None = None, evicted_capacity: int = 2_000_000
    ) -> None:
        self.limit = limit
        self.evicted_capacity = evicted_capacity
        self._keys: OrderedDict[int, None] = OrderedDict()
        self._evicted: list[Bloom] = []
        """Bloom filters of the paths forgotten from ``_keys``, newest first (made on the
        first one: 2.4 MB each at the default capacity)."""
        self._evicted_count = 0
        self._cleared: OrderedDict[int, None] = OrderedDict()
        """Paths cleared through the filters since their delete: not to be cleared again."""
        self._log = log
        self._lines = 0
        if log is not None:
            for path in (log.with_suffix(".old"), log):
                self._lines = self._read(path)

    def __len__(self) -> int:
        return len(self._keys)

    def to_clear(self, batch: Batch) -> list[Row]:
        """The upsert rows of realtime ``batch`` whose tombstone must be cleared after it, in
        batch order: the path was deleted before (an acknowledged batch, or earlier in this
        one), and nothing later in the batch removes it again. The pair goes out after the
        whole batch, so a later delete of the path or of a directory above it, or a row that
        makes such a directory a file (a type change or a reset), would otherwise bring the
        path back under a directory that is gone (helper 30)."""
        keys = self._keys
        if (
            not keys
            and not self._evicted
            and all(e.event_type is not EventType.DELETE for e in batch.events)
        ):
            return []
        cleared = self._cleared
        newer, older = [*self._evicted, None, None][:2]
        candidates: dict[Any, tuple[int, Row]] = {}
        deleted: set[Any] = set()
        at = 0
        for event in batch.events:
            if event.event_type is EventType.DELETE:
                deleted.update(row.get("path") for row in event.rows)
            else:
                for i, row in enumerate(event.rows):
                    path = row.get("path")
                    key = _key(path)
                    if (
                        path in deleted
                        or key in keys
                        or (
                            newer is not None
                            and key not in cleared
                            and (key in newer or (older is not None and key in older))
                        )
                    ):
                        candidates[path] = (at + i, row)
            at += len(event.rows)
        if not candidates:
            return []
        removed = _removals(batch)
        return [
            row
            for path, (upsert_at, row) in candidates.items()
            if not _removed_after(removed, path, upsert_at)
        ]

    def commit(self, batch: Batch, cleared: Iterable[Row]) -> None:
        """``batch`` was acknowledged, and after it the pairs of ``cleared``: its deletes
        stamped tombstones, the pairs consumed theirs. Other upserts of deleted paths keep
        them remembered (a newer mtime may have consumed the tombstone; clearing once more
        costs one row)."""
        for event in batch.events:
            if event.event_type is EventType.DELETE:
                paths = [row.get("path") for row in event.rows]
                self._remember(paths)
                self._append(paths)
        for row in cleared:
            key = _key(row.get("path"))
            if key in self._keys:
                del self._keys[key]
            else:  # found through the filters (this batch's deletes were remembered above)
                self._cleared[key] = None
                if len(self._cleared) > self.limit:
                    self._cleared.popitem(last=False)

    def _remember(self, paths: Iterable[Any]) -> None:
        """Each of ``paths`` as the newest deleted path; past ``limit``, the oldest go into
        the Bloom filters."""
        keys, cleared = self._keys, self._cleared
        for path in paths:
            key = _key(path)
            keys.pop(key, None)
            keys[key] = None
            cleared.pop(key, None)
        while len(keys) > self.limit:
            self._evict(keys.popitem(last=False)[0])

    def _evict(self, key: int) -> None:
        if not self._evicted or self._evicted_count >= self.evicted_capacity:
            self._evicted = [Bloom(self.evicted_capacity, 0.01), *self._evicted[:1]]
            self._evicted_count = 0
        self._evicted[0].add(key)
        self._evicted_count += 1

    def _read(self, path: Path) -> int:
        """Remember the paths logged in ``path``; return how many lines it has."""
        lines = 0

        def logged(f: Iterable[str]) -> Iterator[Any]:
            nonlocal lines
            for line in f:
                lines += 1
                with contextlib.suppress(ValueError):
                    path = json.loads(line)
                    if isinstance(path, str):  # a damaged line may hold any JSON value
                        yield path

        try:
            with path.open(encoding="utf-8") as f:
                self._remember(logged(f))
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as exc:
            logger.warning("ignoring %s: %s", path, exc)
            return 0
        return lines

    def _append(self, paths: list[Any]) -> None:
        log = self._log
        if log is None:
            return
        try:
            if self._lines >= self.limit:
                os.replace(log, log.with_suffix(".old"))
                self._lines = 0
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as out:
                out.write("".join(json.dumps(p) + "\n" for p in paths if isinstance(p, str)))
            self._lines += len(paths)
        except OSError as exc:
            logger.warning("cannot keep deleted paths in %s: %s (kept in memory only)", log, exc)
            self._log = None


def _removals(batch: Batch) -> tuple[dict[Any, int], dict[Any, int]]:
    """Where in ``batch`` each path is last deleted, and last sent as a non-directory
    (which removes what was under it): ``(deleted_at, not_dir_at)``, row positions."""
    deleted_at: dict[Any, int] = {}
    not_dir_at: dict[Any, int] = {}
    at = 0
    for event in batch.events:
        if event.event_type is EventType.DELETE:
            for i, row in enumerate(event.rows):
                deleted_at[row.get("path")] = at + i
        else:
            for i, row in enumerate(event.rows):
                if not row.get("is_directory", True):
                    not_dir_at[row.get("path")] = at + i
        at += len(event.rows)
    return deleted_at, not_dir_at


def _removed_after(removed: tuple[dict[Any, int], dict[Any, int]], path: str, at: int) -> bool:
    """Whether, after row position ``at``, the batch deletes ``path`` or a directory above
    it, or makes such a directory something else."""
    deleted_at, not_dir_at = removed
    if deleted_at.get(path, -1) > at:
        return True
    parent = path
    while parent not in ("", "/"):
        parent = parent.rsplit("/", 1)[0] or "/"
        if max(deleted_at.get(parent, -1), not_dir_at.get(parent, -1)) > at:
            return True
    return False


def clearing_bodies(
    rows: Iterable[Row], per_request: int, per_event: int, lead: float = 0.0
) -> list[bytes]:
    """Ingest bodies (protocol §3.5) that clear each row's tombstone and then apply the row:
    at most ``per_request`` rows in each and ``per_event`` in each event, both rows of a path
    in the same request (its snapshot event, then its realtime event). The snapshot row's
    ``modified_time`` is :data:`CLEAR_AHEAD_SEC` plus ``lead`` seconds past now and past the
    row's own times; ``lead``: how far Fusion's watermark may run ahead of this host's clock
    (:mod:`fustor_sender_http.watermark`)."""
    rows = [r for r in rows if r.get("path") and r.get("modified_time") is not None]
    ahead = CLEAR_AHEAD_SEC + lead
    step = max(1, per_request // 2)
    per_event = max(1, min(per_event, step))
    index = int(time.time() * 1000)
    bodies = []
    for start in range(0, len(rows), step):
        events = []
        for first in range(start, min(start + step, len(rows)), per_event):
            chunk = rows[first : min(first + per_event, start + step)]
            now = time.time()
            clearing = [
                {
                    **row,
                    "modified_time": max(now, row["modified_time"], row.get("created_time") or 0.0)
                    + ahead,
                }
                for row in chunk
            ]
            events.append(wire_event(EventType.UPDATE, clearing, MessageSource.SNAPSHOT, index))
            events.append(wire_event(EventType.UPDATE, chunk, MessageSource.REALTIME, index))
        bodies.append(encode_body({"source_type": "message", "is_end": False, "events": events}))
    return bodies
