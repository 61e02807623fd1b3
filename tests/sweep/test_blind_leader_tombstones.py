"""A path deleted and restored with an old mtime where the watcher is blind is back in Fusion.

On a network file system an agent may never see a change another client makes
(docs/CONSISTENCY_DESIGN.md section 8). When an agent's realtime delete left a tombstone in
Fusion and the path came back with an older mtime, Fusion drops every upsert until an audit end
purges the tombstone (protocol §5.4, §5.5). The fusion sender clears the tombstones of its own
deletes when it sends the path again (B15), so what matters is that the agent that sent the
delete sends the path again: a follower that saw both (the leader blind to them), or an agent
that saw the delete but whose audit, not its watcher, found the path back. Here a blind agent
watches a bindfs mount (changes to the backing tree are not seen) and a seeing one the
backing tree itself.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import AgentProcess, agent_executable
from fusion_harness import FusionServer, disk_tree, ensure_fusion_venv, wait_until
from sweep_helpers import Share, age_tree, source_status

pytestmark = pytest.mark.fusion

TTL = 4.0  # Fusion's tombstone_ttl_seconds: longer than the leader needs to list d once
AUDIT = 2.0


@pytest.fixture
def fusion(tmp_path: Path) -> Iterator[FusionServer]:
    server = FusionServer(ensure_fusion_venv(), tmp_path / "fusion", {"tombstone_ttl": TTL})
    server.start()
    try:
        yield server
        assert server.errors() == 0, server.log_tail()
    finally:
        server.stop()


def test_a_follower_restores_at_once_what_the_blind_leader_cannot_see(
    fusion: FusionServer, share: Share, tmp_path: Path
) -> None:
    (share.backing / "d").mkdir()
    for name in ("g", "h"):
        (share.backing / "d" / name).write_text(f"{name}\n")
    age_tree(share.backing)
    saved = tmp_path / "saved-g"  # outside the tree, on the same file system
    shutil.copy2(share.backing / "d" / "g", saved)
    params = {"tombstone_ttl_sec": TTL, "full_sweep_interval_sec": 0}
    leader = AgentProcess(
        tmp_path / "leader",
        share.mnt,
        fusion,
        pipe={"audit_interval_sec": AUDIT},
        source_params=params,
    )
    follower = AgentProcess(
        tmp_path / "follower",
        share.backing,
        fusion,
        pipe={"audit_interval_sec": AUDIT},
        source_params=params,
    )
    leader.start()
    started = time.monotonic()
    try:
        fusion.wait_tree(disk_tree(share.backing), timeout=30)
        follower.start()
        wait_until(lambda: len(fusion.sessions()) == 2, 20, 0.2, "the follower's session")
        # Past the leader's one full listing after TTL + 5 s (which restores tombstones from
        # before its start): from here on only the follower's re-send can restore g.
        time.sleep(max(0.0, started + TTL + 5 + 2 * AUDIT + 3 - time.monotonic()))
        before = os.stat(share.backing / "d")
        (share.backing / "d" / "g").unlink()  # seen by the follower only
        # The leader's audits skip d (its mtime put back), so only the follower's delete, with
        # its tombstone, takes g out of Fusion.
        os.utime(share.backing / "d", ns=(before.st_atime_ns, before.st_mtime_ns))
        fusion.wait_tree(disk_tree(share.backing), timeout=10)
        # Gone from Fusion may be the leader's audit (it may list d before its mtime is put
        # back); the follower's delete, which leaves the tombstone, must have gone out too.
        wait_until(
            lambda: source_status(agent_executable(), follower.home).get("tracked_deletes") == 1,
            10,
            0.1,
            "the follower's delete",
        )
        # Back from a backup a year old, moved in whole (no moment with a newer mtime), and the
        # directory's mtime put back, as rsync -a leaves it.
        old = time.time() - 365 * 86400
        os.utime(saved, (old, old))
        os.rename(saved, share.backing / "d" / "g")
        os.utime(share.backing / "d", (old, old))
        # The follower's row, sent with its tombstone cleared: the leader's audits skip d.
        fusion.wait_tree(disk_tree(share.backing), timeout=6)
    finally:
        assert follower.stop() == 0, follower.log_tail()
        assert leader.stop() == 0, leader.log_tail()


@pytest.mark.parametrize("ttl", [3600.0], ids=["fusion-default-ttl"])
def test_a_path_only_the_audit_finds_back_is_restored_after_that_audit(
    share: Share, tmp_path: Path, ttl: float
) -> None:
    """The agent saw the delete (through the mount) but not the restore (another client):
    its audit finds the path, Fusion drops that row for the tombstone, and realtime sends it
    again at once, tombstone cleared. It used to stay missing for the TTL, an hour here."""
    server = FusionServer(ensure_fusion_venv(), tmp_path / "fusion", {"tombstone_ttl": ttl})
    server.start()
    (share.backing / "d").mkdir()
    for name in ("g", "h"):
        (share.backing / "d" / name).write_text(f"{name}\n")
    age_tree(share.backing)
    saved = tmp_path / "saved-g"
    shutil.copy2(share.backing / "d" / "g", saved)
    agent = AgentProcess(
        tmp_path / "agent",
        share.mnt,
        server,
        pipe={"audit_interval_sec": AUDIT},
        source_params={"full_sweep_interval_sec": 0},
    )
    agent.start()
    try:
        server.wait_tree(disk_tree(share.backing), timeout=30)
        (share.mnt / "d" / "g").unlink()  # seen: a realtime delete, a tombstone
        wait_until(
            lambda: source_status(agent_executable(), agent.home).get("tracked_deletes") == 1,
            10,
            0.1,
            "the delete",
        )
        server.wait_tree(disk_tree(share.backing), timeout=10)
        os.rename(saved, share.backing / "d" / "g")  # not seen: d's new mtime makes audits list it
        server.wait_tree(disk_tree(share.backing), timeout=2 * AUDIT + 6)
        assert source_status(agent_executable(), agent.home).get("tombstone_hidden_paths") == 1
        assert server.errors() == 0, server.log_tail()
    finally:
        assert agent.stop() == 0, agent.log_tail()
        server.stop()
