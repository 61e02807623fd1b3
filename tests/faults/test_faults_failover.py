"""Failover under load: two agents on one pipe, the leader killed mid-snapshot and mid-audit."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from agent_harness import AgentProcess
from fusion_harness import FusionServer, disk_tree, wait_until
from scenario import MakeAgent, converge, pipe_status, record
from seq_writer import SequenceWriter, burst

pytestmark = [pytest.mark.fusion, pytest.mark.slow]

# Small requests make the snapshot and the audit last long enough to be interrupted.
SENDER = {"max_batch_size": 50, "max_rows_per_event": 50}
PIPE = {"audit_interval_sec": 2}


def _pipe_or_none(agent: AgentProcess) -> dict | None:
    try:
        return pipe_status(agent)
    except Exception:
        return None


def _kill_leader_in(phase: str, agents: list[AgentProcess], timeout: float) -> AgentProcess:
    """SIGKILL whichever agent leads as soon as it is in ``phase`` with rows sent, while the
    other one holds a session as follower."""
    found: list[AgentProcess] = []

    def leader_in_phase() -> bool:
        pipes = {id(a): _pipe_or_none(a) for a in agents}
        if any(p is None or p["role"] is None for p in pipes.values()):
            return False
        for agent in agents:
            pipe = pipes[id(agent)]
            assert pipe is not None
            progress = pipe["progress"][phase]
            if pipe["role"] == "leader" and pipe["activity"] == phase and progress["rows"] > 0:
                agent.stop(signal.SIGKILL)
                found.append(agent)
                return True
        return False

    wait_until(leader_in_phase, timeout, 0.01, f"a leader in its {phase}")
    return found[0]


def _promoted(fusion: FusionServer, agent: AgentProcess) -> bool:
    return [s["agent_id"] for s in fusion.sessions() if s["role"] == "leader"] == [agent.agent_id]


def test_leader_killed_mid_snapshot_and_mid_audit(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, long_mode: bool
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    burst(root, dirs=40 if long_mode else 20, per_dir=500)
    agents = [make_agent(root, name, pipe=PIPE, sender_params=SENDER) for name in ("one", "two")]
    for agent in agents:
        agent.start()
    writer = SequenceWriter(root, rate=100)
    writer.start()
    kills: list[str] = []
    failovers: list[float] = []
    try:
        for round_ in range(3 if long_mode else 1):
            for phase in ("snapshot", "audit"):
                killed = _kill_leader_in(phase, agents, timeout=60)
                kills.append(phase)
                survivor = next(a for a in agents if a is not killed)
                started = time.monotonic()
                wait_until(lambda s=survivor: _promoted(fusion, s), 20, 0.1, "the promotion")
                failovers.append(time.monotonic() - started)
                # The killed agent comes back (as follower) for the next kill.
                killed.start()
                wait_until(lambda k=killed: _pipe_or_none(k), 20, 0.1, f"restart {round_}")
    finally:
        counts = writer.stop()
    seconds = converge(fusion, root, agents, timeout=60)
    roles = sorted(s["role"] for s in fusion.sessions())
    assert roles == ["follower", "leader"], fusion.sessions()
    record(
        "failover under load",
        kills=",".join(kills),
        files_on_disk=len(disk_tree(root)),
        writer_ops=sum(counts.values()),
        slowest_failover_s=round(max(failovers), 1),
        converge_s=seconds,
    )
