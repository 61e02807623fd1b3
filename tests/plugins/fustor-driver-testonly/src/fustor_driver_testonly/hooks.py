"""Registers the ``static`` source: it snapshots a fixed list of paths from its config."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import BaseModel, ConfigDict

from fustor_agent_sdk import Phase, SourceConfig, SourceDriver, hookimpl
from fustor_core import Batch, EventType, MessageSource


class StaticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[str] = []


class StaticConfig(SourceConfig):
    driver_params: StaticParams = StaticParams()


class StaticSource(SourceDriver):
    name = "static"
    config_model = StaticConfig
    phases = frozenset({Phase.SNAPSHOT})

    async def snapshot(self) -> AsyncIterator[Batch]:
        assert isinstance(self.config, StaticConfig)
        rows = [
            {"path": p, "size": 0, "modified_time": 1.0, "created_time": 1.0, "is_directory": False}
            for p in self.config.driver_params.paths
        ]
        if rows:
            yield Batch.of(MessageSource.SNAPSHOT, EventType.UPDATE, rows)


@hookimpl
def fustor_source_drivers() -> list[type[SourceDriver]]:
    return [StaticSource]
