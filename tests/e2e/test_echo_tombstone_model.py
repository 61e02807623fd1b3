"""Property, end to end: the rows the running agent prints through the echo sender, replayed
through a model of Fusion's realtime arbitration, leave no existing path missing except those
the agent counts as hidden by a tombstone (``tombstone_hidden_paths`` in its status).

The same random everyday steps as ``tests/source_fs/test_tombstone_model.py``, but through the
whole agent (``fustor-agent start --watch DIR --format json``: fs source → pipe runtime → echo
sender), one process for all examples, each example in its own directory.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from cli_support import agent_command
from everyday_ops import OPS, FusionModel, apply, disk_nodes, seed


class EchoAgent:
    """The agent with its echo sender's JSON lines, each stamped with its arrival time."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.home = root, home
        self.lines: queue.Queue[tuple[float, dict]] = queue.Queue()
        self.proc = subprocess.Popen(
            [agent_command(), "start", "--watch", str(root), "--format", "json", "--no-console"],
            env={**os.environ, "FUSTOR_HOME": str(home)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.time(), json.loads(line)))

    def drain(self, quiet: float) -> list[tuple[float, dict]]:
        """Every record until none arrived for ``quiet`` seconds."""
        out = []
        while True:
            try:
                out.append(self.lines.get(timeout=quiet))
            except queue.Empty:
                return out

    def hidden(self) -> int:
        status = subprocess.run(
            [agent_command(), "status", "--json"],
            env={**os.environ, "FUSTOR_HOME": str(self.home)},
            capture_output=True,
            text=True,
            check=True,
        )
        return int(json.loads(status.stdout)["pipes"][0]["source"]["tombstone_hidden_paths"])


@pytest.fixture(scope="module")
def echo_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EchoAgent]:
    base = tmp_path_factory.mktemp("echo-model")
    (base / "w").mkdir()
    (base / "h").mkdir()
    agent = EchoAgent(base / "w", base / "h")
    try:
        deadline = time.monotonic() + 30
        while not any(r.get("signal") == "audit_end" for _, r in agent.drain(0.5)):
            assert time.monotonic() < deadline, "no snapshot and first audit within 30 s"
        yield agent
    finally:
        agent.proc.terminate()
        agent.proc.wait(20)
        agent.reader.join(5)
        assert agent.proc.stdout is not None
        agent.proc.stdout.close()


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_echo_rows_leave_no_existing_path_lost(echo_agent: EchoAgent, ops: list) -> None:
    rel = f"/ex{time.monotonic_ns()}"
    base = echo_agent.root / rel[1:]
    seed(base)
    echo_agent.drain(0.8)  # the seed's own rows: the model starts from the disk
    model = FusionModel({p: n for p, n in disk_nodes(echo_agent.root).items()})
    for n, (op, src, dst, pause) in enumerate(ops):
        apply(base, op, src, dst, n)
        time.sleep(pause)
    for at, record in echo_agent.drain(1.0):
        if record.get("message_source") == "realtime":
            model.apply(record["event_type"], record["row"], at)
    ghosts, wrong = model.differences(disk_nodes(echo_agent.root))
    assert not ghosts, ("held, not on disk", ghosts, ops)
    # Only a tombstone may hold a path back, and the agent must know of each such path.
    assert set(wrong) <= model.dropped, ("lost without a tombstone", wrong, ops)
    assert echo_agent.hidden() >= len(wrong), (wrong, ops)
