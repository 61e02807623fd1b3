"""The console port: optional unless configured, ``--console-port`` / ``--no-console``, and two
agents with different homes on one host (real processes; never assumes port 8100 is free)."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cli_support import agent_command
from fustor_agent.console import DEFAULT_CONSOLE_PORT
from ports import free_port


def _wait(probe: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def default_port_taken() -> Iterator[None]:
    """Port 8100 is in use while inside: by us, or already by someone else."""
    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", DEFAULT_CONSOLE_PORT))
        squatter.listen()
    except OSError as exc:
        assert exc.errno == errno.EADDRINUSE, exc
    try:
        yield
    finally:
        squatter.close()


class WatchAgent:
    """``fustor-agent start --watch DIR`` in its own home: the README's run command."""

    def __init__(self, tmp_path: Path, name: str, *extra: str) -> None:
        self.home = tmp_path / f"home-{name}"
        self.tree = tmp_path / f"tree-{name}"
        self.tree.mkdir()
        self.out = tmp_path / f"{name}.out"
        self.err = tmp_path / f"{name}.err"
        self.env = {**os.environ, "FUSTOR_HOME": str(self.home)}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [agent_command(), "start", "--watch", str(self.tree), *extra],
                env=self.env,
                stdout=out,
                stderr=err,
            )

    def prints(self, text: str) -> bool:
        assert self.proc.poll() is None, f"the agent exited: {self.err.read_text()}"
        return text in self.out.read_text()

    def status(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [agent_command(), "status"], env=self.env, capture_output=True, text=True, timeout=30
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Callable[..., WatchAgent]]:
    started: list[WatchAgent] = []

    def start(name: str, *extra: str) -> WatchAgent:
        started.append(WatchAgent(tmp_path, name, *extra))
        return started[-1]

    yield start
    for agent in started:
        agent.stop()


def test_two_agents_with_different_homes_both_run_by_default(agents) -> None:
    first, second = agents("a"), agents("b")
    for agent in (first, second):
        _wait(lambda a=agent: a.prints("snapshot_end"), "the snapshot")
        (agent.tree / "hello.txt").write_text("hi")
    for agent in (first, second):
        _wait(lambda a=agent: a.prints('"/hello.txt"'), "the new file")
        status = agent.status()
        assert status.returncode == 0 and "running" in status.stdout, status
    assert first.stop() == 0 and second.stop() == 0


def test_a_taken_default_port_costs_only_the_console(agents) -> None:
    with default_port_taken():
        agent = agents("solo")
        _wait(lambda: agent.prints("snapshot_end"), "the snapshot")
        warning = f"console port {DEFAULT_CONSOLE_PORT} on 127.0.0.1 is already in use"
        assert warning in agent.err.read_text()
        assert "running without the web console" in agent.err.read_text()
        assert agent.status().returncode == 0
    assert agent.stop() == 0


def test_console_port_option(agents) -> None:
    port = free_port()
    agent = agents("port", "--console-port", str(port))
    _wait(lambda: agent.prints("snapshot_end"), "the snapshot")
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    assert f"console: http://127.0.0.1:{port}/" in agent.status().stdout.splitlines()
    assert agent.stop() == 0


def test_status_names_the_port_a_console_on_port_0_got(agents) -> None:
    agent = agents("any", "--console-port", "0")
    _wait(lambda: agent.prints("snapshot_end"), "the snapshot")
    (line,) = [x for x in agent.status().stdout.splitlines() if x.startswith("console: ")]
    url = line.removeprefix("console: ")
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")
    assert httpx.get(url + "healthz").status_code == 200
    assert agent.stop() == 0


def test_an_explicit_port_in_use_is_an_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        (tmp_path / "tree").mkdir()
        result = subprocess.run(
            [
                agent_command(),
                "start",
                "--watch",
                str(tmp_path / "tree"),
                "--console-port",
                str(port),
            ],
            env={**os.environ, "FUSTOR_HOME": str(tmp_path / "home")},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"error: console port {port} on 127.0.0.1 is already in use" in result.stderr
    # In the file log too (helper 29: an empty agent.log after a failed start).
    log = (tmp_path / "home" / "logs" / "agent.log").read_text()
    assert f"ERROR fustor_agent.app: exiting: console port {port} on 127.0.0.1" in log, log


def test_no_console_option(agents) -> None:
    with default_port_taken():
        agent = agents("quiet", "--no-console")
        _wait(lambda: agent.prints("snapshot_end"), "the snapshot")
        log = agent.err.read_text()
        assert "fustor_agent.console" not in log and "already in use" not in log, log
        assert agent.status().returncode == 0
    assert agent.stop() == 0


def test_a_console_block_makes_the_console_wanted(tmp_path: Path) -> None:
    """With a console: block (even without a port) a taken port stops the start."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "agent-config.yaml").write_text(
        "console: {host: 127.0.0.1}\nsources: []\nsenders: []\npipes: []\n"
    )
    with default_port_taken():
        result = subprocess.run(
            [agent_command(), "start"],
            env={**os.environ, "FUSTOR_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"error: console port {DEFAULT_CONSOLE_PORT} on 127.0.0.1 is already in use" in (
        result.stderr
    )
