"""The dashboard as a browser renders it: headless Chromium runs its script against a console."""

from __future__ import annotations

import asyncio
import copy
import re

import pytest
from console_browser import chromium, ensure_chromium
from console_fakes import FakeAgent
from pngpixels import read_png

from fustor_agent.console import ConsoleSettings, start_console
from fustor_agent.status import AgentStatus


@pytest.fixture(scope="module", autouse=True)
def _chromium() -> None:
    ensure_chromium()


class FlippingAgent(FakeAgent):
    """Reports the first pipe running, then (from the page's first refresh on) in error."""

    def status(self) -> AgentStatus:
        if self.calls >= 1:
            self.state["pipes"][0]["state"] = "error"
            self.state["pipes"][0]["last_error"] = {
                "message": "disk vanished",
                "at": 1_790_009_000.0,
            }
        return super().status()


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

    def status(self) -> AgentStatus:
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


LONG_REASON = (
    "misconfigured server: the agent key resolves to pipe 'research-archive-2026' which is not "
    "a view id; audits and sentinel checks do nothing (make the pipe id equal to its view id) "
    "/data/research/projects/" + "very-long-directory-name-without-spaces" * 4
)


def test_a_long_not_ready_reason_and_error_stay_inside_their_card(tmp_path) -> None:
    """Screenshot a narrow window: the right page margin must stay empty (nothing overflows)."""
    agent = FakeAgent()
    pipe = agent.state["pipes"][1]
    pipe["not_ready_reason"] = LONG_REASON
    pipe["last_error"] = {"message": "open session: " + LONG_REASON, "at": 1_790_003_000.0}
    shot = tmp_path / "narrow.png"

    async def run() -> None:
        handle = await start_console(ConsoleSettings(port=0), agent)
        try:
            await chromium(
                "--window-size=520,2400",
                "--virtual-time-budget=500",
                f"--screenshot={shot}",
                handle.url,
            )
        finally:
            await handle.close()

    asyncio.run(run())
    width, height, rows = read_png(shot)
    background = (0xF4, 0xF5, 0xF7)
    margin = range(width - 18, width)  # inside the page's 24 px right padding
    intruders = {(x, y) for y in range(120, height) for x in margin if rows[y][x] != background}
    assert not intruders, f"{len(intruders)} pixels in the right margin, first {min(intruders)}"


def test_what_the_card_says_reads_as_what_happens() -> None:
    agent = FakeAgent()
    leader = agent.state["pipes"][0]
    # The first pipe runs, is ready, and had an error an hour ago: history, not a fault.
    leader["source_pipes"] = ["research-fs", "research-copy"]
    leader["source"].update(
        sweep_tracked_files=5000,
        sweep_round_progress=0.04,
        sweep_rounds=0,
        sweep_files_checked=200,
        sweep_changes_found=0,
        sweep_period_target_sec=3600.0,
        sweep_period_achieved_sec=None,
    )
    dom = rendered_dom(agent, budget_ms=500)
    assert "(fs, shared with research-copy) → sender" in dom
    assert "source figures (for all 2 pipes of the source)" in dom
    assert "· recovered since</span>" in dom
    assert (
        "<dt>in-place sweep</dt><dd>first round 4% done, paced to take 1h 0m 0s · 200 of 5,000 "
        "files re-checked · no in-place change found</dd>"
    ) in dom
    # The second pipe never had a session: its snapshot has not started, it is not "0 rows".
    assert "<dt>snapshot</dt><dd>not started (no session yet)</dd>" in dom
    assert "in progress · 0 rows" not in dom
