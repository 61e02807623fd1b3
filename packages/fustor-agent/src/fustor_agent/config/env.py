"""``${VAR}`` expansion in YAML values, from the environment and ``$FUSTOR_HOME/.env``."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from fustor_agent.config.errors import Problems, join_location
from fustor_core import ConfigError

__all__ = ["expand", "load_environment"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_environment(env_file: Path, problems: Problems | None = None) -> dict[str, str]:
    """The process environment over the ``.env`` file (a real variable wins, as in dotenv).
    Lines python-dotenv cannot parse are skipped, each a warning in ``problems`` naming the
    file and the line (python-dotenv itself would only log it, naming neither). A file that
    cannot be read or is not UTF-8 is an error in ``problems`` (raised as
    :class:`ConfigError` without them)."""
    values: dict[str, str] = {}
    if env_file.is_file():
        try:
            with _dotenv_complaints() as complaints:
                parsed = dotenv_values(env_file, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = "not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else exc.strerror
            if problems is None:
                raise ConfigError(f"{env_file}: cannot read: {why}") from None
            problems.add(env_file.name, "", f"cannot read: {why}")
            parsed = {}
        values.update({k: v for k, v in parsed.items() if v is not None})
        if problems is not None:
            for complaint in complaints:
                problems.warn(env_file.name, "", f"{complaint} (skipped)")
    values.update(os.environ)
    return values


@contextmanager
def _dotenv_complaints() -> Iterator[list[str]]:
    """python-dotenv's warnings (unparsable lines) while inside, kept off stderr."""
    found: list[str] = []

    def keep(record: logging.LogRecord) -> None:
        line = record.args[0] if isinstance(record.args, tuple) and record.args else None
        found.append(f"line {line}: not a KEY=value line" if line else record.getMessage())

    handler = logging.Handler()
    handler.emit = keep  # type: ignore[method-assign]
    logger = logging.getLogger("dotenv.main")
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield found
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def expand(
    value: Any, env: Mapping[str, str], problems: Problems, file: str, loc: tuple[Any, ...] = ()
) -> Any:
    """A copy of a parsed YAML tree with ``${VAR}`` / ``${VAR:-default}`` replaced in strings.

    Expansion happens after parsing, so a value can never inject YAML structure. A ``${``
    that starts no reference (``${KEY`` without its ``}``, ``${1X}``) is a problem, not a
    literal.
    """
    if isinstance(value, str):
        if "${" not in value:
            return value

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.add_explaining(
                file, join_location("", loc), f"environment variable {name} is not set"
            )
            return ""

        if "${" in _VAR.sub("", value):
            # A reference cut short (``${KEY``) would otherwise go out as a literal: a
            # credential Fusion refuses, with nothing pointing at the typo.
            problems.add_explaining(
                file,
                join_location("", loc),
                "'${' without a variable reference: write ${NAME} or ${NAME:-default}",
            )
            return value
        return _VAR.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand(v, env, problems, file, (*loc, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, env, problems, file, (*loc, i)) for i, v in enumerate(value)]
    return value
