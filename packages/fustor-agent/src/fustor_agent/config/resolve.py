"""Turns raw entries (from either layout) into a validated :class:`AgentConfig`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from fustor_agent.config.errors import Problems, closest
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
from fustor_agent_sdk.config import collect_config_warnings

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
    earlier_pipe_files: dict[str, list[str]] = field(default_factory=dict)
    """Pipe id → the files of a 0.8.17 layout that defined it before the definition used."""
    unreadable: set[str] = field(default_factory=set)
    """Sections (``sources``...) already reported as not a list: pipes' references into them
    are not reported again as unknown ids."""


def _validate(
    model: type[_M], entry: RawEntry, problems: Problems, suffix: str = "", data: Any = None
) -> _M | None:
    payload = entry.data if data is None else data
    try:
        with collect_config_warnings() as warned:
            validated = model.model_validate(payload)
    except ValidationError as exc:
        problems.add_validation(entry.file, entry.location + suffix, exc, entry.rename, model)
        return None
    except Exception as exc:  # a driver's own check failed in another way: its bug
        problems.add(
            entry.file,
            entry.rename(entry.location + suffix),
            f"the configuration check of {model.__module__}.{model.__name__} failed "
            f"({type(exc).__name__}: {exc}); a bug in the driver, report it to its authors",
        )
        return None
    for message in warned:
        problems.warn(entry.file, entry.rename(entry.location + suffix), message)
    return validated


def _raw_ids(kind: str, raws: list[RawEntry], problems: Problems) -> dict[str, RawEntry]:
    """The first entry of each id, as written (valid or not); a repeated id is a problem.

    Read from the raw data so that a duplicate is reported along with the entries' other
    errors, and a reference to an invalid entry is not reported as a dangling one.
    """
    seen: dict[str, RawEntry] = {}
    for raw in raws:
        ident = raw.data.get("id") if isinstance(raw.data, dict) else None
        if not isinstance(ident, str) or not ident:
            continue  # the model reports a missing or wrong id
        if ident in seen:
            first = seen[ident]
            problems.add(
                raw.file,
                raw.rename(f"{raw.location}.id"),
                f"duplicate {kind} id {ident!r} (first defined at {first.file}: "
                f"{first.rename(first.location)})",
            )
        else:
            seen[ident] = raw
    return seen


def _parsed(
    model: type[_E], raws: list[RawEntry], firsts: dict[str, RawEntry], problems: Problems
) -> tuple[dict[str, tuple[RawEntry, _E]], list[tuple[RawEntry, _E]]]:
    """Every entry validated (so each reports its errors): the first of each id, and the
    repeats (whose driver configs are still checked, so all their errors come at once)."""
    out: dict[str, tuple[RawEntry, _E]] = {}
    repeats: list[tuple[RawEntry, _E]] = []
    for raw in raws:
        item = _validate(model, raw, problems)
        if item is not None:
            if firsts.get(item.id) is raw:
                out[item.id] = (raw, item)
            else:
                repeats.append((raw, item))
    return out, repeats


def _check_reference(
    raw: RawEntry,
    key: str,
    kind: str,
    known: dict[str, RawEntry],
    problems: Problems,
    unreadable: bool = False,
) -> bool:
    value = raw.data.get(key) if isinstance(raw.data, dict) else None
    if not isinstance(value, str) or value in known:
        return isinstance(value, str)
    if unreadable:
        return False  # the section's own error says it all
    match = closest(value, known)
    hint = f"; did you mean {match!r}?" if match else f" (defined: {', '.join(known) or 'none'})"
    problems.add(raw.file, raw.rename(f"{raw.location}.{key}"), f"unknown {kind} {value!r}{hint}")
    return False


def _specs(
    kind: Kind,
    parsed: tuple[
        Mapping[str, tuple[RawEntry, SourceEntry | SenderEntry]],
        Sequence[tuple[RawEntry, SourceEntry | SenderEntry]],
    ],
    drivers: Mapping[str, type[SourceDriver] | type[SenderDriver]],
    make: Callable[[str, str, Any, Any], _S],
    registry: DriverRegistry,
    problems: Problems,
) -> dict[str, _S]:
    """Each entry bound to the driver its ``type`` names, its ``config`` validated by that
    driver's model; an unknown type or an invalid config is a problem and no spec. Repeats
    of an id are checked alike, and give no spec."""
    specs: dict[str, _S] = {}
    firsts: Mapping[str, tuple[RawEntry, SourceEntry | SenderEntry]] = parsed[0]
    items: list[tuple[RawEntry, SourceEntry | SenderEntry]] = [*firsts.values(), *parsed[1]]
    for raw, entry in items:
        driver = drivers.get(entry.type)
        if driver is None:
            problems.add(
                raw.file,
                raw.rename(f"{raw.location}.type"),
                f"unknown {kind} type {entry.type!r} (available: {registry.names(kind)})",
            )
            continue
        cfg = _validate(driver.config_model, raw, problems, ".config", entry.config)
        if cfg is not None and firsts.get(entry.id, (None,))[0] is raw:
            specs[entry.id] = make(entry.id, entry.type, driver, cfg)
    return specs


def resolve(
    doc: RawDocument, registry: DriverRegistry, problems: Problems, path: Path | None
) -> AgentConfig:
    """Validate every entry and reference, collecting all problems; raise if there are any."""
    source_ids = _raw_ids("source", doc.sources, problems)
    sender_ids = _raw_ids("sender", doc.senders, problems)
    pipe_ids = _raw_ids("pipe", doc.pipes, problems)
    sources = _parsed(SourceEntry, doc.sources, source_ids, problems)
    senders = _parsed(SenderEntry, doc.senders, sender_ids, problems)
    pipes, _ = _parsed(PipeEntry, doc.pipes, pipe_ids, problems)

    source_specs = _specs("source", sources, registry.sources, SourceSpec, registry, problems)
    sender_specs = _specs("sender", senders, registry.senders, SenderSpec, registry, problems)

    # References are checked on every pipe as written, even one with other errors.
    dangling = set()
    for raw in doc.pipes:
        ok_source = _check_reference(
            raw, "source_id", "source", source_ids, problems, "sources" in doc.unreadable
        )
        ok_sender = _check_reference(
            raw, "sender_id", "sender", sender_ids, problems, "senders" in doc.unreadable
        )
        if not (ok_source and ok_sender):
            dangling.add(id(raw))
    pipe_entries = {pid: pipe for pid, (raw, pipe) in pipes.items() if id(raw) not in dangling}

    console = ConsoleSettings()
    if doc.console is not None:
        console = _validate(ConsoleSettings, doc.console, problems) or console

    logging_settings = LoggingSettings()
    if doc.logging is not None:
        logging_settings = _validate(LoggingSettings, doc.logging, problems) or logging_settings

    problems.raise_if_any()
    if not pipe_entries and path is not None:
        problems.warn(
            str(path), "", "no pipes: the agent would start and watch nothing (add pipes:)"
        )
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
        earlier_pipe_files={
            pid: tuple(files)
            for pid, files in doc.earlier_pipe_files.items()
            if pid in pipe_entries
        },
    )
