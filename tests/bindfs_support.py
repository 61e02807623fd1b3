"""Finding bindfs, the FUSE mount the share tests use (importable from any test folder)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

__all__ = ["bindfs_or_skip"]


def bindfs_or_skip() -> str:
    """The bindfs executable, installed with apt-get if missing; the test is skipped, saying
    why, when that fails."""
    path = shutil.which("bindfs")
    if path is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "bindfs"],
            capture_output=True,
            check=False,
            timeout=300,
        )
        path = shutil.which("bindfs")
    if path is None:
        pytest.skip("bindfs is not installed and `apt-get install -y bindfs` failed")
    return path
