"""The inotify reader thread: drains the kernel queue into :class:`Pending`, never waiting."""

from __future__ import annotations

import logging
import threading
import time
from typing import NamedTuple

from inotify_simple import Event, flags

from fustor_source_fs.filters import PathFilter
from fustor_source_fs.pending import Change, Pending
from fustor_source_fs.watches import Watches, WatchLimit, WatchNode

__all__ = ["EventReader"]

log = logging.getLogger(__name__)

_ISDIR = flags.ISDIR
_CREATE = flags.CREATE
_MOVED_TO = flags.MOVED_TO
_MOVED_FROM = flags.MOVED_FROM
_DELETE = flags.DELETE
_CLOSE_WRITE = flags.CLOSE_WRITE
_ATTRIB = flags.ATTRIB
_MODIFY = flags.MODIFY
_SELF = flags.DELETE_SELF | flags.MOVE_SELF | flags.UNMOUNT
_MOVE_PAIR_WAIT = 0.02  # a rename's two events are queued together; this is ample


class _MovedFrom(NamedTuple):
    rel: str
    parent_rel: str
    node: WatchNode | None
    """The moved directory's watch node (``None`` for a file or an unwatched directory)."""
    is_dir: bool
    at: float


def parent_of(rel: str) -> str:
    """The root-relative path of the directory holding ``rel`` (``/`` for the root's entries)."""
    return rel.rsplit("/", 1)[0] or "/"


class EventReader:
    """Turns inotify events into pending changes, keeping the watch tree in step.

    New and moved-in directories are watched here at once (one cheap syscall) and queued
    for a full listing by the emitter, so nothing created before the watch is missed.
    """

    def __init__(
        self,
        inotify,
        watches: Watches,
        pending: Pending,
        flt: PathFilter,
        throttle: float,
    ) -> None:
        self.inotify = inotify
        self.watches = watches
        self.pending = pending
        self.flt = flt
        self.throttle = throttle
        self.stop = threading.Event()
        self.paused = threading.Event()
        """Tests only: stop reading (the kernel queue fills up, as under a stalled reader)."""
        self.health_due = threading.Event()
        self.events = 0
        self.overflows = 0
        self.dirs_created = 0
        self.dirs_removed = 0
        self.last_read = time.time()
        self._moves: dict[int, _MovedFrom] = {}
        self._partial_at: dict[str, float] = {}
        self._trailing: dict[str, str] = {}
        """Files whose writes the throttle held back (path -> directory): their state is
        sent once their throttle window ends (the trailing edge)."""
        self.root_replaced = 0
        """Times the root directory itself was moved away or deleted under us."""
        self._pruned_at = time.time()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.paused.is_set():
                time.sleep(0.01)
                continue
            timeout = int(_MOVE_PAIR_WAIT * 1000) if self._moves else 100
            try:
                events = self.inotify.read(timeout=timeout)
            except OSError as exc:  # the fd was closed under us while stopping
                if self.stop.is_set():
                    return
                log.error("inotify read failed: %s", exc)
                time.sleep(0.1)
                continue
            now = time.time()
            for event in events:
                try:
                    self.handle(event, now)
                except Exception:  # one bad event must not kill realtime
                    log.exception("could not handle inotify event %r", event)
            if events:
                self.events += len(events)
            if self._moves:
                self._expire_moves(now)
            if self._trailing:
                self._trailing_edge(now)
            self.last_read = now
            self._prune(now)

    def handle(self, event: Event, now: float) -> None:
        wd, mask, cookie, name = event
        if wd == -1:
            if mask & flags.Q_OVERFLOW:
                self.overflows += 1
                log.warning(
                    "inotify queue overflow #%d: events were lost; rescanning "
                    "(raise fs.inotify.max_queued_events if this repeats)",
                    self.overflows,
                )
                # Changes made since the last complete read may be among those lost.
                self.pending.set_overflow(self.last_read)
            return
        if mask & flags.IGNORED:
            self.watches.forget_wd(wd)
            return
        node = self.watches.by_wd.get(wd)
        if node is None:
            return
        dir_rel = node.path
        if not name:
            if mask & _SELF:
                if node.parent is None and mask & (flags.MOVE_SELF | flags.DELETE_SELF):
                    # The root went away (moved or deleted): whatever its old watches report
                    # from now on is outside the root. Drop them at once; the health check
                    # watches and rescans whatever is at the root's path now.
                    self.root_replaced += 1
                    log.warning("the root directory was moved or deleted: dropping its watches")
                    self._moves.clear()
                    self._trailing.clear()
                    self.watches.clear()
                if node.parent is None or mask & flags.UNMOUNT:
                    self.health_due.set()
                    self.pending.wake()
            elif mask & (_ATTRIB | _MODIFY):
                # The directory's own mode or times (``touch -m`` is a MODIFY). inotify also
                # tells the parent's watch; a fanotify mark tells only this way (name ".").
                self.pending.add(dir_rel, Change.UPSERT, parent_of(dir_rel))
            return
        rel = "/" + name if dir_rel == "/" else dir_rel + "/" + name
        is_dir = bool(mask & _ISDIR)
        if not self.flt.wants(name, rel, is_dir):
            return
        if self._moves:
            self._settle_moves_at(rel, cookie if mask & _MOVED_TO else None)
        add = self.pending.add
        if mask & _CREATE:
            if is_dir:
                self._new_dir(rel)
            add(rel, Change.UPSERT, dir_rel)
            add(dir_rel, Change.UPSERT, parent_of(dir_rel))
        elif mask & _CLOSE_WRITE or mask & _ATTRIB:
            if (
                is_dir
                and mask & _ATTRIB
                and not self.watches.exhausted
                and self.watches.node_at(rel) is None
            ):
                # A directory we could not watch or list may have just become readable.
                self._new_dir(rel)
            self._trailing.pop(rel, None)
            add(rel, Change.UPSERT, dir_rel)
        elif mask & _MODIFY:
            last = self._partial_at.get(rel)
            if last is None or now - last >= self.throttle:
                self._trailing.pop(rel, None)
                if add(rel, Change.PARTIAL, dir_rel) is Change.PARTIAL:
                    self._partial_at[rel] = now
            else:
                self._trailing[rel] = dir_rel
        elif mask & _DELETE:
            self._trailing.pop(rel, None)
            if is_dir:
                self.dirs_removed += 1
            add(rel, Change.DELETE_DIR if is_dir else Change.DELETE, dir_rel)
            add(dir_rel, Change.UPSERT, parent_of(dir_rel))
        elif mask & _MOVED_FROM:
            moved = node.children.get(name) if is_dir and node.children else None
            self._moves[cookie] = _MovedFrom(rel, dir_rel, moved, is_dir, now)
        elif mask & _MOVED_TO:
            self._moved_to(cookie, node, dir_rel, name, rel, is_dir)

    def _moved_to(
        self, cookie: int, node: WatchNode, dir_rel: str, name: str, rel: str, is_dir: bool
    ) -> None:
        add = self.pending.add
        src = self._moves.pop(cookie, None)
        if src is not None:
            add(src.rel, Change.DELETE_DIR if src.is_dir else Change.DELETE, src.parent_rel)
            if src.parent_rel != dir_rel:
                add(src.parent_rel, Change.UPSERT, parent_of(src.parent_rel))
            if is_dir:
                moved = src.node
                if moved is not None and self.watches.by_wd.get(moved.wd) is moved:
                    # Watches follow the inode: re-link the subtree, no watch is touched.
                    self.watches.move(moved, node, name)
                else:
                    self._new_dir(rel)
                # Every entry under the new name is reported again (and any directory
                # that had no watch yet gets one).
                self.pending.add_subtree(rel)
        elif is_dir:
            self._new_dir(rel)
        add(rel, Change.UPSERT, dir_rel)
        add(dir_rel, Change.UPSERT, parent_of(dir_rel))

    def _new_dir(self, rel: str) -> None:
        self.dirs_created += 1
        if not self.watches.exhausted:
            try:
                self.watches.add(rel)
            except WatchLimit:
                log.warning("out of inotify watches: %s is covered by audit only", rel)
            except OSError as exc:
                log.warning("cannot watch %s: %s", rel, exc)
        self.pending.add_subtree(rel)

    def _settle_moves_at(self, rel: str, pairing: int | None) -> None:
        """Something new happens at the source path of an unpaired move: that move left the
        root. Settle it now, so its delete comes before this event, not 20 ms after it."""
        for cookie, src in list(self._moves.items()):
            if src.rel == rel and cookie != pairing:
                self._moved_out(cookie, src)

    def _expire_moves(self, now: float) -> None:
        for cookie, src in list(self._moves.items()):
            if now - src.at >= _MOVE_PAIR_WAIT:
                self._moved_out(cookie, src)

    def _moved_out(self, cookie: int, src: _MovedFrom) -> None:
        del self._moves[cookie]
        # Moved out of the root (or to an excluded name): gone, with its watches.
        self.pending.add(
            src.rel, Change.DELETE_DIR if src.is_dir else Change.DELETE, src.parent_rel
        )
        self.pending.add(src.parent_rel, Change.UPSERT, parent_of(src.parent_rel))
        if src.is_dir:
            self.dirs_removed += 1
            # The node recorded at MOVED_FROM: whatever sits at that name now is not it.
            if src.node is not None and self.watches.by_wd.get(src.node.wd) is src.node:
                self.watches.remove(src.node, rm_watch=True)

    def _trailing_edge(self, now: float) -> None:
        """Send the current state of files whose throttle window ended with writes held."""
        throttle = self.throttle
        for rel, dir_rel in list(self._trailing.items()):
            if now - self._partial_at.get(rel, 0.0) >= throttle:
                del self._trailing[rel]
                if self.pending.add(rel, Change.PARTIAL, dir_rel) is Change.PARTIAL:
                    self._partial_at[rel] = now

    def _prune(self, now: float) -> None:
        if now - self._pruned_at < 10.0 or not self._partial_at:
            return
        self._pruned_at = now
        horizon = now - self.throttle
        self._partial_at = {p: t for p, t in self._partial_at.items() if t >= horizon}
