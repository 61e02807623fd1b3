"""Fixtures of the host tests: a driver registry and a temporary FUSTOR_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_helpers import entry_point

from fustor_agent.home import Home
from fustor_agent.plugins import DriverRegistry, load_registry


@pytest.fixture
def registry() -> DriverRegistry:
    """The test-only drivers and the echo sender, independent of the other plugins."""
    return load_registry(
        [
            entry_point("testonly", "fustor_driver_testonly.hooks"),
            entry_point("echo", "fustor_sender_echo.hooks"),
        ]
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("FUSTOR_HOME", str(root))
    return Home(root)
