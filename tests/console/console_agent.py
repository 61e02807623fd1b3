"""The installed ``fustor-agent`` command run as a user would, with its console on a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from cli_support import agent_command
from ports import free_port

__all__ = ["RunningAgent", "free_port", "running_agent", "wait_for"]

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Poll ``probe`` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result not in (None, False):
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@dataclass
class RunningAgent:
    proc: subprocess.Popen[bytes]
    home: Path
    port: int
    stderr_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5)

    def stderr(self) -> str:
        return self.stderr_file.read_text(errors="replace")


@contextlib.contextmanager
def running_agent(tmp_path: Path, config: dict[str, Any]) -> Iterator[RunningAgent]:
    """Start ``fustor-agent start`` on ``config`` (console on a free port) and stop it after."""
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    config = {**config, "console": {"host": "127.0.0.1", "port": port}}
    (home / "agent-config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "FUSTOR_HOME": str(home)}
    # A file, not a pipe: a full pipe would block the agent's logging.
    stderr = (tmp_path / "agent.stderr").open("wb")
    proc = subprocess.Popen(
        [agent_command(), "start"], env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp_path
    )
    agent = RunningAgent(proc, home, port, tmp_path / "agent.stderr")
    try:

        def console_up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"agent exited with {proc.returncode}: {agent.stderr()}")
            try:
                return agent.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(console_up, "the console to answer /healthz")
        yield agent
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        stderr.close()
