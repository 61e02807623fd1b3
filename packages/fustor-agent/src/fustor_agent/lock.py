"""One agent per $FUSTOR_HOME: a pid file held under an exclusive ``fcntl`` lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from fustor_core import FustorError

__all__ = ["AlreadyRunning", "InstanceLock", "running_pid"]


class AlreadyRunning(FustorError):
    def __init__(self, home: Path, pid: int | None) -> None:
        self.pid = pid
        who = f"pid {pid}" if pid else "unknown pid"
        super().__init__(f"an agent is already running for FUSTOR_HOME={home} ({who})")


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


class InstanceLock:
    """Held for the life of the agent process; the kernel drops it when the process dies."""

    def __init__(self, pid_file: Path) -> None:
        self.pid_file = pid_file
        self._fd: int | None = None

    def acquire(self) -> InstanceLock:
        """Lock the pid file and write our pid; raises :class:`AlreadyRunning` if held."""
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.pid_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                raise AlreadyRunning(self.pid_file.parent, pid) from None
            if _still_named(fd, self.pid_file):
                break
            # The holder we waited for removed this file as it let go; a new agent may
            # already hold a new file under the name. Locking the old one proves nothing.
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:  # a full disk: name the file
            os.close(fd)
            raise OSError(exc.errno, exc.strerror, str(self.pid_file)) from None
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the pid file, then unlock. Removing it while still locked is what lets
        :meth:`acquire` tell a removed file from the live one."""
        if self._fd is None:
            return
        if _still_named(self._fd, self.pid_file):
            with contextlib.suppress(FileNotFoundError):
                self.pid_file.unlink()
        os.close(self._fd)
        self._fd = None


def _still_named(fd: int, path: Path) -> bool:
    """True when ``path`` still names the file open as ``fd``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def running_pid(pid_file: Path) -> int | None:
    """The pid of the agent holding the lock, or ``None`` when none is running."""
    try:
        fd = os.open(pid_file, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
