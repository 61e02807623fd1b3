"""Shared event, session and error model of fustor-agent (no I/O)."""

from __future__ import annotations

from importlib import metadata as _metadata

from fustor_core.errors import ConfigError, DriverError, FustorError, PluginError, SessionLostError
from fustor_core.events import Batch, Event, EventType, MessageSource, Row, split_batch
from fustor_core.paths import ROOT, PathEscapeError, confine, to_relative, unwire_path, wire_path
from fustor_core.session import (
    SEND_OK,
    Command,
    HeartbeatResult,
    PhaseSignal,
    Role,
    ScanCommand,
    SendResult,
    SendStatus,
    SessionInfo,
)

__version__ = _metadata.version("fustor-core")
"""From the installed distribution: pyproject.toml states the version once."""

__all__ = [
    "ROOT",
    "SEND_OK",
    "Batch",
    "Command",
    "ConfigError",
    "DriverError",
    "Event",
    "EventType",
    "FustorError",
    "HeartbeatResult",
    "MessageSource",
    "PathEscapeError",
    "PhaseSignal",
    "PluginError",
    "Role",
    "Row",
    "ScanCommand",
    "SendResult",
    "SendStatus",
    "SessionInfo",
    "SessionLostError",
    "confine",
    "split_batch",
    "to_relative",
    "unwire_path",
    "wire_path",
]
