"""inotify queue overflow (agent paused with SIGSTOP) and watch exhaustion (max_watches)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from fusion_harness import FusionServer, disk_tree
from scenario import MakeAgent, converge, pipe_status, record, wait_pipe
from seq_writer import SequenceWriter

pytestmark = pytest.mark.fusion

KERNEL_QUEUE = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())


def _seed(root: Path, dirs: int, files: int) -> None:
    for d in range(dirs):
        directory = root / f"seed{d:02d}"
        directory.mkdir(parents=True)
        for i in range(files):
            (directory / f"s{i:04d}.txt").write_text(f"{d}/{i}\n")


def _flood(directory: Path, events: int, tag: str) -> int:
    """More than ``events`` inotify events in a watched directory: empty files (create and
    close-write each)."""
    files = events // 2 + 500
    for i in range(files):
        os.close(os.open(directory / f"flood-{tag}-{i:06d}", os.O_CREAT | os.O_WRONLY, 0o644))
    return files


# A long session timeout: the paused agent must not lose its session while the queue fills.
@pytest.mark.parametrize("fusion_options", [{"session_timeout": 60}])
def test_overflow_while_paused_is_recovered_without_periodic_audits(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, long_mode: bool
) -> None:
    root = tmp_path / "data"
    rounds = 4 if long_mode else 1
    _seed(root, dirs=2 * rounds, files=100)
    # No periodic audit: only the overflow recovery can bring the deletions made meanwhile.
    agent = make_agent(root, pipe={"audit_interval_sec": 0})
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    wait_pipe(agent, lambda p: p["progress"]["snapshot"]["done"], 10, "snapshot done")
    assert agent.process is not None

    pauses: list[float] = []
    for r in range(rounds):
        agent.process.send_signal(signal.SIGSTOP)
        paused = time.monotonic()
        try:
            _flood(root, KERNEL_QUEUE, str(r))
            # The kernel queue is full: these changes are lost, only the recovery finds them.
            for path in sorted((root / f"seed{2 * r:02d}").iterdir())[::2]:
                path.unlink()
            (root / f"seed{2 * r + 1:02d}").rename(root / f"renamed-{r}")
            (root / f"new-{r}").mkdir()
            (root / f"new-{r}" / "late.txt").write_text("created after the overflow")
        finally:
            agent.process.send_signal(signal.SIGCONT)
        pauses.append(time.monotonic() - paused)
        seconds = converge(fusion, root, [agent], timeout=60)
    source = pipe_status(agent)["source"]
    assert source["overflows"] >= rounds, source
    record(
        "inotify overflow",
        rounds=rounds,
        overflows=source["overflows"],
        recoveries=source.get("recoveries"),
        pause_s=round(max(pauses), 1),
        converge_after_last_s=seconds,
    )


def test_watch_exhaustion_converges_through_audits(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, long_mode: bool
) -> None:
    root = tmp_path / "data"
    _seed(root, dirs=12, files=5)
    for d in range(12):
        (root / f"seed{d:02d}" / "deep" / "deeper").mkdir(parents=True)
    agent = make_agent(root, source_params={"max_watches": 6}, pipe={"audit_interval_sec": 2})
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    source = wait_pipe(agent, lambda p: p["source"].get("watch_ready"), 10, "watches placed")[
        "source"
    ]
    assert source["watch_limited"] is True and source["watched_dirs"] <= 6, source
    assert source["watch_coverage"] < 0.5, source

    writer = SequenceWriter(root, rate=100)
    writer.start()
    try:
        time.sleep(30 if long_mode else 4)
        # Changes where no watch can see them.
        for d in range(12):
            deeper = root / f"seed{d:02d}" / "deep" / "deeper"
            (deeper / "unseen.txt").write_text("only an audit finds me")
            (root / f"seed{d:02d}" / "s0000.txt").unlink()
    finally:
        counts = writer.stop()
    seconds = converge(fusion, root, [agent], timeout=30)
    status = pipe_status(agent)
    record(
        "watch exhaustion",
        dirs=status["source"]["dirs"],
        watched=status["source"]["watched_dirs"],
        coverage=status["source"]["watch_coverage"],
        audits=status["progress"]["audit"]["cycles"],
        writer_ops=sum(counts.values()),
        converge_s=seconds,
    )


@pytest.mark.parametrize("answer_delay", [0.0, 1.5])
def test_overflow_during_a_pause_longer_than_the_session_timeout(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, answer_delay: float
) -> None:
    """The session expires while the agent is paused: the overflow recovery must survive the
    new session (a snapshot alone never deletes anything in Fusion). With ``answer_delay``
    Fusion's answers come late, so the overflow is seen before the session is known lost."""
    root = tmp_path / "data"
    _seed(root, dirs=2, files=100)
    proxy = FaultProxy(fusion.receiver_port).start()
    try:
        agent = make_agent(root, endpoint=proxy.endpoint, pipe={"audit_interval_sec": 0})
        agent.start()
        fusion.wait_tree(disk_tree(root), timeout=20)
        wait_pipe(agent, lambda p: p["progress"]["snapshot"]["done"], 10, "snapshot done")
        assert agent.process is not None
        agent.process.send_signal(signal.SIGSTOP)
        try:
            _flood(root, KERNEL_QUEUE, "x")
            for path in sorted((root / "seed00").iterdir())[::2]:
                path.unlink()
            (root / "seed01").rename(root / "renamed")
            time.sleep(6)  # past the 4 s session timeout
            proxy.set_mode("delay", answer_delay)
        finally:
            agent.process.send_signal(signal.SIGCONT)
        time.sleep(answer_delay * 4)
        proxy.set_mode("pass")
        converge(fusion, root, [agent], timeout=30)
        assert pipe_status(agent)["source"]["overflows"] >= 1
    finally:
        proxy.stop()
