"""The SDK's opt-in pytest plugin: fixtures, a recording sender, a pipe runner, contract tests.

Enable it in a driver's test suite (it is never loaded automatically)::

    # conftest.py at the root of your tests
    pytest_plugins = ["fustor_agent_sdk.testing"]

Fixtures: ``fustor_plugin_manager`` (autoload off; register your hooks module yourself),
``fustor_home`` (a temporary ``FUSTOR_HOME``, set in the environment), ``pipe_context``,
``recording_sender`` and ``pipe_runner`` (a factory wiring a source to the recording sender).
Contract classes to subclass: :class:`SourceDriverContract`, :class:`SenderDriverContract`.

A test module may also import the contract classes and name this plugin in its own
``pytest_plugins``; the marker PYTEST_DONT_REWRITE tells pytest not to warn that the package
was imported before it could rewrite its asserts (every assert here carries its own message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pluggy
import pytest

from fustor_agent_sdk.sender import PipeContext, SenderDriver
from fustor_agent_sdk.source import SourceDriver
from fustor_agent_sdk.testing.aio import DeadlineExceeded, run_with_deadline
from fustor_agent_sdk.testing.checks import (
    check_audit_order,
    check_batch,
    check_path,
    check_row,
    check_sentinel_rows,
)
from fustor_agent_sdk.testing.memory import rows_in_memory
from fustor_agent_sdk.testing.plugins import (
    entry_point_hooks,
    make_plugin_manager,
    sender_drivers,
    source_drivers,
)
from fustor_agent_sdk.testing.recording import Recorded, RecordingSender
from fustor_agent_sdk.testing.runner import PipeRunner, split_batch
from fustor_agent_sdk.testing.sender_contract import SenderDriverContract, contract_traffic
from fustor_agent_sdk.testing.source_contract import SourceDriverContract, expected_paths

__all__ = [
    "DeadlineExceeded",
    "PipeRunner",
    "Recorded",
    "RecordingSender",
    "SenderDriverContract",
    "SourceDriverContract",
    "check_audit_order",
    "check_batch",
    "check_path",
    "check_row",
    "check_sentinel_rows",
    "contract_traffic",
    "entry_point_hooks",
    "expected_paths",
    "fustor_home",
    "fustor_plugin_manager",
    "make_plugin_manager",
    "pipe_context",
    "pipe_runner",
    "recording_sender",
    "rows_in_memory",
    "run_with_deadline",
    "sender_drivers",
    "source_drivers",
    "split_batch",
]


@pytest.fixture
def fustor_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager with the SDK's hookspecs and nothing registered (no entry points)."""
    return make_plugin_manager()


@pytest.fixture
def fustor_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A fresh ``FUSTOR_HOME`` directory, exported in the environment for the test.

    Its path is kept short: the agent puts a unix socket in it (at most 107 bytes).
    """
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("FUSTOR_HOME", str(home))
    yield home


@pytest.fixture
def pipe_context(tmp_path: Path) -> PipeContext:
    """What a sender under test knows about its pipe; ``state_dir`` is a temporary directory."""
    state = tmp_path / "pipe-state"
    state.mkdir()
    return PipeContext(agent_id="test-agent", pipe_id="test-pipe", source_uri="", state_dir=state)


@pytest.fixture
def recording_sender(pipe_context: PipeContext) -> RecordingSender:
    return RecordingSender(context=pipe_context)


@pytest.fixture
def pipe_runner(
    recording_sender: RecordingSender,
) -> Callable[..., PipeRunner]:
    """``pipe_runner(source, sender=None)``: a :class:`PipeRunner` (recording sender by default)."""

    def make(source: SourceDriver, sender: SenderDriver | None = None) -> PipeRunner:
        return PipeRunner(source, sender or recording_sender)

    return make
