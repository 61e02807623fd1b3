"""The agent configuration: models, loading (both layouts) and validation."""

from __future__ import annotations

from fustor_agent.config.errors import ConfigErrors
from fustor_agent.config.loader import embedded_config, load_config, no_configuration
from fustor_agent.config.models import (
    AgentConfig,
    ConsoleSettings,
    LoggingSettings,
    PipeEntry,
    SenderSpec,
    SourceSpec,
)

__all__ = [
    "AgentConfig",
    "ConfigErrors",
    "ConsoleSettings",
    "LoggingSettings",
    "PipeEntry",
    "SenderSpec",
    "SourceSpec",
    "embedded_config",
    "load_config",
    "no_configuration",
]
