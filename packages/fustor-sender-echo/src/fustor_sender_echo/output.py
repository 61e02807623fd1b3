"""Where the echo sender's lines go: a file it appends to, or standard output.

Lines are written whole or not at all, as far as the kernel allows:

- every byte is written: a write that the kernel cut short (a signal, a full pipe, a
  non-blocking descriptor) is continued;
- into a pipe or a FIFO the data goes in pieces of at most ``PIPE_BUF`` bytes cut at line
  ends, so another writer of the same pipe (the agent's log, with ``2>&1 |``) can only land
  between two lines, never inside one;
- a write that fails part-way through a regular file is cut back to where it started, so a
  failed batch leaves no half line behind;
- nothing is kept in a buffer: a batch that failed is not written later, glued to another.

A FIFO is opened without waiting: with no reader yet the open fails with ``ENXIO``, which
the sender reports as retriable. Writes wait while a reader is slow (the sender makes them
in a worker thread); into a FIFO that wait ends when :meth:`Output.close` is called, so a
reader that stopped reading never keeps the agent from stopping.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import stat
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

__all__ = ["Output"]

_FILE_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK
"""O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of blocking the open;
a regular file ignores it."""
_WAIT_SEC = 0.25
"""How often a write waiting for a FIFO's reader checks whether the output was closed."""


class Output:
    """The output of one echo sender: ``path`` (appended to, created ``0o644``) or, when
    ``path`` is ``None``, this process's standard output."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fd: int | None = None
        self._stream: TextIO | None = None
        """Standard output replaced by an object without a descriptor (a test's capture)."""
        self._regular = False
        self._pipe = False
        self._append = False
        self._lock = threading.Lock()
        self._writing = False
        self._closing = False

    @property
    def name(self) -> str:
        return self.path or "standard output"

    def _open(self) -> None:
        """Open once, lock held (later calls do nothing); raises ``OSError``."""
        if self._fd is not None or self._stream is not None:
            return
        if self.path is not None:
            fd = os.open(self.path, _FILE_FLAGS, 0o644)
        else:
            stdout = sys.stdout
            if stdout is None:
                raise OSError(errno.EBADF, "standard output is closed")
            stdout.flush()  # what was printed as text before comes first
            try:
                fd = stdout.fileno()
            except (OSError, ValueError):
                self._stream = stdout
                return
        mode = os.fstat(fd).st_mode
        self._regular = stat.S_ISREG(mode)
        self._pipe = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        self._append = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)
        self._fd = fd

    def write(self, data: bytes) -> None:
        """Append ``data`` (whole lines); raises ``OSError`` with the file as it was, and
        ``EBADF`` once :meth:`close` was called (nothing is opened again)."""
        with self._lock:
            if self._closing:
                raise OSError(errno.EBADF, "the output is closed")
            self._open()  # non-blocking, also for a FIFO: fine under the lock
            if self._stream is not None:
                self._stream.write(data.decode("utf-8", "backslashreplace"))
                self._stream.flush()
                return
            fd = self._fd
            assert fd is not None
            self._writing = True
        try:
            self._write(fd, data)
        finally:
            with self._lock:
                self._writing = False
                if self._closing:
                    self._close_fd()

    def _write(self, fd: int, data: bytes) -> None:
        # Where this write starts: the end for an appending descriptor, else its offset
        # (standard output redirected with ">").
        start = 0
        if self._regular:
            start = os.fstat(fd).st_size if self._append else os.lseek(fd, 0, os.SEEK_CUR)
        try:
            for piece in _pieces(data, select.PIPE_BUF) if self._pipe else (data,):
                self._write_all(fd, piece)
        except OSError:
            if self._regular:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                    os.lseek(fd, start, os.SEEK_SET)  # no hole before the next write
            raise

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:  # the reader is behind: wait until it takes more
                select.select([], [fd], [], _WAIT_SEC)
                if self._closing:
                    raise OSError(errno.ECANCELED, "closed while the reader was behind") from None
                continue
            view = view[written:]

    def close(self) -> None:
        """Close a file it opened (never standard output), at once or, while a write waits
        for a reader, as soon as that write gives up; never raises."""
        with self._lock:
            self._closing = True
            self._stream = None
            if not self._writing:
                self._close_fd()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and self.path is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def _pieces(data: bytes, limit: int) -> Iterator[bytes]:
    """``data`` in pieces of at most ``limit`` bytes, each ending at a line end (a single
    line longer than ``limit`` is one piece)."""
    start, end = 0, len(data)
    while end - start > limit:
        cut = data.rfind(b"\n", start, start + limit) + 1
        if cut <= start:
            cut = data.find(b"\n", start + limit) + 1 or end
        yield data[start:cut]
        start = cut
    if start < end:
        yield data[start:]
