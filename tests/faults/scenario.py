"""The check every fault scenario ends with, agent status probes, and the figures they report."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agent_harness import AgentProcess
from fusion_harness import FusionServer, disk_tree, wait_until

from fustor_agent import control
from fustor_agent.home import Home

__all__ = [
    "FIGURES",
    "MakeAgent",
    "agent_status",
    "assert_alive",
    "converge",
    "pipe_status",
    "record",
    "wait_pipe",
    "write_figures",
]

logger = logging.getLogger(__name__)

MakeAgent = Callable[..., AgentProcess]
"""The ``make_agent`` fixture: ``make_agent(root, name="agent", endpoint=None, **options)``."""

FIGURES: list[dict[str, Any]] = []
"""One entry per scenario run; printed at the end of the session (and appended as JSON lines
to ``$FUSTOR_FAULTS_FIGURES`` when set)."""


def record(scenario: str, **figures: Any) -> None:
    """Keep a scenario's figures; the ``make_agent`` fixture adds the agents' peak memory."""
    entry = {"scenario": scenario, **figures}
    FIGURES.append(entry)
    logger.info("figures: %s", entry)


def write_figures() -> None:
    """Append every entry as JSON lines to ``$FUSTOR_FAULTS_FIGURES`` (when set)."""
    target = os.environ.get("FUSTOR_FAULTS_FIGURES")
    if target and FIGURES:
        with open(target, "a") as f:
            for entry in FIGURES:
                f.write(json.dumps(entry, default=str) + "\n")


def agent_status(agent: AgentProcess, timeout: float = 5.0) -> dict[str, Any]:
    """The running agent's ``status()``, asked over its control socket."""
    return control.request(Home(agent.home).control_socket, {"cmd": "status"}, timeout=timeout)


def pipe_status(agent: AgentProcess) -> dict[str, Any]:
    [pipe] = agent_status(agent)["pipes"]
    return dict(pipe)


def wait_pipe(
    agent: AgentProcess,
    predicate: Callable[[dict[str, Any]], Any],
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> dict[str, Any]:
    """Poll the agent's pipe status until ``predicate(pipe)``; the matching status."""
    seen: list[dict[str, Any]] = []

    def check() -> bool:
        try:
            pipe = pipe_status(agent)
        except Exception:  # not up yet, or between two lives
            return False
        seen[:] = [pipe]
        return bool(predicate(pipe))

    wait_until(check, timeout, interval, what)
    return seen[0]


def assert_alive(agent: AgentProcess) -> None:
    process = agent.process
    assert process is not None, "the agent was not started"
    code = process.poll()
    assert code is None, f"the agent exited with {code}:\n{agent.log_tail()}"


def converge(
    fusion: FusionServer,
    root: Path,
    agents: Iterable[AgentProcess] = (),
    timeout: float = 30.0,
) -> float:
    """The end of every scenario: Fusion's tree equals the disk (paths, types, sizes, file
    mtimes), Fusion counted no handler error, and every given agent still runs.

    Returns the seconds it took to converge, counted from this call.
    """
    started = time.monotonic()
    agents = list(agents)
    try:
        fusion.wait_tree(disk_tree(root), timeout=timeout)
    except AssertionError as exc:
        tails = "\n".join(a.log_tail(30) for a in agents)
        raise AssertionError(f"{exc}\n--- agent logs ---\n{tails}") from None
    elapsed = time.monotonic() - started
    stats = fusion.pipe_stats()
    assert int(stats["errors"]) == 0, f"Fusion handler errors: {stats}\n{fusion.log_tail()}"
    for agent in agents:
        assert_alive(agent)
    return round(elapsed, 2)
