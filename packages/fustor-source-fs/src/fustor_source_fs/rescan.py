"""Listings done on behalf of realtime: new subtrees, directory rescans, overflow recovery."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from fustor_core import Row
from fustor_source_fs.deep import open_dir
from fustor_source_fs.filters import PathFilter
from fustor_source_fs.listing import list_dir
from fustor_source_fs.rows import row_of
from fustor_source_fs.walk import RowSink, walk
from fustor_source_fs.watches import Watches, WatchKey, WatchLimit, WatchNode

__all__ = ["WatchScan"]

log = logging.getLogger(__name__)


class WatchScan:
    """Lists directories after making sure each is watched (watch first, then list, so a
    file created in between is seen by one or the other), upserting what it finds.

    ``since``: only entries whose ctime is at least this are upserted (0: all of them).
    ``recurse_all``: descend into every subdirectory; otherwise only into the ones that had
    no watch yet (they are new to us, so everything in them is reported).
    """

    def __init__(
        self,
        watches: Watches,
        flt: PathFilter,
        sink: RowSink,
        *,
        since: float,
        recurse_all: bool,
        can_delete: Callable[[], bool],
    ) -> None:
        self.watches = watches
        self.flt = flt
        self.sink = sink
        self.since = since
        self.recurse_all = recurse_all
        self.can_delete = can_delete
        self.visited: set[WatchKey] = set()
        self.dirs = 0
        self.lock = threading.Lock()

    def run(self, roots: list[str], workers: int, stop: threading.Event) -> None:
        walk(roots, self.visit, workers=workers, stop=stop, lifo=False)

    def visit(self, rel_dir: str) -> list[str]:
        watches = self.watches
        node = watches.node_at(rel_dir)
        fresh = node is None
        if node is None and not watches.exhausted:
            try:
                node = watches.add(rel_dir)
            except WatchLimit:
                log.warning("out of inotify watches: %s is covered by audit only", rel_dir)
        if node is not None:
            self.visited.add(node.wd)
        since = 0.0 if fresh else self.since
        rows: list[Row] = []
        subdirs: list[str] = []
        seen: set[str] = set()
        fd = -1
        try:
            fd = open_dir(watches.abs_path(rel_dir), rel_dir)
            for entry, rel, is_dir in list_dir(fd, rel_dir, self.flt):
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                name = entry.name
                child = node.children.get(name) if node and node.children else None
                replaced = False
                if is_dir:
                    seen.add(name)
                    if self.recurse_all or child is None:
                        subdirs.append(rel)
                elif child is not None:
                    # A watched subdirectory that is something else now (a type change while
                    # events were lost): its watches go and the new entry's row, which replaces
                    # the directory in Fusion, goes whatever its ctime. A delete row (_gone,
                    # vanished) would remove the new entry too and tombstone a path that exists.
                    self.watches.remove(child, rm_watch=True)
                    replaced = True
                if replaced or st.st_ctime >= since:
                    row = row_of(rel, st, is_dir)
                    row["is_atomic_write"] = True
                    rows.append(row)
        except OSError as exc:
            log.debug("rescan: cannot list %s: %s", rel_dir, exc)
            return []
        finally:
            if fd >= 0:
                os.close(fd)
        with self.lock:
            self.dirs += 1
        if node is not None and node.children and not self.recurse_all:
            rows.extend(self._gone(node, seen))
        if rows:
            self.sink.extend(rows)
        return subdirs

    def _gone(self, node: WatchNode, seen: set[str]) -> list[Row]:
        """Watched subdirectories that no longer exist: we know they did, so delete them."""
        if not self.can_delete():
            return []
        rows: list[Row] = []
        for name, child in list((node.children or {}).items()):
            if name not in seen:
                rows.append({"path": child.path})
                self.watches.remove(child, rm_watch=True)
        return rows

    def vanished(self) -> list[Row]:
        """After a full recursive pass: delete rows for watched directories not met again."""
        root = self.watches.root_node
        if root is None or not self.can_delete():
            return []
        rows: list[Row] = []
        stack = [root]
        while stack:
            node = stack.pop()
            for child in list((node.children or {}).values()):
                if child.wd in self.visited:
                    stack.append(child)
                else:
                    rows.append({"path": child.path})
                    self.watches.remove(child, rm_watch=True)
        return rows
