"""Each console endpoint against a fake agent, over real HTTP on a free loopback port."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
from console_fakes import SAMPLE_STATUS, FakeAgent

from fustor_agent.console import ConsoleSettings, start_console


def fetch(agent: FakeAgent, *requests: tuple[str, str]) -> list[httpx.Response]:
    """Start a console for ``agent`` on a free port, send ``(method, path)`` requests, stop it."""

    async def run() -> list[httpx.Response]:
        handle = await start_console(ConsoleSettings(port=0), agent)
        try:
            async with httpx.AsyncClient(base_url=handle.url, timeout=5) as client:
                return [await client.request(method, path) for method, path in requests]
        finally:
            await handle.close()

    return asyncio.run(run())


def test_status_api_returns_the_agent_status_as_json(fake_agent: FakeAgent) -> None:
    (resp,) = fetch(fake_agent, ("GET", "/api/v1/status"))
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == SAMPLE_STATUS


def test_status_is_read_fresh_on_every_request(fake_agent: FakeAgent) -> None:
    async def run() -> list[Any]:
        handle = await start_console(ConsoleSettings(port=0), fake_agent)
        try:
            async with httpx.AsyncClient(base_url=handle.url) as client:
                first = (await client.get("/api/v1/status")).json()
                fake_agent.state["pipes"][0]["rows_sent"]["realtime"] = 999
                second = (await client.get("/api/v1/status")).json()
                return [first, second]
        finally:
            await handle.close()

    first, second = asyncio.run(run())
    assert first["pipes"][0]["rows_sent"]["realtime"] == 812
    assert second["pipes"][0]["rows_sent"]["realtime"] == 999


def test_healthz_is_ok_without_asking_for_status(fake_agent: FakeAgent) -> None:
    (resp,) = fetch(fake_agent, ("GET", "/healthz"))
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}
    assert fake_agent.calls == 0


def test_readyz_is_503_with_the_reason_of_each_pipe_not_ready(fake_agent: FakeAgent) -> None:
    (resp,) = fetch(fake_agent, ("GET", "/readyz"))
    assert resp.status_code == 503
    not_ready = {"scratch</script><b>x": "root unavailable"}
    assert resp.json() == {"ready": False, "not_ready": not_ready}


def test_readyz_is_200_when_every_enabled_pipe_is_ready(fake_agent: FakeAgent) -> None:
    broken = fake_agent.state["pipes"][1]
    broken["enabled"] = False  # a disabled pipe is never waited for
    (resp,) = fetch(fake_agent, ("GET", "/readyz"))
    assert resp.status_code == 200
    assert resp.json() == {"ready": True, "not_ready": {}}


def test_readyz_falls_back_to_the_state_when_no_reason_is_given(fake_agent: FakeAgent) -> None:
    fake_agent.state["pipes"][0].update(ready=False, not_ready_reason=None, state="starting")
    fake_agent.state["pipes"][1]["enabled"] = False
    (resp,) = fetch(fake_agent, ("GET", "/readyz"))
    assert resp.status_code == 503
    assert resp.json()["not_ready"] == {"research-fs": "state starting"}


def test_dashboard_is_self_contained_html_with_the_status_embedded(fake_agent: FakeAgent) -> None:
    (resp,) = fetch(fake_agent, ("GET", "/"))
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    page = resp.text
    # No external assets: nothing is loaded from another origin.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page
    embedded = re.search(
        r'<script id="initial-status" type="application/json">(.*?)</script>', page, re.S
    )
    assert embedded is not None
    assert json.loads(embedded.group(1)) == SAMPLE_STATUS
    # The hostile pipe id cannot close the data block early.
    assert "scratch</script>" not in page
    assert 'fetch("/api/v1/status"' in page


def test_dashboard_csp_allows_only_its_own_inline_code(fake_agent: FakeAgent) -> None:
    (resp,) = fetch(fake_agent, ("GET", "/"))
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", csp)


def test_unknown_path_is_404_and_other_methods_are_405(fake_agent: FakeAgent) -> None:
    missing, post, head = fetch(
        fake_agent, ("GET", "/nope"), ("POST", "/api/v1/status"), ("HEAD", "/api/v1/status")
    )
    assert missing.status_code == 404
    assert post.status_code == 405
    assert post.headers["allow"] == "GET, HEAD"
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 100


def test_query_string_is_ignored_for_routing(fake_agent: FakeAgent) -> None:
    (resp,) = fetch(fake_agent, ("GET", "/api/v1/status?pretty=1"))
    assert resp.status_code == 200
    assert resp.json()["agent_id"] == "agent-test-1"
