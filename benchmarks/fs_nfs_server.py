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

Needs root; installs ganesha with its VFS backend and libnfs from Debian if missing
(``nfs-ganesha nfs-ganesha-vfs libnfs13``; the server and client are tests/nfs_support.py,
shared with tests/source_fs/test_nfs_server.py). Not run: a kernel nfsd (this kernel has no
NFS support) and a kernel NFS client mount. Exits 1 if any change was missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
)

from fs_scale import Agent

from nfs_support import Ganesha, NfsClient, ensure_ganesha


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
    if os.geteuid() != 0:
        raise SystemExit("needs root (ganesha, fanotify, installing nfs-ganesha if missing)")
    ensure_ganesha()
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
