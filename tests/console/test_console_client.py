"""``fetch_status``: how ``fustor-agent status`` reads a running agent through its console."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from console_fakes import SAMPLE_STATUS, FakeAgent

from fustor_agent.console import ConsoleSettings, fetch_status, start_console

TOKEN = "client-test-token-0123456789"


def test_fetch_status_reads_a_running_console(fake_agent: FakeAgent) -> None:
    async def run() -> tuple[Any, Any]:
        settings = ConsoleSettings(host="0.0.0.0", port=0, token=TOKEN)
        handle = await start_console(settings, fake_agent)
        try:
            by_wildcard = await asyncio.to_thread(fetch_status, "0.0.0.0", handle.port, 2, TOKEN)
            by_loopback = await asyncio.to_thread(fetch_status, "127.0.0.1", handle.port, 2, TOKEN)
            assert await asyncio.to_thread(fetch_status, "127.0.0.1", handle.port) is None
            return by_wildcard, by_loopback
        finally:
            await handle.close()

    by_wildcard, by_loopback = asyncio.run(run())
    assert by_wildcard == SAMPLE_STATUS
    assert by_loopback == SAMPLE_STATUS


def test_fetch_status_is_none_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connection refused
        assert fetch_status("127.0.0.1", port, timeout=1) is None


def test_fetch_status_is_none_for_something_else_on_the_port() -> None:
    class NotAnAgent:
        def status(self) -> dict[str, Any]:
            return {"hello": "world"}  # valid JSON, but not an agent status

    async def run() -> Any:
        handle = await start_console(ConsoleSettings(port=0), NotAnAgent())
        try:
            return await asyncio.to_thread(fetch_status, "127.0.0.1", handle.port)
        finally:
            await handle.close()

    assert asyncio.run(run()) is None
