"""fanotify through ctypes on libc: init, a filesystem mark, and parsing of FID-mode events.

Only the notification (not permission) side, in the FID reporting modes that name the parent
directory by file handle plus the entry name (``FAN_REPORT_DFID_NAME``, Linux >= 5.9), with
``FAN_RENAME`` (one event naming both ends of a move) where the kernel has it (>= 5.17).
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import struct
import threading
from typing import NamedTuple

__all__ = [
    "FAN_RENAME",
    "Fanotify",
    "FanotifyEvent",
    "FanotifyUnavailable",
    "handle_of",
    "handle_of_fd",
    "kernel_version",
    "open_handle",
]

# fanotify_init flags
FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_CLASS_NOTIF = 0x0
FAN_REPORT_FID = 0x200
FAN_REPORT_DIR_FID = 0x400
FAN_REPORT_NAME = 0x800
FAN_REPORT_DFID_NAME = FAN_REPORT_DIR_FID | FAN_REPORT_NAME
# fanotify_mark flags
FAN_MARK_ADD = 0x1
FAN_MARK_REMOVE = 0x2
FAN_MARK_FLUSH = 0x80
FAN_MARK_FILESYSTEM = 0x100
# Event bits: the same values as their inotify counterparts (the kernel shares them).
FAN_MODIFY = 0x2
FAN_ATTRIB = 0x4
FAN_CLOSE_WRITE = 0x8
FAN_MOVED_FROM = 0x40
FAN_MOVED_TO = 0x80
FAN_CREATE = 0x100
FAN_DELETE = 0x200
FAN_DELETE_SELF = 0x400
FAN_MOVE_SELF = 0x800
FAN_Q_OVERFLOW = 0x4000
FAN_RENAME = 0x10000000
FAN_ONDIR = 0x40000000
# Info record types
INFO_FID = 1
INFO_DFID_NAME = 2
INFO_DFID = 3
INFO_OLD_DFID_NAME = 10
INFO_NEW_DFID_NAME = 12

AT_FDCWD = -100
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000
_META = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid
_INFO_HDR = struct.Struct("=BBH")  # info_type, pad, len
_FSID_LEN = 8
_MAX_HANDLE = 128
_READ_SIZE = 256 * 1024

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
_libc.fanotify_mark.argtypes = [
    ctypes.c_int,
    ctypes.c_uint,
    ctypes.c_uint64,
    ctypes.c_int,
    ctypes.c_char_p,
]
_libc.name_to_handle_at.argtypes = [
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_int),
    ctypes.c_int,
]
_libc.open_by_handle_at.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]


class FanotifyUnavailable(Exception):
    """fanotify cannot watch this root; the message names what is missing."""


class FanotifyEvent(NamedTuple):
    """One event: ``mask`` (FAN_* bits), the directory handle and entry name it names, and
    for ``FAN_RENAME`` the destination's directory handle and name (else ``None``)."""

    mask: int
    dir_handle: bytes
    name: bytes
    new_dir_handle: bytes | None
    new_name: bytes | None


def kernel_version() -> tuple[int, int]:
    release = os.uname().release
    parts = release.split(".", 2)
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return 0, 0


def _raise(what: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


class _HandleBuffers(threading.local):
    def __init__(self) -> None:
        self.buf = ctypes.create_string_buffer(8 + _MAX_HANDLE)
        self.size = ctypes.c_uint.from_buffer(self.buf)
        self.mount_id = ctypes.c_int()
        self.mount_ref = ctypes.byref(self.mount_id)


_buffers = _HandleBuffers()


def handle_of(path: bytes | str, dir_fd: int = AT_FDCWD, flags: int = 0) -> bytes:
    """The file handle of ``path`` (symlinks not followed) as the bytes fanotify reports:
    ``struct file_handle`` (handle_bytes, handle_type, f_handle). Raises ``OSError``.

    Called once per directory by the walks, so its buffers are allocated once per thread.
    """
    b = _buffers
    b.size.value = _MAX_HANDLE
    if _libc.name_to_handle_at(dir_fd, os.fsencode(path), b.buf, b.mount_ref, flags) != 0:
        _raise("name_to_handle_at")
    return b.buf.raw[: 8 + b.size.value]


def handle_of_fd(fd: int) -> bytes:
    """The file handle of what ``fd`` refers to (an ``O_PATH`` fd will do): no path is
    involved, so it works for directories whose path is longer than PATH_MAX. Raises
    ``OSError``."""
    return handle_of(b"", fd, AT_EMPTY_PATH)


def open_handle(mount_fd: int, handle: bytes) -> int:
    """A read-only fd of the directory ``handle`` names (``open_by_handle_at`` on a file
    descriptor of the same mount; needs ``CAP_DAC_READ_SEARCH``). Raises ``OSError``
    (``ESTALE`` once the directory is gone)."""
    fd = _libc.open_by_handle_at(mount_fd, handle, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if fd < 0:
        _raise("open_by_handle_at")
    return fd


class Fanotify:
    """A notification group in FID mode with one filesystem mark (see :meth:`mark`).

    Raises :class:`FanotifyUnavailable` naming what is missing: ``CAP_SYS_ADMIN`` (EPERM),
    the kernel version (EINVAL: flags unknown before 5.9), or the file system (no file
    handles, or a zero fsid).
    """

    def __init__(self, *, rename: bool | None = None) -> None:
        major_minor = kernel_version()
        if major_minor < (5, 9):
            raise FanotifyUnavailable(
                f"needs Linux >= 5.9 for FAN_REPORT_DFID_NAME (this is {os.uname().release})"
            )
        self.rename = major_minor >= (5, 17) if rename is None else rename
        flags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME
        fd = _libc.fanotify_init(flags, os.O_RDONLY | os.O_LARGEFILE | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            if err == errno.EPERM:
                raise FanotifyUnavailable("needs CAP_SYS_ADMIN (run the agent as root)")
            if err == errno.EINVAL:
                raise FanotifyUnavailable(
                    f"the kernel refused FAN_REPORT_DFID_NAME (Linux >= 5.9 needed; "
                    f"this is {os.uname().release})"
                )
            if err == errno.ENOSYS:
                raise FanotifyUnavailable("the kernel was built without fanotify")
            raise FanotifyUnavailable(f"fanotify_init failed: {os.strerror(err)}")
        self.fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    @property
    def mask(self) -> int:
        moves = FAN_RENAME if self.rename else FAN_MOVED_FROM | FAN_MOVED_TO
        return (
            FAN_CREATE | FAN_DELETE | moves | FAN_ATTRIB | FAN_CLOSE_WRITE | FAN_MODIFY | FAN_ONDIR
        )

    def mark(self, path: str) -> None:
        """Mark the whole file system holding ``path`` (raises :class:`FanotifyUnavailable`)."""
        try:
            handle_of(path)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
                raise FanotifyUnavailable(
                    f"the file system of {path} does not support file handles"
                ) from exc
            raise FanotifyUnavailable(f"cannot read the file handle of {path}: {exc}") from exc
        ret = _libc.fanotify_mark(
            self.fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, self.mask, AT_FDCWD, os.fsencode(path)
        )
        if ret != 0:
            err = ctypes.get_errno()
            if err == errno.EPERM:
                raise FanotifyUnavailable(
                    "needs CAP_SYS_ADMIN for a filesystem mark (run the agent as root)"
                )
            if err in (errno.ENODEV, errno.EOPNOTSUPP, errno.EXDEV):
                raise FanotifyUnavailable(
                    f"the file system of {path} cannot take a fanotify filesystem mark "
                    f"({os.strerror(err)}: no fsid or no file handles)"
                )
            if err == errno.EINVAL and self.rename:
                raise FanotifyUnavailable("the kernel refused FAN_RENAME (Linux >= 5.17 needed)")
            raise FanotifyUnavailable(f"fanotify_mark on {path} failed: {os.strerror(err)}")

    def unmark(self) -> None:
        """Remove every filesystem mark (before marking the file system of a new root)."""
        _libc.fanotify_mark(self.fd, FAN_MARK_FLUSH | FAN_MARK_FILESYSTEM, 0, AT_FDCWD, None)

    def read(self, timeout_ms: int) -> list[FanotifyEvent]:
        """Events queued now, waiting up to ``timeout_ms`` for the first one."""
        if not self._poll.poll(timeout_ms):
            return []
        try:
            data = os.read(self.fd, _READ_SIZE)
        except BlockingIOError:
            return []
        return parse(data)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def parse(data: bytes) -> list[FanotifyEvent]:
    """Split a read buffer into events (overflow: mask FAN_Q_OVERFLOW, empty handle)."""
    events: list[FanotifyEvent] = []
    meta_unpack = _META.unpack_from
    info_unpack = _INFO_HDR.unpack_from
    pos, end = 0, len(data)
    while pos + _META.size <= end:
        event_len, _vers, _res, meta_len, mask, fd, _pid = meta_unpack(data, pos)
        if fd >= 0:  # never in FID mode; closed all the same should a kernel send one
            os.close(fd)
        info = pos + meta_len
        stop = pos + event_len
        handle = b""
        name = b""
        new_handle: bytes | None = None
        new_name: bytes | None = None
        while info + 4 <= stop:
            kind, _pad, length = info_unpack(data, info)
            if length == 0:
                break
            start = info + 4 + _FSID_LEN
            (size,) = struct.unpack_from("=I", data, start)
            fh_end = start + 8 + size
            fh = data[start:fh_end]
            if kind == INFO_NEW_DFID_NAME:
                new_handle = fh
                new_name = data[fh_end : info + length].split(b"\0", 1)[0]
            elif kind in (INFO_DFID_NAME, INFO_OLD_DFID_NAME, INFO_DFID):
                handle = fh
                name = data[fh_end : info + length].split(b"\0", 1)[0]
            info += length
        events.append(FanotifyEvent(mask, handle, name, new_handle, new_name))
        pos = stop if event_len else end
    return events
