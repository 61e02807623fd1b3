"""Paths longer than PATH_MAX (4096 bytes), made and used one component at a time."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["DEEP_NAMES", "deep_dir", "touch_at"]

DEEP_NAMES = [f"{i:02d}" + "d" * 188 for i in range(22)]
"""Directory names whose chain under any test root is longer than PATH_MAX (4096 bytes)."""


@contextlib.contextmanager
def deep_dir(base: str, names: list[str], *, create: bool = False) -> Iterator[int]:
    """An fd of ``base/names[0]/.../names[-1]`` (made if ``create``), reached one component
    at a time, as a program working in a path longer than PATH_MAX does."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            if create:
                os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        yield fd
    finally:
        os.close(fd)


def touch_at(fd: int, name: str) -> None:
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
