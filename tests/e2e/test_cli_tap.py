"""``fustor-agent tap`` shows what the pipes send, and a slow tap never slows delivery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from cli_support import agent_command


def _wait(probe: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _json_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _rows(records: list[dict]) -> list[dict]:
    return [r for r in records if "row" in r]


class Agent:
    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.tree = tmp_path / "tree"
        self.echo = tmp_path / "echo.jsonl"
        self.home.mkdir()
        self.tree.mkdir()
        self.env = {**os.environ, "FUSTOR_HOME": str(self.home)}
        config = {
            "console": {"enabled": False},  # tap goes through the control socket only
            "sources": [{"id": "files", "type": "fs", "config": {"uri": str(self.tree)}}],
            "senders": [
                {
                    "id": "out",
                    "type": "echo",
                    "config": {"driver_params": {"format": "json", "output": str(self.echo)}},
                }
            ],
            "pipes": [{"id": "p1", "source_id": "files", "sender_id": "out"}],
        }
        (self.home / "agent-config.yaml").write_text(yaml.safe_dump(config))
        self.proc = subprocess.Popen(
            [agent_command(), "start", "--no-stderr-log"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # The leader audits right after its snapshot: wait for that too, so the tests start
        # on an idle pipe (a row of that audit must not land between a test's count of the
        # echo file and its tap connecting).
        _wait(
            lambda: any(r.get("signal") == "audit_end" for r in _json_lines(self.echo)),
            "the snapshot and the start-up audit to end",
        )

    def tap(self, *args: str, stdout: object, stderr: Path) -> subprocess.Popen[bytes]:
        with stderr.open("wb") as err:  # the child keeps its own copy
            proc = subprocess.Popen(
                [agent_command(), "tap", *args], env=self.env, stdout=stdout, stderr=err
            )
        _wait(lambda: "tap: " in stderr.read_text(), "the tap to connect")
        return proc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    running = Agent(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_tap_shows_exactly_what_the_echo_sender_got(agent: Agent, tmp_path: Path) -> None:
    out, err = tmp_path / "tap.jsonl", tmp_path / "tap.err"
    offset = len(_rows(_json_lines(agent.echo)))
    with out.open("wb") as stdout:
        tap = agent.tap("p1", "--format", "json", stdout=stdout, stderr=err)
        (agent.tree / "sub").mkdir()
        for i in range(20):
            (agent.tree / "sub" / f"f{i}.txt").write_text("x" * i)
        (agent.tree / "sub" / "f3.txt").unlink()
        (agent.tree / "last").write_text("end")

        def echoed() -> list[dict]:
            return _rows(_json_lines(agent.echo))[offset:]

        _wait(lambda: any(r["row"]["path"] == "/last" for r in echoed()), "the echo of /last")
        time.sleep(0.5)  # nothing else is coming: no audit, no further change
        expected = echoed()
        _wait(lambda: len(_json_lines(out)) >= len(expected), "the tap to catch up", 10)
        tap.send_signal(signal.SIGINT)
        assert tap.wait(timeout=10) == 130
    tapped = _json_lines(out)
    assert tapped == expected
    paths = {r["row"]["path"] for r in tapped}
    assert {"/sub", "/sub/f0.txt", "/sub/f19.txt", "/last"} <= paths, paths
    assert "rows not shown" not in err.read_text()


def test_text_format_and_limit(agent: Agent, tmp_path: Path) -> None:
    err = tmp_path / "tap.err"
    tap = agent.tap("--limit", "2", stdout=subprocess.PIPE, stderr=err)
    for i in range(5):
        (agent.tree / f"t{i}").write_text("y")
    stdout, _ = tap.communicate(timeout=30)
    assert tap.returncode == 0
    lines = stdout.decode().splitlines()
    assert len(lines) == 2 and all(line.startswith("[p1] realtime") for line in lines), lines
    assert "tap: every pipe" in err.read_text()


def test_a_stalled_tap_drops_for_itself_and_delivery_goes_on(agent: Agent, tmp_path: Path) -> None:
    err = tmp_path / "tap.err"
    # Nobody reads this tap's stdout: once the pipe and the socket are full, it stalls.
    tap = agent.tap("--format", "json", "--buffer-rows", "100", stdout=subprocess.PIPE, stderr=err)
    reader: threading.Thread | None = None
    try:
        offset = len(_rows(_json_lines(agent.echo)))
        files = 3000
        for i in range(files):
            (agent.tree / f"bulk{i:05d}").write_bytes(b"")
        (agent.tree / "last").write_text("end")

        def delivered() -> bool:
            paths = {r["row"]["path"] for r in _rows(_json_lines(agent.echo))[offset:]}
            return "/last" in paths and len(paths) >= files + 1

        _wait(delivered, "every change to reach the echo sender while the tap stalls", 60)
        assert tap.poll() is None
        # Read the tap again: past the rows it had kept, it reports what it dropped.
        assert tap.stdout is not None
        stdout = tap.stdout
        reader = threading.Thread(target=lambda: [None for _ in stdout], daemon=True)
        reader.start()
        _wait(lambda: "rows not shown" in err.read_text(), "the tap to report its losses")
        shown = err.read_text()
        dropped = int(shown.split("tap: ", 2)[2].split()[0])
        sent = len(_rows(_json_lines(agent.echo))[offset:])
        assert 0 < dropped < sent  # it kept some (its buffer), dropped only what it missed
    finally:
        tap.send_signal(signal.SIGINT)
        tap.wait(timeout=20)  # Ctrl-C ends it even while it is blocked writing
        if reader is not None:
            reader.join(10)  # the pipe is at its end once the tap exited
        assert tap.stdout is not None
        tap.stdout.close()


def test_tap_of_an_unknown_pipe_or_without_agent(agent: Agent, tmp_path: Path) -> None:
    result = subprocess.run(
        [agent_command(), "tap", "nope"], env=agent.env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: unknown pipe 'nope' (pipes: p1)"
    agent.stop()
    result = subprocess.run(
        [agent_command(), "tap"], env=agent.env, capture_output=True, text=True, timeout=30
    )
    home = agent.env["FUSTOR_HOME"]
    assert (result.returncode, result.stderr) == (
        1,
        f"error: not running (no agent answers for the home {home})\n",
    )


def test_a_tap_whose_reader_goes_away_ends_quietly(agent: Agent, tmp_path: Path) -> None:
    """``tap | head -2``: once the reader is gone the tap ends with 0, no traceback."""
    err = tmp_path / "tap.err"
    # Python's ordinary buffered stdout (PYTHONUNBUFFERED would hide the exit-time flush).
    agent.env = {k: v for k, v in agent.env.items() if k != "PYTHONUNBUFFERED"}
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as stdout:
        tap = agent.tap("--format", "json", stdout=stdout, stderr=err)
    with os.fdopen(read_fd, "rb") as reader:
        (agent.tree / "first").write_text("1")
        while b'"/first"' not in reader.readline():
            pass
    for i in range(50):  # rows into a pipe nobody reads any more
        (agent.tree / f"more{i}").write_text("x")
        if tap.poll() is not None:
            break
        time.sleep(0.05)
    assert tap.wait(timeout=20) == 0
    text = err.read_text()
    assert "Traceback" not in text and "BrokenPipeError" not in text, text


def test_a_tap_with_standard_output_closed_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "FUSTOR_HOME": str(tmp_path)}
    done = subprocess.run(
        ["sh", "-c", f'"{agent_command()}" tap >&-'],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "error: standard output is closed: nowhere to show the rows"


def test_a_tap_connected_while_the_agent_stops_leaves_no_error(
    agent: Agent, tmp_path: Path
) -> None:
    """``stop`` with a tap open: the tap says the agent stopped, the agent logs no error."""
    err = tmp_path / "tap.err"
    tap = agent.tap("--format", "json", stdout=subprocess.DEVNULL, stderr=err)
    stopped = subprocess.run(
        [agent_command(), "stop"], env=agent.env, capture_output=True, text=True, timeout=60
    )
    assert stopped.returncode == 0, stopped.stderr
    assert tap.wait(timeout=20) == 0
    assert "tap: the agent stopped" in err.read_text()
    log = (agent.home / "logs" / "agent.log").read_text()
    assert [line for line in log.splitlines() if " ERROR " in line] == []
    assert "Traceback" not in log and "meanwhile" not in stopped.stdout, stopped.stdout
