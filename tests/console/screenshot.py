"""Regenerate docs/console.png from a real agent: ``python tests/console/screenshot.py``.

It starts ``fustor-agent`` on a small generated tree with three pipes (fs → echo,
counter → echo, fs → an unreachable Fusion, so one pipe backs off) and photographs the
dashboard. ``--fake`` serves the test fakes' sample status instead.
"""

from __future__ import annotations

import asyncio
import copy
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from console_agent import running_agent, wait_for
from console_browser import chromium, ensure_chromium
from console_fakes import SAMPLE_STATUS, FakeAgent

from fustor_agent.console import ConsoleSettings, start_console
from ports import free_port

OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "console.png"
SHOT = ("--window-size=1280,900", "--virtual-time-budget=1000")


def make_tree(root: Path) -> None:
    for i in range(12):
        for j in range(8):
            d = root / f"project{i:02d}" / f"run{j}"
            d.mkdir(parents=True)
            for k in range(20):
                (d / f"sample{k:03d}.dat").write_bytes(b"x" * k)


def live_config(tmp: Path) -> dict[str, Any]:
    echo = {"format": "json", "output": str(tmp / "echo.jsonl")}
    return {
        "agent_id": "lab-storage-01",
        "sources": [
            {"id": "research", "type": "fs", "config": {"uri": str(tmp / "research")}},
            {"id": "archive", "type": "fs", "config": {"uri": str(tmp / "archive")}},
            {
                "id": "ticks",
                "type": "counter",
                "config": {
                    "uri": "counter://ticks",
                    "driver_params": {"count": 100_000, "per_batch": 25, "interval_sec": 0.1},
                },
            },
        ],
        "senders": [
            {"id": "local-echo", "type": "echo", "config": {"driver_params": echo}},
            {
                "id": "fusion-main",
                "type": "fusion",
                "config": {
                    "endpoint": f"http://127.0.0.1:{free_port()}",
                    "credential": "not-shown-anywhere",
                },
            },
        ],
        "pipes": [
            {"id": "research-echo", "source_id": "research", "sender_id": "local-echo"},
            {"id": "ticker-echo", "source_id": "ticks", "sender_id": "local-echo"},
            {"id": "archive-fusion", "source_id": "archive", "sender_id": "fusion-main"},
        ],
    }


def shoot_live() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        make_tree(tmp / "research")
        make_tree(tmp / "archive")
        with running_agent(tmp, live_config(tmp)) as agent:
            wait_for(
                lambda: agent.get("/api/v1/status").json()["pipes"][0]["ready"],
                "the research pipe to be ready",
            )
            time.sleep(4)  # let the rate settle and the fusion pipe fail a few times
            asyncio.run(chromium(f"--screenshot={OUTPUT}", *SHOT, agent.url + "/"))


def shoot_fake() -> None:
    status = copy.deepcopy(SAMPLE_STATUS)
    now = time.time()
    status["started_at"] = now - status["uptime_sec"]
    status["pipes"][0]["last_error"]["at"] = now - 95
    status["pipes"][1]["id"] = "scratch-fs"

    async def run() -> None:
        handle = await start_console(ConsoleSettings(port=0), FakeAgent(status))
        try:
            await chromium(f"--screenshot={OUTPUT}", *SHOT, handle.url)
        finally:
            await handle.close()

    asyncio.run(run())


if __name__ == "__main__":
    ensure_chromium()
    shoot_fake() if "--fake" in sys.argv[1:] else shoot_live()
    print(OUTPUT)
