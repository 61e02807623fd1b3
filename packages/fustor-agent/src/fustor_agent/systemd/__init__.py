"""The systemd unit shipped with the agent (``fustor-agent systemd-unit`` prints it)."""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

from fustor_agent_sdk.config import absolute_path
from fustor_core import ConfigError

__all__ = ["TEMPLATE_COMMAND", "unit_text"]

TEMPLATE_COMMAND = "/opt/fustor-agent/bin/fustor-agent"
TEMPLATE_HOME = "/var/lib/fustor"
TEMPLATE_USER = "fustor"


def _installed_command() -> str:
    beside = Path(sys.executable).parent / "fustor-agent"
    return str(beside) if beside.exists() else TEMPLATE_COMMAND


_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,255}")
"""A user name systemd accepts in ``User=`` (its relaxed rule, minus the trailing ``$``)."""


def _quoted(value: str, command: bool = False) -> str:
    """``value`` as one systemd word: ``%`` escaped from specifier expansion (and, in a
    command line, ``$`` from variable expansion), double-quoted if it holds a blank, a
    quote or a backslash."""
    text = value.replace("%", "%%")
    if command:
        text = text.replace("$", "$$")
    if not re.search(r"[\s\"'\\]", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
"""A newline would end the directive and start another in the unit: refused, like a tab or
any other control character."""


def _absolute(option: str, path: str) -> str:
    if _CONTROL.search(path):
        raise ConfigError(f"{option} {path!r} holds a control character (a newline?)")
    try:
        return absolute_path(option, path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def unit_text(
    home: str = TEMPLATE_HOME, config: str | None = None, user: str = TEMPLATE_USER
) -> str:
    """The unit file with this installation's command, ``home``, ``config`` and ``user``,
    each quoted for systemd. Raises :class:`ConfigError` for a relative path, a path holding
    a control character, or a user name systemd would not accept."""
    if not _USER.fullmatch(user):
        raise ConfigError(f"--user {user!r} is not a user name systemd accepts")
    home = _absolute("--home", home)
    text = resources.files(__package__).joinpath("fustor-agent.service").read_text("utf-8")
    command = _quoted(_installed_command(), command=True)
    start = f"{command} start"
    if config:
        start += f" --config {_quoted(_absolute('--config', config), command=True)}"
    return (
        text.replace(f"ExecStart={TEMPLATE_COMMAND} start", f"ExecStart={start}")
        .replace(TEMPLATE_COMMAND, command)
        .replace(
            f"Environment=FUSTOR_HOME={TEMPLATE_HOME}",
            f"Environment={_quoted('FUSTOR_HOME=' + home)}",
        )
        .replace(f"User={TEMPLATE_USER}", f"User={user}")
    )
