"""Hard links: every name of a multi-link file inside the tree, so a change seen through one
name updates the others (inotify reports a write only under the name it was made through).

Names are learnt from listings (snapshot, audit) and realtime rows. ``link()`` itself raises no
event on the existing name's directory (the kernel reports the link-count change on the inode
only), so a file that had one name when last listed is unknown under that name: a change of a
multi-link file with fewer known names than links looks for the rest in its own directory
(``getdents`` inode numbers, no stat per entry). A name elsewhere is learnt at the next audit
that lists its directory, or by the sweep.
"""

from __future__ import annotations

import os
import stat as stat_mod
import threading

from fustor_core import Row
from fustor_source_fs.deep import abs_of, lstat_at
from fustor_source_fs.filters import PathFilter
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
        self._searched: dict[tuple[int, int], tuple[str, int]] = {}
        """Inode -> (directory, link count) last searched for its other names."""
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

    def others(
        self, path: str, st: os.stat_result, root: str, atomic: bool, flt: PathFilter
    ) -> list[Row]:
        """Rows for the other names of ``path``'s inode, as they are on disk now
        (``is_atomic_write`` as the change seen through ``path``): the known ones, and those
        in ``path``'s own directory (that ``flt`` reports) while fewer are known than links."""
        self.note(path, st)
        key = (st.st_dev, st.st_ino)
        with self._lock:
            names = [n for n in self._names.get(key, ()) if n != path]
        if len(names) + 1 < st.st_nlink:
            names.extend(self._search(path, st, root, flt, names))
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

    def _search(
        self, path: str, st: os.stat_result, root: str, flt: PathFilter, known: list[str]
    ) -> list[str]:
        """New names of ``st``'s inode in ``path``'s directory, noted; once per directory
        and link count, so repeated writes do not list the directory again."""
        key = (st.st_dev, st.st_ino)
        directory, _, own = path.rpartition("/")
        directory = directory or "/"
        with self._lock:
            if self._searched.get(key) == (directory, st.st_nlink):
                return []
            self._searched[key] = (directory, st.st_nlink)
        prefix = "/" if directory == "/" else directory + "/"
        found: list[str] = []
        try:
            with os.scandir(abs_of(root, directory)) as entries:
                for entry in entries:
                    rel = prefix + entry.name
                    if entry.inode() != st.st_ino or entry.name == own or rel in known:
                        continue
                    if not flt.wants(entry.name, rel, False):
                        continue
                    other = lstat_at(root, rel)
                    if other is not None and (other.st_dev, other.st_ino) == key:
                        self.note(rel, other)
                        found.append(rel)
        except OSError:  # the directory went away, or a path beyond PATH_MAX: not searched
            pass
        return found

    def __len__(self) -> int:
        return len(self._key)

    def _discard(self, path: str, key: tuple[int, int]) -> None:
        names = self._names.get(key)
        if names is not None:
            names.discard(path)
            if not names:
                del self._names[key]
                self._searched.pop(key, None)
