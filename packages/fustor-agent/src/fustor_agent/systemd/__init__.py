"""The systemd unit shipped with the agent (``fustor-agent systemd-unit`` prints it)."""

from __future__ import annotations

import shlex
import sys
from importlib import resources
from pathlib import Path

__all__ = ["TEMPLATE_COMMAND", "unit_text"]

TEMPLATE_COMMAND = "/opt/fustor-agent/bin/fustor-agent"
TEMPLATE_HOME = "/var/lib/fustor"
TEMPLATE_USER = "fustor"


def _installed_command() -> str:
    beside = Path(sys.executable).parent / "fustor-agent"
    return str(beside) if beside.exists() else TEMPLATE_COMMAND


def unit_text(
    home: str = TEMPLATE_HOME, config: str | None = None, user: str = TEMPLATE_USER
) -> str:
    """The unit file with this installation's command, ``home``, ``config`` and ``user``."""
    text = resources.files(__package__).joinpath("fustor-agent.service").read_text("utf-8")
    command = _installed_command()
    start = f"{command} start" + (f" --config {shlex.quote(config)}" if config else "")
    return (
        text.replace(f"ExecStart={TEMPLATE_COMMAND} start", f"ExecStart={start}")
        .replace(TEMPLATE_COMMAND, command)
        .replace(f"FUSTOR_HOME={TEMPLATE_HOME}", f"FUSTOR_HOME={home}")
        .replace(f"User={TEMPLATE_USER}", f"User={user}")
        .replace(f"Group={TEMPLATE_USER}", f"Group={user}")
    )
