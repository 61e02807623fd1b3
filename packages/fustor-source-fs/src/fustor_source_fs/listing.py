"""Listing one directory: its wanted entries, through the directory's fd (every phase's walk)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from fustor_source_fs.filters import PathFilter

__all__ = ["Entry", "child_prefix", "list_dir"]

Entry = tuple[os.DirEntry[str], str, bool]
"""(the entry, its root-relative path, whether it is a directory: links are not followed)."""


def child_prefix(rel_dir: str) -> str:
    """What the root-relative path of a directory's entry starts with (``/`` for the root's)."""
    return "/" if rel_dir == "/" else rel_dir + "/"


def list_dir(
    fd: int, rel_dir: str, flt: PathFilter, *, files: bool = True, dirs: bool = True
) -> Iterator[Entry]:
    """The entries of directory ``fd`` (root-relative ``rel_dir``) that ``flt`` reports.

    Left out: excluded names and paths (an excluded directory hides its subtree), files that
    do not match ``file_pattern``, files unless ``files``, directories unless ``dirs``, and
    entries whose type cannot be read (gone since the listing). The caller stats an entry
    with ``entry.stat(follow_symlinks=False)``: an ``fstatat`` relative to ``fd``, one lookup
    instead of one per path component, and may get ``FileNotFoundError`` for an entry gone
    meanwhile. ``fd`` stays open (the caller closes it). Raises ``OSError`` when the listing
    itself fails, possibly after some entries. Runs once per entry of a million-file walk:
    keep it flat.
    """
    prefix = child_prefix(rel_dir)
    wants = None if flt.trivial else flt.wants
    with os.scandir(fd) as it:
        for entry in it:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if not (dirs if is_dir else files):
                continue
            name = entry.name
            rel = prefix + name
            if wants is not None and not wants(name, rel, is_dir):
                continue
            yield entry, rel, is_dir
