"""The console's HTTP server: binding rules, bounded requests, errors, shutdown."""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import pytest
from console_fakes import FakeAgent

from fustor_agent.console import ConsoleSettings, start_console
from fustor_agent.console.httpserver import MAX_HEAD_BYTES
from fustor_core import ConfigError


async def raw_exchange(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    await writer.wait_closed()
    return data


def test_port_in_use_is_a_one_line_config_error(fake_agent: FakeAgent) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError) as info:
            asyncio.run(start_console(ConsoleSettings(port=port), fake_agent))
    assert str(info.value) == (
        f"console port {port} on 127.0.0.1 is already in use; "
        "set console.port or console.enabled: false"
    )


def test_unresolvable_host_is_a_config_error(fake_agent: FakeAgent) -> None:
    settings = ConsoleSettings(host="no-such-host.invalid", port=0, token="t" * 16)
    with pytest.raises(ConfigError, match=r"console cannot listen on no-such-host\.invalid:0"):
        asyncio.run(start_console(settings, fake_agent))


def test_loopback_binding_logs_no_warning(
    fake_agent: FakeAgent, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> None:
        handle = await start_console(ConsoleSettings(port=0), fake_agent)
        await handle.close()

    with caplog.at_level(logging.INFO, logger="fustor_agent.console"):
        asyncio.run(run())
    assert [r.levelno for r in caplog.records] == [logging.INFO]


def test_non_loopback_binding_without_tls_is_logged_as_a_warning(
    fake_agent: FakeAgent, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> int:
        settings = ConsoleSettings(host="0.0.0.0", port=0, token="t" * 16)
        handle = await start_console(settings, fake_agent)
        try:
            async with httpx.AsyncClient() as client:
                resp = await client.get(f"http://127.0.0.1:{handle.port}/healthz")
                return resp.status_code
        finally:
            await handle.close()

    with caplog.at_level(logging.WARNING, logger="fustor_agent.console"):
        assert asyncio.run(run()) == 200
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "0.0.0.0" in warnings[0].getMessage() and "tls_cert" in warnings[0].getMessage()


def test_oversized_and_malformed_requests_are_refused(fake_agent: FakeAgent) -> None:
    async def run() -> tuple[bytes, bytes, bytes]:
        handle = await start_console(ConsoleSettings(port=0), fake_agent)
        try:
            huge = b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * (MAX_HEAD_BYTES + 10) + b"\r\n\r\n"
            too_large = await raw_exchange(handle.port, huge)
            garbage = await raw_exchange(handle.port, b"HELLO\r\n\r\n")
            ok = await raw_exchange(handle.port, b"GET /healthz HTTP/1.0\r\n\r\n")
            return too_large, garbage, ok
        finally:
            await handle.close()

    too_large, garbage, ok = asyncio.run(run())
    assert too_large.startswith(b"HTTP/1.1 431 ")
    assert garbage.startswith(b"HTTP/1.1 400 ")
    assert ok.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Connection: close\r\n" in ok
    assert ok.endswith(b'{\n "status": "ok"\n}\n')


def test_a_failing_status_is_a_500_and_the_console_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenAgent:
        def status(self) -> dict[str, object]:
            raise RuntimeError("boom")

    async def run() -> list[int]:
        handle = await start_console(ConsoleSettings(port=0), BrokenAgent())
        try:
            async with httpx.AsyncClient(base_url=handle.url) as client:
                return [
                    (await client.get(path)).status_code
                    for path in ("/api/v1/status", "/metrics", "/", "/healthz")
                ]
        finally:
            await handle.close()

    with caplog.at_level(logging.ERROR, logger="fustor_agent.console"):
        assert asyncio.run(run()) == [500, 500, 500, 200]
    assert "boom" in caplog.text


def test_a_stalled_client_does_not_block_others(fake_agent: FakeAgent) -> None:
    async def run() -> tuple[int, float]:
        handle = await start_console(ConsoleSettings(port=0), fake_agent)
        try:
            # Half a request, never finished: the server must still answer everyone else.
            _, stalled = await asyncio.open_connection("127.0.0.1", handle.port)
            stalled.write(b"GET / HTTP/1.1\r\n")
            await stalled.drain()
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with httpx.AsyncClient(base_url=handle.url) as client:
                code = (await client.get("/healthz")).status_code
            elapsed = loop.time() - started
            stalled.close()
            return code, elapsed
        finally:
            await handle.close()

    code, elapsed = asyncio.run(run())
    assert code == 200
    assert elapsed < 1.0


def test_close_stops_listening_and_is_idempotent(fake_agent: FakeAgent) -> None:
    async def run() -> int:
        handle = await start_console(ConsoleSettings(port=0), fake_agent)
        _, idle = await asyncio.open_connection("127.0.0.1", handle.port)  # open, never used
        await asyncio.wait_for(handle.close(), timeout=2)
        await handle.close()
        idle.close()
        return handle.port

    port = asyncio.run(run())
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_settings_defaults_and_validation() -> None:
    settings = ConsoleSettings()
    assert (settings.enabled, settings.host, settings.port) == (True, "127.0.0.1", 8100)
    with pytest.raises(ValueError, match="extra"):
        ConsoleSettings.model_validate({"prot": 8100})
    with pytest.raises(ValueError, match="less than or equal to 65535"):
        ConsoleSettings(port=70000)


@pytest.mark.parametrize(
    ("host_header", "expected"),
    [
        ("127.0.0.1:8100", b"HTTP/1.1 200 "),
        ("localhost:8100", b"HTTP/1.1 200 "),
        ("LOCALHOST", b"HTTP/1.1 200 "),
        ("[::1]:8100", b"HTTP/1.1 200 "),
        ("attacker.example:8100", b"HTTP/1.1 403 "),
        ("192.168.1.5", b"HTTP/1.1 403 "),
    ],
)
def test_a_loopback_console_only_answers_loopback_host_names(
    fake_agent: FakeAgent, host_header: str, expected: bytes
) -> None:
    async def run() -> bytes:
        handle = await start_console(ConsoleSettings(port=0), fake_agent)
        try:
            request = f"GET /api/v1/status HTTP/1.1\r\nHost: {host_header}\r\n\r\n"
            return await raw_exchange(handle.port, request.encode())
        finally:
            await handle.close()

    answer = asyncio.run(run())
    assert answer.startswith(expected)
    assert (b"agent-test-1" in answer) == (expected == b"HTTP/1.1 200 ")


def test_a_console_bound_beyond_loopback_answers_any_host_name(fake_agent: FakeAgent) -> None:
    async def run() -> bytes:
        settings = ConsoleSettings(host="0.0.0.0", port=0, token="t" * 16)
        handle = await start_console(settings, fake_agent)
        try:
            request = b"GET /healthz HTTP/1.1\r\nHost: agent7.lab.example:8100\r\n\r\n"
            return await raw_exchange(handle.port, request)
        finally:
            await handle.close()

    assert asyncio.run(run()).startswith(b"HTTP/1.1 200 ")
