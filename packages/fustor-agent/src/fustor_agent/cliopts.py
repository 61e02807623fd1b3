"""Options and error handling shared by the commands of the ``fustor-agent`` CLI."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from fustor_agent import control
from fustor_agent.home import Home
from fustor_agent.logs import LEVELS, journald_stderr
from fustor_core import ConfigError, FustorError, PluginError

__all__ = [
    "EXIT_CONFIG",
    "EXIT_NOT_RUNNING",
    "home_options",
    "known_errors",
    "log_options",
    "warn",
]

F = TypeVar("F", bound=Callable[..., Any])
EXIT_NOT_RUNNING = 3
"""Like LSB init scripts, only ``status`` says "not running" with code 3."""
EXIT_CONFIG = 78
"""EX_CONFIG of sysexits.h: the unit file's ``RestartPreventExitStatus=78`` stops a restart
loop on a typo."""


def _stderr_line(kind: str, text: str) -> None:
    # Under systemd, the journal reads the priority from the prefix (3: err, 4: warning).
    prefix = ("<3>" if kind == "error" else "<4>") if journald_stderr() else ""
    click.echo(f"{prefix}{kind}: {text}", err=True)


def warn(text: str) -> None:
    _stderr_line("warning", text)


def known_errors(func: F) -> F:
    """A known error is one ``error: ...`` line per problem and a non-zero exit: 78 for the
    configuration (a driver plugin that fails to load included: the installation needs
    fixing, a restart would fail again), 3 for ``status`` of a stopped agent, otherwise 1
    (also for an ``OSError`` on a file, named in the line)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FustorError as exc:
            for line in getattr(exc, "warnings", ()):  # ConfigErrors: shown with the errors
                _stderr_line("warning", line)
            for line in str(exc).splitlines() or [type(exc).__name__]:
                _stderr_line("error", line)
            if isinstance(exc, ConfigError | PluginError):
                sys.exit(EXIT_CONFIG)
            not_running = isinstance(exc, control.NotRunning) and func.__name__ == "status"
            sys.exit(EXIT_NOT_RUNNING if not_running else 1)
        except OSError as exc:  # the agent's own files: a read-only or full home, a bad path
            where = f"{exc.filename}: " if exc.filename else ""
            _stderr_line("error", f"{where}{exc.strerror or exc}{_owner_hint(exc)}")
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _owner_hint(exc: OSError) -> str:
    """For a permission error on a path in a directory another user owns (a home an agent
    run as root left behind): whose it is and who this is."""
    if not isinstance(exc, PermissionError) or not exc.filename:
        return ""
    path = os.path.abspath(os.fsdecode(exc.filename))
    for place in (path, os.path.dirname(path)):
        try:
            owner = os.stat(place).st_uid
        except OSError:
            continue
        if owner != os.geteuid():
            return f" ({place} belongs to {_user(owner)}; this runs as {_user(os.geteuid())})"
        return ""
    return ""


def _user(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def home_options(func: F) -> F:
    """``--home DIR`` and ``--config PATH``, given before or after the command name.

    The command receives ``home`` (a :class:`Home`); without the options,
    ``$FUSTOR_HOME`` / ``$FUSTOR_CONFIG`` apply, then ``~/.fustor``.
    """

    @click.option(
        "--config",
        "config_path",
        metavar="PATH",
        help="Configuration file (or 0.8.17 agent-config/ directory) "
        "[env: FUSTOR_CONFIG; default: $FUSTOR_HOME/agent-config.yaml].",
    )
    @click.option(
        "--home",
        "home_dir",
        metavar="DIR",
        help="The agent's home: pid, socket, logs, state [env: FUSTOR_HOME; default: ~/.fustor].",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, home_dir: str | None, config_path: str | None, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        parent = ctx.parent.params if ctx.parent is not None else {}
        home = Home.at(home_dir or parent.get("home_dir"), config_path or parent.get("config_path"))
        if ctx.parent is None:  # the group itself
            return func(*args, **kwargs)
        return func(*args, home=home, **kwargs)

    return wrapper  # type: ignore[return-value]


FORMATS = ("text", "json")


def _from_env(name: str, given: str | None, choices: tuple[str, ...] | list[str]) -> str | None:
    """The option as given, else the variable ``name``; a wrong value in the variable is a
    configuration error naming the variable (click would name an option never typed)."""
    if given is not None:
        return given.lower()
    value = os.environ.get(name, "")
    if not value:
        return None
    if value.lower() not in choices:
        _stderr_line("error", f"{name}={value!r} is not one of: {', '.join(choices)}")
        sys.exit(EXIT_CONFIG)
    return value.lower()


def log_options(func: F) -> F:
    """``--log-level``, ``--log-format``, ``--log-file/--no-log-file`` and ``-V``; each
    wins over the ``logging:`` block of the configuration."""

    @click.option(
        "--log-level",
        type=click.Choice(LEVELS, case_sensitive=False),
        help="Log level [env: FUSTOR_LOG_LEVEL; default: logging.level, info].",
    )
    @click.option(
        "--log-format",
        type=click.Choice(FORMATS),
        help="text, or json: one object per line [env: FUSTOR_LOG_FORMAT].",
    )
    @click.option(
        "--log-file/--no-log-file",
        default=None,
        help="Write $FUSTOR_HOME/logs/agent.log [default: logging.file; yes, except under "
        "systemd's journal].",
    )
    @click.option("-V", "--verbose", is_flag=True, help="Debug logging (--log-level debug).")
    @functools.wraps(func)
    def wrapper(
        *args: Any, verbose: bool, log_level: str | None, log_format: str | None, **kwargs: Any
    ) -> Any:
        log_level = _from_env("FUSTOR_LOG_LEVEL", log_level, LEVELS)
        log_format = _from_env("FUSTOR_LOG_FORMAT", log_format, FORMATS)
        if verbose:
            log_level = "debug"
        return func(*args, log_level=log_level, log_format=log_format, **kwargs)

    return wrapper  # type: ignore[return-value]
