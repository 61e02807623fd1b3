"""Fixtures of the sweep tests: a bindfs mount whose backing tree is a blind spot for inotify."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The Fusion harness lives with the Fusion tests; these tests reuse it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fusion"))

from fusion_harness import FusionServer, ensure_fusion_venv
from sweep_helpers import Share

from bindfs_support import ensure_bindfs


@pytest.fixture
def fusion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FusionServer]:
    """A fresh real Fusion 0.8.17 on free ports; stopped (by its PID) after the test."""
    server = FusionServer(ensure_fusion_venv(), tmp_path_factory.mktemp("fusion-home"))
    server.start()
    try:
        yield server
        if server.process is not None:
            assert server.errors() == 0, server.log_tail()  # docs/fusion-protocol.md §5.3, B9
    finally:
        server.stop()


@pytest.fixture(scope="session")
def bindfs_exe() -> str:
    return ensure_bindfs()


@pytest.fixture
def share(bindfs_exe: str, tmp_path: Path) -> Iterator[Share]:
    backing, mnt = tmp_path / "backing", tmp_path / "mnt"
    backing.mkdir()
    mnt.mkdir()
    subprocess.run([bindfs_exe, str(backing), str(mnt)], check=True)
    try:
        yield Share(backing, mnt)
    finally:
        subprocess.run(["fusermount", "-u", "-z", str(mnt)], check=False)
