"""The sweep's figures reach the console: metrics and a dashboard line (issue 8)."""

from __future__ import annotations

import asyncio
import copy
import sys
from pathlib import Path
from typing import Any

import pytest
from sweep_helpers import age_tree

from fustor_agent.console import ConsoleSettings, start_console
from fustor_agent.console.metrics import metrics_registry, render_metrics
from fustor_source_fs import FsSource, FsSourceConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "console"))

from console_browser import chromium, ensure_chromium
from console_fakes import SAMPLE_STATUS, FakeAgent


def append(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b"more")


@pytest.fixture
def swept_status(tmp_path: Path) -> dict[str, Any]:
    """The status of a real fs source after an audit whose sweep found one in-place edit."""
    root = tmp_path / "root"
    for name in ("a/1.dat", "a/2.dat", "b/3.dat"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    age_tree(root)
    source = FsSource(
        "t",
        FsSourceConfig(uri=str(root), driver_params={"full_sweep_interval_sec": 1e-6}),
    )

    async def main() -> dict[str, Any]:
        await source.start()
        try:
            async for _ in source.audit():
                pass
            await asyncio.to_thread(append, root / "a" / "2.dat")
            async for _ in source.audit():
                pass
            return source.status()
        finally:
            await source.stop()

    figures = asyncio.run(main())
    assert figures["sweep_changes_found"] == 1
    status = copy.deepcopy(SAMPLE_STATUS)
    status["pipes"][0]["source"].update(figures)
    return status


def test_sweep_figures_are_exported_as_metrics(swept_status: dict[str, Any]) -> None:
    text = render_metrics(metrics_registry(FakeAgent(swept_status))).decode()
    lines = [line for line in text.splitlines() if line.startswith("fustor_agent_source_sweep_")]
    found = {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in lines}
    assert found["fustor_agent_source_sweep_changes_found_total"] == 1
    assert found["fustor_agent_source_sweep_tracked_files"] == 3
    assert found["fustor_agent_source_sweep_files_checked_total"] == 3
    assert found["fustor_agent_source_sweep_round_progress_ratio"] == 0  # one whole round done
    assert "# TYPE fustor_agent_source_sweep_changes_found_total counter" in text


def test_the_dashboard_shows_a_sweep_line(swept_status: dict[str, Any]) -> None:
    ensure_chromium()

    async def run() -> str:
        handle = await start_console(ConsoleSettings(port=0), FakeAgent(swept_status))
        try:
            return await chromium("--virtual-time-budget=500", "--dump-dom", handle.url)
        finally:
            await handle.close()

    dom = asyncio.run(run())
    assert "<dt>in-place sweep</dt>" in dom
    assert "3 of 3 files re-checked · 1 in-place changes found" in dom
    assert dom.count("<dt>in-place sweep</dt>") == 1  # the second pipe reports no sweep
