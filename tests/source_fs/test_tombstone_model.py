"""Property: against Fusion's arbitration, the realtime rows leave no existing path missing,
except paths the tombstone tracker knows are hidden (which an audit restores after the TTL).

Random sequences of create, write, delete, rename, rename back, type change and ``os.utime``
to an old time, with random pauses (up to 3 s, longer than the delete settle window), run
against a real tree under realtime. The rows are replayed through a model of Fusion 0.8.17's
realtime rules (docs/fusion-protocol.md §5.4: an upsert replaces the node, a type change drops
the old subtree, a delete removes the subtree and stamps a tombstone at its arrival time, and an
upsert of a tombstoned path is dropped unless its mtime is newer). Once the tree is quiet:

* nothing is in the model that is not on disk;
* every path on disk is in the model with its type and size, or is hidden per the tracker.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time

from fs_helpers import Live, make_source, write
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

NAMES = ["a", "b"]
PATHS = [f"/{x}" for x in NAMES] + [f"/{x}/{y}" for x in NAMES for y in NAMES]
PAUSES = [0.0, 0.0, 0.05, 0.5, 3.0]
OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["write", "remove", "rename", "rename_back", "to_dir", "to_file", "old_mtime"]
        ),
        st.sampled_from(PATHS),
        st.sampled_from(PATHS),
        st.sampled_from(PAUSES),
    ),
    min_size=1,
    max_size=8,
)
OLD = 1_000_000_000.0  # 2001: older than any tombstone


class FusionModel:
    """Fusion's realtime arbitration, enough to say what its tree holds."""

    def __init__(self, disk: dict[str, tuple[bool, int]]) -> None:
        self.nodes: dict[str, tuple[bool, int]] = dict(disk)
        self.tombs: dict[str, float] = {}

    def apply(self, kind: str, row: dict, at: float) -> None:
        path = row["path"]
        if kind == "delete":
            self._drop(path)
            self.tombs[path] = at
            return
        tomb = self.tombs.get(path)
        if tomb is not None:
            if row["modified_time"] <= tomb + 1e-5:
                return
            del self.tombs[path]
        is_dir = row["is_directory"]
        old = self.nodes.get(path)
        if old is not None and old[0] != is_dir:
            self._drop(path)
        parent = path.rsplit("/", 1)[0]
        while parent and parent not in self.nodes:
            self.nodes[parent] = (True, 0)
            parent = parent.rsplit("/", 1)[0]
        self.nodes[path] = (is_dir, 0 if is_dir else row["size"])

    def _drop(self, path: str) -> None:
        for p in [p for p in self.nodes if p == path or p.startswith(path + "/")]:
            del self.nodes[p]


def _disk(root: str) -> dict[str, tuple[bool, int]]:
    out: dict[str, tuple[bool, int]] = {"/": (True, 0)}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = dirpath[len(root) :] or "/"
        prefix = "" if rel == "/" else rel
        for d in dirnames:
            out[f"{prefix}/{d}"] = (True, 0)
        for f in filenames:
            out[f"{prefix}/{f}"] = (False, os.lstat(os.path.join(dirpath, f)).st_size)
    return out


def _remove(path: str) -> None:
    shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)


def _run(root: str, op: str, src: str, dst: str, n: int) -> None:
    s, d = root + src, root + dst
    try:
        if op == "write" and os.path.isdir(os.path.dirname(s)) and not os.path.isdir(s):
            write(s, b"x" * (n + 1))
        elif op == "remove" and os.path.lexists(s):
            _remove(s)
        elif op in ("rename", "rename_back") and os.path.lexists(s) and not os.path.lexists(d):
            if os.path.isdir(os.path.dirname(d)) and not (d + "/").startswith(s + "/"):
                os.rename(s, d)
                if op == "rename_back":
                    time.sleep(0.01 * n)
                    os.rename(d, s)
        elif op == "to_dir" and os.path.lexists(s) and not os.path.isdir(s):
            os.remove(s)
            os.mkdir(s)
            write(s + "/inner", b"i")
        elif op == "to_file" and os.path.isdir(s):
            shutil.rmtree(s)
            write(s, b"f" * (n + 2))
            os.utime(s, (OLD, OLD))
        elif op == "old_mtime" and os.path.lexists(s):
            os.utime(s, (OLD, OLD), follow_symlinks=False)
    except OSError:
        pass  # e.g. a parent that an earlier step removed: no change, nothing to report


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
# Safe save: the old name goes, a file with an older mtime takes it a moment later.
@example(ops=[("rename", "/a/a", "/a/b", 0.0), ("rename", "/b/a", "/a/a", 0.0)])
# Deleted, its delete sent, and back with an old mtime: hidden, not silently missing.
@example(ops=[("rename", "/a/a", "/a/b", 3.0), ("rename", "/a/b", "/a/a", 0.0)])
# Directory -> file with an old mtime, and back.
@example(ops=[("to_file", "/b", "/b", 0.0), ("to_dir", "/b", "/b", 0.5)])
def test_no_existing_path_is_lost_to_a_tombstone(ops: list[tuple[str, str, str, float]]) -> None:
    base = tempfile.mkdtemp(prefix="fs-tomb-")
    try:
        root = os.path.join(base, "root")
        write(f"{root}/a/a", b"seed")
        write(f"{root}/b/a", b"seed-b")
        os.utime(f"{root}/b/a", (OLD, OLD))
        model = FusionModel(_disk(root))
        source = make_source(root)

        async def main() -> None:
            async with Live(source) as rt:
                for n, (op, src, dst, pause) in enumerate(ops):
                    _run(root, op, src, dst, n)
                    await asyncio.sleep(pause)
                await rt.settle(0.8)
                for (kind, row), at in zip(rt.events, rt.walls, strict=True):
                    model.apply(kind, row, at)
                disk = _disk(root)
                ghosts = sorted(model.nodes.keys() - disk.keys())
                assert not ghosts, ("in Fusion, not on disk", ghosts, ops, rt.events)
                for path, node in disk.items():
                    if model.nodes.get(path) != node:
                        assert source.tombstones.is_hidden(path), (
                            path,
                            node,
                            model.nodes.get(path),
                            ops,
                            rt.events,
                        )

        asyncio.run(main())
    finally:
        shutil.rmtree(base)
