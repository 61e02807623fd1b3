"""Bad input from the server: a fake Fusion answering broken JSON, wrong status codes, huge
bodies and slow responses never crashes the agent nor loses data once it behaves again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_fusion import BAD_MODES, FakeFusion
from fusion_harness import FusionServer, disk_tree
from scenario import MakeAgent, converge, record
from seq_writer import SequenceWriter
from system_faults import RssSampler

pytestmark = pytest.mark.fusion


@pytest.fixture
def fake(fusion: FusionServer) -> Iterator[FakeFusion]:
    server = FakeFusion(fusion.endpoint).start()
    try:
        yield server
    finally:
        server.stop()


def test_misbehaving_server_then_good_behaviour_converges(
    fusion: FusionServer, make_agent: MakeAgent, fake: FakeFusion, tmp_path: Path, long_mode: bool
) -> None:
    root = tmp_path / "data"
    (root / "seed").mkdir(parents=True)
    (root / "seed" / "s.txt").write_text("seed")
    # Rejected batches (a 4xx to a good request) are dropped by design and put right by the
    # next audit (docs/CONSISTENCY_DESIGN.md §7): audit often.
    agent = make_agent(root, endpoint=fake.endpoint, pipe={"audit_interval_sec": 2})
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    assert agent.process is not None
    pid = agent.process.pid
    sampler = RssSampler(lambda: [pid])
    sampler.start()

    modes = [*BAD_MODES, "chaos"] * (4 if long_mode else 1)
    writer = SequenceWriter(root, rate=100)
    writer.start()
    try:
        for mode in modes:
            fake.mode = mode
            time.sleep(6 if long_mode else 3)
            fake.mode = "good"
            time.sleep(1)
    finally:
        counts = writer.stop()
        fake.mode = "good"
    try:
        seconds = converge(fusion, root, [agent], timeout=60)
    finally:
        peak = sampler.stop()
    bad = sum(fake.counts[m] for m in BAD_MODES)
    assert bad > 20, fake.counts
    record(
        "fake fusion",
        bad_answers=bad,
        good_answers=fake.counts["good"],
        wrong_codes=sum(v for k, v in fake.counts.items() if k.startswith("status:")),
        writer_ops=sum(counts.values()),
        agent_peak_rss_mb=peak,
        converge_s=seconds,
    )
