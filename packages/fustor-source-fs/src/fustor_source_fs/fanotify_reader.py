"""The fanotify reader: filesystem-mark events, kept to the root, fed to the inotify logic.

fanotify's event bits have inotify's values, so each event under the root is turned into the
``(wd, mask, cookie, name)`` tuple :class:`EventReader` handles, with the directory's handle as
``wd``: both backends share one set of rules for what a change means. What differs is done
here: events outside the root are dropped; a ``FAN_RENAME`` becomes a MOVED_FROM/MOVED_TO pair
with a made-up cookie (one end outside the root: a move in or out); events the kernel merged
(``FAN_CREATE | FAN_DELETE`` on one name) are ordered by asking the disk what is there now.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from inotify_simple import Event, flags

from fustor_source_fs.deep import lstat_at
from fustor_source_fs.fanotify import (
    FAN_CREATE,
    FAN_DELETE,
    FAN_MOVED_FROM,
    FAN_MOVED_TO,
    FAN_ONDIR,
    FAN_Q_OVERFLOW,
    FAN_RENAME,
    Fanotify,
    FanotifyEvent,
    handle_of,
)
from fustor_source_fs.filters import PathFilter
from fustor_source_fs.handles import HandleResolver
from fustor_source_fs.pending import Pending
from fustor_source_fs.reader import EventReader
from fustor_source_fs.watches import Watches

__all__ = ["FanotifyReader"]

log = logging.getLogger(__name__)

_ENTRY = FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO
_APPEAR = FAN_CREATE | FAN_MOVED_TO
_VANISH = FAN_DELETE | FAN_MOVED_FROM
_OUTSIDE_PAUSE = 0.001
"""Seconds the reader waits after a read that held only events outside the root."""
_ROOT_ENTRY = -2
"""The ``wd`` of the marker event: the root's own entry in its parent changed."""


class _Translator:
    """What :class:`EventReader` reads from: ``read(timeout)`` -> inotify-shaped events."""

    def __init__(self, fan: Fanotify, resolver: HandleResolver, root: str) -> None:
        self.fan = fan
        self.resolver = resolver
        self.root = root
        parent, self.root_name = os.path.split(root.rstrip("/") or "/")
        self.root_parent = _handle_or_none(parent) if self.root_name else None
        self.root_moved = threading.Event()
        self.overflows = 0
        self._cookie = 0
        self._from_cookie = 0

    def read(self, timeout: int) -> list[Event]:
        out: list[Event] = []
        self._from_cookie = 0
        events = self.fan.read(timeout)
        for ev in events:
            if ev.mask & FAN_Q_OVERFLOW:
                out.append(Event(-1, flags.Q_OVERFLOW, 0, ""))
                continue
            if ev.mask & FAN_RENAME:
                self._rename(ev, out)
            else:
                self._plain(ev, out)
        if self.root_moved.is_set():
            self.root_moved.clear()
            out.append(Event(_ROOT_ENTRY, 0, 0, ""))
        if events and not out:
            # Only changes elsewhere on the file system: let them pile up a little, so a busy
            # sibling tree costs one wake-up per few ms instead of one per change.
            time.sleep(_OUTSIDE_PAUSE)
        return out

    def close(self) -> None:
        self.fan.close()

    def _next_cookie(self) -> int:
        self._cookie += 1
        return self._cookie

    def _watch_root_entry(self, handle: bytes | None, name: bytes | None) -> None:
        if handle is not None and handle == self.root_parent and name == self.root_name.encode():
            self.root_moved.set()

    def _plain(self, ev: FanotifyEvent, out: list[Event]) -> None:
        mask = ev.mask
        # Only the event right after a MOVED_FROM can be its MOVED_TO, even when one of them
        # is dropped as outside the root (else a move out followed by a move in would pair).
        previous_from, self._from_cookie = self._from_cookie, 0
        if self.root_parent is not None:
            self._watch_root_entry(ev.dir_handle, ev.name)
        node = self.resolver.node(ev.dir_handle)
        if node is None:
            return
        name = "" if ev.name == b"." else os.fsdecode(ev.name)
        wd = node.wd
        isdir = mask & FAN_ONDIR
        entry = mask & _ENTRY
        if not entry or not name:
            out.append(Event(wd, mask, 0, name))
            return
        if entry == FAN_MOVED_FROM:
            # Without FAN_RENAME (Linux < 5.17): the kernel queues a move's two events back
            # to back, so a MOVED_TO right after this one is its other end.
            # Bits merged into a move (a write just before it, a chmod just after) are
            # dropped: the move's own handling covers them, and EventReader reads one kind.
            self._from_cookie = self._next_cookie()
            out.append(Event(wd, entry | isdir, self._from_cookie, name))
            return
        if entry == FAN_MOVED_TO:
            out.append(Event(wd, entry | isdir, previous_from or self._next_cookie(), name))
            return
        if entry & _APPEAR and entry & _VANISH:
            # Merged by the kernel, order lost: the disk says which came last.
            path = node.path
            exists = lstat_at(self.root, ("" if path == "/" else path) + "/" + name) is not None
            first, last = (FAN_DELETE, FAN_CREATE) if exists else (FAN_CREATE, FAN_DELETE)
            out.append(Event(wd, first | isdir, 0, name))
            out.append(Event(wd, last | isdir, 0, name))
            return
        out.append(Event(wd, entry | isdir if entry & FAN_DELETE else mask, 0, name))

    def _rename(self, ev: FanotifyEvent, out: list[Event]) -> None:
        self._from_cookie = 0
        if self.root_parent is not None:
            self._watch_root_entry(ev.dir_handle, ev.name)
            self._watch_root_entry(ev.new_dir_handle, ev.new_name)
        isdir = ev.mask & FAN_ONDIR
        src = self.resolver.node(ev.dir_handle)
        dst = self.resolver.node(ev.new_dir_handle) if ev.new_dir_handle else None
        cookie = self._next_cookie()
        if src is not None:
            out.append(Event(src.wd, FAN_MOVED_FROM | isdir, cookie, os.fsdecode(ev.name)))
        if dst is not None and ev.new_name is not None:
            out.append(Event(dst.wd, FAN_MOVED_TO | isdir, cookie, os.fsdecode(ev.new_name)))


def _handle_or_none(path: str) -> bytes | None:
    try:
        return handle_of(path)
    except OSError:
        return None


class FanotifyReader(EventReader):
    """:class:`EventReader` over a fanotify filesystem mark (see the module docstring)."""

    def __init__(
        self,
        fan: Fanotify,
        watches: Watches,
        pending: Pending,
        flt: PathFilter,
        throttle: float,
        root: str,
    ) -> None:
        self.resolver = HandleResolver(watches, root, flt)
        self.translator = _Translator(fan, self.resolver, root)
        super().__init__(self.translator, watches, pending, flt, throttle)

    def handle(self, event: Event, now: float) -> None:
        if event.wd == -1:
            self.overflows += 1
            log.warning(
                "fanotify queue overflow #%d: events were lost; rescanning "
                "(raise fs.fanotify.max_queued_events if this repeats)",
                self.overflows,
            )
            self.pending.set_overflow(self.last_read)
            return
        if event.wd == _ROOT_ENTRY:
            self.root_entry_changed()
            return
        super().handle(event, now)
        if event.mask & FAN_DELETE and event.mask & FAN_ONDIR and event.name:
            # inotify forgets a deleted directory's watch at IN_IGNORED; a handle has no such
            # event, so its node goes with the DELETE.
            parent = self.watches.by_wd.get(event.wd)
            child = parent.children.get(event.name) if parent and parent.children else None
            if child is not None:
                self.watches.remove(child, rm_watch=False)

    def root_entry_changed(self) -> None:
        """The root's own name changed in its parent (moved, deleted or replaced): stop
        reporting through the old directory's handles and let the health check decide."""
        self.watches.clear()
        self.health_due.set()
        self.pending.set_overflow(time.time())

    def _new_dir(self, rel: str) -> None:
        super()._new_dir(rel)
        node = self.watches.node_at(rel)
        if node is not None and isinstance(node.wd, bytes):  # always bytes: a file handle
            self.resolver.forget_outside(node.wd)
