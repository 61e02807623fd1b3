"""The kit's fixtures and pipe runner behave as documented in docs/driver_design.md §10."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest
from fustor_driver_testonly import hooks as testonly_hooks
from fustor_driver_testonly.hooks import StaticConfig, StaticSource

from fustor_agent_sdk import testing
from fustor_agent_sdk.testing import (
    PipeRunner,
    RecordingSender,
    entry_point_hooks,
    source_drivers,
    split_batch,
)
from fustor_core import (
    Batch,
    Event,
    EventType,
    MessageSource,
    PhaseSignal,
    Role,
    SendResult,
    SendStatus,
    SessionLostError,
)

pytest_plugins = ["fustor_agent_sdk.testing"]

# tests/conftest.py has a fixture of the same name (without the environment variable); the
# kit's own is the one under test here.
fustor_home = testing.fustor_home


def _static(*paths: str) -> StaticSource:
    return StaticSource("s", StaticConfig(uri="/s", driver_params={"paths": list(paths)}))


def test_plugin_manager_loads_nothing_until_told(
    fustor_plugin_manager: pluggy.PluginManager,
) -> None:
    # The test-only plugin is installed with an entry point, yet not loaded here.
    assert entry_point_hooks("testonly") is testonly_hooks
    assert source_drivers(fustor_plugin_manager) == {}
    fustor_plugin_manager.register(testonly_hooks)
    assert source_drivers(fustor_plugin_manager)["static"] is StaticSource


def test_fustor_home_is_exported(fustor_home: Path) -> None:
    assert fustor_home.is_dir() and os.environ["FUSTOR_HOME"] == str(fustor_home)
    assert len(str(fustor_home / "agent.sock")) < 108


def test_unknown_entry_point_names_the_installed_ones() -> None:
    with pytest.raises(LookupError, match="testonly"):
        entry_point_hooks("no-such-plugin")


def test_pipe_runner_sends_snapshot_then_its_end(
    pipe_runner: Callable[..., PipeRunner], recording_sender: RecordingSender
) -> None:
    runner = pipe_runner(_static("/", "/a", "/b"))
    assert asyncio.run(runner.run_leader()) == 3
    assert recording_sender.sequence() == ["snapshot", "snapshot_end"]
    assert recording_sender.paths() == {"/", "/a", "/b"}


def test_pipe_runner_resends_on_retry_and_cuts_batches(
    pipe_runner: Callable[..., PipeRunner], recording_sender: RecordingSender
) -> None:
    recording_sender.max_batch_size = 2
    recording_sender.results = [SendResult(SendStatus.RETRY), SendResult(SendStatus.RETRY)]
    runner = pipe_runner(_static("/", "/a", "/b", "/c", "/d"))
    asyncio.run(runner.run_snapshot())
    assert [b.row_count for b in recording_sender.batches] == [2, 2, 1]
    assert [r["path"] for r in recording_sender.rows()] == ["/", "/a", "/b", "/c", "/d"]


def test_pipe_runner_raises_on_session_loss(
    pipe_runner: Callable[..., PipeRunner], recording_sender: RecordingSender
) -> None:
    recording_sender.session_lost = True
    with pytest.raises(SessionLostError):
        asyncio.run(pipe_runner(_static("/")).run_snapshot())


def test_pipe_runner_rejects_rows_that_break_the_contract(
    pipe_runner: Callable[..., PipeRunner],
) -> None:
    with pytest.raises(AssertionError, match="must start with '/'"):
        asyncio.run(pipe_runner(_static("relative")).run_snapshot())


def test_recording_sender_refuses_empty_events() -> None:
    empty = Batch(MessageSource.REALTIME, [Event(EventType.DELETE, [], MessageSource.REALTIME)])
    with pytest.raises(AssertionError, match="empty rows"):
        asyncio.run(RecordingSender().send(empty))


def test_recording_sender_scripts_role_and_commands() -> None:
    sender = RecordingSender()
    sender.role = Role.FOLLOWER

    async def scenario() -> tuple[Role, Role, int]:
        info = await sender.open_session()
        first = await sender.heartbeat(can_realtime=True)
        return info.role, first.role, len(first.commands)

    assert asyncio.run(scenario()) == (Role.FOLLOWER, Role.FOLLOWER, 0)
    asyncio.run(sender.signal(PhaseSignal.AUDIT_START))
    assert sender.signals == [PhaseSignal.AUDIT_START]


def test_split_batch_keeps_order_and_event_types() -> None:
    batch = Batch(
        MessageSource.REALTIME,
        [
            Event(EventType.UPDATE, [{"path": f"/{i}"} for i in range(3)], MessageSource.REALTIME),
            Event(EventType.DELETE, [{"path": "/x"}, {"path": "/y"}], MessageSource.REALTIME),
        ],
    )
    parts = list(split_batch(batch, 2))
    assert [[(e.event_type.value, len(e.rows)) for e in p.events] for p in parts] == [
        [("update", 2)],
        [("update", 1), ("delete", 1)],
        [("delete", 1)],
    ]
    assert RecordingSender.flatten(parts) == RecordingSender.flatten([batch])
