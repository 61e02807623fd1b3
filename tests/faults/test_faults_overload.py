"""Overload: many thousands of files created in bursts while the agent runs; memory bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fusion_harness import FusionServer, disk_tree
from scenario import MakeAgent, converge, record
from seq_writer import burst
from system_faults import RssSampler

pytestmark = [pytest.mark.fusion, pytest.mark.slow]

MAX_RSS_MB = 200


def test_bursts_of_files_converge_with_bounded_memory(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, long_mode: bool
) -> None:
    root = tmp_path / "data"
    root.mkdir()
    agent = make_agent(root)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    assert agent.process is not None
    pid = agent.process.pid
    sampler = RssSampler(lambda: [pid])
    sampler.start()

    # 100,000 files in the soak run; a fifth of it in CI.
    bursts, dirs, per_dir = (10, 100, 100) if long_mode else (4, 50, 100)
    created = 0
    started = time.monotonic()
    try:
        for b in range(bursts):
            created += burst(root, dirs, per_dir, prefix=f"burst{b:02d}-")
            time.sleep(0.5)
        written = time.monotonic() - started
        seconds = converge(fusion, root, [agent], timeout=120 if long_mode else 60)
    finally:
        peak = sampler.stop()
    assert peak < MAX_RSS_MB, f"agent peak RSS {peak} MB"
    status = fusion.pipe_stats()
    record(
        "overload",
        files=created,
        bursts=bursts,
        write_s=round(written, 1),
        converge_after_last_burst_s=seconds,
        total_s=round(time.monotonic() - started, 1),
        agent_peak_rss_mb=peak,
        fusion_events=status.get("events_processed", status),
    )
