"""The ``fs`` source driver: snapshot, inotify realtime, audit, sentinel and on-demand scans."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from fustor_agent_sdk import Phase, SourceDriver
from fustor_core import (
    Batch,
    DriverError,
    MessageSource,
    PathEscapeError,
    Row,
    confine,
    unwire_path,
)
from fustor_core.paths import join
from fustor_source_fs.audit import AuditCache, AuditWalk
from fustor_source_fs.backends import fanotify_problem, fanotify_refused
from fustor_source_fs.catchup import WatchedUntil
from fustor_source_fs.config import FsSourceConfig
from fustor_source_fs.filters import PathFilter
from fustor_source_fs.health import RootGuard
from fustor_source_fs.links import HardLinks
from fustor_source_fs.metrics import FS_METRICS
from fustor_source_fs.realtime import Realtime
from fustor_source_fs.rows import lstat_row, make_lister
from fustor_source_fs.streaming import stream_walk
from fustor_source_fs.sweep import Sweeper
from fustor_source_fs.tombstones import TombstoneTracker
from fustor_source_fs.walk import RowSink, WalkCancelled, walk

__all__ = ["FsSource"]

log = logging.getLogger(__name__)


_AHEAD_SLACK_SEC = 60.0
"""Taken off the times ``ctime`` is compared with: an NFS server's clock may run behind."""
_SKIP_VIEW_SEC = 120.0
"""How long after an audit's walk realtime still asks which directories it skipped: past
the host's wait for Fusion to finish the audit (the fusion sender's ``audit_end_timeout_sec``,
60 s by default), without holding the walk's old cache until the next audit."""


class FsSource(SourceDriver):
    """A directory tree on a local or network file system (see docs/source-fs.md)."""

    name = "fs"
    config_model = FsSourceConfig
    phases: ClassVar[frozenset[Phase]] = frozenset(Phase)
    metrics = FS_METRICS

    def __init__(self, source_id: str, config: FsSourceConfig) -> None:
        super().__init__(source_id, config)
        # Resolved once: every listing refuses to follow symlinks (O_NOFOLLOW), the root's too.
        self.root = os.path.realpath(config.uri)
        self.params = config.driver_params
        self.filter = PathFilter(self.params.file_pattern, self.params.exclude)
        self._real_root = self.root
        self._guard: RootGuard | None = None
        self._audit_cache: AuditCache = {}
        self._relist = False
        """The previous audit was a full one: this one lists everything again (B19)."""
        self._changed_since = time.time() - _AHEAD_SLACK_SEC
        """What a directory without a cached listing counts as a recent subdirectory change
        from (:class:`AuditWalk`): this source's start, then the last complete audit's."""
        self._skip_view: tuple[AuditWalk, AuditCache, float | None] | None = None
        """The running or last audit walk, the cache it started from, and until when
        (monotonic; ``None`` while it runs) realtime asks it (``_skipped_by_audit``)."""
        self._unknown_before: float | None = None
        """Wall time of this instance's first full audit: Fusion may hold tombstones stamped
        before it that the tracker never saw (this agent before a crash, another agent). The
        first audit once those are surely purged lists everything, which re-sends the paths
        they hid; then ``inf`` (done)."""
        self._realtime: Realtime | None = None
        self._watched: WatchedUntil | None = None
        self._catch_up_since: float | None = None
        """Entries with a ctime from this on changed while no agent watched (catchup.py):
        the next complete snapshot has realtime send them again, then ``None``."""
        self._progress: dict[str, Any] = {}
        self._sinks: dict[str, RowSink] = {}
        self._audits = 0
        self._monitor: threading.Thread | None = None
        self._monitor_stop = threading.Event()
        self._walk_stops: set[threading.Event] = set()
        self.tombstones = TombstoneTracker(self.params.tombstone_ttl_sec)
        self.links = HardLinks()
        self._sweeper: Sweeper | None = None
        if self.params.full_sweep_interval_sec > 0:
            self._sweeper = Sweeper(
                self.root,
                self.filter,
                period=self.params.full_sweep_interval_sec,
                max_rate=self.params.sweep_max_stats_per_sec,
                settle_sec=self.params.audit_mtime_tick_sec,
                check_root=self._check_root_now,
                realtime_pending=self._realtime_pending,
            )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._watched is None:
            self._watched = WatchedUntil(self.state_dir, self.root)
            until = await asyncio.to_thread(self._watched.load)
            if until is not None:
                self._catch_up_since = until - self.params.recovery_ctime_slack_sec
                self._watched.held = until
            if until:  # 0.0: damaged, said by load()
                log.info(
                    "%s was last watched until %s: the first snapshot has realtime send again "
                    "what changed since",
                    self.root,
                    time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(until)),
                )
        if self._guard is None:
            try:
                self._guard = await asyncio.to_thread(RootGuard, self.root)
            except OSError as exc:
                raise DriverError(f"cannot open root {self.root}: {exc}", retriable=True) from exc
        if self.params.watch_backend == "fanotify":
            # After the root is there: a share not mounted yet is waited for, not a refusal.
            problem = await asyncio.to_thread(fanotify_problem, self.root)
            if problem is not None:
                raise DriverError(fanotify_refused(problem), retriable=False)
        if self._monitor is None:
            self._monitor_stop.clear()
            self._monitor = threading.Thread(
                target=self.guard.monitor,
                args=(self._monitor_stop, self.params.health_check_interval_sec),
                name=f"fs-health-{self.source_id}",
                daemon=True,
            )
            self._monitor.start()

    async def stop(self) -> None:
        for stop in list(self._walk_stops):
            stop.set()
        self._monitor_stop.set()
        realtime = self._realtime
        if realtime is not None:
            realtime.close()
            await asyncio.to_thread(realtime.join, 3.0)
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            await asyncio.to_thread(monitor.join, 1.0)

    @property
    def guard(self) -> RootGuard:
        if self._guard is None:
            self._guard = RootGuard(self.root)
        return self._guard

    async def _require_root(self) -> None:
        reason = await asyncio.to_thread(self.guard.check)
        if reason is not None:
            raise DriverError(reason, retriable=True)

    def _check_root_now(self) -> None:
        """Called from walk threads when something vanishes: was it the whole share?"""
        reason = self.guard.check()
        if reason is not None:
            raise DriverError(reason, retriable=True)

    def health(self) -> str | None:
        return self._guard.problem if self._guard is not None else None

    # -- phases --------------------------------------------------------------------------

    async def snapshot(self) -> AsyncIterator[Batch]:
        await self._require_root()
        root_row = await asyncio.to_thread(lstat_row, self.root, "/")
        if root_row is None:
            raise DriverError(f"root unavailable: {self.root} does not exist", retriable=True)

        since = self._catch_up_since
        changed: list[tuple[str, bool]] | None = None if since is None else []

        def job(sink: RowSink, stop: threading.Event) -> None:
            realtime = self._realtime
            # Realtime already running: this walk watches each directory before listing it
            # (_watch_first), so realtime's own watch walk waits for it to end.
            covering = realtime is not None and realtime.started and realtime.cover()
            complete = False
            failed: list[str] = []

            def list_failed(rel_dir: str, exc: OSError) -> None:
                failed.append(rel_dir)  # its subdirectories are left to the watch walk
                self._list_failed(rel_dir, exc)

            try:
                sink.extend([root_row])
                visit = make_lister(
                    self.filter,
                    sink,
                    self.params.batch_size,
                    list_failed,
                    self._watch_first,
                    self.links.note,
                    math.inf if since is None else since,
                    changed,
                    self.params.max_pending_paths,
                )
                walk([(self.root, "/")], visit, workers=self.params.scan_workers, stop=stop)
                complete = not failed
            finally:
                if covering:
                    assert realtime is not None
                    realtime.uncover(complete)

        async for batch in self._stream(job, MessageSource.SNAPSHOT, "snapshot"):
            yield batch
        if changed is not None and self._realtime is not None:
            self._catch_up(changed, since)

    def _catch_up(self, changed: list[tuple[str, bool]], since: float | None) -> None:
        """After the first complete snapshot: realtime sends again, read from the disk, what
        changed while no agent watched (catchup.py), and all of each directory moved in
        meanwhile (``True``: a rename changes the ctime of the directory only, not of what
        is under it); too many for its queue, it rescans."""
        realtime = self._realtime
        assert realtime is not None and since is not None and self._watched is not None
        self._catch_up_since = None
        limit = self.params.max_pending_paths
        if len(changed) > limit:
            log.info("snapshot: over %d entries changed while no agent watched: rescanning", limit)
            realtime.pending.set_overflow(since + self.params.recovery_ctime_slack_sec)
        else:
            log.info("snapshot: %d entries changed while no agent watched go again", len(changed))
            realtime.resend(path for path, _ in changed)
            for path, moved in changed:
                if moved:
                    realtime.pending.add_subtree(path, resent=True)
        self._watched.held = None  # queued: realtime notes a later time once they are out

    def _watch_first(self, rel_dir: str) -> None:
        """While realtime is still placing its watches, the snapshot places each directory's
        watch itself before listing it: a change in between is then seen by one or the
        other, and the snapshot need not wait seconds for the watch walk of a large tree."""
        realtime = self._realtime
        if realtime is not None and realtime.started and not realtime.ready.is_set():
            realtime.ensure_watched(rel_dir)

    def realtime(self) -> AsyncIterator[Batch]:
        if self._realtime is not None and not self._realtime.stop.is_set():
            raise DriverError("realtime is already running for this source", retriable=False)
        self._realtime = Realtime(
            self.root, self.params, self.filter, self.guard, self.tombstones, self.links
        )
        self._realtime.audit_skipped = self._skipped_by_audit
        self._realtime.watched = self._watched
        self._realtime.delivered = self.realtime_delivered
        return self._realtime.run()

    async def audit(self, full: bool = False) -> AsyncIterator[Batch]:
        await self._require_root()
        holder: list[AuditWalk] = []
        if full and self._sweeper is not None:
            self._sweeper.forget()
        # A full audit runs when sessions come and go (a new leader, agents restarting), and
        # every new session makes Fusion 0.8.17 forget the rows an audit has sent so far (B19):
        # its end may then delete children listed before. The next audit lists in full again.
        relist, self._relist = self._relist, full
        purged = self.tombstones.audit_started()
        if full and self._unknown_before is None:
            self._unknown_before = time.time()
        elif self._unknown_before is not None and purged >= self._unknown_before:
            relist, self._unknown_before = True, math.inf
        cache: AuditCache = {} if full or relist else self._audit_cache
        sweep = self._sweeper.begin() if self._sweeper is not None else None
        began = time.time()

        def job(sink: RowSink, stop: threading.Event) -> None:
            audit = AuditWalk(
                self.root,
                self.filter,
                sink if sweep is None else sweep.wrap(sink),
                cache,
                batch_size=self.params.batch_size,
                mtime_tick=self.params.audit_mtime_tick_sec,
                check_root=self._check_root_now,
                tombstones=self.tombstones,
                links=self.links,
                known=self._audit_cache,
                changed_since=self._changed_since,
            )
            holder.append(audit)
            self._skip_view = (audit, cache, None)
            walk([audit.root_task()], audit.visit, workers=self.params.scan_workers, stop=stop)
            self._progress["audit_dirs_listed"] = audit.dirs_listed
            self._progress["audit_dirs_skipped"] = audit.dirs_skipped
            if sweep is not None:
                # Inside the audit cycle: Fusion takes these rows as part of it (protocol §5.5).
                sweep.run(audit.new_cache, sink, stop, self.params.scan_workers)

        try:
            async for batch in self._stream(job, MessageSource.AUDIT, "audit"):
                yield batch
            if holder:  # every row of the pass has gone out: what changed since it skipped
                async for batch in self._recheck(holder[-1]):
                    yield batch
        finally:
            if holder:  # realtime keeps asking while Fusion may still be finishing the audit
                view = self._skip_view = (holder[-1], cache, time.monotonic() + _SKIP_VIEW_SEC)
                with contextlib.suppress(RuntimeError):  # closed outside a loop: kept till next
                    asyncio.get_running_loop().call_later(_SKIP_VIEW_SEC, self._forget_skips, view)
        # Every batch has been taken by the host: only such a complete pass may decide what
        # the next one skips.
        if holder:
            audit = holder.pop()
            self.tombstones.audit_ended(purged, audit.listed)
            # What is left of the old cache (directories gone) goes before the commit.
            self._audit_cache, audit.cache, cache = audit.new_cache, {}, {}
            if sweep is not None and self._sweeper is not None:
                self._sweeper.commit(sweep, audit.new_cache)
            self._changed_since = began - _AHEAD_SLACK_SEC
        self._audits += 1

    async def _recheck(self, audit: AuditWalk) -> AsyncIterator[Batch]:
        """:meth:`AuditWalk.recheck`'s rows, as the last audit batches."""
        started, rows = time.monotonic(), 0
        async for batch in stream_walk(
            lambda sink, stop: audit.recheck(sink, stop, self.params.scan_workers),
            MessageSource.AUDIT,
            batch_size=self.params.batch_size,
            capacity=self.params.queue_batches,
            name=f"fs-audit-recheck-{self.source_id}",
            stops=self._walk_stops,
        ):
            rows += batch.row_count
            self._progress["audit_rows"] += batch.row_count
            yield batch
        if rows:
            log.info(
                "audit of %s: %d skipped directories changed meanwhile, sent again as "
                "audit_skipped (%.1f s)",
                self.root,
                rows,
                time.monotonic() - started,
            )

    async def audit_ended(self) -> None:
        """Fusion ended the last audit: the files of each directory it skipped that changed
        after its end check go again as realtime rows, read from the disk
        (:meth:`AuditWalk.files_changed_after_check`): another agent's row of the directory
        may have made that end delete them. Nothing while another audit runs, or without
        realtime."""
        view, realtime = self._skip_view, self._realtime
        if view is None or view[2] is None or realtime is None or realtime.stop.is_set():
            return
        audit, started_from, _ = view
        started = time.monotonic()
        stop = threading.Event()
        self._walk_stops.add(stop)
        try:
            files = await asyncio.to_thread(
                audit.files_changed_after_check, started_from, stop, self.params.scan_workers
            )
        except WalkCancelled:
            return
        finally:
            self._walk_stops.discard(stop)
        if files:
            realtime.resend(files)
            log.info(
                "audit of %s: %d files of skipped directories that changed before its end "
                "go again as realtime rows (%.1f s)",
                self.root,
                len(files),
                time.monotonic() - started,
            )

    def _forget_skips(self, view: object) -> None:
        """Drop an ended audit's view once past its time (frees the old cache it holds)."""
        if self._skip_view is view:
            self._skip_view = None

    def _skipped_by_audit(self, rel: str) -> bool:
        """Whether the running audit, or the one that just ended, sent directory ``rel`` as
        ``audit_skipped`` (unchanged, its files not listed). Realtime then sends the
        directory's row with the flag too: Fusion 0.8.17 judges a directory by the flag of
        its last accepted row at the audit end, and a realtime row without it made Fusion
        delete the directory's files the audit had not listed (protocol §5.5, helper 26).
        The fusion sender drops the flag once Fusion has acknowledged the audit end."""
        view = self._skip_view
        if view is None:
            return False
        audit, started_from, until = view
        if until is not None and time.monotonic() > until:
            return False
        return audit.skipped(rel, started_from)

    def _realtime_pending(self, rel: str) -> bool:
        """Whether realtime holds an unsent change of ``rel`` (read without its lock: a
        dict lookup is atomic, and a stale answer only defers a forced sweep row)."""
        realtime = self._realtime
        return realtime is not None and rel in realtime.pending.changes

    async def sentinel_check(self, paths: list[str]) -> list[Row]:
        await self._require_root()

        def check() -> list[Row]:
            out: list[Row] = []
            for requested in paths:
                try:
                    rel = confine(requested)
                except PathEscapeError:
                    log.warning("sentinel: ignoring path outside the root: %r", requested)
                    continue
                st = self._lstat_requested(rel)
                if st is None:
                    continue
                out.append({"path": rel, "mtime": st.st_mtime, "size": st.st_size})
            return out

        return await asyncio.to_thread(check)

    def _lstat_requested(self, rel: str) -> os.stat_result | None:
        """lstat a path named by Fusion; a non-UTF-8 name comes back ``%XX``-escaped."""
        for candidate in dict.fromkeys((rel, unwire_path(rel))):
            try:
                return os.lstat(join(self.root, candidate))
            except OSError:
                continue
        return None

    def _resolve_requested(self, rel: str) -> str:
        """``rel`` itself if it exists, else its un-escaped form if that exists."""
        raw = unwire_path(rel)
        if raw != rel and not os.path.lexists(join(self.root, rel)):
            if os.path.lexists(join(self.root, raw)):
                return raw
        return rel

    async def scan(self, path: str, recursive: bool) -> AsyncIterator[Batch]:
        rel = confine(path)  # raises PathEscapeError for ".." above the root
        rel = await asyncio.to_thread(self._resolve_requested, rel)
        abs_path = join(self.root, rel)
        await asyncio.to_thread(self._confine_real, rel, abs_path, path)
        await self._require_root()
        if not self.filter.wants_path(rel, True):
            return

        def job(sink: RowSink, stop: threading.Event) -> None:
            row = lstat_row(abs_path, rel)
            if row is None:
                return
            if not row["is_directory"]:
                if self.filter.wants_file(os.path.basename(abs_path)):
                    sink.extend([row])
                return
            sink.extend([row])
            visit = make_lister(self.filter, sink, self.params.batch_size, self._list_failed)
            if recursive:
                walk([(abs_path, rel)], visit, workers=self.params.scan_workers, stop=stop)
            else:
                visit((abs_path, rel))

        async for batch in self._stream(job, MessageSource.SCAN, "scan"):
            yield batch

    def _confine_real(self, rel: str, abs_path: str, requested: str) -> None:
        """Symlinks on the way must not lead outside (the last component is never followed)."""
        if rel == "/":
            return
        parent_real = os.path.realpath(os.path.dirname(abs_path))
        real_root = self._real_root
        if parent_real != real_root and not parent_real.startswith(real_root.rstrip("/") + "/"):
            log.warning("scan refused: %r resolves outside the root (%s)", requested, parent_real)
            raise PathEscapeError(f"path escapes the watched root through a symlink: {requested!r}")

    def _list_failed(self, rel_dir: str, exc: OSError) -> None:
        log.warning("cannot list %s: %s", rel_dir, exc)

    async def _stream(self, job: Any, source: MessageSource, phase: str) -> AsyncIterator[Batch]:
        """The walk's batches, as ``phase``. A row of it that realtime already sent with
        an older mtime (an mtime set back, by ``touch -d``, ``cp -p``, ``tar x``, after
        the walk read it) would win in Fusion, which takes a compensating row with a newer
        mtime (protocol §5.4), and no later audit row could set it back: realtime sends
        such paths again, from the disk, once the phase is over.

        Rows under a directory that realtime deleted or replaced during the phase (read
        before a ``mv`` or a ``git checkout``, still queued when realtime's row went out)
        would make it again in Fusion as a directory: with a tombstone that keeps it from
        every audit, or over the file now at its path. Once the phase is over, realtime
        deletes again each such path that is still gone, and sends one that exists as
        replaced (:meth:`Realtime.resend`)."""
        started = time.monotonic()
        self._progress[f"{phase}_running"] = True
        self._progress[f"{phase}_rows"] = 0
        realtime = self._realtime
        tracked = realtime.track() if realtime is not None else None
        sent = tracked.sent if tracked is not None else None
        again: set[str] = set()
        try:
            async for batch in stream_walk(
                job,
                source,
                batch_size=self.params.batch_size,
                capacity=self.params.queue_batches,
                name=f"fs-{phase}-{self.source_id}",
                on_sink=lambda sink: self._sinks.__setitem__(phase, sink),
                stops=self._walk_stops,
            ):
                self._progress[f"{phase}_rows"] += batch.row_count
                if sent:
                    again.update(_set_back(batch, sent))
                yield batch
            log.info(
                "%s of %s: %d rows in %.1f s",
                phase,
                self.root,
                self._progress[f"{phase}_rows"],
                time.monotonic() - started,
            )
        finally:
            self._progress[f"{phase}_running"] = False
            self._sinks.pop(phase, None)
            if realtime is not None and tracked is not None:
                realtime.untrack(tracked)
                gone = tracked.gone
                again.difference_update(gone)
                if again or gone:
                    log.info(
                        "%s: %d paths realtime sent with an older mtime and %d it deleted "
                        "or replaced go again",
                        phase,
                        len(again),
                        len(gone),
                    )
                    realtime.resend(again, gone)

    # -- figures -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        reason = (
            self.health()
            if self._guard is not None
            else f"{self.root} is not open (the source has not started)"
        )
        out: dict[str, Any] = {
            "root": self.root,
            "root_available": reason is None,
            "root_problem": reason,
            "audits": self._audits,
            "audit_cache_dirs": len(self._audit_cache),
            "tombstone_hidden_paths": self.tombstones.hidden,
            "tombstone_restored_paths": self.tombstones.restored,
            "tracked_deletes": self.tombstones.tracked,
            "hard_link_names": len(self.links),
        }
        out.update(self._progress)
        if self._sweeper is not None:
            out.update(self._sweeper.status())
        if self._realtime is not None:
            out.update(self._realtime.status())
        else:
            out.update({"watched_dirs": 0, "dirs": 0, "overflows": 0})
        return out


def _set_back(batch: Batch, sent: dict[str, float | None]) -> list[str]:
    """Paths of ``batch`` that realtime sent with an older mtime, or deleted."""
    out = []
    for event in batch.events:
        for row in event.rows:
            path = row.get("path")
            if path in sent:
                earlier = sent[path]
                mtime = row.get("modified_time")
                if earlier is None or (mtime is not None and mtime > earlier):
                    out.append(path)
    return out
