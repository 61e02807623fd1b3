"""Registers the ``fs`` source driver with the agent (entry point ``fustor.agent.plugins``)."""

from __future__ import annotations

from fustor_agent_sdk import SourceDriver, hookimpl
from fustor_source_fs.driver import FsSource

__all__ = ["fustor_source_drivers"]


@hookimpl
def fustor_source_drivers() -> list[type[SourceDriver]]:
    return [FsSource]
