"""Fixtures of the fault, load and bad-input suite: real Fusion, agents as processes, figures."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

# The real-Fusion harness lives in tests/fusion and imports itself by its bare module name.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fusion"))

from agent_harness import AgentProcess
from fusion_harness import FusionServer, ensure_fusion_venv
from scenario import FIGURES, MakeAgent, write_figures
from system_faults import RssSampler


@pytest.fixture(scope="session")
def fusion_exe() -> Path:
    return ensure_fusion_venv()


@pytest.fixture
def long_mode(request: pytest.FixtureRequest) -> bool:
    """``pytest --long``: the soak version of each scenario."""
    return bool(request.config.getoption("--long"))


@pytest.fixture
def fusion_options() -> dict[str, Any]:
    # Short sessions: a killed agent's session expires within seconds (failover, restarts).
    return {"session_timeout": 4}


@pytest.fixture
def fusion(
    fusion_exe: Path, tmp_path_factory: pytest.TempPathFactory, fusion_options: dict[str, Any]
) -> Iterator[FusionServer]:
    server = FusionServer(fusion_exe, tmp_path_factory.mktemp("fusion-home"), fusion_options)
    server.start()
    recorded = len(FIGURES)
    try:
        yield server
        if server.process is not None and len(FIGURES) > recorded:
            # Events Fusion applied since its last start (a bounced Fusion counts afresh).
            events = server.pipe_stats().get("events_processed")
            for entry in FIGURES[recorded:]:
                entry.setdefault("fusion_events", events)
    finally:
        server.stop()


@pytest.fixture
def make_agent(fusion: FusionServer, tmp_path: Path) -> Iterator[MakeAgent]:
    """Agents (fs → fusion) as processes; each is stopped (by its PID) after the test."""
    agents: list[AgentProcess] = []
    recorded = len(FIGURES)
    sampler = RssSampler(lambda: [a.process.pid for a in agents if a.process is not None])
    sampler.start()

    def make(
        root: Path, name: str = "agent", endpoint: str | None = None, **options: Any
    ) -> AgentProcess:
        # ``endpoint``: reach Fusion through something else (a fault proxy, a fake server).
        target: Any = fusion if endpoint is None else SimpleNamespace(endpoint=endpoint)
        agent = AgentProcess(tmp_path / name, root, target, **options)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        if agent.process is not None and agent.process.poll() is None:
            # A SIGSTOPped agent must be woken up to see its SIGTERM.
            agent.process.send_signal(signal.SIGCONT)
        try:
            agent.stop(signal.SIGTERM)
        except AssertionError:
            pass  # stop() already killed it; the test's own asserts tell what went wrong
    peak = sampler.stop()
    for entry in FIGURES[recorded:]:
        entry.setdefault("agent_peak_rss_mb", peak)


def pytest_sessionfinish() -> None:
    write_figures()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault suite figures")
    for entry in FIGURES:
        rest = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "scenario")
        terminalreporter.write_line(f"{entry['scenario']}: {rest}")
