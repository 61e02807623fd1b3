"""Choosing and opening the realtime backend: per-directory inotify or a fanotify filesystem mark.

Both give :class:`Realtime` the same two things: a :class:`Watches` tree (inotify watch
descriptors, or file handles) and an :class:`EventReader` feeding :class:`Pending`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from inotify_simple import INotify

from fustor_source_fs.config import FsParams
from fustor_source_fs.fanotify import Fanotify, FanotifyUnavailable
from fustor_source_fs.fanotify_reader import FanotifyReader
from fustor_source_fs.filters import PathFilter
from fustor_source_fs.handles import HandleSource
from fustor_source_fs.pending import Pending
from fustor_source_fs.reader import EventReader
from fustor_source_fs.watches import Watches

__all__ = [
    "Backend",
    "choose",
    "fanotify_problem",
    "fanotify_refused",
    "inotify_budget",
    "open_backend",
]

log = logging.getLogger(__name__)


@dataclass
class Backend:
    """An open backend. ``name``: ``inotify`` or ``fanotify``; ``reason``: why it was chosen."""

    name: str
    reason: str
    watches: Watches
    reader: EventReader
    closer: Any = field(repr=False)
    root: str = ""

    def rearm(self) -> None:
        """The root came back (remount, replaced root): fanotify marks the file system it is
        on now and forgets every handle of the old one; inotify re-watches by rescanning."""
        if self.name != "fanotify":
            return
        fan: Fanotify = self.closer
        fan.unmark()
        try:
            fan.mark(self.root)
        except FanotifyUnavailable as exc:
            log.error("cannot watch %s again with fanotify: %s", self.root, exc)
        self.watches.clear()

    def close(self) -> None:
        self.closer.close()


def inotify_budget() -> int:
    """Watches a user may place: the kernel's ``fs.inotify.max_user_watches``.

    ``max_watches`` is not counted: it bounds an inotify backend deliberately run with
    fewer watches than directories (audit-only blind spots by choice).
    """
    try:
        with open("/proc/sys/fs/inotify/max_user_watches") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 8192


def fanotify_problem(root: str) -> str | None:
    """Why fanotify cannot watch ``root`` here (one line), or ``None`` if it can."""
    try:
        fan = Fanotify()
    except FanotifyUnavailable as exc:
        return str(exc)
    try:
        fan.mark(root)
    except FanotifyUnavailable as exc:
        return str(exc)
    finally:
        fan.close()
    return None


def fanotify_refused(problem: object) -> str:
    """The one-line error of an explicit ``watch_backend: fanotify`` that cannot work."""
    return f"watch_backend fanotify cannot work: {problem}"


_COUNT_SECONDS = 10.0
"""``auto`` stops counting directories after this long (slow storage, or a huge tree)."""


def _count_dirs(root: str, flt: PathFilter, limit: int) -> int | None:
    """Directories under ``root`` (itself included), counting no further than ``limit``
    (then ``limit`` is returned); ``None`` when counting took longer than ``_COUNT_SECONDS``.

    Cheaper than a walk, through link counts (ext4, xfs, tmpfs keep a directory's
    ``st_nlink`` at 2 + its subdirectories): a subdirectory with a link count of 2 has none,
    so it is counted from its parent's listing with one ``lstat``, never opened; only
    directories with subdirectories, or with a link count the file system does not keep (1:
    btrfs, ext4 past 65,000 subdirectories), are listed. Without ``exclude`` patterns the
    subdirectories a link count promises count at once, so a tree far over ``limit`` stops
    after a few listings near the top. The count only picks the backend: a file system that
    misreports link counts costs a wrong guess, never a missed change.
    """
    exact = not flt.excludes
    count = 1
    promised = 0
    """Subdirectories of the stacked directories, known from their link counts, not yet
    counted one by one."""
    stack = [(root, "/", 0)]
    deadline = time.monotonic() + _COUNT_SECONDS
    while stack:
        if time.monotonic() > deadline:
            return None
        path, rel, subdirs = stack.pop()
        promised -= subdirs
        prefix = "/" if rel == "/" else rel + "/"
        try:
            with os.scandir(path) as it:
                for entry in it:
                    try:
                        if not entry.is_dir(follow_symlinks=False) or flt.excluded(
                            entry.name, prefix + entry.name
                        ):
                            continue
                        count += 1
                        links = entry.stat(follow_symlinks=False).st_nlink
                    except OSError:
                        continue
                    if links == 2:
                        if count >= limit:
                            return limit
                        continue
                    subdirs = links - 2 if exact and links > 2 else 0
                    promised += subdirs
                    if count + promised >= limit:
                        return limit
                    stack.append((entry.path, prefix + entry.name, subdirs))
        except OSError:
            continue
    return count


def choose(
    root: str, params: FsParams, flt: PathFilter, *, budget: int | None = None
) -> tuple[str, str]:
    """``(backend, reason)`` for ``watch_backend``; raises :class:`FanotifyUnavailable`
    when ``fanotify`` was asked for and cannot work. ``budget``: inotify watches available
    (default :func:`inotify_budget`; tests pass a small one instead of building a tree of
    200,000 directories)."""
    wanted = params.watch_backend
    if wanted == "inotify":
        return "inotify", "watch_backend: inotify"
    problem = fanotify_problem(root)
    if wanted == "fanotify":
        if problem is not None:
            raise FanotifyUnavailable(problem)
        return "fanotify", "watch_backend: fanotify"
    if problem is not None:
        return "inotify", f"auto: fanotify unavailable ({problem})"
    budget = inotify_budget() if budget is None else budget
    try:
        st = os.statvfs(root)
        in_use = st.f_files - st.f_ffree
    except OSError:
        in_use = budget + 1
    if 0 < in_use <= budget:
        return "inotify", (
            f"auto: the whole file system has {in_use} inodes, within the inotify budget "
            f"of {budget} watches"
        )
    dirs = _count_dirs(root, flt, budget + 1)
    if dirs is None:
        return "fanotify", (
            f"auto: counting the directories took over {_COUNT_SECONDS:.0f} s "
            f"(a tree this large or slow would strain {budget} inotify watches)"
        )
    if dirs <= budget:
        fit = "directory fits" if dirs == 1 else "directories fit"
        return "inotify", f"auto: {dirs} {fit} the inotify budget of {budget} watches"
    return "fanotify", (
        f"auto: more than {budget} directories, over the inotify budget "
        f"(fs.inotify.max_user_watches)"
    )


def open_backend(root: str, params: FsParams, pending: Pending, flt: PathFilter) -> Backend:
    """Choose (see :func:`choose`), open, log the choice; raises :class:`FanotifyUnavailable`."""
    name, reason = choose(root, params, flt)
    throttle = params.throttle_interval_sec
    if name == "fanotify":
        fan = Fanotify()
        try:
            fan.mark(root)
        except FanotifyUnavailable:
            fan.close()
            raise
        watches = Watches(HandleSource(), root, None)
        reader: EventReader = FanotifyReader(fan, watches, pending, flt, throttle, root)
        closer: Any = fan
    else:
        inotify = INotify()
        watches = Watches(inotify, root, params.max_watches)
        reader = EventReader(inotify, watches, pending, flt, throttle)
        closer = inotify
    log.info("realtime backend for %s: %s (%s)", root, name, reason)
    return Backend(name, reason, watches, reader, closer, root)
