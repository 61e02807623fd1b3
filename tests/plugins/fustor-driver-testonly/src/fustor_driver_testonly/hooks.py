"""Registers the test-only drivers: ``static`` and ``counter`` sources, ``slowfile`` sender."""

from __future__ import annotations

from fustor_agent_sdk import SenderDriver, SourceDriver, hookimpl
from fustor_driver_testonly.senders import SlowFileSender
from fustor_driver_testonly.sources import CounterSource, StaticConfig, StaticSource

# StaticConfig and StaticSource stay importable from here (tests/sdk uses them).
__all__ = [
    "CounterSource",
    "SlowFileSender",
    "StaticConfig",
    "StaticSource",
    "fustor_sender_drivers",
    "fustor_source_drivers",
]


@hookimpl
def fustor_source_drivers() -> list[type[SourceDriver]]:
    return [StaticSource, CounterSource]


@hookimpl
def fustor_sender_drivers() -> list[type[SenderDriver]]:
    return [SlowFileSender]
