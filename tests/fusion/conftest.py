"""Fixtures that run the real Fusion 0.8.17 server on loopback for the tests in this folder."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentProcess
from fusion_harness import FusionServer, ensure_fusion_venv


@pytest.fixture(scope="session")
def fusion_exe() -> Path:
    """``fustor-fusion`` of Fusion 0.8.17, installed in its own cached venv on first use."""
    return ensure_fusion_venv()


@pytest.fixture
def fusion_options() -> dict:
    """Overrides of the §8 YAML for one test (``pipe_id``, ``view_id``, ``session_timeout``...)."""
    return {}


@pytest.fixture
def fusion(
    fusion_exe: Path, tmp_path_factory: pytest.TempPathFactory, fusion_options: dict
) -> Iterator[FusionServer]:
    """A fresh Fusion on free ports; stopped (by its PID) after the test, errors checked."""
    server = FusionServer(fusion_exe, tmp_path_factory.mktemp("fusion-home"), fusion_options)
    server.start()
    try:
        yield server
        if server.process is not None:
            # Every scenario must leave Fusion without handler errors (protocol §5.3, B9).
            assert server.errors() == 0, server.log_tail()
    finally:
        server.stop()


@pytest.fixture
def make_agent(fusion: FusionServer, tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """``make_agent(root, name="agent", **options)``: an agent process (not started) on
    ``fusion``; every one made is stopped (SIGTERM, by its PID) after the test."""
    agents: list[AgentProcess] = []

    def make(root: Path, name: str = "agent", **options: Any) -> AgentProcess:
        agent = AgentProcess(tmp_path / name, root, fusion, **options)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop(signal.SIGTERM)
