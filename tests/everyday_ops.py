"""Everyday file operations as random steps, and a model of how Fusion 0.8.17 applies realtime
rows, shared by the property tests (fs source, echo sender, real Fusion)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

__all__ = ["OLD", "OPS", "FusionModel", "apply", "disk_nodes", "seed"]

OLD = 1_000_000_000.0
"""An mtime in 2001: older than any tombstone."""

NAMES = ["a", "b"]
RELS = [*NAMES, *(f"{x}/{y}" for x in NAMES for y in NAMES)]
OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["write", "remove", "rename", "rename_back", "to_dir", "to_file", "old_mtime"]
        ),
        st.sampled_from(RELS),
        st.sampled_from(RELS),
        # Pauses longer than the delete settle window make deletes go out before a re-creation.
        st.sampled_from([0.0, 0.0, 0.05, 0.5, 2.0]),
    ),
    min_size=1,
    max_size=7,
)
"""Steps ``(op, src, dst, pause)`` over paths relative to a base directory."""


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def seed(base: Path) -> None:
    """The starting tree of every sequence: two directories, one file with an old mtime."""
    _write(base / "a" / "a", b"seed")
    _write(base / "b" / "a", b"seed-b")
    os.utime(base / "b" / "a", (OLD, OLD))


def apply(base: Path, op: str, src: str, dst: str, n: int) -> None:
    """One step: create/write, delete, rename, rename and back at once, file -> directory,
    directory -> file with an old mtime, ``os.utime`` to an old time (no-op where it does not
    apply)."""
    s, d = base / src, base / dst
    try:
        if op == "write" and s.parent.is_dir() and not s.is_dir():
            _write(s, b"w" * (n + 1))
        elif op == "remove" and os.path.lexists(s):
            shutil.rmtree(s) if s.is_dir() and not s.is_symlink() else s.unlink()
        elif op in ("rename", "rename_back") and os.path.lexists(s) and not os.path.lexists(d):
            if d.parent.is_dir() and not (str(d) + "/").startswith(str(s) + "/"):
                s.rename(d)
                if op == "rename_back":
                    d.rename(s)
        elif op == "to_dir" and os.path.lexists(s) and not s.is_dir():
            s.unlink()
            s.mkdir()
            _write(s / "inner", b"i")
        elif op == "to_file" and s.is_dir() and not s.is_symlink():
            shutil.rmtree(s)
            _write(s, b"f" * (n + 2))
            os.utime(s, (OLD, OLD))
        elif op == "old_mtime" and os.path.lexists(s):
            os.utime(s, (OLD, OLD), follow_symlinks=False)
    except OSError:
        pass  # e.g. a parent an earlier step removed: no change, nothing to report


def disk_nodes(root: Path) -> dict[str, tuple[bool, int]]:
    """``path -> (is_directory, size)`` of the tree (directories size 0), root ``/`` included."""
    out: dict[str, tuple[bool, int]] = {"/": (True, 0)}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = dirpath[len(str(root)) :] or "/"
        prefix = "" if rel == "/" else rel
        for name in dirnames:
            out[f"{prefix}/{name}"] = (True, 0)
        for name in filenames:
            out[f"{prefix}/{name}"] = (False, os.lstat(os.path.join(dirpath, name)).st_size)
    return out


class FusionModel:
    """Fusion 0.8.17's realtime arbitration (docs/fusion-protocol.md §5.4), enough to say what
    its tree holds: an upsert replaces the node (a type change drops the old subtree) and
    creates missing parents; a delete removes the subtree and stamps a tombstone with its
    arrival time; an upsert of a tombstoned path is dropped unless its mtime is newer."""

    def __init__(self, nodes: dict[str, tuple[bool, int]]) -> None:
        self.nodes = dict(nodes)
        self.tombs: dict[str, float] = {}
        self.dropped: set[str] = set()
        """Paths whose upsert a tombstone dropped (and not applied since)."""

    def apply(self, kind: str, row: dict[str, Any], at: float) -> None:
        path = row["path"]
        if kind == "delete":
            self._drop(path)
            self.tombs[path] = at
            self.dropped.discard(path)
            return
        tomb = self.tombs.get(path)
        if tomb is not None:
            if row["modified_time"] <= tomb + 1e-5:
                self.dropped.add(path)
                return
            del self.tombs[path]
        self.dropped.discard(path)
        is_dir = row["is_directory"]
        old = self.nodes.get(path)
        if old is not None and old[0] != is_dir:
            self._drop(path)
        parent = path.rsplit("/", 1)[0]
        while parent and parent not in self.nodes:
            self.nodes[parent] = (True, 0)
            parent = parent.rsplit("/", 1)[0]
        self.nodes[path] = (is_dir, 0 if is_dir else row["size"])

    def differences(self, disk: dict[str, tuple[bool, int]]) -> tuple[list[str], list[str]]:
        """(paths held but not on disk, paths on disk not held as they are)."""
        ghosts = sorted(self.nodes.keys() - disk.keys())
        wrong = sorted(p for p, node in disk.items() if self.nodes.get(p) != node)
        return ghosts, wrong

    def _drop(self, path: str) -> None:
        for p in [p for p in self.nodes if p == path or p.startswith(path + "/")]:
            del self.nodes[p]
