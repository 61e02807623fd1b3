"""``file_pattern`` and ``exclude``: one decision used by every phase."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

__all__ = ["PathFilter"]


def _compile(patterns: list[str]) -> Callable[[str], object] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns), re.S).match


class PathFilter:
    """Decides which names are reported; compiled once, cheap enough for the walk's hot loop.

    ``exclude`` patterns without ``/`` match a file or directory name; patterns with ``/``
    match the root-relative path (a pattern not starting with ``/`` is anchored at the root).
    An excluded directory hides its whole subtree. ``file_pattern`` applies to non-directories.
    """

    def __init__(self, file_pattern: str = "*", exclude: list[str] | None = None) -> None:
        exclude = exclude or []
        self.file_pattern = file_pattern
        self._file_match = None if file_pattern == "*" else _compile([file_pattern])
        self._name_match = _compile([p for p in exclude if "/" not in p])
        self._path_match = _compile(
            [p if p.startswith("/") else "/" + p for p in exclude if "/" in p]
        )
        self.trivial = self._file_match is None and not exclude
        self.excludes = bool(exclude)
        """Some entries are excluded (so a directory's link count may over-count what is
        reported under it)."""

    def excluded(self, name: str, rel_path: str) -> bool:
        """Whether this entry (file or directory) and everything under it is skipped."""
        if self._name_match is not None and self._name_match(name):
            return True
        return self._path_match is not None and bool(self._path_match(rel_path))

    def wants_file(self, name: str) -> bool:
        return self._file_match is None or bool(self._file_match(name))

    def wants(self, name: str, rel_path: str, is_dir: bool) -> bool:
        """The whole decision for one entry."""
        if self.excluded(name, rel_path):
            return False
        return is_dir or self.wants_file(name)

    def wants_path(self, rel_path: str, is_dir: bool) -> bool:
        """Whether a root-relative path is reported (every ancestor checked for exclusion)."""
        if rel_path == "/":
            return True
        parts = rel_path.split("/")[1:]
        prefix = ""
        for name in parts:
            prefix += "/" + name
            if self.excluded(name, prefix):
                return False
        return is_dir or self.wants_file(parts[-1])
