"""A user-space NFS server (nfs-ganesha) and an NFS client (libnfs) for the NFS-server tests.

The agent's recommended NFS deployment runs it on the file server, on the exported tree
(docs/operations.md). This kernel has no NFS support, so the tests and
``benchmarks/fs_nfs_server.py`` export a directory with ganesha (a user-space server that
changes the tree with ordinary system calls) on a free loopback port, and make changes as
another machine's client would, through libnfs's own NFSv4 session. Importable from any test
folder and from the benchmarks.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import time

from debian_support import apt_install
from ports import free_port

__all__ = ["Ganesha", "NfsClient", "ensure_ganesha"]

PACKAGES = ("nfs-ganesha", "nfs-ganesha-vfs", "libnfs13")


def ensure_ganesha() -> None:
    """ganesha and libnfs, installed from Debian if missing (the tests run as root).

    A machine without them fails these tests loudly rather than skipping them: they are the
    only run of the NFS-server deployment.
    """
    if shutil.which("ganesha.nfsd") is not None and _libnfs_found():
        return
    apt_install(*PACKAGES)
    if shutil.which("ganesha.nfsd") is None or not _libnfs_found():
        raise RuntimeError(f"apt-get installed {' '.join(PACKAGES)} but they are not usable")


def _libnfs_found() -> bool:
    try:
        ctypes.CDLL("libnfs.so.13")
    except OSError:
        return False
    return True


GANESHA_CONF = """
NFS_CORE_PARAM {{ Protocols = 4; NFS_Port = {port}; Bind_addr = 127.0.0.1;
  Enable_NLM = false; Enable_RQUOTA = false; }}
NFSv4 {{ Graceless = true; RecoveryBackend = fs; RecoveryRoot = {work}/recovery; }}
EXPORT {{ Export_Id = 77; Path = {export}; Pseudo = /export; Access_Type = RW;
  Squash = No_Root_Squash; SecType = sys; Protocols = 4; Transports = TCP;
  FSAL {{ Name = VFS; }} }}
LOG {{ Default_Log_Level = EVENT; }}
"""


class _Url(ctypes.Structure):
    _fields_ = [("server", ctypes.c_char_p), ("path", ctypes.c_char_p), ("file", ctypes.c_char_p)]


class NfsClient:
    """A few calls of libnfs's synchronous API (libnfs 4 signatures), one NFSv4 session."""

    def __init__(self, url: str) -> None:
        lib = self.lib = ctypes.CDLL("libnfs.so.13", use_errno=True)
        c, p = ctypes.c_char_p, ctypes.c_void_p
        lib.nfs_init_context.restype = p
        lib.nfs_get_error.restype, lib.nfs_get_error.argtypes = c, [p]
        lib.nfs_parse_url_dir.restype = ctypes.POINTER(_Url)
        lib.nfs_parse_url_dir.argtypes = [p, c]
        lib.nfs_mount.argtypes = [p, c, c]
        for name in ("nfs_mkdir", "nfs_rmdir", "nfs_unlink"):
            getattr(lib, name).argtypes = [p, c]
        lib.nfs_rename.argtypes = [p, c, c]
        lib.nfs_create.argtypes = [p, c, ctypes.c_int, ctypes.c_int, ctypes.POINTER(p)]
        lib.nfs_write.argtypes = [p, p, ctypes.c_uint64, c]
        lib.nfs_close.argtypes = [p, p]
        self.ctx = lib.nfs_init_context()
        parsed = lib.nfs_parse_url_dir(self.ctx, url.encode())
        if not parsed:
            self._fail("parse " + url)
        self._check(lib.nfs_mount(self.ctx, parsed.contents.server, parsed.contents.path), url)

    def _fail(self, what: str) -> None:
        raise OSError(f"NFS {what}: {self.lib.nfs_get_error(self.ctx).decode()}")

    def _check(self, rc: int, what: str) -> None:
        if rc < 0:
            self._fail(what)

    def mkdir(self, path: str) -> None:
        self._check(self.lib.nfs_mkdir(self.ctx, path.encode()), "mkdir " + path)

    def rmdir(self, path: str) -> None:
        self._check(self.lib.nfs_rmdir(self.ctx, path.encode()), "rmdir " + path)

    def unlink(self, path: str) -> None:
        self._check(self.lib.nfs_unlink(self.ctx, path.encode()), "unlink " + path)

    def rename(self, old: str, new: str) -> None:
        self._check(self.lib.nfs_rename(self.ctx, old.encode(), new.encode()), "rename " + old)

    def write(self, path: str, data: bytes) -> None:
        fh = ctypes.c_void_p()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        lib = self.lib
        self._check(lib.nfs_create(self.ctx, path.encode(), flags, 0o644, ctypes.byref(fh)), path)
        self._check(lib.nfs_write(self.ctx, fh, len(data), data), "write " + path)
        self._check(lib.nfs_close(self.ctx, fh), "close " + path)


class Ganesha:
    """``ganesha.nfsd`` in the foreground on a free loopback port, exporting ``export``."""

    def __init__(self, work: str, export: str) -> None:
        self.port = free_port()
        os.makedirs(os.path.join(work, "recovery"))
        conf = os.path.join(work, "ganesha.conf")
        with open(conf, "w") as f:
            f.write(GANESHA_CONF.format(port=self.port, work=work, export=export))
        self.log = os.path.join(work, "ganesha.log")
        self.proc = subprocess.Popen(
            ["ganesha.nfsd", "-F", "-L", self.log, "-f", conf, "-p", os.path.join(work, "pid")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"nfs://127.0.0.1/export?version=4&nfsport={self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ganesha.nfsd exited ({self.log})")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"ganesha.nfsd did not listen on {self.port} ({self.log})")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
