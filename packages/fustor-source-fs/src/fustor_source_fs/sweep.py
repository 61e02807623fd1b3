"""The in-place sweep (issue 8): re-stat files in directories the audit skipped, report changes.

The mtime-skip audit only sees entries created, deleted or renamed, because only those change
a directory's mtime. A file written in place by another NFS client changes only its own mtime
and size. Each audit pass therefore also re-checks a slice of the files of the directories it
skipped, against the state recorded when they were last listed or swept (docs/source-fs.md,
"In-place sweep", says which changes are caught and which cannot be).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from fustor_core import Row
from fustor_core.paths import join
from fustor_source_fs.audit import AuditCache, cached_mtime
from fustor_source_fs.filters import PathFilter
from fustor_source_fs.listing import list_dir
from fustor_source_fs.rows import DIR_OPEN_FLAGS, audit_file_row
from fustor_source_fs.sweepbudget import Pacer, SweepBudget
from fustor_source_fs.sweepstore import (
    Columns,
    SweepStore,
    file_count,
    keep_unaccepted,
    unpack,
)
from fustor_source_fs.walk import RowSink, WalkCancelled

__all__ = ["SweepPass", "Sweeper"]

log = logging.getLogger(__name__)

_PACE_CHUNK = 64  # most stats taken from the pacer at a time


class _Recorder(RowSink):
    """Passes the audit's rows on and records the files of every directory listed in full.

    A directory's file rows come before its own row; that row says whether the listing was
    complete (``audit_skipped: false``), and only then is the record kept.
    """

    def __init__(self, inner: RowSink) -> None:
        super().__init__(inner.extend, 1)  # batching is the inner sink's: extend is replaced
        self._inner = inner
        self._open: dict[str, Columns] = {}
        self.listed: dict[str, bytes] = {}

    def extend(self, rows: list[Row]) -> None:
        # Runs for every row of a full audit: kept flat, and a call usually holds the files
        # of one directory, so its columns are looked up once.
        with self.lock:
            open_dirs = self._open
            last_parent: str | None = None
            columns = Columns()  # a placeholder until the first file row
            add_hash, add_mtime, add_size = (
                columns.hashes.append,
                columns.mtimes.append,
                columns.sizes.append,
            )
            for row in rows:
                if row["is_directory"]:
                    done = open_dirs.pop(row["path"], None)
                    if row.get("audit_skipped") is False:
                        self.listed[row["path"]] = done.pack() if done else b""
                    last_parent = None
                    continue
                parent = row.get("parent_path")
                if parent is None:
                    continue
                if parent != last_parent:
                    found = open_dirs.get(parent)
                    columns = open_dirs[parent] = Columns() if found is None else found
                    add_hash = columns.hashes.append
                    add_mtime = columns.mtimes.append
                    add_size = columns.sizes.append
                    last_parent = parent
                add_hash(hash(row["path"]))
                add_mtime(row["modified_time"])
                add_size(row["size"])
        self._inner.extend(rows)

    def flush(self) -> None:
        self._inner.flush()


class SweepPass:
    """The sweep work of one audit pass; its results count only once :meth:`Sweeper.commit`
    accepts them (the host took every batch), so an interrupted audit re-detects them."""

    def __init__(self, sweeper: Sweeper, store: SweepStore) -> None:
        self.sweeper = sweeper
        self.store = store
        self.recorder: _Recorder | None = None
        self.updates: dict[str, bytes | None] = {}
        self.consumed = 0
        self.cost = 0
        self.files_checked = 0
        self.stats = 0
        self.changes = 0
        self.forced = 0
        self.deferred = 0
        self.swept_sec = 0.0
        self._lock = threading.Lock()

    def wrap(self, sink: RowSink) -> RowSink:
        """The sink for the audit walk: it records what the walk lists in full."""
        self.recorder = _Recorder(sink)
        return self.recorder

    def run(
        self, new_cache: AuditCache, sink: RowSink, stop: threading.Event, workers: int
    ) -> None:
        """After the walk: re-check the directories due, sending changed files to ``sink``."""
        sweeper = self.sweeper
        listed = self.recorder.listed if self.recorder is not None else {}
        # One stat per file and one per directory (its fstat and listing).
        credit, max_sec = sweeper.budget.start_pass(self.store.files + len(self.store))
        plan: list[tuple[str, bytes, float]] = []
        planned_cost = 0
        for rel_dir in self.store:
            blob = self.store.dirs.get(rel_dir)
            cached = new_cache.get(rel_dir)
            if blob is None or cached is None or rel_dir in listed:
                plan.append((rel_dir, b"", -1.0))  # gone, or just listed by the audit: no cost
                continue
            cost = 1 + file_count(blob)
            if planned_cost + cost > credit:
                break
            planned_cost += cost
            plan.append((rel_dir, blob, cached_mtime(cached)))
        if not planned_cost:
            self.consumed = len(plan)  # nothing to stat (after a full listing, say)
            return
        started = time.monotonic()
        deadline = started + max_sec
        pacer = Pacer(sweeper.max_rate)
        lock = threading.Lock()
        tasks = iter(plan)
        done = [0] * len(plan)
        positions = itertools.count()
        errors: list[BaseException] = []
        halt = threading.Event()  # stop, or a worker failed

        def work() -> None:
            while not halt.is_set() and not stop.is_set() and time.monotonic() < deadline:
                with lock:
                    task = next(tasks, None)
                    position = next(positions)
                if task is None:
                    return
                rel_dir, blob, dir_mtime = task
                try:
                    if dir_mtime >= 0:
                        self._check(rel_dir, blob, dir_mtime, sink, pacer, stop)
                except BaseException as exc:  # raised again below, on the job's thread
                    errors.append(exc)
                    halt.set()
                    return
                done[position] = 1

        threads = [
            threading.Thread(target=work, name=f"fs-sweep-{i}", daemon=True)
            for i in range(max(1, min(workers, len(plan))))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.swept_sec = time.monotonic() - started
        if errors:
            raise errors[0]
        if stop.is_set():
            raise WalkCancelled
        # Directories are taken in rotation order and a taken one is always finished, so
        # what was done is a prefix of the plan: that much of the rotation moves on.
        self.consumed = sum(itertools.takewhile(bool, done))
        for _, blob, dir_mtime in plan[: self.consumed]:
            if dir_mtime >= 0:
                self.cost += 1 + file_count(blob)

    def _check(
        self,
        rel_dir: str,
        blob: bytes,
        dir_mtime: float,
        sink: RowSink,
        pacer: Pacer,
        stop: threading.Event,
    ) -> None:
        """Re-stat the files of one directory; report and record those that changed."""
        sweeper = self.sweeper
        if not pacer.take(1, stop):
            return
        try:
            fd = os.open(join(sweeper.root, rel_dir), DIR_OPEN_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            sweeper.check_root()  # the share went away? then stop before anything is sent
            self.updates[rel_dir] = None  # gone: its parent's next listing tells Fusion
            return
        except OSError as exc:
            log.warning("sweep: cannot open %r: %s", rel_dir, exc)
            return
        index, mtimes, sizes = unpack(blob)
        columns = Columns()
        rows: list[Row] = []
        stats = changes = forced = deferred = tokens = 0
        expected = len(index)
        settled_before = time.time() - sweeper.settle_sec
        try:
            if os.fstat(fd).st_mtime != dir_mtime:
                return  # entries came or went: the next audit lists it in full
            for entry, rel, _ in list_dir(fd, rel_dir, sweeper.filter, dirs=False):
                if not tokens:
                    # The record says how many stats are coming: take them in
                    # chunks, so the ceiling holds without a lock round per file.
                    tokens = min(_PACE_CHUNK, max(1, expected - stats))
                    if not pacer.take(tokens, stop):
                        return
                tokens -= 1
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    log.warning("sweep: cannot stat %r: %s", rel, exc)
                    return  # keep the old record whole: nothing half-known is stored
                stats += 1
                path_hash = hash(rel)
                mtime, size = st.st_mtime, st.st_size
                i = index.pop(path_hash, None)
                if i is not None and mtimes[i] == mtime and sizes[i] == size:
                    columns.add(path_hash, mtime, size)
                    continue
                row = audit_file_row(rel, st, rel_dir, dir_mtime)
                if i is not None and mtime <= mtimes[i]:
                    # Fusion keeps a compensating row only with a strictly newer mtime;
                    # this one must be forced (audit_skipped), which is only safe for a
                    # file that has settled and that realtime is not reporting.
                    if st.st_ctime > settled_before or sweeper.realtime_pending(rel):
                        deferred += 1
                        columns.add(path_hash, mtimes[i], sizes[i])  # retried next round
                        continue
                    row["audit_skipped"] = True
                    forced += 1
                changes += 1
                rows.append(row)
                columns.add(path_hash, mtime, size)
        finally:
            os.close(fd)
        if rows:
            sink.extend(rows)
        if changes or index:  # something changed, or files vanished (mtime restored)
            self.updates[rel_dir] = columns.pack()
        with self._lock:
            self.files_checked += stats
            self.stats += stats + 1
            self.changes += changes
            self.forced += forced
            self.deferred += deferred


class Sweeper:
    """Per-source sweep state: the store, the budget and the figures shown in status."""

    def __init__(
        self,
        root: str,
        flt: PathFilter,
        *,
        period: float,
        max_rate: float,
        settle_sec: float,
        check_root: Callable[[], None],
        realtime_pending: Callable[[str], bool],
    ) -> None:
        self.root = root
        self.filter = flt
        self.period = period
        self.max_rate = max_rate
        self.settle_sec = settle_sec
        self.check_root = check_root
        self.realtime_pending = realtime_pending
        self.store = SweepStore()
        self._before: dict[str, bytes] = {}
        self.budget = SweepBudget(period)
        self.running = False
        self.files_checked = 0
        self.changes = 0
        self.forced = 0
        self.deferred = 0
        self.passes = 0
        self.last_rate = 0.0

    def begin(self) -> SweepPass:
        return SweepPass(self, self.store)

    def commit(self, sweep: SweepPass, new_cache: AuditCache) -> None:
        """The audit pass completed and the host took every batch: its results count."""
        store = self.store
        if sweep.store is not store:
            return  # forgotten meanwhile: a new session wants everything listed again
        if sweep.recorder is not None:
            before = self._before
            for rel_dir, blob in sweep.recorder.listed.items():
                if rel_dir in new_cache:
                    old = store.dirs.get(rel_dir) or before.get(rel_dir)
                    store.put(rel_dir, keep_unaccepted(old, blob))
            self._before, sweep.recorder.listed = {}, {}  # freed before retain() below
        for rel_dir, record in sweep.updates.items():
            if record is None:
                store.drop(rel_dir)
            elif rel_dir in store.dirs:
                store.put(rel_dir, record)
        store.rotate(sweep.consumed)
        store.retain(new_cache)
        self.budget.end_pass(sweep.cost, sweep.files_checked, store.files)
        self.passes += 1
        self.files_checked += sweep.files_checked
        self.changes += sweep.changes
        self.forced += sweep.forced
        self.deferred += sweep.deferred
        if sweep.swept_sec >= 1.0:
            # Shorter passes fit within the pacer's burst and say nothing about the rate.
            self.last_rate = sweep.stats / sweep.swept_sec
        if sweep.changes:
            log.info(
                "sweep: %d of %d files re-checked had changed in place (%d forced)",
                sweep.changes,
                sweep.files_checked,
                sweep.forced,
            )

    def forget(self) -> None:
        """A new session or a promotion: the next audit lists everything and records anew.

        Fusion's tree outlives sessions, so what it dropped before still differs from the disk:
        the old records stay at hand until that listing is committed (see ``keep_unaccepted``).
        """
        self._before = {**self._before, **self.store.dirs}
        self.store = SweepStore()
        self.budget = SweepBudget(self.period)

    def status(self) -> dict[str, Any]:
        store, budget = self.store, self.budget
        tracked = store.files
        achieved = budget.period_achieved(tracked)
        memory = store.nbytes()
        return {
            "sweep_tracked_files": tracked,
            "sweep_tracked_dirs": len(store),
            "sweep_round_progress": round(budget.progress(tracked), 4),
            "sweep_rounds": budget.rounds,
            "sweep_files_checked": self.files_checked,
            "sweep_changes_found": self.changes,
            "sweep_forced_rows": self.forced,
            "sweep_deferred": self.deferred,
            "sweep_period_target_sec": self.period,
            "sweep_period_achieved_sec": None if achieved is None else round(achieved, 1),
            "sweep_stats_per_sec": round(self.last_rate, 1),
            "sweep_max_stats_per_sec": self.max_rate,
            "sweep_memory_bytes": memory,
            "sweep_bytes_per_file": round(memory / tracked, 1) if tracked else 0.0,
        }
