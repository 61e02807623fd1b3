"""Turns raw entries (from either layout) into a validated :class:`AgentConfig`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from fustor_agent.config.errors import Problems
from fustor_agent.config.models import (
    AgentConfig,
    ConsoleSettings,
    LoggingSettings,
    PipeEntry,
    SenderEntry,
    SenderSpec,
    SourceEntry,
    SourceSpec,
)
from fustor_agent.plugins import DriverRegistry, Kind
from fustor_agent_sdk import SenderDriver, SourceDriver

__all__ = ["RawDocument", "RawEntry", "resolve"]

_M = TypeVar("_M", bound=BaseModel)
_E = TypeVar("_E", SourceEntry, SenderEntry, PipeEntry)
_S = TypeVar("_S", SourceSpec, SenderSpec)


def _same(loc: str) -> str:
    return loc


@dataclass(slots=True)
class RawEntry:
    """One item of ``sources``/``senders``/``pipes`` with where it was written."""

    file: str
    location: str
    data: Any
    rename: Callable[[str], str] = _same
    """Maps a location in our layout back to the user's layout (for legacy files)."""


@dataclass(slots=True)
class RawDocument:
    sources: list[RawEntry] = field(default_factory=list)
    senders: list[RawEntry] = field(default_factory=list)
    pipes: list[RawEntry] = field(default_factory=list)
    console: RawEntry | None = None
    logging: RawEntry | None = None
    agent_id: str | None = None


def _validate(
    model: type[_M], entry: RawEntry, problems: Problems, suffix: str = "", data: Any = None
) -> _M | None:
    payload = entry.data if data is None else data
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems.add_validation(entry.file, entry.location + suffix, exc, entry.rename)
        return None


def _unique(
    kind: str, entries: list[tuple[RawEntry, _E]], problems: Problems
) -> dict[str, tuple[RawEntry, _E]]:
    seen: dict[str, tuple[RawEntry, _E]] = {}
    for raw, item in entries:
        if item.id in seen:
            first = seen[item.id][0]
            problems.add(
                raw.file,
                raw.rename(f"{raw.location}.id"),
                f"duplicate {kind} id {item.id!r} (first defined at {first.file}: "
                f"{first.rename(first.location)})",
            )
        else:
            seen[item.id] = (raw, item)
    return seen


def _parsed(model: type[_E], raws: list[RawEntry], problems: Problems) -> list[tuple[RawEntry, _E]]:
    out = []
    for raw in raws:
        item = _validate(model, raw, problems)
        if item is not None:
            out.append((raw, item))
    return out


def _specs(
    kind: Kind,
    entries: Mapping[str, tuple[RawEntry, SourceEntry | SenderEntry]],
    drivers: Mapping[str, type[SourceDriver] | type[SenderDriver]],
    make: Callable[[str, str, Any, Any], _S],
    registry: DriverRegistry,
    problems: Problems,
) -> dict[str, _S]:
    """Each entry bound to the driver its ``type`` names, its ``config`` validated by that
    driver's model; an unknown type or an invalid config is a problem and no spec."""
    specs: dict[str, _S] = {}
    for raw, entry in entries.values():
        driver = drivers.get(entry.type)
        if driver is None:
            problems.add(
                raw.file,
                raw.rename(f"{raw.location}.type"),
                f"unknown {kind} type {entry.type!r} (available: {registry.names(kind)})",
            )
            continue
        cfg = _validate(driver.config_model, raw, problems, ".config", entry.config)
        if cfg is not None:
            specs[entry.id] = make(entry.id, entry.type, driver, cfg)
    return specs


def resolve(
    doc: RawDocument, registry: DriverRegistry, problems: Problems, path: Path | None
) -> AgentConfig:
    """Validate every entry and reference, collecting all problems; raise if there are any."""
    sources = _unique("source", _parsed(SourceEntry, doc.sources, problems), problems)
    senders = _unique("sender", _parsed(SenderEntry, doc.senders, problems), problems)
    pipes = _unique("pipe", _parsed(PipeEntry, doc.pipes, problems), problems)

    source_specs = _specs("source", sources, registry.sources, SourceSpec, registry, problems)
    sender_specs = _specs("sender", senders, registry.senders, SenderSpec, registry, problems)

    pipe_entries: dict[str, PipeEntry] = {}
    for raw, pipe in pipes.values():
        ok = True
        if pipe.source_id not in sources:
            problems.add(
                raw.file,
                raw.rename(f"{raw.location}.source_id"),
                f"unknown source {pipe.source_id!r}",
            )
            ok = False
        if pipe.sender_id not in senders:
            problems.add(
                raw.file,
                raw.rename(f"{raw.location}.sender_id"),
                f"unknown sender {pipe.sender_id!r}",
            )
            ok = False
        if ok:
            pipe_entries[pipe.id] = pipe

    console = ConsoleSettings()
    if doc.console is not None:
        console = _validate(ConsoleSettings, doc.console, problems) or console

    logging_settings = LoggingSettings()
    if doc.logging is not None:
        logging_settings = _validate(LoggingSettings, doc.logging, problems) or logging_settings

    problems.raise_if_any()
    return AgentConfig(
        sources=source_specs,
        senders=sender_specs,
        pipes=pipe_entries,
        console=console,
        logging=logging_settings,
        path=path,
        agent_id=doc.agent_id,
        warnings=tuple(problems.warnings),
        pipe_files={pid: raw.file for pid, (raw, _) in pipes.items() if pid in pipe_entries},
    )
