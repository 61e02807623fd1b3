"""The everyday tools themselves against the real Fusion 0.8.17: ``git`` and ``tar``.

tests/fusion/test_fusion_everyday_ops.py replays the system calls these tools make; here the
tools run for real (their own order of unlink, create, rename and utime, and ``.git``'s lock
files and objects), and Fusion's tree must equal the disk once the tree is quiet. Fusion keeps
its default one-hour tombstones, so a tombstone left on an existing path shows as a missing file.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from agent_harness import AgentProcess
from fusion_harness import FusionServer, disk_tree

from git_repo import git, make_repo

pytestmark = pytest.mark.fusion

MakeAgent = Callable[..., AgentProcess]
SETTLE = 8.0
"""Seconds within which a quiet tree must be in Fusion (delete settle, realtime, margin)."""


@pytest.mark.parametrize("pause", [0.0, 0.4, 2.0], ids=["back-to-back", "0.4s", "2s"])
def test_git_checkout_between_branches_keeps_every_path(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, pause: float
) -> None:
    """``git checkout`` back and forth, at once, within the delete settle time and after it."""
    root = tmp_path / "w"
    make_repo(root / "repo")
    agent = make_agent(root)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    for branch in ("b", "a", "b", "a", "b"):
        git(root / "repo", "checkout", "-q", branch)
        time.sleep(pause)
    assert (root / "repo" / "docs").is_file() and (root / "repo" / "config").is_dir()
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)


def make_archive(path: Path, stage: Path) -> None:
    """An archive of a tree a day old: every file and directory carries that mtime."""
    old = time.time() - 86400
    for i in range(5):
        for j in range(20):
            f = stage / "data" / f"d{i}" / f"f{j}.txt"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(f"archived {i}-{j}, a little longer than before\n")
    (stage / "data" / "d0" / "f0.txt").unlink()
    (stage / "data" / "d0" / "f0.txt").mkdir()  # a file on disk, a directory in the archive
    (stage / "data" / "d0" / "f0.txt" / "inner").write_text("inner\n")
    for dirpath, dirnames, filenames in os.walk(stage):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (old, old))
    with tarfile.open(path, "w") as tar:
        tar.add(stage / "data", arcname="data")


def test_tar_x_over_an_existing_tree_keeps_every_path(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """GNU ``tar x`` over the same names: it unlinks each existing file, creates it again and
    sets the archive's (older) mtime, so every file goes through delete + re-create."""
    root = tmp_path / "w"
    for i in range(5):
        for j in range(20):
            f = root / "data" / f"d{i}" / f"f{j}.txt"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("current\n")
    archive = tmp_path / "backup.tar"
    make_archive(archive, tmp_path / "stage")
    agent = make_agent(root)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    for _ in range(2):  # a second extraction: the same files again, now with equal mtimes
        subprocess.run(["tar", "-xf", str(archive), "-C", str(root)], check=True)
    assert (root / "data" / "d0" / "f0.txt" / "inner").is_file()
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)
