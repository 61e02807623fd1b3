"""The instance lock, the control socket and the home paths, without a whole agent."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from fustor_agent import control
from fustor_agent.home import Home
from fustor_agent.lock import AlreadyRunning, InstanceLock, running_pid
from fustor_core import FustorError


def test_lock_is_exclusive_and_names_the_holder(tmp_path):
    pid_file = tmp_path / "agent.pid"
    assert running_pid(pid_file) is None
    lock = InstanceLock(pid_file).acquire()
    try:
        assert running_pid(pid_file) == os.getpid()
        with pytest.raises(AlreadyRunning, match=rf"\(pid {os.getpid()}\)"):
            InstanceLock(pid_file).acquire()
    finally:
        lock.release()
    assert running_pid(pid_file) is None
    InstanceLock(pid_file).acquire().release()  # free again


def test_a_stale_pid_file_does_not_count_as_running(tmp_path):
    pid_file = tmp_path / "agent.pid"
    pid_file.write_text("999999\n")
    assert running_pid(pid_file) is None
    InstanceLock(pid_file).acquire().release()


def test_control_socket_round_trip(tmp_path):
    path = tmp_path / "agent.sock"

    async def handler(request: dict) -> dict:
        return {"echo": request.get("cmd")}

    async def main() -> dict:
        server = await control.serve(path, handler)
        try:
            assert oct(path.stat().st_mode & 0o777) == "0o600"
            return await asyncio.to_thread(control.request, path, {"cmd": "status"})
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(main()) == {"echo": "status"}
    with pytest.raises(control.NotRunning):
        control.request(tmp_path / "nothing.sock", {"cmd": "status"})


def test_deep_home_gets_a_short_socket_path(tmp_path):
    deep = Home(tmp_path / ("x" * 120))
    assert len(os.fsencode(deep.control_socket)) < 108
    assert deep.control_socket == Home(tmp_path / ("x" * 120)).control_socket
    assert Home(Path("/h")).control_socket == Path("/h/run/agent.sock")


def test_agent_id_is_created_once_and_reused(tmp_path):
    home = Home(tmp_path)
    first = home.agent_id()
    assert first and home.agent_id_file.read_text().strip() == first
    assert Home(tmp_path).agent_id() == first


def test_an_agent_that_does_not_answer_is_a_clear_error(tmp_path):
    path = tmp_path / "agent.sock"

    async def main() -> None:
        release = asyncio.Event()
        handlers: list[asyncio.Task] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handlers.append(asyncio.current_task())  # type: ignore[arg-type]
            await release.wait()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_unix_server(silent, path=str(path))
        try:
            with pytest.raises(FustorError, match="did not answer"):
                await asyncio.to_thread(control.request, path, {"cmd": "status"}, 0.3)
        finally:
            release.set()
            await asyncio.gather(*handlers, return_exceptions=True)
            server.close()
            await server.wait_closed()

    asyncio.run(main())
