"""The agent on the NFS server: do changes made by NFS clients reach realtime?

    python benchmarks/fs_nfs_server.py [--backends fanotify,inotify] [--rounds 3]

An agent on an NFS *client* cannot see what other clients change (docs/operations.md, "NFS");
the deployment that removes that blind spot runs the agent on the file server, on the
exported directory, where every client's change goes through the server's VFS. This checks
that deployment end to end on one machine:

- a user-space NFS server (nfs-ganesha, VFS backend, NFSv4 over TCP on a free loopback port)
  exports a temporary directory;
- the real agent watches that directory (the server's own path) with each backend, echo
  sender to a file;
- an NFS client (libnfs through ctypes: its own NFSv4 session, what another machine's mount
  sends) creates, writes, renames, safe-saves, deletes files and directories;
- for each change: whether the agent reported the expected rows in realtime, and how long
  after the client's call returned (deletes and renames wait ``delete_settle_sec``, 0.3 s,
  as they do for local changes).

Needs root, ``ganesha.nfsd`` with its VFS backend and libnfs (Debian: ``nfs-ganesha
nfs-ganesha-vfs libnfs13``). Not run here: a kernel nfsd (the kernel has no NFS modules), a
kernel NFS client mount. Exits 1 if any change was missed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fs_scale import Agent

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
                raise SystemExit(f"ganesha.nfsd exited ({self.log})")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"ganesha.nfsd did not listen on {self.port} ({self.log})")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Rows:
    """Realtime rows of the echo output, read as the file grows."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.seen: list[tuple[str, str, dict]] = []

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        complete = data.rfind(b"\n") + 1
        self.offset += complete
        for line in data[:complete].splitlines():
            message = json.loads(line)
            if "row" in message and message["message_source"] == "realtime":
                self.seen.append((message["event_type"], message["row"]["path"], message["row"]))

    def wait(self, expected: list[tuple[str, str, int | None]], timeout: float) -> float | None:
        """Seconds until every ``(event type, path, size or None)`` was reported, or None."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            self.poll()
            if all(self._has(*e) for e in expected):
                return time.monotonic() - started
            time.sleep(0.002)
        return None

    def _has(self, event_type: str, path: str, size: int | None) -> bool:
        return any(
            t == event_type and p == path and (size is None or r.get("size") == size)
            for t, p, r in self.seen
        )


Step = tuple[str, Callable[[NfsClient], None], list[tuple[str, str, int | None]]]
"""(what, the client's calls, the realtime rows expected: event type, path, size)."""


def steps(n: int) -> list[Step]:
    d, f = f"/dir{n}", f"/new{n}.txt"
    return [
        ("create a file", lambda c: c.write(f, b"hello"), [("update", f, 5)]),
        ("make a directory", lambda c: c.mkdir(d), [("update", d, None)]),
        (
            "file in the new directory",
            lambda c: c.write(d + "/a.txt", b"abc"),
            [("update", d + "/a.txt", 3)],
        ),
        (
            "rename a file",
            lambda c: c.rename(d + "/a.txt", d + "/b.txt"),
            [("delete", d + "/a.txt", None), ("update", d + "/b.txt", 3)],
        ),
        (
            "safe save (temp file renamed over)",
            lambda c: (c.write(f + ".tmp", b"hello, world"), c.rename(f + ".tmp", f)),
            [("update", f, 12)],
        ),
        (
            "rename a directory",
            lambda c: c.rename(d, d + "m"),
            [("delete", d, None), ("update", d + "m", None), ("update", d + "m/b.txt", 3)],
        ),
        ("delete a file", lambda c: c.unlink(f), [("delete", f, None)]),
        (
            # One delete: the directory's covers what was in it (docs/source-fs.md, realtime).
            "empty and delete a directory",
            lambda c: (c.unlink(d + "m/b.txt"), c.rmdir(d + "m")),
            [("delete", d + "m", None)],
        ),
    ]


def run_backend(backend: str, rounds: int, work: str) -> dict[str, list[float | None]]:
    export = os.path.join(work, f"export-{backend}")
    os.makedirs(export)
    for i in range(100):  # something for the snapshot
        with open(os.path.join(export, f"seed{i}.txt"), "w") as f:
            f.write("x")
    server = Ganesha(os.path.join(work, f"ganesha-{backend}"), export)
    agent = Agent(export, backend, work)
    results: dict[str, list[float | None]] = {}
    try:
        agent.wait_log(r"snapshot done", 120)
        client = NfsClient(server.url)
        rows = Rows(agent.out)
        for n in range(rounds):
            for what, act, expected in steps(n):
                act(client)
                results.setdefault(what, []).append(rows.wait(expected, 10.0))
    finally:
        agent.stop()
        server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="fanotify,inotify")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("ganesha.nfsd") is None:
        raise SystemExit(
            "needs root and ganesha.nfsd (Debian: nfs-ganesha nfs-ganesha-vfs libnfs13)"
        )
    missed = 0
    work = tempfile.mkdtemp(prefix="fustor-nfs-", dir="/var/tmp")
    try:
        for backend in args.backends.split(","):
            results = run_backend(backend, args.rounds, work)
            print(f"\nbackend {backend}: change by an NFS client -> the server's agent's rows")
            print(f"{'change':<36} {'seen':>6}  latency ms (median, max)")
            for what, times in results.items():
                got = [t * 1000 for t in times if t is not None]
                missed += len(times) - len(got)
                spread = f"{statistics.median(got):8.1f} {max(got):8.1f}" if got else "       -"
                print(f"{what:<36} {len(got)}/{len(times):<4} {spread}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmissed: {missed}")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
