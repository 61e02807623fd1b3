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

pytestmark = pytest.mark.fusion

MakeAgent = Callable[..., AgentProcess]
SETTLE = 8.0
"""Seconds within which a quiet tree must be in Fusion (delete settle, realtime, margin)."""

BRANCH_A = {
    "src/app.py": "print('a')\n",
    "src/util.py": "X = 1\n",
    "src/old/legacy.py": "gone in b\n",
    "docs": None,  # a directory in a, a file in b
    "docs/index.md": "# a\n",
    "docs/guide/intro.md": "intro\n",
    "config": "a file in a, a directory in b\n",
    "README": "a\n",
}
BRANCH_B = {
    "src/app.py": "print('b, longer')\n",
    "src/util.py": "X = 1\n",
    "src/new/module.py": "new in b\n",
    "docs": "a file in b\n",
    "config/main.yaml": "k: v\n",
    "config/extra.yaml": "e: 1\n",
    "README": "b, longer\n",
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def write_branch(repo: Path, files: dict[str, str | None]) -> None:
    for name, text in files.items():
        if text is not None:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(text)


def make_repo(repo: Path) -> None:
    """A repository with branches ``a`` and ``b`` whose trees differ in every way a checkout
    can change a path: content, presence, directory <-> file."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "a")
    write_branch(repo, BRANCH_A)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a")
    git(repo, "checkout", "-q", "-b", "b")
    git(repo, "rm", "-rq", "src/old", "docs", "config")
    write_branch(repo, BRANCH_B)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "b")
    git(repo, "checkout", "-q", "a")


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
