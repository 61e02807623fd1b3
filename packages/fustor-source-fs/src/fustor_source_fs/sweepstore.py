"""Compact per-file state of the in-place sweep: per directory, one bytes of hashes/mtimes/sizes."""

from __future__ import annotations

import sys
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = [
    "RECORD_BYTES",
    "Columns",
    "SweepStore",
    "file_count",
    "keep_unaccepted",
    "pack",
    "unpack",
]

RECORD_BYTES = 24
"""Per file: hash of its root-relative path (int64), st_mtime as Fusion sees it (float64),
size (int64). No name: the sweep lists the directory again to learn the names, so a file
costs 24 bytes plus its share of one ``bytes`` header and one dict slot per directory."""

_BYTES_HEADER = sys.getsizeof(b"")


class Columns:
    """The three columns of one directory while its record is being built."""

    __slots__ = ("hashes", "mtimes", "sizes")

    def __init__(self) -> None:
        self.hashes = array("q")
        self.mtimes = array("d")
        self.sizes = array("q")

    def add(self, path_hash: int, mtime: float, size: int) -> None:
        self.hashes.append(path_hash)
        self.mtimes.append(mtime)
        self.sizes.append(size)

    def pack(self) -> bytes:
        return pack(self.hashes, self.mtimes, self.sizes)


def pack(hashes: array, mtimes: array, sizes: array) -> bytes:
    """One immutable ``bytes``: all hashes, then all mtimes, then all sizes (native order)."""
    return hashes.tobytes() + mtimes.tobytes() + sizes.tobytes()


def unpack(blob: bytes) -> tuple[dict[int, int], memoryview[float], memoryview[int]]:
    """``path hash -> index`` and the mtime and size columns of a record."""
    n = len(blob) // RECORD_BYTES
    view = memoryview(blob)
    hashes = view[: 8 * n].cast("q")
    index = {h: i for i, h in enumerate(hashes.tolist())}
    return index, view[8 * n : 16 * n].cast("d"), view[16 * n :].cast("q")


def keep_unaccepted(old: bytes | None, listed: bytes) -> bytes:
    """The record of a directory an audit just listed, as Fusion holds it.

    An audit row only replaces Fusion's node with a strictly newer mtime (protocol §5.4): a
    file whose listed mtime is not newer than its old record but whose state differs (written
    in place with the mtime put back, or restored with an older one) was dropped by Fusion.
    Such a file keeps its old values, so the sweep still sees the change and forces it.
    """
    if not old or old == listed:  # the common case, compared in C
        return listed
    old_index, old_mtimes, old_sizes = unpack(old)
    index, mtimes, sizes = unpack(listed)
    columns = Columns()
    for path_hash, i in index.items():
        mtime, size = mtimes[i], sizes[i]
        j = old_index.get(path_hash)
        if (
            j is not None
            and mtime <= old_mtimes[j]
            and (mtime, size) != (old_mtimes[j], old_sizes[j])
        ):
            mtime, size = old_mtimes[j], old_sizes[j]
        columns.add(path_hash, mtime, size)
    return columns.pack()


def file_count(blob: bytes) -> int:
    return len(blob) // RECORD_BYTES


class SweepStore:
    """Directory -> record, plus the rotation that decides which directory is checked next.

    A pass reads it from its walk threads; only the commit of a finished pass changes it,
    after those threads are done. Forgetting replaces the whole store instead of clearing it.
    """

    def __init__(self) -> None:
        self.dirs: dict[str, bytes] = {}
        self.order: deque[str] = deque()
        self.files = 0
        self._blob_bytes = 0
        self._stale = 0  # places in the rotation left by dropped directories

    def __len__(self) -> int:
        return len(self.dirs)

    def put(self, rel_dir: str, blob: bytes) -> None:
        old = self.dirs.get(rel_dir)
        if old is None:
            self.order.append(rel_dir)  # new directories join the end of the rotation
        else:
            self._account(old, -1)
        self.dirs[rel_dir] = blob
        self._account(blob, +1)

    def drop(self, rel_dir: str) -> None:
        old = self.dirs.pop(rel_dir, None)
        if old is not None:
            self._account(old, -1)  # its place in the rotation is removed lazily
            self._stale += 1

    def retain(self, cache: Iterable[str]) -> None:
        """Forget every directory not in ``cache`` (no longer cached by the audit) and key the
        rest by ``cache``'s own strings, so one string per directory serves both (each audit
        builds new ones: without this the store would keep the first audit's copies)."""
        dirs, may_repeat = self.dirs, self._stale > 0
        canon: dict[str, Any] = {d: d for d in cache if d in dirs}
        for rel_dir in [d for d in dirs if d not in canon]:
            self.drop(rel_dir)
        # The rotation in its order with the same strings; stale places go (a directory
        # dropped before and put again has two: the first is kept).
        places = dict.fromkeys(self.order) if may_repeat else self.order
        self.order = deque(canon[d] for d in places if d in canon)
        self._stale = 0
        for rel_dir in canon:  # the same table now maps to the records
            canon[rel_dir] = dirs[rel_dir]
        self.dirs = canon

    def __iter__(self) -> Iterator[str]:
        """The rotation from its head (dropped directories included: skip them)."""
        return iter(self.order)

    def rotate(self, consumed: int) -> None:
        """The first ``consumed`` directories were checked: they go to the end."""
        if consumed and self.order:
            self.order.rotate(-min(consumed, len(self.order)))
        self._compact()

    def _compact(self) -> None:
        # Dropped or re-added directories leave stale or duplicate places in the rotation.
        if len(self.order) > len(self.dirs) + 16 + len(self.dirs) // 2:
            dirs = self.dirs
            self.order = deque(d for d in dict.fromkeys(self.order) if d in dirs)
            self._stale = 0

    def _account(self, blob: bytes, sign: int) -> None:
        self.files += sign * file_count(blob)
        self._blob_bytes += sign * (len(blob) + _BYTES_HEADER)

    def nbytes(self) -> int:
        """Memory held by the store (records, dict, rotation); directory names are shared
        with the audit cache and counted there."""
        return self._blob_bytes + sys.getsizeof(self.dirs) + sys.getsizeof(self.order)
