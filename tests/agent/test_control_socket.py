"""The control socket is private: made owner-only in a directory of its own user, and neither
the agent nor the CLI uses a socket or directory that belongs to someone else."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from fustor_agent import control
from fustor_agent.home import Home
from fustor_core import ConfigError

NOBODY = 65534


@pytest.fixture
def make_foreign(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Give ``path`` to another user: really (chown) as root, else by changing who we are."""

    def give_away(path: Path) -> None:
        if os.geteuid() == 0:
            os.lchown(path, NOBODY, NOBODY)
        else:
            real = os.geteuid()
            monkeypatch.setattr(control.os, "geteuid", lambda: real + 1)

    return give_away


async def _answer(request: dict) -> dict:
    return {"echo": request.get("cmd")}


def _serve_and_ask(path: Path) -> dict:
    async def main() -> dict:
        server = await control.serve(path, _answer)
        try:
            return await asyncio.to_thread(control.request, path, {"cmd": "ping"})
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(main())


def _bound_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen()
    return sock


def test_socket_is_owner_only_in_a_private_directory_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "home" / "run" / "agent.sock"
    modes: dict[str, int] = {}

    async def main() -> None:
        old = os.umask(0)  # the most permissive umask a service manager could hand us
        try:
            server = await control.serve(path, _answer)
        finally:
            os.umask(old)
        modes["socket"] = stat.S_IMODE(os.lstat(path).st_mode)
        modes["dir"] = stat.S_IMODE(os.lstat(path.parent).st_mode)
        modes["home"] = stat.S_IMODE(os.lstat(path.parent.parent).st_mode)
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert modes == {"socket": 0o600, "dir": 0o700, "home": 0o700}


def test_a_group_or_world_writable_directory_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o777)
    with pytest.raises(control.UnsafePath, match=r"writable by other users \(mode 0777\)"):
        _serve_and_ask(run / "agent.sock")
    assert not (run / "agent.sock").exists()


def test_a_directory_of_another_user_is_refused(tmp_path: Path, make_foreign) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    make_foreign(run)
    with pytest.raises(control.UnsafePath, match="belongs to uid"):
        _serve_and_ask(run / "agent.sock")


def test_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "run").symlink_to(elsewhere)
    with pytest.raises(control.UnsafePath, match="not a directory"):
        _serve_and_ask(tmp_path / "run" / "agent.sock")


def test_the_agent_never_unlinks_a_socket_of_someone_else(tmp_path: Path, make_foreign) -> None:
    path = tmp_path / "agent.sock"
    planted = _bound_socket(path)
    try:
        make_foreign(path)
        with pytest.raises(control.UnsafePath, match="left alone"):
            _serve_and_ask(path)
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        control.remove_socket(path)  # at shutdown too
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    finally:
        planted.close()


def test_a_regular_file_in_place_of_the_socket_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    path.write_text("not a socket")
    with pytest.raises(control.UnsafePath, match="not a socket"):
        _serve_and_ask(path)
    assert path.read_text() == "not a socket"


def test_the_cli_never_connects_to_a_socket_of_someone_else(tmp_path: Path, make_foreign) -> None:
    path = tmp_path / "agent.sock"
    planted = _bound_socket(path)
    try:
        make_foreign(path)
        with pytest.raises(control.UnsafePath, match="not connecting"):
            control.request(path, {"cmd": "status"}, timeout=1)
        planted.settimeout(0.2)
        with pytest.raises(TimeoutError):
            planted.accept()  # nobody came
    finally:
        planted.close()


def test_a_stale_socket_of_our_own_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    _bound_socket(path).close()  # a dead agent's socket: the file stays
    assert _serve_and_ask(path) == {"echo": "ping"}


def test_a_deep_home_uses_a_private_runtime_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short_dir: Callable[[str], Path]
) -> None:
    deep = Home(tmp_path / ("x" * 120))
    runtime = short_dir("xdg-")
    runtime.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert deep.control_socket.parent.parent == runtime / "fustor-agent"
    assert _serve_and_ask(deep.control_socket) == {"echo": "ping"}
    assert stat.S_IMODE(os.lstat(deep.control_socket.parent).st_mode) == 0o700

    monkeypatch.delenv("XDG_RUNTIME_DIR")
    fallback = deep.control_socket
    assert fallback.parent.parent.name == f"fustor-agent-{os.geteuid()}"
    assert len(os.fsencode(fallback)) < 108

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / ("r" * 90)))  # too deep itself
    assert deep.control_socket == fallback


def test_a_deep_home_spelt_another_way_finds_the_same_socket(tmp_path: Path) -> None:
    """start, status and stop may name the home through '..' or a symlink."""
    deep = tmp_path / ("x" * 120)
    deep.mkdir()
    (tmp_path / "short").symlink_to(deep)
    socket_path = Home(deep).control_socket
    assert Home(deep / ".." / deep.name).control_socket == socket_path
    assert Home(tmp_path / "short").control_socket == socket_path


def test_no_control_socket_path_that_fits_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / ("t" * 100)))
    with pytest.raises(ConfigError, match="set XDG_RUNTIME_DIR or TMPDIR to a shorter") as err:
        _ = Home(tmp_path / ("x" * 120)).control_socket
    assert "\n" not in str(err.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant another user's socket")
def test_root_talks_to_another_users_agent_only_in_that_users_home(
    short_dir: Callable[[str], Path],
) -> None:
    # The deep-home fallback is a predictable name in a shared temporary directory: another
    # user may plant a socket there, and root must not take it for its own agent's.
    tmp_path = short_dir("ctl-")
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    planted_dir = shared / "fustor-agent-0" / "0123456789abcdef"
    planted_dir.mkdir(parents=True, mode=0o700)
    home = tmp_path / "home-of-nobody"
    (home / "run").mkdir(parents=True, mode=0o700)
    sockets = []
    for directory in (planted_dir, home / "run"):
        sockets.append(_bound_socket(directory / "agent.sock"))
        for owned in (directory / "agent.sock", directory, directory.parent):
            os.lchown(owned, NOBODY, NOBODY)
    try:
        with pytest.raises(control.UnsafePath, match="not in a home of that user"):
            control.request(planted_dir / "agent.sock", {"cmd": "status"}, timeout=1)
        control._connect(home / "run" / "agent.sock", 1).close()  # nobody's own home: fine
    finally:
        for sock in sockets:
            sock.close()
