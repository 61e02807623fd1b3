"""Base config models of drivers: the ``config:`` block of a source or a sender in YAML."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

__all__ = [
    "SenderConfig",
    "SourceConfig",
    "StrictModel",
    "absolute_path",
    "collect_config_warnings",
    "config_warning",
]

_warnings: ContextVar[list[str] | None] = ContextVar("fustor_config_warnings", default=None)


def config_warning(message: str) -> None:
    """Call from a config model's validator for a value that is allowed but likely wrong
    (a root that does not exist yet): the host prints it as a ``warning:`` line naming the
    entry (``validate``, ``start``) and runs the configuration. Outside the host's
    validation it is a :class:`UserWarning`."""
    found = _warnings.get()
    if found is None:
        warnings.warn(message, stacklevel=2)
    else:
        found.append(message)


@contextmanager
def collect_config_warnings() -> Iterator[list[str]]:
    """The host's side of :func:`config_warning`: the messages of validations run inside."""
    found: list[str] = []
    token = _warnings.set(found)
    try:
        yield found
    finally:
        _warnings.reset(token)


def absolute_path(key: str, value: str) -> str:
    """``value`` with ``~`` expanded, normalised; for the validators of path settings.

    Raises ``ValueError`` (pydantic reports it against the key) when the path is relative:
    resolved against the working directory, it would silently change meaning between a shell
    and a service (systemd starts services in ``/``), so the message names both readings.
    """
    path = os.path.expanduser(value)
    if not os.path.isabs(path):
        in_root = os.path.normpath(os.path.join("/", path))
        if os.getcwd() == "/":  # a background agent (start -D) or a service
            where = f"the agent runs in /, where it would be {in_root!r}"
        else:
            where = (
                f"from the current directory it would be {os.path.abspath(path)!r}; "
                f"under systemd, {in_root!r}"
            )
        raise ValueError(f"{key} {value!r} is relative; write the absolute path ({where})")
    return os.path.abspath(path)


class StrictModel(BaseModel):
    """A model that rejects unknown keys, so a typo in YAML is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class SourceConfig(StrictModel):
    """``sources[].config``. Drivers subclass it and narrow ``driver_params`` to their model."""

    uri: str
    driver_params: Any = {}


class SenderConfig(StrictModel):
    """``senders[].config``. ``credential`` is a secret: never logged, never shown."""

    endpoint: str = ""
    credential: SecretStr | None = None
    driver_params: Any = {}
