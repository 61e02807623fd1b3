"""The inotify watches: one per directory, kept as a tree so a rename moves a whole subtree."""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Iterator
from typing import Protocol, TypeAlias

from inotify_simple import flags

from fustor_source_fs.deep import watch_path

__all__ = ["WATCH_MASK", "WatchKey", "WatchLimit", "WatchNode", "WatchSource", "Watches"]

log = logging.getLogger(__name__)

# No OPEN, ACCESS or CLOSE_NOWRITE: our own listings and stats must cause no events at all.
WATCH_MASK = (
    flags.CREATE
    | flags.CLOSE_WRITE
    | flags.ATTRIB
    | flags.MODIFY
    | flags.MOVED_FROM
    | flags.MOVED_TO
    | flags.DELETE
    | flags.DELETE_SELF
    | flags.MOVE_SELF
    | flags.ONLYDIR
    | flags.DONT_FOLLOW
)


_SURELY_SHORT = 1024
"""Paths of fewer characters are shorter than PATH_MAX (4096 bytes) in any encoding (at most
4 bytes per character), so they are watched by path without the long-path check."""

WatchKey: TypeAlias = int | bytes
"""What identifies a watched directory in events: an inotify watch descriptor (``int``) or,
for the fanotify backend, the directory's file handle (``bytes``)."""


class WatchSource(Protocol):
    """What places and removes watches: ``inotify_simple.INotify``, or the fanotify backend's
    ``HandleSource`` (which only computes handles)."""

    def add_watch(self, path: str, mask: int) -> WatchKey: ...

    def rm_watch(self, wd: WatchKey) -> None: ...


class WatchLimit(Exception):
    """No more watches can be placed (``max_watches`` or the kernel's ``max_user_watches``)."""


class WatchNode:
    """A watched directory. Its path is derived from the parent chain, never stored, so
    renaming a directory is one re-link however many watched directories lie under it."""

    __slots__ = ("children", "name", "parent", "wd")

    def __init__(self, wd: WatchKey, name: str, parent: WatchNode | None) -> None:
        self.wd = wd
        self.name = name
        self.parent = parent
        self.children: dict[str, WatchNode] | None = None

    @property
    def path(self) -> str:
        names = []
        node: WatchNode | None = self
        while node is not None and node.parent is not None:
            names.append(node.name)
            node = node.parent
        if not names:
            return "/"
        names.reverse()
        return "/" + "/".join(names)

    def walk(self) -> Iterator[WatchNode]:
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            if node.children:
                stack.extend(node.children.values())


class Watches:
    """wd -> node, path -> node, and the add/move/remove operations (thread-safe)."""

    def __init__(self, inotify: WatchSource, root: str, max_watches: int | None) -> None:
        self.inotify = inotify
        self.root = root
        self.max_watches = max_watches
        self.lock = threading.RLock()
        self.by_wd: dict[WatchKey, WatchNode] = {}
        self.root_node: WatchNode | None = None
        self._adding = 0
        self.limited = False
        """Set once a watch could not be placed for lack of watches (for status and logs)."""
        self.kernel_limited = False
        """The kernel refused a watch (ENOSPC): no use trying again for every new directory."""
        self.unwatchable: dict[str, str] = {}
        """Directories that could not be watched (path -> reason), each logged once; the
        rest of the tree keeps realtime, these are covered by audits."""

    @property
    def exhausted(self) -> bool:
        """No watch can be added now (a removed watch frees a slot under ``max_watches``)."""
        if self.kernel_limited:
            return True
        if self.max_watches is not None and len(self.by_wd) >= self.max_watches:
            self.limited = True
            return True
        return False

    def __len__(self) -> int:
        return len(self.by_wd)

    def abs_path(self, rel: str) -> str:
        return self.root if rel == "/" else self.root + rel if self.root != "/" else rel

    def node_at(self, rel: str) -> WatchNode | None:
        with self.lock:
            node = self.root_node
            if rel == "/" or node is None:
                return node
            for name in rel[1:].split("/"):
                if node.children is None or (node := node.children.get(name)) is None:
                    return None
            return node

    def add(self, rel: str) -> WatchNode | None:
        """Watch the directory at ``rel`` (its parent must be watched, unless it is the root).

        Returns the node, or ``None`` if it is gone, not a directory, or cannot be watched
        (then logged once and kept in :attr:`unwatchable` with the reason). Raises
        :class:`WatchLimit` when out of watches. A path longer than PATH_MAX is watched
        through an ``O_PATH`` fd of the directory.
        """
        with self.lock:
            # Several walk threads add at once: reserve the slot before the syscall.
            if self.max_watches is not None and len(self.by_wd) + self._adding >= self.max_watches:
                self.limited = True
                raise WatchLimit
            self._adding += 1
        try:
            path = self.abs_path(rel)
            if len(path) < _SURELY_SHORT:  # the common case: no context manager
                wd = self.inotify.add_watch(path, WATCH_MASK)
            else:
                with watch_path(self.root, rel) as path:
                    # /proc/self/fd/N is a link to follow; the fd was opened O_NOFOLLOW.
                    mask = WATCH_MASK
                    if path.startswith("/proc/self/fd/"):
                        mask &= ~flags.DONT_FOLLOW
                    wd = self.inotify.add_watch(path, mask)
        except OSError as exc:
            with self.lock:
                self._adding -= 1
            if exc.errno == errno.ENOSPC:
                self.limited = self.kernel_limited = True
                raise WatchLimit from exc
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                self._unwatchable(rel, exc)
            return None
        with self.lock:
            self._adding -= 1
            self.unwatchable.pop(rel, None)
            return self._link(rel, wd)

    def _unwatchable(self, rel: str, exc: OSError) -> None:
        reason = exc.strerror or str(exc)
        with self.lock:
            if self.unwatchable.get(rel) == reason:
                return
            self.unwatchable[rel] = reason
            if len(self.unwatchable) > 10_000:  # bounded: keep the newest
                del self.unwatchable[next(iter(self.unwatchable))]
        log.warning("cannot watch %s (%s): skipped, covered by audits only", rel, reason)

    def _link(self, rel: str, wd: WatchKey) -> WatchNode | None:
        """Put a new watch into the tree (lock held)."""
        known = self.by_wd.get(wd)
        if rel == "/":
            node = known or WatchNode(wd, "", None)
            self.root_node = node
            self.by_wd[wd] = node
            return node
        parent_rel, name = rel.rsplit("/", 1)
        parent = self.node_at(parent_rel or "/")
        if parent is None:
            # The parent lost its watch meanwhile: do not keep an orphan watch.
            if known is None:
                self._rm_watch(wd)
            return None
        if known is not None:
            if known.path != rel:
                # Same inode reachable twice (bind mount): keep the first; avoids loops.
                return None
            return known
        node = WatchNode(wd, name, parent)
        if parent.children is None:
            parent.children = {}
        old = parent.children.get(name)
        if old is not None and old is not node:
            self._drop(old)
        parent.children[name] = node
        self.by_wd[wd] = node
        return node

    def move(self, node: WatchNode, new_parent: WatchNode, new_name: str) -> None:
        with self.lock:
            self._unlink(node)
            if new_parent.children is None:
                new_parent.children = {}
            old = new_parent.children.get(new_name)
            if old is not None and old is not node:
                self._drop(old)
            node.parent, node.name = new_parent, new_name
            new_parent.children[new_name] = node

    def remove(self, node: WatchNode, *, rm_watch: bool) -> int:
        """Forget ``node`` and its subtree (and remove their kernel watches if asked)."""
        with self.lock:
            self._unlink(node)
            return self._drop(node, rm_watch=rm_watch)

    def forget_wd(self, wd: WatchKey) -> None:
        """The kernel removed this watch (IN_IGNORED): forget it and anything under it."""
        with self.lock:
            node = self.by_wd.get(wd)
            if node is not None:
                self._unlink(node)
                self._drop(node, rm_watch=True, skip_wd=wd)
                if node is self.root_node:
                    self.root_node = None

    def clear(self) -> None:
        with self.lock:
            for wd in list(self.by_wd):
                self._rm_watch(wd)
            self.by_wd.clear()
            self.root_node = None

    def _unlink(self, node: WatchNode) -> None:
        parent = node.parent
        if parent is not None and parent.children and parent.children.get(node.name) is node:
            del parent.children[node.name]

    def _drop(self, node: WatchNode, *, rm_watch: bool = True, skip_wd: WatchKey = -1) -> int:
        count = 0
        for sub in list(node.walk()):
            if self.by_wd.get(sub.wd) is sub:
                del self.by_wd[sub.wd]
                count += 1
                if rm_watch and sub.wd != skip_wd:
                    self._rm_watch(sub.wd)
        return count

    def _rm_watch(self, wd: WatchKey) -> None:
        try:
            self.inotify.rm_watch(wd)
        except OSError:  # already gone with its directory
            pass
