"""SIGTERM shuts the agent down without losing a queued realtime row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import yaml

from fustor_agent.lock import running_pid


def test_sigterm_flushes_every_queued_row_to_a_slow_sender(
    agent_cmd: str, fustor_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "slow.jsonl"
    total = 200
    (fustor_home / "agent-config.yaml").write_text(
        yaml.safe_dump(
            {
                "sources": [
                    {
                        "id": "counter",
                        "type": "counter",
                        "config": {"uri": "/none", "driver_params": {"count": total}},
                    }
                ],
                # 5 rows per send, 50 ms each: about 2 s of queue behind the first send.
                "senders": [
                    {
                        "id": "slow",
                        "type": "slowfile",
                        "config": {
                            "driver_params": {
                                "output": str(out),
                                "delay_sec": 0.05,
                                "max_batch_size": 5,
                            }
                        },
                    }
                ],
                "pipes": [{"id": "p", "source_id": "counter", "sender_id": "slow"}],
                "console": {"enabled": False},
            }
        )
    )
    stderr = (tmp_path / "agent.err").open("wb")
    proc = subprocess.Popen(
        [agent_cmd, "start"],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**os.environ, "FUSTOR_HOME": str(fustor_home)},
    )
    try:
        deadline = time.monotonic() + 20
        while not (out.exists() and '"path"' in out.read_text()):
            assert proc.poll() is None, (tmp_path / "agent.err").read_text()
            assert time.monotonic() < deadline, "no row reached the sender"
            time.sleep(0.02)
        sent_before = out.read_text().count('"path"')
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr.close()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    paths = [line["path"] for line in lines if "path" in line]
    assert sent_before < total  # the stop really came with rows still queued
    assert paths == [f"/f{i}" for i in range(total)]
    assert lines[-1] == {"session": "closed"}
    log = (fustor_home / "logs" / "agent.log").read_text()
    assert "shutting down" in log and "not delivered" not in log


def test_a_second_sigterm_exits_at_once(agent_cmd: str, fustor_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "slow.jsonl"
    (fustor_home / "agent-config.yaml").write_text(
        yaml.safe_dump(
            {
                "sources": [
                    {
                        "id": "counter",
                        "type": "counter",
                        "config": {"uri": "/none", "driver_params": {"count": 1000}},
                    }
                ],
                # About 100 s of queue: the first SIGTERM would wait for all of it.
                "senders": [
                    {
                        "id": "slow",
                        "type": "slowfile",
                        "config": {"driver_params": {"output": str(out), "delay_sec": 0.5}},
                    }
                ],
                "pipes": [{"id": "p", "source_id": "counter", "sender_id": "slow"}],
                "console": {"enabled": False},
            }
        )
    )
    proc = subprocess.Popen(
        [agent_cmd, "start"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "FUSTOR_HOME": str(fustor_home)},
    )
    try:
        deadline = time.monotonic() + 20
        while not (out.exists() and '"path"' in out.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert proc.poll() is None  # still flushing
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "second stop signal" in (fustor_home / "logs" / "agent.log").read_text()
    assert running_pid(fustor_home / "agent.pid") is None  # the kernel dropped the lock
