"""Hard links: every name of a multi-link file inside the tree, so a change seen through one
name updates the others (inotify reports a write only under the name it was made through)."""

from __future__ import annotations

import os
import stat as stat_mod
import threading

from fustor_core import Row
from fustor_source_fs.deep import lstat_at
from fustor_source_fs.rows import row_of

__all__ = ["HardLinks"]


class HardLinks:
    """(device, inode) -> root-relative names, for files with ``st_nlink > 1`` only.

    Filled by every listing (snapshot, audit, realtime rows); a name is dropped when it is
    deleted or found to name another inode. Memory: one entry per name of a multi-link file.
    """

    def __init__(self) -> None:
        self._names: dict[tuple[int, int], set[str]] = {}
        self._key: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def note(self, path: str, st: os.stat_result) -> None:
        """Remember that ``path`` names this multi-link inode (call only when nlink > 1)."""
        key = (st.st_dev, st.st_ino)
        with self._lock:
            old = self._key.get(path)
            if old == key:
                return
            if old is not None:
                self._discard(path, old)
            self._key[path] = key
            self._names.setdefault(key, set()).add(path)

    def forget(self, path: str) -> None:
        if path not in self._key:
            return
        with self._lock:
            key = self._key.pop(path, None)
            if key is not None:
                self._discard(path, key)

    def others(self, path: str, st: os.stat_result, root: str, atomic: bool) -> list[Row]:
        """Rows for the other known names of ``path``'s inode, as they are on disk now
        (``is_atomic_write`` as the change seen through ``path``)."""
        self.note(path, st)
        key = (st.st_dev, st.st_ino)
        with self._lock:
            names = [n for n in self._names.get(key, ()) if n != path]
        rows: list[Row] = []
        for name in names:
            other = lstat_at(root, name)
            if other is None or (other.st_dev, other.st_ino) != key:
                self.forget(name)
                continue
            if stat_mod.S_ISREG(other.st_mode):
                row = row_of(name, other)
                row["is_atomic_write"] = atomic
                rows.append(row)
        return rows

    def __len__(self) -> int:
        return len(self._key)

    def _discard(self, path: str, key: tuple[int, int]) -> None:
        names = self._names.get(key)
        if names is not None:
            names.discard(path)
            if not names:
                del self._names[key]
