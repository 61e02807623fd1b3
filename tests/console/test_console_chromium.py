"""The dashboard as a browser renders it: headless Chromium runs its script against a console."""

from __future__ import annotations

import asyncio
import copy
import re
from typing import Any

import pytest
from console_browser import chromium, ensure_chromium
from console_fakes import FakeAgent

from fustor_agent.console import ConsoleSettings, start_console


@pytest.fixture(scope="module", autouse=True)
def _chromium() -> None:
    ensure_chromium()


class FlippingAgent(FakeAgent):
    """Reports the first pipe running, then (from the page's first refresh on) in error."""

    def status(self) -> dict[str, Any]:
        status = super().status()
        if self.calls > 1:
            status["pipes"][0]["state"] = "error"
            status["pipes"][0]["last_error"] = {"message": "disk vanished", "at": 1_790_009_000.0}
        return status


def rendered_dom(agent: FakeAgent, budget_ms: int) -> str:
    async def run() -> str:
        handle = await start_console(ConsoleSettings(port=0), agent)
        try:
            return await chromium(f"--virtual-time-budget={budget_ms}", "--dump-dom", handle.url)
        finally:
            await handle.close()

    return asyncio.run(run())


def pipe_sections(dom: str) -> dict[str, str]:
    """``data-pipe`` → ``data-state`` of the cards the page's script built."""
    return dict(re.findall(r'<section class="pipe" data-pipe="([^"]*)" data-state="([^"]*)"', dom))


def test_the_rendered_page_shows_each_pipe_and_its_state(fake_agent: FakeAgent) -> None:
    dom = rendered_dom(fake_agent, budget_ms=500)
    assert pipe_sections(dom) == {
        "research-fs": "running",
        "scratch&lt;/script&gt;&lt;b&gt;x": "backing_off",
    }
    assert '<span class="pipe-id">research-fs</span>' in dom
    assert re.search(r'<span class="badge state state-running">running</span>', dom)
    assert '<b id="agent-id">agent-test-1</b>' in dom
    assert '<b id="uptime">1h 2m 5s</b>' in dom
    assert "9,990 / 10,000 (99.9%)" in dom
    assert "not ready: root unavailable" in dom
    assert "fusion answered 503, retrying" in dom
    assert '<dd class="err">250 dropped rows · 0 rejected batches</dd>' in dom
    # Agent text is rendered as text, never as markup.
    assert "<b>x" not in dom


def test_the_page_refreshes_itself_from_the_status_api() -> None:
    agent = FlippingAgent(copy.deepcopy(FakeAgent().state))
    dom = rendered_dom(agent, budget_ms=3000)  # one refresh period (2 s) and a margin
    assert agent.calls >= 2
    assert pipe_sections(dom)["research-fs"] == "error"
    assert "disk vanished" in dom


class VanishingAgent(FakeAgent):
    """Answers the page load, then fails every status request (as if it hung or died)."""

    def status(self) -> dict[str, Any]:
        status = super().status()
        if self.calls > 1:
            raise RuntimeError("agent gone")
        return status


def test_the_page_says_when_the_agent_stops_answering() -> None:
    agent = VanishingAgent()
    dom = rendered_dom(agent, budget_ms=8000)  # stale after three missed 2 s refreshes
    assert re.search(r'<span id="live" class="stale">agent not answering for \d+s</span>', dom)
    # The last good data stays on screen.
    assert pipe_sections(dom)["research-fs"] == "running"
