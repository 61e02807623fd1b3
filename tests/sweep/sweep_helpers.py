"""Helpers of the sweep tests: the bindfs share, tree ageing, the agent's source status."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["Share", "age_tree", "source_status"]


class Share:
    """``backing``: written by "another NFS client"; ``mnt``: what the agent watches."""

    def __init__(self, backing: Path, mnt: Path) -> None:
        self.backing = backing
        self.mnt = mnt


def age_tree(root: Path, seconds: float = 600.0) -> None:
    """Move every mtime back, so the audit caches every directory at once (its tick rule)."""
    when = os.stat(root).st_mtime - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (when, when), follow_symlinks=False)
    os.utime(root, (when, when))


def source_status(fustor_agent: Path, home: Path) -> dict[str, Any]:
    """``pipes[0].source`` of a running agent's status (``{}`` while it does not answer)."""
    out = subprocess.run(
        [str(fustor_agent), "status", "--json"],
        env={**os.environ, "FUSTOR_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    if out.returncode != 0:
        return {}
    pipes = json.loads(out.stdout).get("pipes") or [{}]
    return dict(pipes[0].get("source") or {})
