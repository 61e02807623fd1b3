"""Finding bindfs, the FUSE mount the share tests use (importable from any test folder)."""

from __future__ import annotations

import shutil

from debian_support import apt_install

__all__ = ["ensure_bindfs"]


def ensure_bindfs() -> str:
    """The bindfs executable, installed from Debian if missing (the tests run as root).

    A machine without it fails these tests loudly rather than skipping them: they are the
    only proof of the blind-spot behaviour.
    """
    path = shutil.which("bindfs")
    if path is None:
        apt_install("bindfs")
        path = shutil.which("bindfs")
    if path is None:
        raise RuntimeError("apt-get installed bindfs but it is not on PATH")
    return path
