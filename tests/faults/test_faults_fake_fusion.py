"""Bad input from the server: a fake Fusion answering broken JSON, wrong status codes, huge
bodies and slow responses never crashes the agent nor loses data once it behaves again."""

from __future__ import annotations

import os
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


def test_a_rejected_audit_batch_makes_fusion_delete_nothing(
    fusion: FusionServer, make_agent: MakeAgent, fake: FakeFusion, tmp_path: Path
) -> None:
    """At an audit end Fusion deletes the children of every listed directory that it did
    not see (protocol §5.5): the files of a batch it never got must not go, and stay."""
    root = tmp_path / "data"
    (root / "d").mkdir(parents=True)
    for i in range(2500):  # three audit batches of files, then the directory's row
        (root / "d" / f"f{i:04d}").write_bytes(b"x")
    hour_ago = time.time() - 3600  # an old directory: later audits skip it (mtime cache)
    os.utime(root / "d", (hour_ago, hour_ago))
    agent = make_agent(root, endpoint=fake.endpoint, pipe={"audit_interval_sec": 2})
    agent.start()
    expected = disk_tree(root)
    fusion.wait_tree(expected, timeout=30)  # the snapshot; the first audit is a full one
    fake.reject_audit_batches = 1
    deadline = time.monotonic() + 40
    while audit_cycles(fusion) < 2 and time.monotonic() < deadline:
        held = fusion.files() or {}
        assert len(held) == len(expected), f"{len(expected) - len(held)} files deleted"
        time.sleep(0.1)
    assert fake.counts["rejected audit batch"] == 1
    assert audit_cycles(fusion) >= 2, "no audit ended after the one that lost a batch"
    assert fusion.files() == expected
    assert fusion.blind_spots()["deletion_count"] == 0, fusion.blind_spots()


def audit_cycles(fusion: FusionServer) -> int:
    response = fusion.get(f"/api/v1/views/{fusion.view_id}/stats")
    return int(response.json().get("audit_cycle_count", 0)) if response.is_success else 0
