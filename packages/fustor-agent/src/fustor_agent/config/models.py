"""Host-level config models: the lists ``sources``, ``senders``, ``pipes`` and ``console``."""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fustor_agent.console.settings import ConsoleSettings
from fustor_agent_sdk import SenderConfig, SenderDriver, SourceConfig, SourceDriver

__all__ = [
    "AgentConfig",
    "ConsoleSettings",
    "LoggingSettings",
    "PipeEntry",
    "SenderEntry",
    "SenderSpec",
    "SourceEntry",
    "SourceSpec",
]


_PIPE_ID = re.compile(r"[A-Za-z0-9_.:-]+")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceEntry(_Strict):
    id: str = Field(min_length=1)
    type: str
    config: dict[str, Any] = {}


class SenderEntry(_Strict):
    id: str = Field(min_length=1)
    type: str
    config: dict[str, Any] = {}


class PipeEntry(_Strict):
    id: str = Field(min_length=1)
    """Letters, digits and ``_ . : -``: it names ``state/<id>/`` and Fusion's task id."""
    source_id: str
    sender_id: str
    enabled: bool = True
    audit_interval_sec: float | None = Field(default=None, ge=0)
    """Overrides the interval the session suggests; 0 disables audits."""
    sentinel_interval_sec: float | None = Field(default=None, ge=0)
    """Overrides the interval the session suggests; 0 disables sentinel rounds."""
    max_buffered_rows: int = Field(default=100_000, ge=1)
    """Realtime rows kept while the sender cannot take them; beyond it they are dropped and
    the pipe resynchronises (the leader audits with a forgotten cache)."""

    @field_validator("id")
    @classmethod
    def _id_characters(cls, value: str) -> str:
        if not _PIPE_ID.fullmatch(value):
            raise ValueError(
                "a pipe id may hold only letters, digits and _ . : - (it names the directory "
                "state/<id>/ and is part of Fusion's task id)"
            )
        return value


LEVEL_ALIASES = {"warn": "warning", "fatal": "critical"}
"""Level names Python's logging also accepts, as ours."""


class LoggingSettings(_Strict):
    """The top-level ``logging:`` block; command-line options win over it."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["text", "json"] = "text"
    """``json``: one object per line (timestamp, level, logger, message, pipe_id)."""
    file: bool | None = None
    """Write ``$FUSTOR_HOME/logs/agent.log``; null: yes, except under systemd's journal."""

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        # Python logging's aliases (0.8.17 configurations use them).
        return LEVEL_ALIASES.get(value.lower(), value.lower())


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A validated source: its driver class and its driver-validated config."""

    id: str
    type: str
    # ``builtins.type``: inside this class body, plain ``type`` is the field above.
    driver: builtins.type[SourceDriver]
    config: SourceConfig


@dataclass(frozen=True, slots=True)
class SenderSpec:
    id: str
    type: str
    driver: builtins.type[SenderDriver]
    config: SenderConfig


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """A complete, validated configuration; every id reference resolves."""

    sources: dict[str, SourceSpec] = field(default_factory=dict)
    senders: dict[str, SenderSpec] = field(default_factory=dict)
    pipes: dict[str, PipeEntry] = field(default_factory=dict)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    path: Path | None = None
    """The file (or legacy directory) it came from; ``None`` for the embedded default."""
    agent_id: str | None = None
    warnings: tuple[str, ...] = ()
    pipe_files: dict[str, str] = field(default_factory=dict)
    """Pipe id → the file (as labelled in messages) that defines it."""
    earlier_pipe_files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Pipe id → files of a 0.8.17 layout that defined it too, earlier (the later
    definition is used): ``start FILE.yaml`` and a plain start count those as well."""

    def pipe_signature(self, pipe_id: str) -> tuple[PipeEntry, SourceSpec, SenderSpec]:
        """Everything a running pipe depends on; a reload restarts it when this changes,
        unless only :data:`RETUNABLE` fields did (:meth:`retunes`)."""
        pipe = self.pipes[pipe_id]
        return pipe, self.sources[pipe.source_id], self.senders[pipe.sender_id]

    def retunes(self, old: AgentConfig, pipe_id: str) -> bool:
        """Whether pipe ``pipe_id`` differs from its ``old`` self only in :data:`RETUNABLE`
        fields, which the running pipe takes in place (its session, and Fusion's view, stay)."""
        new_pipe, *new_deps = self.pipe_signature(pipe_id)
        old_pipe, *old_deps = old.pipe_signature(pipe_id)
        if new_deps != old_deps or new_pipe == old_pipe:
            return False
        return (
            new_pipe.model_copy(update={name: getattr(old_pipe, name) for name in RETUNABLE})
            == old_pipe
        )


RETUNABLE = ("audit_interval_sec", "sentinel_interval_sec", "max_buffered_rows")
"""Pipe fields a reload applies to the running pipe without a restart: a restart closes the
Fusion session, and a view left without sessions is emptied and unreadable (503) until the new
snapshot ends (protocol §5.1, §5.2)."""
