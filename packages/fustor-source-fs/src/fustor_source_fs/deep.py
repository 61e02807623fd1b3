"""Paths longer than the kernel's PATH_MAX (4096 bytes), reached through directory fds.

A path string that long makes every path-taking syscall fail with ENAMETOOLONG, although the
directories exist and can be opened one component at a time (``openat``). These helpers try
the plain path first (one syscall, the common case) and fall back to that walk.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["abs_of", "lstat_at", "open_dir", "root_of", "watch_path"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW


def abs_of(root: str, rel: str) -> str:
    """The absolute path of root-relative ``rel`` (``/`` is the root)."""
    if rel == "/":
        return root
    return rel if root == "/" else root + rel


def root_of(abs_path: str, rel: str) -> str:
    """The root that ``abs_path`` = :func:`abs_of` (root, ``rel``) was built from."""
    if rel == "/":
        return abs_path
    return abs_path[: len(abs_path) - len(rel)] or "/"


def _walk_open(root: str, rel: str, flags: int) -> int:
    """Open directory ``rel`` one component at a time from the root (no symlink followed)."""
    fd = os.open(root, _PATH_FLAGS)
    try:
        parts = [p for p in rel.split("/") if p]
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            nfd = os.open(name, flags if last else _PATH_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
        if not parts:
            nfd = os.open(".", flags, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_dir(abs_path: str, rel: str, flags: int = _DIR_FLAGS) -> int:
    """An fd of directory ``rel`` (at ``abs_path``) for listing; raises ``OSError`` like
    ``os.open``."""
    try:
        return os.open(abs_path, flags)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
    return _walk_open(root_of(abs_path, rel), rel, flags)


def lstat_at(root: str, rel: str) -> os.stat_result | None:
    """``lstat`` of ``rel``, or ``None`` if it (or a directory above it) is gone."""
    try:
        return os.lstat(abs_of(root, rel))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            return None
    parent, name = rel.rsplit("/", 1)
    try:
        fd = _walk_open(root, parent or "/", _PATH_FLAGS)
    except OSError:
        return None
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return None
    finally:
        os.close(fd)


@contextmanager
def watch_path(root: str, rel: str) -> Iterator[str]:
    """A path naming directory ``rel`` that ``inotify_add_watch`` accepts: the path itself,
    or ``/proc/self/fd/N`` of an ``O_PATH`` fd when the path is too long (the watch goes on
    the directory the fd refers to)."""
    path = abs_of(root, rel)
    if len(os.fsencode(path)) < 4096:
        yield path
        return
    fd = _walk_open(root, rel, _PATH_FLAGS)
    try:
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)
