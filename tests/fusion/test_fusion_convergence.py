"""Convergence against the real Fusion 0.8.17: random everyday sequences, and deletions made
while the agent was down.

Bound for the random sequences (docs/CONSISTENCY_DESIGN.md section 8): a path deleted, its delete
sent, and back with an older mtime is restored by the first audit after an audit end at least
``TTL`` + 5 s after the delete, so the tree equals the disk within ``TTL + 5 + 2 * AUDIT`` s
plus the walks' time (``BOUND``) after the last change. Everything else converges within the
delete settle window and a realtime round trip.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentProcess
from fusion_harness import FusionServer, disk_tree, wait_until
from hypothesis import HealthCheck, given, settings

from everyday_ops import OPS, apply, seed

pytestmark = pytest.mark.fusion

TTL = 3.0
AUDIT = 2.0
BOUND = TTL + 5.0 + 2 * AUDIT + 4.0


@pytest.fixture
def fusion_options() -> dict:
    return {"tombstone_ttl": TTL, "audit_interval": 3600.0}


@pytest.fixture
def running(fusion: FusionServer, tmp_path: Path) -> Iterator[tuple[Path, AgentProcess]]:
    root = tmp_path / "w"
    root.mkdir()
    agent = AgentProcess(
        tmp_path / "agent",
        root,
        fusion,
        pipe={"audit_interval_sec": AUDIT},
        source_params={"tombstone_ttl_sec": TTL},
    )
    agent.start()
    try:
        fusion.wait_tree(disk_tree(root), timeout=20)
        yield root, agent
    finally:
        agent.stop()


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_random_everyday_sequences_converge_within_the_bound(
    fusion: FusionServer, running: tuple[Path, AgentProcess], ops: list[Any]
) -> None:
    root, _agent = running
    base = root / f"ex{time.monotonic_ns()}"
    seed(base)
    fusion.wait_tree(disk_tree(root), timeout=10)
    for n, (op, src, dst, pause) in enumerate(ops):
        apply(base, op, src, dst, n)
        time.sleep(pause)
    fusion.wait_tree(disk_tree(root), timeout=BOUND)


@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGTERM], ids=["crash", "stop"])
@pytest.mark.parametrize("fusion_options", [{"tombstone_ttl": 3600.0, "audit_interval": 3600.0}])
def test_deletions_made_while_the_agent_was_down_reach_fusion_after_its_snapshot(
    fusion: FusionServer, tmp_path: Path, fault: int
) -> None:
    """Audits every hour (Fusion's and the pipe's): only the audit right after the new
    snapshot can remove what was deleted meanwhile. Target: converged within 10 s of the
    restarted agent's new session on a 1,000-file tree (the process start-up itself is not
    counted: on a loaded machine it alone can take seconds)."""
    root = tmp_path / "w"
    for d in range(10):
        for f in range(100):
            (root / f"d{d}").mkdir(parents=True, exist_ok=True)
            (root / f"d{d}" / f"f{f}.txt").write_bytes(b"x" * (f % 7))
    agent = AgentProcess(tmp_path / "agent", root, fusion, pipe={"audit_interval_sec": 3600})
    agent.start()
    try:
        fusion.wait_tree(disk_tree(root), timeout=30)
        agent.stop(fault)
        for d in range(0, 10, 2):
            for f in range(0, 100, 3):
                (root / f"d{d}" / f"f{f}.txt").unlink()
        shutil.rmtree(root / "d9")
        (root / "new").mkdir()
        (root / "new" / "n.txt").write_bytes(b"new")
        before = fusion.sessions()
        agent.start()
        wait_until(lambda: fusion.sessions() not in ([], before), 60, 0.05, "a new session")
        started = time.monotonic()
        fusion.wait_tree(disk_tree(root), timeout=10.0)
        assert time.monotonic() - started <= 10.0
    finally:
        agent.stop()
