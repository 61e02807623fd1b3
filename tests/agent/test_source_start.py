"""A source that cannot start yet (a share mounted after the agent) is retried, and said
once as a warning, not as an error at every retry (helper 29: ~120 ERROR lines an hour)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fustor_agent.config import SourceSpec
from fustor_agent.runtime import source_runtime
from fustor_agent.runtime.source_runtime import SourceRuntime
from fustor_agent_sdk import Phase, SourceConfig, SourceDriver
from fustor_core import DriverError


def _runtime(failures: list[Exception]) -> SourceRuntime:
    class Failing(SourceDriver):
        name = "failing"
        phases = frozenset({Phase.SNAPSHOT})

        async def start(self) -> None:
            if failures:
                raise failures.pop(0)

    return SourceRuntime(SourceSpec("s", "failing", Failing, SourceConfig(uri="/x")))


def _start_lines(caplog: pytest.LogCaptureFixture, failures: list[Exception]) -> list[tuple]:
    async def main() -> None:
        runtime = _runtime(failures)
        runtime.launch()
        await asyncio.wait_for(runtime.wait_started(), 30)

    with caplog.at_level(logging.DEBUG, logger=source_runtime.__name__):
        asyncio.run(main())
    return [
        (r.levelname, r.getMessage().split(" (")[1].split(")")[0])
        for r in caplog.records
        if "start failed" in r.getMessage()
    ]


def test_a_retriable_failure_is_a_warning_said_again_only_when_it_changes(caplog):
    missing = DriverError("cannot open root /x: gone", retriable=True)
    other = DriverError("cannot open root /x: denied", retriable=True)
    lines = _start_lines(caplog, [missing, missing, missing, other])
    assert lines == [
        ("WARNING", "cannot open root /x: gone"),
        ("DEBUG", "cannot open root /x: gone"),
        ("DEBUG", "cannot open root /x: gone"),
        ("WARNING", "cannot open root /x: denied"),
    ]


def test_a_failure_that_will_not_pass_by_itself_is_an_error(caplog):
    lines = _start_lines(caplog, [DriverError("bad backend", retriable=False)])
    assert lines == [("ERROR", "bad backend")]
