"""The fustor-agent plugin contract: markers, hookspecs, driver base classes."""

from __future__ import annotations

from importlib import metadata as _metadata

import pluggy

from fustor_agent_sdk.config import SenderConfig, SourceConfig
from fustor_agent_sdk.metrics import Histogram, MetricKind, MetricSpec, MetricUnit
from fustor_agent_sdk.sender import PipeContext, SenderDriver
from fustor_agent_sdk.source import Phase, SourceDriver

PROJECT_NAME = "fustor"
"""The pluggy project name of the agent."""

ENTRY_POINT_GROUP = "fustor.agent.plugins"
"""Every driver package registers exactly one hooks module under this entry-point group."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__version__ = _metadata.version("fustor-agent-sdk")
"""From the installed distribution: pyproject.toml states the version once."""

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "Histogram",
    "MetricKind",
    "MetricSpec",
    "MetricUnit",
    "Phase",
    "PipeContext",
    "SenderConfig",
    "SenderDriver",
    "SourceConfig",
    "SourceDriver",
    "hookimpl",
    "hookspec",
]
