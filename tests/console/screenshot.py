"""Regenerate docs/console.png: ``python tests/console/screenshot.py [URL]``.

Without a URL it serves the dashboard over the test fakes' sample status (times made
recent); with a URL it photographs that running console instead.
"""

from __future__ import annotations

import asyncio
import copy
import sys
import time
from pathlib import Path

from console_browser import chromium, ensure_chromium
from console_fakes import SAMPLE_STATUS, FakeAgent

from fustor_agent.console import ConsoleSettings, start_console

OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "console.png"


def demo_status() -> dict:
    status = copy.deepcopy(SAMPLE_STATUS)
    now = time.time()
    status["started_at"] = now - status["uptime_sec"]
    status["pipes"][0]["last_error"]["at"] = now - 95
    status["pipes"][1]["id"] = "scratch-fs"
    return status


async def shoot(url: str | None) -> None:
    handle = None
    if url is None:
        handle = await start_console(ConsoleSettings(port=0), FakeAgent(demo_status()))
        url = handle.url
    try:
        await chromium(
            f"--screenshot={OUTPUT}", "--window-size=1280,900", "--virtual-time-budget=1000", url
        )
    finally:
        if handle is not None:
            await handle.close()


if __name__ == "__main__":
    ensure_chromium()
    asyncio.run(shoot(sys.argv[1] if len(sys.argv) > 1 else None))
    print(OUTPUT)
