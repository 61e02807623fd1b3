"""The catalogue: JSON lines read from files, folded into the current state of each path."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from fustor_core import PathEscapeError, confine

__all__ = ["Catalogue", "Entry", "Offsets", "read_new_lines"]

logger = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class Entry:
    size: int
    mtime: float
    ctime: float


@dataclass(slots=True)
class Catalogue:
    """``path -> Entry`` for every file the lines describe; directories are implied."""

    entries: dict[str, Entry] = field(default_factory=dict)
    bad_lines: int = 0

    def apply(self, line: str) -> tuple[str, Entry | None] | None:
        """Fold one line in. Returns ``(path, entry)`` (``None`` entry: deleted), or ``None``."""
        try:
            record = json.loads(line)
            path = confine(str(record["path"]))
            if path == "/":
                raise ValueError("the root is a directory, not a catalogue entry")
            if record.get("deleted"):
                self.entries.pop(path, None)
                return path, None
            mtime = float(record["mtime"])
            entry = Entry(int(record.get("size", 0)), mtime, float(record.get("ctime", mtime)))
        except (ValueError, KeyError, TypeError, PathEscapeError) as exc:
            self.bad_lines += 1
            logger.warning("skipping catalogue line %r: %s", line[:200], exc)
            return None
        self.entries[path] = entry
        return path, entry

    def directories(self) -> dict[str, float]:
        """Every implied directory (root included) -> the newest mtime below it."""
        dirs: dict[str, float] = {"/": 0.0}
        for path, entry in self.entries.items():
            parent = path.rsplit("/", 1)[0] or "/"
            while True:
                if dirs.get(parent, -1.0) < entry.mtime:
                    dirs[parent] = entry.mtime
                if parent == "/":
                    break
                parent = parent.rsplit("/", 1)[0] or "/"
        return dirs


Offsets = dict[str, tuple[int, int]]
"""File name -> (inode, bytes read so far)."""


def read_new_lines(directory: Path, pattern: str, offsets: Offsets) -> list[str]:
    """Complete lines appended to the catalogue files since ``offsets`` (updated in place).

    A line still being written (no newline yet) is left for the next call. A file replaced
    (another inode, as log rotation does) or truncated is read again from the top. Blocking:
    call it from a worker thread.
    """
    lines: list[str] = []
    for name in sorted(os.listdir(directory)):
        if not fnmatch(name, pattern):
            continue
        with open(directory / name, "rb") as handle:
            st = os.fstat(handle.fileno())
            inode, start = offsets.get(name, (st.st_ino, 0))
            if inode != st.st_ino or st.st_size < start:
                start = 0
            handle.seek(start)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        offsets[name] = (st.st_ino, start + end)
        if not end:
            continue
        lines.extend(line for line in data[:end].decode("utf-8", "replace").splitlines() if line)
    return lines
