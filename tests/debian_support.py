"""Installing a Debian package a test needs, once, on a fresh machine (the tests run as root)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile

__all__ = ["apt_install"]


def apt_install(*packages: str) -> None:
    """``apt-get install`` of ``packages`` after refreshing the package lists.

    Serialised by a lock file, so parallel test workers never race for apt's own locks. The
    caller checks afterwards that what it needs is there (and fails loudly if not).
    """
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(os.path.join(tempfile.gettempdir(), "fustor-tests-apt.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
            check=True,
            env=env,
            timeout=600,
        )
