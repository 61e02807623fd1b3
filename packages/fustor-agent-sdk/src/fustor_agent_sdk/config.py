"""Base config models of drivers: the ``config:`` block of a source or a sender in YAML."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

__all__ = ["SenderConfig", "SourceConfig", "StrictModel"]


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
