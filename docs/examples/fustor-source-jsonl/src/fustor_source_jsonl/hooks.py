"""The module the ``fustor.agent.plugins`` entry point names: it registers the jsonl source."""

from __future__ import annotations

from fustor_agent_sdk import SourceDriver, hookimpl
from fustor_source_jsonl.driver import JsonlSource

__all__ = ["fustor_source_drivers"]


@hookimpl
def fustor_source_drivers() -> list[type[SourceDriver]]:
    return [JsonlSource]
