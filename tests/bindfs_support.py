"""Finding bindfs, the FUSE mount the share tests use (importable from any test folder)."""

from __future__ import annotations

import os
import shutil
import subprocess

__all__ = ["ensure_bindfs"]


def ensure_bindfs() -> str:
    """The bindfs executable, installed from Debian if missing (the tests run as root).

    A machine without it fails these tests loudly rather than skipping them: they are the
    only proof of the blind-spot behaviour.
    """
    path = shutil.which("bindfs")
    if path is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "bindfs"], check=True, env=env, timeout=600
        )
        path = shutil.which("bindfs")
    if path is None:
        raise RuntimeError("apt-get installed bindfs but it is not on PATH")
    return path
