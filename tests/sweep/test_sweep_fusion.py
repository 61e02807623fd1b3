"""In-place edits on the backing tree (blind to inotify) reach the real Fusion 0.8.17 (issue 8)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import sweep_helpers
from agent_harness import AgentProcess, agent_executable
from fusion_harness import FusionServer, disk_tree, wait_until
from sweep_helpers import Share, age_tree

pytestmark = pytest.mark.fusion

SWEEP_SEC = 2.0
AUDIT_SEC = 1.0


def source_status(agent: AgentProcess) -> dict[str, Any]:
    return sweep_helpers.source_status(agent_executable(), agent.home)


def make_files(root: Path) -> list[str]:
    names = [f"d{d}/f{f}.log" for d in range(4) for f in range(5)] + ["top.log"]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"line\n" * 20)
    age_tree(root)
    return names


def start_agent(fusion: FusionServer, share: Share, home: Path, sweep_sec: float) -> AgentProcess:
    agent = AgentProcess(
        home,
        share.mnt,
        fusion,
        pipe={"audit_interval_sec": AUDIT_SEC},
        source_params={"full_sweep_interval_sec": sweep_sec, "audit_mtime_tick_sec": 0.5},
    )
    agent.start()
    return agent


def edit_in_place(backing: Path) -> None:
    """What another NFS client does: no inotify event here, no directory mtime change."""
    before = os.stat(backing / "d1").st_mtime
    with open(backing / "d1" / "f2.log", "ab") as f:  # a job appending to its output
        f.write(b"one more line\n" * 7)
    os.truncate(backing / "d3" / "f0.log", 5)
    # A writer that puts the old mtime back: only a forced (audit_skipped) row can carry it.
    kept = backing / "d2" / "f4.log"
    st = os.stat(kept)
    with open(kept, "ab") as f:
        f.write(b"same mtime\n")
    os.utime(kept, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(backing / "d1").st_mtime == before


def test_append_and_truncate_on_the_backing_tree_reach_fusion(
    fusion: FusionServer, share: Share, tmp_path: Path
) -> None:
    names = make_files(share.backing)
    agent = start_agent(fusion, share, tmp_path / "agent", SWEEP_SEC)
    try:
        fusion.wait_tree(disk_tree(share.backing), timeout=30)
        # The first audit lists everything and records it, and so does the one after it (B19);
        # from then on directories are skipped, so the edits are the sweep's to find.
        wait_until(
            lambda: (
                (s := source_status(agent)).get("sweep_tracked_files") == len(names)
                and s.get("audits", 0) >= 3
            ),
            20,
            0.2,
            "the sweep to track every file, past the two full audits",
        )
        edit_in_place(share.backing)
        # Within one sweep period (plus the audit that carries the rows). The backing tree is
        # the truth: stats through FUSE may be cached for a second.
        fusion.wait_tree(disk_tree(share.backing), timeout=SWEEP_SEC + AUDIT_SEC + 5)
        held = fusion.files()
        assert held is not None
        assert held["/d1/f2.log"][1] == 100 + 14 * 7
        assert held["/d3/f0.log"][1] == 5
        assert held["/d2/f4.log"][1] == 100 + 11
        assert held["/d2/f4.log"][2] == os.stat(share.backing / "d2" / "f4.log").st_mtime

        # Every file is re-checked, and only the three edits were reported.
        status = wait_until(
            lambda: (s := source_status(agent)).get("sweep_rounds", 0) >= 2 and s,
            4 * SWEEP_SEC + 10,
            0.2,
            "two whole sweep rounds",
        )
        assert status["sweep_changes_found"] == 3, status
        assert status["sweep_forced_rows"] == 1, status
        assert status["sweep_files_checked"] >= 2 * len(names), status
        assert status["sweep_period_achieved_sec"] <= SWEEP_SEC + 2 * AUDIT_SEC + 2, status
    finally:
        assert agent.stop() == 0, agent.log_tail()


def test_without_the_sweep_fusion_keeps_the_old_sizes(
    fusion: FusionServer, share: Share, tmp_path: Path
) -> None:
    """The control: the same edits stay invisible to the mtime-skip audit alone."""
    make_files(share.backing)
    agent = start_agent(fusion, share, tmp_path / "agent", 0)
    try:
        fusion.wait_tree(disk_tree(share.backing), timeout=30)
        wait_until(
            lambda: source_status(agent).get("audits", 0) >= 2, 20, 0.2, "the first full audit"
        )
        edit_in_place(share.backing)
        time.sleep(SWEEP_SEC + AUDIT_SEC + 2)
        held = fusion.files()
        assert held is not None
        assert held["/d1/f2.log"][1] == 100
        assert held["/d3/f0.log"][1] == 100
        assert held["/d2/f4.log"][1] == 100
        assert "sweep_tracked_files" not in source_status(agent)
    finally:
        assert agent.stop() == 0, agent.log_tail()
