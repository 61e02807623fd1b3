"""Realtime: watch setup, the reader and emitter threads, and recovery after lost events."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import stat as stat_mod
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fustor_core import Batch, DriverError, Event, EventType, MessageSource, Row
from fustor_core.paths import wire_path
from fustor_source_fs.backends import Backend, fanotify_refused, open_backend
from fustor_source_fs.catchup import WatchedUntil
from fustor_source_fs.channel import Channel, ChannelClosed
from fustor_source_fs.config import FsParams
from fustor_source_fs.deep import abs_of, lstat_at, open_dir
from fustor_source_fs.fanotify import FanotifyUnavailable
from fustor_source_fs.filters import PathFilter
from fustor_source_fs.health import RootGuard
from fustor_source_fs.links import HardLinks
from fustor_source_fs.listing import list_dir
from fustor_source_fs.pending import DELETES, Change, Pending, Work, merge
from fustor_source_fs.reader import EventReader, parent_of
from fustor_source_fs.rescan import WatchScan
from fustor_source_fs.rows import row_of
from fustor_source_fs.tombstones import TombstoneTracker
from fustor_source_fs.walk import RowSink, WalkCancelled, walk
from fustor_source_fs.watches import Watches, WatchLimit

__all__ = ["Realtime", "Tracked"]

log = logging.getLogger(__name__)

_SPELLED_BYTE = re.compile(r"%[89A-F][0-9A-F]")
"""How ``wire_path`` spells a raw byte: only a name holding one can share its wire path."""

_RT = MessageSource.REALTIME
_PARENT_WAIT_SEC = 5.0
"""Longest a delete is held: waiting for the delete of its (also gone) directory, or for its
path to be quiet for ``delete_settle_sec``."""
_HIDDEN_LOG_SEC = 60.0
"""At most one log line per this many seconds about paths back with an old mtime."""


def _events(rows: list[Row]) -> list[Event]:
    """Consecutive rows of one kind as one event (delete rows carry only ``path``)."""
    events: list[Event] = []
    for row in rows:
        kind = EventType.UPDATE if "modified_time" in row else EventType.DELETE
        if events and events[-1].event_type is kind:
            events[-1].rows.append(row)
        else:
            events.append(Event(kind, [row], _RT))
    return events


def _parents_first(changes: dict[str, Change]) -> dict[str, Change]:
    """``changes`` with every directory before the paths under it (shallowest first)."""
    if len(changes) < 2:
        return changes
    return dict(sorted(changes.items(), key=lambda item: item[0].count("/")))


def _written(changes: dict[str, Change]) -> bool:
    """Whether ``changes`` write anything: a change other than a delete, not counting the
    new mtime of a directory something was deleted from."""
    emptied = {parent_of(p) for p, c in changes.items() if c in DELETES}
    return any(c not in DELETES and p not in emptied for p, c in changes.items())


def _kernel_watch_limit() -> int:
    try:
        with open("/proc/sys/fs/inotify/max_user_watches") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 8192


@dataclass(slots=True)
class Tracked:
    """What realtime sent while one snapshot, audit or scan ran (:meth:`Realtime.track`)."""

    sent: dict[str, float | None] = field(default_factory=dict)
    """Path -> the mtime of its last row (``None``: a delete)."""
    gone: set[str] = field(default_factory=set)
    """Paths deleted or replaced (a type change), whatever was sent for them."""


class Realtime:
    """One inotify instance or fanotify mark watching the tree (:mod:`backends`);
    ``run()`` yields realtime batches."""

    def __init__(
        self,
        root: str,
        params: FsParams,
        flt: PathFilter,
        guard: RootGuard,
        tombstones: TombstoneTracker,
        links: HardLinks,
    ) -> None:
        self.root = root
        self.tombstones = tombstones
        self.links = links
        self.params = params
        self.flt = flt
        self.guard = guard
        self.pending = Pending(params.max_pending_paths)
        self.audit_skipped: Callable[[str], bool] | None = None
        """Whether the running (or just ended) audit sent a directory as ``audit_skipped``:
        its realtime row then carries the flag too (``FsSource._skipped_by_audit``)."""
        self.watched: WatchedUntil | None = None
        """Where the time up to which realtime saw everything is kept (catchup.py)."""
        self.delivered: Callable[[], bool] | None = None
        """The host's word that every row yielded so far was acknowledged by its peers."""
        self.ready = threading.Event()
        """Set once the initial watches are in place (the snapshot waits for it)."""
        self.stop = threading.Event()
        self.started = False
        self.opened = threading.Event()
        """Set once the backend is open (or failed to open)."""
        self._opened_by = time.monotonic() + 30.0
        self._covering = 0
        self._cover_lock = threading.Lock()
        self._uncovered = threading.Event()
        """Clear while a snapshot places each directory's watch before listing it (the watch
        walk waits meanwhile, see :meth:`cover`)."""
        self._uncovered.set()
        self._cover_misses = 0
        """Directories a covering snapshot listed without a watch (limit, backend not open,
        gone, unwatchable): the watch walk then still has work after it."""
        self._covered_all = False
        """A covering snapshot listed the whole tree, watching each directory first: the
        watch walk has nothing left to do (realtime watches what appeared since)."""
        self.backend: Backend | None = None
        self.watches: Watches | None = None
        self.reader: EventReader | None = None
        self.dirs = 0
        self.rows = 0
        self.deletes_suppressed = 0
        self.recoveries = 0
        self.dir_rescans = 0
        self._threads: list[threading.Thread] = []
        self._channel: Channel | None = None
        self._unavailable_since: float | None = None
        self._healthy_at = time.time()
        self._generation = guard.generation
        self._root_lost = 0
        """The reader's ``root_replaced`` count this thread has re-watched after."""
        self._emptying: dict[str, float] = {}
        """Directories that lost an entry to a delete in the last ``delete_settle_sec``:
        directory -> monotonic time of the last one."""
        self._held: dict[str, tuple[Change, float, float]] = {}
        """Deletes waiting before they are checked and sent: path -> (change, due, first
        held), monotonic seconds."""
        self._released_early: dict[str, tuple[Change, float, float]] = {}
        """Held changes let out before their due time because something under them goes out
        (see :meth:`_settle`); held again by :meth:`_rows_for` if the path is gone by then."""
        self._tracked: list[Tracked] = []
        """What realtime sent during running snapshots, audits and scans (:meth:`track`)."""
        self.deletes_cancelled = 0
        """Held deletes whose path existed again when they were due (sent as upserts)."""
        self._written_at = 0.0
        """When the last change other than a delete arrived, of any path (monotonic s)."""
        self._hidden_unlogged = 0
        self._hidden_logged_at = -_HIDDEN_LOG_SEC

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> AsyncIterator[Batch]:
        loop = asyncio.get_running_loop()
        self._channel = channel = Channel(loop, self.params.queue_batches)
        self._opened_by = time.monotonic() + 30.0
        self.started = True
        try:
            self.backend = await asyncio.to_thread(
                open_backend, self.root, self.params, self.pending, self.flt
            )
        except FanotifyUnavailable as exc:
            self.close()
            raise DriverError(fanotify_refused(exc), retriable=False) from None
        except BaseException:
            self.close()
            raise
        finally:
            self.opened.set()
        self.watches, self.reader = self.backend.watches, self.backend.reader
        self._spawn(self.reader.run, f"fs-{self.backend.name}-reader")
        # Its own thread: on a large tree it takes seconds, and changes in directories
        # already watched must flow meanwhile.
        self._spawn(self._setup, "fs-watch-setup")
        self._spawn(self._emit_loop, "fs-realtime-emitter")
        try:
            async for batch in channel:
                yield batch
        finally:
            self.close()

    def track(self) -> Tracked:
        """Start noting what realtime sends from now on, up to ``max_pending_paths`` paths
        each. A snapshot, audit or scan compares its own rows with it
        (:meth:`FsSource._stream`); :meth:`untrack` when it ends."""
        tracked = Tracked()
        self._tracked.append(tracked)
        return tracked

    def untrack(self, tracked: Tracked) -> None:
        self._tracked.remove(tracked)

    def resend(self, paths: Iterable[str], gone: Iterable[str] = ()) -> None:
        """Send these paths again, read from the disk when they go out (a realtime row
        always wins in Fusion, protocol §5.4). ``gone``: paths deleted or replaced since,
        deleted again with their subtree if they are still gone; one that exists goes out
        as replaced (a file as itself, a directory reset in Fusion and listed again), so
        nothing a walk sent from under its old self stays."""
        for path in paths:
            self.pending.add(path, Change.UPSERT, parent_of(path), resent=True)
        for path in gone:
            self.pending.add(path, Change.DELETE_DIR, parent_of(path), resent=True)

    def ensure_watched(self, rel_dir: str) -> None:
        """Watch a directory now if it is not yet (called by a snapshot listing it while
        the initial watch walk is still running: watch first, then list)."""
        if not self.opened.is_set():
            # Choosing the backend may count directories first (bounded: ``backends.choose``).
            self.opened.wait(max(0.0, self._opened_by - time.monotonic()))
        watches = self.watches
        if watches is None or watches.exhausted:
            self._cover_misses += 1
            return
        try:
            if watches.node_at(rel_dir) is None and watches.add(rel_dir) is None:
                self._cover_misses += 1
        except (WatchLimit, OSError):
            self._cover_misses += 1

    def cover(self) -> bool:
        """A snapshot of the whole tree starts and will place each directory's watch before
        listing it (:meth:`ensure_watched`): the watch walk pauses until :meth:`uncover`, as
        the snapshot covers every directory itself and two walks of one tree would only
        compete for the GIL (the snapshot took twice as long). Returns ``False`` (nothing to
        undo) once the watches are all in place."""
        if self.ready.is_set():
            return False
        with self._cover_lock:
            self._covering += 1
            self._uncovered.clear()
        return True

    def uncover(self, complete: bool = False) -> None:
        """The snapshot that called :meth:`cover` ended (done, failed or cancelled): the
        watch walk goes on, also over what the snapshot did not reach. ``complete``: it
        listed the whole tree; if it watched every directory before listing it, the watch
        walk ends at once instead of listing the tree a second time (at 10M files that was
        as long as the snapshot, in the middle of the first audit)."""
        with self._cover_lock:
            if complete and self._cover_misses == 0:
                self._covered_all = True
            self._covering -= 1
            if self._covering <= 0:
                self._covering = 0
                self._uncovered.set()

    def _spawn(self, target: Any, name: str) -> None:
        def guarded() -> None:
            try:
                target()
            except (ChannelClosed, WalkCancelled):
                pass
            except BaseException as exc:
                log.exception("%s failed", name)
                if self._channel is not None:
                    self._channel.finish(exc)

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        covered = None if self.stop.is_set() else self._covered_until()
        if covered is not None:
            assert self.watched is not None
            self.watched.note(covered, force=True)
        self.stop.set()
        if self.reader is not None:
            self.reader.stop.set()
        if self._channel is not None:
            self._channel.close()
        self.pending.wake()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.backend is not None and not any(t.is_alive() for t in self._threads):
            self.backend.close()

    # -- emitter -------------------------------------------------------------------------

    def _emit_loop(self) -> None:
        interval = self.params.health_check_interval_sec
        checked = time.monotonic()
        assert self.reader is not None
        while not self.stop.is_set():
            work = self.pending.take(self._held_wait(min(interval, 0.2)))
            now = time.monotonic()
            if now - checked >= interval or self.reader.health_due.is_set():
                self.reader.health_due.clear()
                checked = now
                self._check_health()
                self._resend_hidden()
            self._process(work)
            self.pending.taken_since = None  # in the channel now, or dropped
            covered = self._covered_until()
            if covered is not None:
                assert self.watched is not None
                self.watched.note(covered)

    def _covered_until(self) -> float | None:
        """The wall time up to which every change has reached every peer, or ``None`` (not
        now). Needed: every directory watched, the root healthy, no lost events to recover,
        nothing in the channel to the host nor, as far as the host says (``delivered``), in
        its pipes (helper 31). Changes still queued here or deletes held for their settle
        window hold the time back to when the oldest of them arrived, instead of stopping
        it: under steady churn (a build's temporary files) something always waits, and the
        time was never written (helper 33). A path sent again (:meth:`resend`: a catch-up,
        a set-back found by a walk) may stand for a change of any age: while one waits,
        nothing is written (helper 35)."""
        # What still waits is read first, then where it goes: a change moving on meanwhile
        # is then seen in one place or the other.
        now_wall, now = time.time(), time.monotonic()
        oldest = now
        for since in (self.pending.since, self.pending.taken_since):
            if since is not None:
                oldest = min(oldest, since)
        for _, _, first in list(self._held.values()):
            oldest = min(oldest, first)
        channel = self._channel
        if not (
            oldest > -math.inf
            and self.watched is not None
            and self.ready.is_set()
            and self.watches is not None
            and not self.watches.limited
            and self._unavailable_since is None
            and self.guard.reason is None
            and self.pending.overflow_since is None
            and (channel is None or channel.unconsumed == 0)
            and (self.delivered is None or self.delivered())
        ):
            return None
        return now_wall - (now - oldest)

    def _held_wait(self, wait: float) -> float:
        """Seconds until a held delete may go out (``wait`` at most): its due time, but not
        before the tree has been quiet for the window, and at most ``_PARENT_WAIT_SEC``
        after it was first held (the release rule of :meth:`_settle`). Waiting for the due
        time alone spun a core while writes went on (helper 26): a delete past its due time
        but held for the writes had nothing to wait for. A new write wakes the loop anyway."""
        if not self._held:
            return wait
        quiet_at = self._written_at + self.params.delete_settle_sec
        soonest = min(
            min(max(due, quiet_at), first + _PARENT_WAIT_SEC)
            for _, due, first in self._held.values()
        )
        return max(0.0, min(wait, soonest - time.monotonic()))

    def _resend_hidden(self) -> None:
        """Send again the paths Fusion may still hide behind a tombstone (see tombstones.py):
        queued as changes, so each row is read from the disk when it goes out."""
        for path in self.tombstones.due():
            self.pending.add(path, Change.UPSERT, parent_of(path), resent=True)

    def _setup(self) -> None:
        """Watch every directory, breadth first, so a limit leaves the shallow ones watched."""
        assert self.watches is not None
        watches = self.watches
        count = 0
        lock = threading.Lock()

        def visit(rel_dir: str) -> list[str]:
            nonlocal count
            while not self._uncovered.wait(0.1):
                if self.stop.is_set():
                    return []
            if self._covered_all:
                return []
            if not watches.exhausted:
                try:
                    if watches.add(rel_dir) is None:
                        return []
                except WatchLimit:
                    pass
            with lock:
                count += 1
            subdirs: list[str] = []
            try:
                fd = open_dir(watches.abs_path(rel_dir), rel_dir)
            except OSError as exc:
                log.warning("cannot list %s: %s", rel_dir, exc)
                return subdirs
            try:
                subdirs.extend(rel for _, rel, _ in list_dir(fd, rel_dir, self.flt, files=False))
            except OSError as exc:
                log.warning("cannot list %s: %s", rel_dir, exc)
            finally:
                os.close(fd)
            return subdirs

        started = time.monotonic()
        walk(["/"], visit, workers=self.params.scan_workers, stop=self.stop, lifo=False)
        watched = len(watches)
        self.dirs = max(count, watched) if self._covered_all else count
        if watches.limited:
            if watches.kernel_limited:
                limit = "the kernel limit fs.inotify.max_user_watches"
                fix = f"sysctl -w fs.inotify.max_user_watches={_kernel_watch_limit() + count}"
                if self.params.max_watches is not None and self.params.max_watches < count:
                    fix += f", and driver_params.max_watches to at least {count}"
            else:
                limit = f"max_watches={self.params.max_watches}"
                fix = f"driver_params.max_watches to at least {count}, or unset it"
            log.warning(
                "watching %d of %d directories (%.1f%%): out of inotify watches (%s). Raise it "
                "(%s); until then changes in unwatched directories are found by audit only",
                watched,
                count,
                100.0 * watched / max(count, 1),
                limit,
                fix,
            )
        else:
            log.info(
                "watching %d %s under %s (%.1f s)",
                watched,
                "directory" if watched == 1 else "directories",
                self.root,
                time.monotonic() - started,
            )
        self.ready.set()

    def _check_health(self) -> None:
        """Follow the root guard; after any outage (even one only another thread saw),
        re-watch and rescan, since nothing that happened meanwhile was seen."""
        reason = self.guard.check()
        now = time.time()
        if reason is not None:
            if self._unavailable_since is None:
                self._unavailable_since = self._healthy_at
            return
        generation = self.guard.generation
        # The root's own watch saw it deleted or moved (the reader dropped every watch). A
        # directory made again at its path may get the same inode (ext4 reuses it): the
        # guard sees the same root, but nothing is watched any more (helper 28).
        lost = getattr(self.reader, "root_replaced", 0)
        if (
            generation != self._generation
            or self._unavailable_since is not None
            or lost != self._root_lost
        ):
            since = self._unavailable_since or self._healthy_at
            if self.guard.replaced > self._generation or lost != self._root_lost:
                # Another directory is the root now: its old watches name another tree, and
                # everything in the new one is news (even entries with old ctimes).
                since = 0.0
                assert self.watches is not None
                self.watches.clear()
            self._generation, self._root_lost = generation, lost
            self._unavailable_since = None
            log.warning("root %s is back: re-watching and rescanning", self.root)
            if self.backend is not None:
                self.backend.rearm()
            self.pending.set_overflow(since)
        self._healthy_at = now

    def _process(self, work: Work) -> None:
        sink = RowSink(self._emit, self.params.batch_size)
        if work.overflow_since is not None and self.guard.reason is None:
            self._recover(work.overflow_since, sink)
        elif work.overflow_since is not None:
            self._unavailable_since = min(
                self._unavailable_since or time.time(), work.overflow_since
            )
        changes = self._settle(work.changes, [*work.subtrees, *work.rescans])
        if changes:
            if self._tracked:
                self._note_gone(changes)
            sink.extend(self._rows_for(changes))
        if work.subtrees:
            self._scan(work.subtrees, sink, since=0.0, recurse_all=True)
        if work.rescans:
            self.dir_rescans += len(work.rescans)
            log.warning(
                "%d changed paths waiting: falling back to rescanning %d directories",
                self.params.max_pending_paths,
                len(work.rescans),
            )
            self._scan(work.rescans, sink, since=0.0, recurse_all=False)
            sink.flush()
            # Deletions folded into these rescans cannot be seen by listing what exists.
            self._put(Batch(_RT, rescan=sorted(work.rescans)))
        sink.flush()

    def _recover(self, since: float, sink: RowSink) -> None:
        self.recoveries += 1
        sink.flush()
        # The host answers with an audit (leader) that also finds deletions; locally we
        # re-watch what lost its watch and upsert everything changed since.
        self._put(Batch(_RT, rescan=["/"]))
        scan = self._scan(
            ["/"], sink, since=since - self.params.recovery_ctime_slack_sec, recurse_all=True
        )
        sink.extend(scan.vanished())
        self.dirs = max(self.dirs, scan.dirs)
        log.warning("rescan after lost events done: %d directories listed", scan.dirs)

    def _scan(
        self, roots: list[str], sink: RowSink, *, since: float, recurse_all: bool
    ) -> WatchScan:
        assert self.watches is not None
        scan = WatchScan(
            self.watches,
            self.flt,
            sink,
            since=since,
            recurse_all=recurse_all,
            can_delete=lambda: self.guard.reason is None,
        )
        scan.run(roots, self.params.scan_workers, self.stop)
        return scan

    def _settle(self, changes: dict[str, Change], listed: list[str]) -> dict[str, Change]:
        """Hold deletes for ``delete_settle_sec``; return what is due now, each directory
        before what is under it. A held delete is due once its path has been quiet and
        nothing in the tree was written for the window, or ``_PARENT_WAIT_SEC`` after it
        was first held.

        A replaced directory is held too (something else may be at its path only for a
        moment), and a held path is due once it has been quiet for the window. A path
        deleted and created again within the window (safe save by rename, ``git checkout``,
        ``tar x``) is then one upsert: no delete reaches Fusion, so no tombstone
        can reject the new file's old mtime (docs/CONSISTENCY_DESIGN.md section 8). A delete
        whose directory is gone too waits (up to ``_PARENT_WAIT_SEC``) for that directory's own
        delete, which removes the whole subtree in Fusion and leaves one tombstone instead of
        one per file (``rm -rf d`` then a restore of ``d`` from a backup).

        A held path with something under it going out now (a ready upsert, or a directory
        in ``listed``, to be listed) goes out now, first: a file replaced by a directory
        must reach Fusion as a directory before its children. Fusion 0.8.17 puts a child
        of a path it holds as a file under a placeholder beside the stale file, and every
        later row of the directory then deletes its subtree again (helper 15, F1).
        """
        held = self._held
        settle = self.params.delete_settle_sec
        now = time.monotonic()
        self._released_early.clear()
        if changes and _written(changes):
            self._written_at = now
        if not held and (settle <= 0 or not changes):
            return _parents_first(changes)
        # A checkout, an unpack or a restore removes paths and writes them again, with other
        # writes in between that can outlast the window: while anything in the tree is
        # written, deletes wait (up to _PARENT_WAIT_SEC). A delete sent before its path is
        # back leaves a tombstone in Fusion stamped with Fusion's clock when it applies the
        # delete, later than the new file's mtime when its queue lags, and the file stays
        # hidden until the tombstone expires (helper 18: git checkout, 4 of 5 runs). Deletes
        # elsewhere do not hold each other; a delete waits while its own directory still
        # loses entries (below), as in an rm -rf slower than the window.
        quiet = now - self._written_at >= settle
        emptying = self._emptying
        ready: dict[str, Change] = {}
        for path, change in changes.items():
            old = held.pop(path, None)
            if old is not None:
                change = merge(old[0], change)
            if settle > 0 and (change in DELETES or change is Change.REPLACE):
                # Due once the path has been quiet for the window (a path that keeps changing,
                # as in back-to-back checkouts, is held on), at most _PARENT_WAIT_SEC in all.
                held[path] = (change, now + settle, old[2] if old else now)
                if change in DELETES:
                    emptying[path.rsplit("/", 1)[0]] = now
            else:
                ready[path] = change
        gone: dict[str, bool] = {}
        for path, (change, due, first) in list(held.items()):
            if (due > now or not quiet) and now - first < _PARENT_WAIT_SEC:
                continue
            parent = path.rsplit("/", 1)[0]
            if parent and now - first < _PARENT_WAIT_SEC:
                if now - emptying.get(parent, -math.inf) < settle:
                    # Its directory still loses entries: an rm -rf slower than the window
                    # (helper 28: 100 files 10 ms apart). Its own delete may follow and take
                    # them all, one tombstone instead of one per file, which would hide a
                    # restore with old mtimes (cp -a, tar x) for the tombstone's lifetime.
                    held[path] = (change, now + settle, first)
                    continue
                if parent not in gone:
                    gone[parent] = lstat_at(self.root, parent) is None
                if gone[parent]:
                    held[path] = (change, now + settle, first)
                    continue
            del held[path]
            ready[path] = change
        if held:
            below = [p for p, c in ready.items() if c not in DELETES]
            for path, cut in [(p, p.rfind("/")) for p in below] + [(p, len(p)) for p in listed]:
                while cut > 0:  # the path itself when listed, then each ancestor
                    ancestor = path[:cut]
                    # Only a path that exists again: a delete is still held to its due time
                    # (it may yet come back, in a flapping path).
                    if ancestor in held and lstat_at(self.root, ancestor) is not None:
                        entry = self._released_early[ancestor] = held.pop(ancestor)
                        ready[ancestor] = entry[0]
                    cut = ancestor.rfind("/")
        for parent, at in list(emptying.items()):
            if now - at >= settle:
                del emptying[parent]
        self._drop_covered(ready)
        return _parents_first(ready)

    def _drop_covered(self, ready: dict[str, Change]) -> None:
        """Deletes under a directory whose delete or replacement goes out now are covered: in
        Fusion both drop the old subtree (a replacement is sent as a reset or a type change),
        and a re-created directory is listed again."""
        tops = tuple(
            p + "/" for p, c in ready.items() if c is Change.DELETE_DIR or c is Change.REPLACE
        )
        if not tops:
            return
        held = self._held
        for path in [p for p in held if p.startswith(tops)]:
            del held[path]
        for path in [p for p, c in ready.items() if c in DELETES and p.startswith(tops)]:
            del ready[path]

    def _rows_for(self, changes: dict[str, Change]) -> list[Row]:
        """Rows for the current state of each changed path, read from the disk now.

        A delete whose path exists again is sent as that path's upsert. A directory that went
        away and has a directory at its path again is sent as a *reset*: a file row, then the
        directory's row, in order. Fusion replaces a node whose type changes without a
        tombstone (so the old subtree goes and nothing blocks the new one); the listing of the
        new directory follows. A directory replaced by a file or link needs only the upsert.
        """
        rows: list[Row] = []
        root = self.root
        settle = self.params.delete_settle_sec
        healthy = self.guard.reason is None
        skipped = self.audit_skipped
        for path, change in changes.items():
            st = lstat_at(root, path)
            if st is None:
                if change is Change.UPSERT or change is Change.PARTIAL:
                    continue  # gone again: its delete event follows
                if (early := self._released_early.pop(path, None)) is not None:
                    # Let out early because it existed a moment ago (a flapping path): not
                    # quiet, so its delete is held again, not sent (a tombstone would hide
                    # what comes back with an old mtime).
                    self._held[path] = (early[0], time.monotonic() + settle, early[2])
                    continue
                self.links.forget(path)
                if not healthy:
                    self.deletes_suppressed += 1
                elif (alias := self._alias_on_disk(path)) is not None:
                    rows.append(alias)  # its node in Fusion stays, with no tombstone
                else:
                    rows.append({"path": path})
                continue
            row = row_of(path, st)
            row["is_atomic_write"] = change is not Change.PARTIAL
            if change in DELETES or change is Change.REPLACE:
                if change is not Change.REPLACE:
                    self.deletes_cancelled += 1  # back before its delete was due
                if row["is_directory"]:
                    # A directory here is listed after this row: its own create event may not
                    # have been read yet, and a reset (below) drops whatever Fusion holds under
                    # the path, children this watch sent while the old one's delete was held.
                    self.pending.add_subtree(path)
                    if change is not Change.DELETE:
                        rows.append({**row, "is_directory": False, "size": 0})
            if row["is_directory"] and skipped is not None and skipped(path):
                row["audit_skipped"] = True
            rows.append(row)
            if st.st_nlink > 1 and not row["is_directory"]:
                rows.extend(self.links.others(path, st, root, row["is_atomic_write"], self.flt))
        return rows

    def _alias_on_disk(self, path: str) -> Row | None:
        """The row of another entry of ``path``'s directory that Fusion sees as the same
        path (raw bytes and a valid UTF-8 name spelling them as ``%XX``, in any mix,
        ``wire_path``): deleting one of them must not delete, and tombstone, the other in
        Fusion. Only a name holding a raw byte or its ``%80``-``%FF`` spelling can have
        one: its directory is listed (no stat per entry) for that rare delete alone."""
        parent, _, name = path.rpartition("/")
        if ("%" not in name and name.isascii()) or not name:
            return None
        wired = wire_path(path)
        if _SPELLED_BYTE.search(wired.rpartition("/")[2]) is None:
            return None  # no %80-%FF in the name (URL-style %20 included): no other spelling
        prefix = parent + "/"
        try:
            with os.scandir(abs_of(self.root, parent or "/")) as entries:
                for entry in entries:
                    rel = prefix + entry.name
                    if entry.name == name or wire_path(rel) != wired:
                        continue
                    st = lstat_at(self.root, rel)
                    if st is not None and self.flt.wants_path(rel, stat_mod.S_ISDIR(st.st_mode)):
                        return row_of(rel, st)
        except OSError:  # the directory is gone too: nothing is left under that path
            pass
        return None

    def _note_gone(self, changes: dict[str, Change]) -> None:
        gone = [p for p, c in changes.items() if c in DELETES or c is Change.REPLACE]
        limit = self.params.max_pending_paths
        for tracked in tuple(self._tracked):
            room = limit - len(tracked.gone)
            if room > 0:
                tracked.gone.update(gone[:room])

    def _emit(self, rows: list[Row]) -> None:
        """Every realtime row goes out here: deletes and re-appearances are tracked against
        Fusion's tombstones on the way."""
        tombstones = self.tombstones
        hidden = 0
        tracked = tuple(self._tracked)
        for row in rows:
            mtime = row.get("modified_time")
            if mtime is None:
                tombstones.deleted(row["path"])
            elif tombstones.seen(row["path"], mtime):
                hidden += 1
            for each in tracked:
                if len(each.sent) < self.params.max_pending_paths:
                    each.sent[row["path"]] = mtime
        if hidden:
            self._note_hidden(hidden)
        self.rows += len(rows)
        self._put(Batch(_RT, _events(rows)))

    def _note_hidden(self, count: int) -> None:
        """Log paths back with an old mtime at most once a minute (a path flapping between
        file and directory would otherwise log a line per change)."""
        self._hidden_unlogged += count
        now = time.monotonic()
        if now - self._hidden_logged_at < _HIDDEN_LOG_SEC:
            return
        log.info(
            "%d deleted paths are back with an mtime older than their delete (since the last "
            "such line): Fusion's tombstones may hide them until an audit past "
            "tombstone_ttl_sec restores them",
            self._hidden_unlogged,
        )
        self._hidden_unlogged, self._hidden_logged_at = 0, now

    def _put(self, batch: Batch) -> None:
        assert self._channel is not None
        self._channel.put(batch)

    # -- figures -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        watched = len(self.watches) if self.watches is not None else 0
        reader = self.reader
        dirs = self.dirs
        if reader is not None:
            dirs = max(dirs + reader.dirs_created - reader.dirs_removed, watched)
        return {
            "watched_dirs": watched,
            "dirs": dirs,
            "watch_coverage": round(watched / dirs, 4) if dirs else 1.0,
            "watch_limited": bool(self.watches and self.watches.limited),
            "unwatchable_dirs": len(self.watches.unwatchable) if self.watches else 0,
            "overflows": reader.overflows if reader else 0,
            "inotify_events": reader.events if reader else 0,
            "pending_paths": len(self.pending),
            "degraded_changes": self.pending.degraded,
            "dir_rescans": self.dir_rescans,
            "recoveries": self.recoveries,
            "realtime_rows": self.rows,
            "deletes_suppressed": self.deletes_suppressed,
            "deletes_held": len(self._held),
            "deletes_cancelled": self.deletes_cancelled,
            "watch_ready": self.ready.is_set(),
            **self._backend_status(),
        }

    def _backend_status(self) -> dict[str, Any]:
        backend = self.backend
        if backend is None:
            return {}
        out: dict[str, Any] = {
            "watch_backend": backend.name,
            "watch_backend_reason": backend.reason,
            "watch_fanotify": backend.name == "fanotify",
        }
        resolver = getattr(backend.reader, "resolver", None)
        if resolver is not None:
            out["handles_resolved"] = resolver.resolved
            out["events_outside_root"] = resolver.dropped
        return out
