"""Agent and Fusion bounced (SIGTERM, SIGKILL, restarts) under a continuous writer."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from fusion_harness import FusionServer, disk_tree
from scenario import MakeAgent, converge, record, wait_pipe
from seq_writer import SequenceWriter

pytestmark = pytest.mark.fusion

# Deletions made while no agent watched reach Fusion at the first audit of the next term
# (docs/CONSISTENCY_DESIGN.md §7), so the scenarios audit often.
PIPE = {"audit_interval_sec": 2}


def _seed(root: Path) -> None:
    for d in ("a", "b/c"):
        (root / d).mkdir(parents=True)
        for i in range(20):
            (root / d / f"seed{i:03d}.txt").write_text(f"seed {d} {i}\n" * i)


def _leading(pipe: dict) -> bool:
    return bool(pipe["role"] == "leader" and pipe["progress"]["snapshot"]["done"])


def test_agent_bounced_with_sigterm_and_sigkill_under_writes(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, long_mode: bool
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    _seed(root)
    agent = make_agent(root, pipe=PIPE)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)

    cycles = 10 if long_mode else 2
    up_sec, down_sec = (5.0, 2.0) if long_mode else (1.5, 1.0)
    writer = SequenceWriter(root, rate=150)
    writer.start()
    restarts: list[float] = []
    try:
        for cycle in range(cycles):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                time.sleep(up_sec)
                code = agent.stop(sig)
                if sig == signal.SIGTERM:
                    assert code == 0, agent.log_tail()
                time.sleep(down_sec)
                started = time.monotonic()
                agent.start()
                wait_pipe(agent, _leading, 30, f"the restarted agent to lead (cycle {cycle})")
                restarts.append(time.monotonic() - started)
        time.sleep(up_sec)
    finally:
        counts = writer.stop()
    seconds = converge(fusion, root, [agent], timeout=30)
    assert [s["agent_id"] for s in fusion.sessions()] == [agent.agent_id]
    record(
        "agent bounce",
        restarts=len(restarts),
        writer_ops=sum(counts.values()),
        files_on_disk=len(disk_tree(root)),
        slowest_restart_to_leader_s=round(max(restarts), 2),
        converge_s=seconds,
    )


def test_fusion_bounced_under_writes(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, long_mode: bool
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    _seed(root)
    agent = make_agent(root, pipe=PIPE)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)

    bounces = 8 if long_mode else 2
    up_sec, down_sec = (6.0, 3.0) if long_mode else (2.0, 1.0)
    writer = SequenceWriter(root, rate=150)
    writer.start()
    try:
        for _ in range(bounces):
            time.sleep(up_sec)
            fusion.stop(signal.SIGKILL if _ % 2 else signal.SIGTERM)
            time.sleep(down_sec)
            fusion.start()
        time.sleep(up_sec)
    finally:
        counts = writer.stop()
    seconds = converge(fusion, root, [agent], timeout=45)
    assert [s["agent_id"] for s in fusion.sessions()] == [agent.agent_id]
    record(
        "fusion bounce",
        bounces=bounces,
        writer_ops=sum(counts.values()),
        files_on_disk=len(disk_tree(root)),
        converge_s=seconds,
    )
