"""A parallel tree walk: worker threads share a stack of directories; rows go to one sink."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from fustor_core import Row

__all__ = ["RowSink", "WalkCancelled", "walk"]

T = TypeVar("T")


class WalkCancelled(Exception):
    """The walk was stopped from outside (phase cancelled or source stopping)."""


class RowSink:
    """Rows from every walk thread, in the order they were added, cut into batches.

    One lock round per call, so callers add a directory's rows at once. ``emit`` runs under
    the lock: a blocked consumer therefore holds every producer back (back-pressure), and the
    order in which rows were added is the order in which they leave.
    """

    def __init__(self, emit: Callable[[list[Row]], None], batch_size: int) -> None:
        self._emit = emit
        self._batch_size = batch_size
        self._rows: list[Row] = []
        self.lock = threading.Lock()
        self.count = 0

    def extend(self, rows: list[Row]) -> None:
        with self.lock:
            self.count += len(rows)
            buf = self._rows
            buf.extend(rows)
            size = self._batch_size
            while len(buf) >= size:
                self._emit(buf[:size])
                del buf[:size]

    def flush(self) -> None:
        with self.lock:
            if self._rows:
                rows, self._rows = self._rows, []
                self._emit(rows)


class _Pool(Generic[T]):
    def __init__(self, roots: Iterable[T], lifo: bool) -> None:
        self.work: deque[T] = deque(roots)
        self.take = self.work.pop if lifo else self.work.popleft
        self.cond = threading.Condition()
        self.active = 0
        self.error: BaseException | None = None


def walk(
    roots: Iterable[T],
    visit: Callable[[T], Sequence[T]],
    *,
    workers: int,
    stop: threading.Event,
    lifo: bool = True,
) -> None:
    """Visit every task reachable from ``roots``; ``visit`` returns the subtasks.

    Depth-first (``lifo``) keeps the set of started-but-unfinished directories small;
    breadth-first visits shallow directories first. Raises the first error of any visit, or
    :class:`WalkCancelled` when ``stop`` is set (checked between directories).
    """
    pool: _Pool[T] = _Pool(roots, lifo)
    if workers <= 1:
        work, take = pool.work, pool.take
        while work:
            if stop.is_set():
                raise WalkCancelled
            work.extend(visit(take()))
        return
    threads = [
        threading.Thread(target=_work, args=(pool, visit, stop), name=f"fs-walk-{i}", daemon=True)
        for i in range(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if pool.error is not None:
        raise pool.error
    if stop.is_set():
        raise WalkCancelled


def _work(pool: _Pool[T], visit: Callable[[T], Sequence[T]], stop: threading.Event) -> None:
    cond, work = pool.cond, pool.work
    while True:
        with cond:
            while not work and pool.active and pool.error is None and not stop.is_set():
                cond.wait(0.05)
            if pool.error is not None or stop.is_set() or not work:
                cond.notify_all()
                return
            task = pool.take()
            pool.active += 1
        try:
            children = visit(task)
        except BaseException as exc:  # surfaced to the caller of walk()
            with cond:
                if pool.error is None:
                    pool.error = exc
                pool.active -= 1
                cond.notify_all()
            return
        with cond:
            pool.active -= 1
            if children:
                work.extend(children)
                cond.notify(len(children))
            elif not pool.active and not work:
                cond.notify_all()
