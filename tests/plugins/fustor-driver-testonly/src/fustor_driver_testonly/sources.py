"""Test-only sources: ``static`` (a fixed snapshot) and ``counter`` (numbered realtime rows)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict

from fustor_agent_sdk import (
    Histogram,
    MetricKind,
    MetricSpec,
    Phase,
    SourceConfig,
    SourceDriver,
)
from fustor_core import Batch, EventType, MessageSource

__all__ = ["CounterSource", "StaticSource"]


class StaticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[str] = []
    block_sec: float = 0.0
    """A bug on purpose: ``snapshot()`` blocks the event loop this long (``time.sleep``)."""


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
        if self.config.driver_params.block_sec:
            time.sleep(self.config.driver_params.block_sec)  # noqa: ASYNC251 - on purpose
        if rows:
            yield Batch.of(MessageSource.SNAPSHOT, EventType.UPDATE, rows)


class CounterParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = 100
    """How many realtime rows (``/f0``, ``/f1``, ...) to produce, then go quiet."""
    per_batch: int = 10
    interval_sec: float = 0.0
    """Pause between batches."""


class CounterConfig(SourceConfig):
    driver_params: CounterParams = CounterParams()


class CounterSource(SourceDriver):
    """Produces ``count`` numbered realtime rows as fast as asked, then waits to be cancelled.

    Declares its own metrics, as a third-party driver would: ``rows_produced`` is exported as
    the counter ``fustor_agent_source_produced_rows_total``, ``batch_rows`` as the histogram
    ``fustor_agent_source_batch_rows``.
    """

    name = "counter"
    config_model = CounterConfig
    phases = frozenset({Phase.REALTIME})
    metrics = (
        MetricSpec("rows_produced", MetricKind.COUNTER, "Rows the counter source produced.",
                   name="produced_rows"),
        MetricSpec("batch_rows", MetricKind.HISTOGRAM, "Rows per batch the source produced.",
                   name="batch_rows"),
    )  # fmt: skip

    def __init__(self, source_id: str, config: SourceConfig) -> None:
        super().__init__(source_id, config)
        self.produced = 0
        self.batch_sizes = Histogram((1, 10, 100))

    def status(self) -> dict[str, Any]:
        return {
            "rows_produced": self.produced,
            "batch_rows": self.batch_sizes.snapshot(),
            "note": "not a metric",
        }

    async def realtime(self) -> AsyncIterator[Batch]:
        assert isinstance(self.config, CounterConfig)
        params = self.config.driver_params
        produced = self.produced = 0
        while produced < params.count:
            n = min(params.per_batch, params.count - produced)
            rows = [
                {
                    "path": f"/f{i}",
                    "size": i,
                    "modified_time": 1.0,
                    "created_time": 1.0,
                    "is_directory": False,
                }
                for i in range(produced, produced + n)
            ]
            produced += n
            self.produced = produced
            self.batch_sizes.observe(n)
            yield Batch.of(MessageSource.REALTIME, EventType.INSERT, rows)
            await asyncio.sleep(params.interval_sec)
        await asyncio.Event().wait()
