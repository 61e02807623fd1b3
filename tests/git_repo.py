"""A git repository with two branches whose trees differ in every way a checkout can change."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["git", "make_repo"]

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
