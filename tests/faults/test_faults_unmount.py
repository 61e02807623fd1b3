"""Unmounted share: the watched root's bind mount goes away and comes back while the agent runs."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from fusion_harness import FusionServer, disk_tree, tree_diff
from scenario import MakeAgent, converge, record, wait_pipe
from seq_writer import SequenceWriter
from system_faults import is_mount_point, umount

pytestmark = [
    pytest.mark.fusion,
    pytest.mark.skipif(os.geteuid() != 0, reason="mount --bind needs root"),
]


def _mount(source: Path, target: Path) -> None:
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)


def test_unmount_keeps_the_view_and_remount_converges(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, long_mode: bool
) -> None:
    share, mount_point = tmp_path / "share", tmp_path / "mnt"
    mount_point.mkdir()
    (share / "projects" / "p1").mkdir(parents=True)
    for i in range(50):
        (share / "projects" / "p1" / f"f{i:03d}.dat").write_bytes(b"d" * i)
    _mount(share, mount_point)
    try:
        agent = make_agent(
            mount_point,
            pipe={"audit_interval_sec": 1},
            source_params={"health_check_interval_sec": 0.2},
        )
        agent.start()
        cycles = 5 if long_mode else 1
        held_for: list[float] = []
        for cycle in range(cycles):
            writer = SequenceWriter(mount_point, rate=100, seed=cycle, tag=f"c{cycle}-")
            writer.start()
            time.sleep(2)
            writer.stop()
            before = disk_tree(mount_point)
            fusion.wait_tree(before, timeout=20)

            umount(mount_point)
            assert not is_mount_point(mount_point) and not any(mount_point.iterdir())
            wait_pipe(agent, lambda p: p["source"]["root_available"] is False, 10, "unavailable")
            # The share changes on the server meanwhile; deletions included.
            for path in sorted((share / "projects" / "p1").iterdir())[: 5 + cycle]:
                path.unlink()
            (share / f"while-away-{cycle}.txt").write_text("written while unmounted")
            # Several audit intervals with an empty root: the view must stay as it was.
            started = time.monotonic()
            while time.monotonic() - started < (6 if long_mode else 3):
                held = fusion.files()
                assert held is not None and not tree_diff(before, held), tree_diff(
                    before, held or {}
                )[:10]
                time.sleep(0.2)
            held_for.append(time.monotonic() - started)

            _mount(share, mount_point)
            wait_pipe(agent, lambda p: p["source"]["root_available"] is True, 15, "available")
            seconds = converge(fusion, mount_point, [agent], timeout=30)
    finally:
        while is_mount_point(mount_point):
            umount(mount_point)
    record(
        "unmounted share",
        cycles=cycles,
        view_held_s=round(sum(held_for), 1),
        converge_after_remount_s=seconds,
    )
