"""Locating the installed ``fustor-agent`` command (importable from any test folder)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["agent_command"]


def agent_command() -> str:
    """The ``fustor-agent`` script of the test environment, as a user would run it."""
    beside_python = Path(sys.executable).parent / "fustor-agent"
    found = str(beside_python) if beside_python.exists() else shutil.which("fustor-agent")
    if found is None:
        raise RuntimeError("the fustor-agent command is not installed")
    return found
