"""systemd integration: sd_notify messages on a socket the test binds, and the shipped unit."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_process import ForegroundAgent, static_config, wait_for

from cli_support import agent_command


class NotifySocket:
    """A unix datagram socket standing in for systemd's ``$NOTIFY_SOCKET``; a thread reads it
    as systemd would (the kernel queues only a few datagrams)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[set[str]] = []
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append(set(data.decode().splitlines()))

    def close(self) -> None:
        self._done.set()
        self._reader.join()
        self.sock.close()

    def drain(self) -> list[set[str]]:
        return list(self.messages)

    def has(self, field: str) -> bool:
        return any(field in message for message in self.drain())

    def index(self, field: str, after: int = -1) -> int:
        return next(i for i, m in enumerate(self.drain()) if field in m and i > after)


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def test_ready_watchdog_reloading_and_stopping_reach_the_notify_socket(
    fustor_home: Path, tmp_path: Path, notify: NotifySocket
) -> None:
    (fustor_home / "agent-config.yaml").write_text(static_config(tmp_path / "o.jsonl", "p1"))
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"}
    agent = ForegroundAgent(fustor_home, stderr_path=tmp_path / "err", env=env)
    try:
        wait_for(lambda: notify.has("READY=1"), what="READY=1")
        # READY=1 comes once the pipes are started: status already shows them.
        status = agent.status()
        assert status is not None and status["pipes"][0]["state"] in ("starting", "running")
        ready = notify.index("READY=1")
        assert f"MAINPID={agent.proc.pid}" in notify.messages[ready]

        # The watchdog is pinged from the event loop, every WATCHDOG_USEC / 2.
        before = sum("WATCHDOG=1" in m for m in notify.drain())
        time.sleep(1.0)
        pings = sum("WATCHDOG=1" in m for m in notify.drain()) - before
        assert 3 <= pings <= 8, pings

        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: notify.has("RELOADING=1"), what="RELOADING=1")
        reloading = notify.index("RELOADING=1")
        assert any(f.startswith("MONOTONIC_USEC=") for f in notify.messages[reloading])
        wait_for(lambda: any("READY=1" in m for m in notify.drain()[reloading:]), what="READY")
    finally:
        assert agent.stop() == 0
    assert notify.has("STOPPING=1")
    assert notify.index("STOPPING=1") > reloading


def test_no_watchdog_pings_without_watchdog_usec(
    fustor_home: Path, tmp_path: Path, notify: NotifySocket
) -> None:
    (fustor_home / "agent-config.yaml").write_text(static_config(tmp_path / "o.jsonl", "p1"))
    agent = ForegroundAgent(
        fustor_home, stderr_path=tmp_path / "err", env={"NOTIFY_SOCKET": str(notify.path)}
    )
    try:
        wait_for(lambda: notify.has("READY=1"), what="READY=1")
        time.sleep(0.5)
    finally:
        assert agent.stop() == 0
    assert not notify.has("WATCHDOG=1")


def test_systemd_unit_is_printed_for_this_installation(run_cli) -> None:
    result = run_cli("systemd-unit", "--home", "/srv/fustor", "--config", "/etc/fustor/a.yaml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for expected in (
        "Type=notify",
        "NotifyAccess=main",
        "RestartPreventExitStatus=2 78",
        "Environment=FUSTOR_HOME=/srv/fustor",
        f"ExecStart={agent_command()} start --config /etc/fustor/a.yaml",
        f"ExecReload={agent_command()} reload",
    ):
        assert expected in lines, expected
    assert any(line.startswith("WatchdogSec=") for line in lines)
    assert "/opt/fustor-agent" not in result.stdout
    # The user's own primary group: a Group= named after the user does not always exist
    # (nobody's group is nogroup on Debian; systemd would fail with 216/GROUP).
    nobody = run_cli("systemd-unit", "--user", "nobody").stdout.splitlines()
    assert "User=nobody" in nobody
    assert not [line for line in nobody if line.startswith("Group=")]


def test_systemd_unit_quotes_odd_paths_and_refuses_relative_ones(run_cli) -> None:
    """A blank would cut ``Environment=`` short, ``%`` is a systemd specifier and ``$`` a
    variable in ``ExecStart``; a relative path would resolve in / under systemd."""
    result = run_cli("systemd-unit", "--home", "/srv/my home/100%", "--config", "/etc/a $x.yaml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert 'Environment="FUSTOR_HOME=/srv/my home/100%%"' in lines
    assert f'ExecStart={agent_command()} start --config "/etc/a $$x.yaml"' in lines
    for args, error in (
        (
            ("--home", "./h"),
            "--home './h' is relative; write the absolute path (from the current directory "
            f"it would be '{Path.cwd() / 'h'}'; under systemd, '/h')",
        ),
        (("--config", "a.yaml"), "--config 'a.yaml' is relative"),
        (
            ("--home", "/srv/a\nExecStartPre=/bin/true"),
            "--home '/srv/a\\nExecStartPre=/bin/true' holds a control character",
        ),
        (
            ("--config", "/etc/a.yaml\nExecStartPre=/x"),
            "--config '/etc/a.yaml\\nExecStartPre=/x' holds a control character",
        ),
        (("--user", "bob smith"), "--user 'bob smith' is not a user name systemd accepts"),
        (("--home", ""), "--home '' is relative"),
    ):
        result = run_cli("systemd-unit", *args)
        assert result.returncode == 78 and result.stderr.startswith(f"error: {error}"), result


def test_systemd_unit_takes_home_and_config_given_before_the_command(run_cli) -> None:
    """``--home`` and ``--config`` go before or after any command name (operations.md):
    the unit must not silently fall back to /var/lib/fustor."""
    result = run_cli("--home", "/srv/g", "--config", "/etc/g.yaml", "systemd-unit")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Environment=FUSTOR_HOME=/srv/g" in lines
    assert f"ExecStart={agent_command()} start --config /etc/g.yaml" in lines
    after = run_cli("--home", "/srv/g", "systemd-unit", "--home", "/srv/h").stdout.splitlines()
    assert "Environment=FUSTOR_HOME=/srv/h" in after  # the command's own option wins
