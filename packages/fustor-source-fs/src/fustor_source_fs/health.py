"""Is the root still the file system we started on? (An unmounted share must not look empty.)"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import time
from dataclasses import dataclass

__all__ = ["RootGuard", "RootIdentity"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RootIdentity:
    dev: int
    ino: int
    is_mount: bool


_MOUNTINFO = "/proc/self/mountinfo"
_OCTAL = re.compile(rb"\\([0-7]{3})")


def _is_mount(root: str) -> bool:
    """Whether ``root`` is a mount point, bind mounts of the same file system included.

    ``os.path.ismount`` compares device numbers with the parent directory, so a bind mount of
    a directory of the same file system looks like a plain directory to it, and its unmount
    would go unseen; the kernel's mount table knows.
    """
    if os.path.ismount(root):
        return True
    target = os.fsencode(root)
    try:
        with open(_MOUNTINFO, "rb") as f:
            for line in f:
                fields = line.split(b" ", 5)
                # Field 5 is the mount point, with space, tab, newline, backslash as \ooo.
                point = _OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), fields[4])
                if point == target:
                    return True
    except (OSError, IndexError):
        pass
    return False


class _RootIsLink(NotADirectoryError):
    """The (already resolved) root path is a symbolic link now: every walk opens it without
    following links, so it would list nothing."""


def _identify(root: str) -> RootIdentity:
    st = os.lstat(root)
    if stat.S_ISLNK(st.st_mode):
        raise _RootIsLink(root)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(root)
    return RootIdentity(st.st_dev, st.st_ino, _is_mount(root))


def _is_empty(root: str) -> bool:
    """Whether directory ``root`` has no entry (one read of it; ``False`` when unreadable)."""
    try:
        with os.scandir(root) as it:
            return next(it, None) is None
    except OSError:
        return False


class RootGuard:
    """Remembers the root's identity at start and says why it is no longer trustworthy.

    The root is unavailable when it is missing, is no longer a directory, was a mount point
    and no longer is, or sits on another device than at start (the share under it went away
    and we now see the empty directory it was mounted on). It becomes available again when
    the original comes back; a root that was a mount point is also accepted back on a new
    device as long as it is a mount point again (a remount gets a new device number).

    The root's identity is its inode: a root that is not a mount point and was replaced on
    the same device (moved away or deleted, and a directory put at its path), or that was
    empty when a file system was mounted on it (the pipe started on the mount point before
    the share came), is accepted as the new root at once, and :attr:`replaced` says which
    generation that was, so realtime re-watches and re-lists all of it. A root that is a
    symbolic link now (the directory moved and a link left at its path), or that cannot be
    listed, is unavailable: its walks would list nothing.
    """

    stall_after = 10.0
    """A stat of the root that has not returned after this long makes the root unavailable."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._checking_since: float | None = None
        self.baseline = _identify(root)
        self._was_empty = _is_empty(root)
        """The plain-directory root has held nothing since the pipe started (or since it was
        replaced): a file system mounted on it hides no file of ours, so it is taken as the
        root; one mounted over files is not (unavailable, nothing inferred deleted)."""
        self.reason: str | None = None
        self.generation = 0
        """Bumped each time the root comes back after being unavailable, or is replaced."""
        self.replaced = -1
        """The generation at which the root became another directory (another inode)."""

    @property
    def problem(self) -> str | None:
        """The last reason, or a stall: a hung NFS server makes ``check`` block, not fail."""
        started = self._checking_since
        if started is not None and time.monotonic() - started > self.stall_after:
            waited = time.monotonic() - started
            return f"root unavailable: {self.root} has not answered a stat for {waited:.0f} s"
        return self.reason

    def monitor(self, stop: threading.Event, interval: float) -> None:
        """Check every ``interval`` seconds until ``stop`` is set (run it in a thread)."""
        while not stop.wait(interval):
            self.check()

    def check(self) -> str | None:
        """Check now (an lstat, an access and a mount test; for a plain directory also a read of
        its first entry); return and remember the reason, if any."""
        self._checking_since = time.monotonic()
        current: RootIdentity | None
        try:
            current = _identify(self.root)
            problem = self._compare(current)
            if problem is None and not os.access(self.root, os.R_OK | os.X_OK):
                # stat works on a directory we may not list: its walks would see nothing.
                problem = f"root unavailable: {self.root} cannot be listed (permission denied)"
                current = None
        except FileNotFoundError:
            current, problem = None, f"root unavailable: {self.root} does not exist"
        except _RootIsLink:
            current, problem = (
                None,
                (
                    f"root unavailable: {self.root} is a symbolic link now (to "
                    f"{os.path.realpath(self.root)}); a root's link is resolved only when its "
                    "pipe starts: restart the pipe to follow it"
                ),
            )
        except NotADirectoryError:
            current, problem = None, f"root unavailable: {self.root} is not a directory"
        except OSError as exc:
            current, problem = None, f"root unavailable: {self.root}: {exc.strerror or exc}"
        finally:
            self._checking_since = None
        with self._lock:
            was = self.reason
            self.reason = problem
            base = self.baseline
            swapped = (
                current is not None
                and not base.is_mount
                and (current.ino != base.ino or current.dev != base.dev)
            )
            if problem is None and current is not None and (was is not None or swapped):
                self.baseline = current
                self.generation += 1
                if swapped:
                    # A remounted share keeps its content (new device, same tree); another
                    # directory at a plain root's path is a new tree.
                    self.replaced = self.generation
                    if current.is_mount and current.dev != base.dev:
                        log.warning(
                            "root %s is a mount point now (a file system was mounted on it "
                            "after the pipe started): watching and listing it",
                            self.root,
                        )
                    else:
                        log.warning("root %s is another directory now: watching it", self.root)
        if problem is None and not self.baseline.is_mount and (self._was_empty or swapped):
            # Read while it stays empty (the boot race ends with the mount); a root that had
            # files is not read again each check (an NFS READDIR a second).
            self._was_empty = _is_empty(self.root)
        if problem != was:
            if problem is None:
                log.warning("root %s is available again; resuming", self.root)
            else:
                log.error("%s: not reporting or auditing it until it is back", problem)
        return problem

    def _compare(self, current: RootIdentity) -> str | None:
        base = self.baseline
        if base.is_mount:
            if not current.is_mount:
                return f"root unavailable: {self.root} is no longer a mount point"
            if current.dev != base.dev and self.reason is None:
                # Another file system mounted in place of ours without us ever seeing it
                # gone: accept it only through the unavailable -> available path.
                return f"root unavailable: {self.root} is now a different file system"
            return None
        if current.dev != base.dev and not (current.is_mount and self._was_empty):
            # The share under it went away, or something was mounted over the tree we
            # watched, hiding it: neither may look like its files were deleted.
            return f"root unavailable: {self.root} is now on another device (share gone?)"
        # A file system mounted on a root that was an empty plain directory (the pipe
        # started on the mount point before the share came): a new tree, taken by check().
        return None
