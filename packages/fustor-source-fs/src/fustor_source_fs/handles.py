"""Directory handle -> path for the fanotify backend: the watch tree keyed by file handle.

The walks that place inotify watches place "handles" here instead: :class:`Watches` runs
unchanged over :class:`HandleSource`, whose ``add_watch`` is one ``name_to_handle_at`` and
whose watch descriptor is the handle itself (the bytes fanotify reports). A directory event
then costs one dict lookup; the path comes from the node's parent chain, so a renamed
directory is one re-link. Handles the map does not know (a race with a walk, a directory
moved in and not yet listed) are resolved by :meth:`HandleResolver.node`: one
``open_by_handle_at`` on the root's mount and a ``readlink``; directories found outside the
root are remembered in a bounded negative cache, so a busy sibling tree costs a lookup per
event, not syscalls.

Directories whose path is longer than PATH_MAX (4096 bytes) have no path the kernel accepts
or prints: the walks take their handle from an ``O_PATH`` fd opened one component at a time
(:func:`~fustor_source_fs.deep.watch_path`), and an unknown one is resolved by climbing
``..`` from its fd to a directory the map knows, naming each step by its inode in the parent's
listing.
"""

from __future__ import annotations

import errno
import logging
import os

from fustor_source_fs.fanotify import handle_of, handle_of_fd, open_handle
from fustor_source_fs.filters import PathFilter
from fustor_source_fs.watches import Watches, WatchKey, WatchNode

__all__ = ["HandleResolver", "HandleSource"]

log = logging.getLogger(__name__)

_OUTSIDE_LIMIT = 65536
"""Handles remembered as outside the root; the cache is emptied when it fills."""
_FD_PATH = "/proc/self/fd/"
_CLIMB_LIMIT = 65536
"""Most ``..`` steps taken to resolve a directory with a path too long to read."""


class HandleSource:
    """What :class:`Watches` calls on inotify, answered with file handles (no kernel watch)."""

    def add_watch(self, path: str, mask: int) -> bytes:
        if path.startswith(_FD_PATH):
            # A path longer than PATH_MAX, handed over as the O_PATH fd that reaches it.
            return handle_of_fd(int(path[len(_FD_PATH) :]))
        return handle_of(path)

    def rm_watch(self, wd: WatchKey) -> None:
        pass

    def close(self) -> None:
        pass


class HandleResolver:
    """Finds the node of a directory handle: the map first, else the kernel (see module)."""

    def __init__(self, watches: Watches, root: str, flt: PathFilter) -> None:
        self.watches = watches
        self.root = os.fsencode(root)
        self._prefix = self.root.rstrip(b"/") + b"/"
        self.flt = flt
        self.outside: dict[bytes, None] = {}
        self.resolved = 0
        """Unknown handles resolved through the kernel (inside the root)."""
        self.dropped = 0
        """Events dropped because their directory is outside the root (or excluded)."""

    def node(self, handle: bytes) -> WatchNode | None:
        """The directory's node, or ``None`` (outside the root, excluded, or gone)."""
        node = self.watches.by_wd.get(handle)
        if node is not None:
            return node
        if handle in self.outside:
            self.dropped += 1
            return None
        rel = self._rel_of(handle)
        if rel is None:
            self._remember_outside(handle)
            self.dropped += 1
            return None
        node = self._attach(rel)
        if node is None or node.wd != handle:
            # Not resolvable to this very handle now (replaced meanwhile): drop the event;
            # whatever replaced it has events of its own.
            self.dropped += 1
            return None
        self.resolved += 1
        return node

    def forget_outside(self, handle: bytes) -> None:
        self.outside.pop(handle, None)

    def _remember_outside(self, handle: bytes) -> None:
        if len(self.outside) >= _OUTSIDE_LIMIT:
            self.outside.clear()
        self.outside[handle] = None

    def _rel_of(self, handle: bytes) -> str | None:
        """The root-relative path of the directory ``handle`` names, or ``None`` (gone,
        outside the root, or excluded)."""
        try:
            # Opened per lookup, not kept: an open descriptor would make an unmount fail.
            mount_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fd = open_handle(mount_fd, handle)
        except OSError:
            return None  # gone (ESTALE), or not reachable from the root's mount
        finally:
            os.close(mount_fd)
        try:
            try:
                rel = self._rel_of_path(os.readlink(f"{_FD_PATH}{fd}".encode()))
            except OSError as exc:
                if exc.errno != errno.ENAMETOOLONG:
                    return None
                rel = self._climb(fd)
        finally:
            os.close(fd)
        if rel is None:
            return None
        flt = self.flt
        names = rel[1:].split("/")
        for i, name in enumerate(names):
            if flt.excluded(name, "/" + "/".join(names[: i + 1])):
                return None
        return rel

    def _rel_of_path(self, path: bytes) -> str | None:
        if path == self.root:
            return "/"
        if not path.startswith(self._prefix) or path.endswith(b" (deleted)"):
            return None
        return "/" + os.fsdecode(path[len(self._prefix) :])

    def _climb(self, fd: int) -> str | None:
        """The path of directory ``fd`` when it is too long to read: up through ``..`` until
        a directory the map knows (or the root), each step named by finding the inode in
        its parent's listing. ``None`` when the file system's top is reached first (outside
        the root) or a step vanished meanwhile."""
        try:
            top = os.stat(self.root)
        except OSError:
            return None
        names: list[str] = []
        cur = os.dup(fd)
        try:
            for _ in range(_CLIMB_LIMIT):
                st = os.fstat(cur)
                node = self.watches.by_wd.get(handle_of_fd(cur))
                if node is not None or (st.st_dev, st.st_ino) == (top.st_dev, top.st_ino):
                    base = "/" if node is None else node.path
                    if not names:
                        return base
                    names.reverse()
                    return ("" if base == "/" else base) + "/" + "/".join(names)
                parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=cur)
                os.close(cur)
                cur = parent
                name = _name_of(parent, st)
                if name is None:
                    return None  # the top of the file system (its own parent), or vanished
                names.append(name)
        except OSError:
            return None
        finally:
            os.close(cur)
        return None

    def _attach(self, rel: str) -> WatchNode | None:
        """Add ``rel`` and any ancestor the map lacks, top down."""
        watches = self.watches
        if rel != "/" and watches.root_node is None:
            watches.add("/")
        missing = []
        path = rel
        while watches.node_at(path) is None:
            missing.append(path)
            if path == "/":
                break
            path = path.rsplit("/", 1)[0] or "/"
        node = None
        for path in reversed(missing):
            try:
                node = watches.add(path)
            except OSError as exc:
                log.debug("cannot resolve %s: %s", path, exc)
                return None
            if node is None:
                return None
        return node or watches.node_at(rel)


def _name_of(parent_fd: int, st: os.stat_result) -> str | None:
    """The name under which directory ``parent_fd`` lists the directory ``st`` describes."""
    with os.scandir(parent_fd) as it:
        for entry in it:
            if entry.inode() == st.st_ino and entry.is_dir(follow_symlinks=False):
                return entry.name
    return None
