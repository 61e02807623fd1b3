"""Network faults between agent and Fusion (delays, resets, blackholes) under a writer."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from fusion_harness import FusionServer, disk_tree
from scenario import MakeAgent, converge, record
from seq_writer import SequenceWriter

pytestmark = pytest.mark.fusion

# Short timeouts so that a blackholed request is given up in seconds, not the default 30 s.
SENDER = {"connect_timeout_sec": 1.0, "read_timeout_sec": 3.0, "heartbeat_timeout_sec": 1.0}


@pytest.fixture
def proxy(fusion: FusionServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(fusion.receiver_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _schedule(long_mode: bool) -> list[tuple[str, float, float]]:
    """(mode, seconds, delay) steps; the short run has each fault once."""
    # A blackhole longer than the session timeout (4 s) makes Fusion expire the session.
    short = [("delay", 3.0, 0.4), ("reset", 2.0, 0), ("blackhole", 6.0, 0)]
    if not long_mode:
        return short
    rng = random.Random(11)
    steps: list[tuple[str, float, float]] = []
    while sum(s[1] for s in steps) < 180:
        mode = rng.choice(["delay", "reset", "blackhole"])
        steps.append((mode, rng.uniform(1, 8), rng.uniform(0.05, 1.5)))
    return steps


def test_delays_resets_and_blackholes_under_writes(
    fusion: FusionServer,
    make_agent: MakeAgent,
    proxy: FaultProxy,
    tmp_path: Path,
    long_mode: bool,
) -> None:
    root = tmp_path / "data"
    (root / "seed").mkdir(parents=True)
    (root / "seed" / "s.txt").write_text("seed")
    agent = make_agent(
        root, endpoint=proxy.endpoint, pipe={"audit_interval_sec": 3}, sender_params=SENDER
    )
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)

    writer = SequenceWriter(root, rate=100)
    writer.start()
    steps = _schedule(long_mode)
    try:
        for mode, seconds, delay in steps:
            proxy.set_mode(mode, delay)
            time.sleep(seconds)
            proxy.set_mode("pass")
            time.sleep(2.0)
    finally:
        counts = writer.stop()
    seconds = converge(fusion, root, [agent], timeout=45)
    record(
        "network faults",
        faults=len(steps),
        fault_seconds=round(sum(s[1] for s in steps)),
        connections=proxy.counts["connections"],
        resets=proxy.counts["reset"],
        blackholed=proxy.counts["blackholed"],
        delayed_chunks=proxy.counts["delayed_chunks"],
        writer_ops=sum(counts.values()),
        converge_s=seconds,
    )
