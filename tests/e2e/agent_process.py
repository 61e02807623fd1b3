"""A foreground ``fustor-agent start`` as a child process, for the e2e tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from cli_support import agent_command

__all__ = ["ForegroundAgent", "static_config", "wait_for"]


def static_config(out: Path, *pipe_ids: str, **top: Any) -> str:
    """The ``static`` source (paths /a, /b) → ``echo`` (JSON to ``out``) for each pipe id."""
    return yaml.safe_dump(
        {
            "sources": [
                {
                    "id": "files",
                    "type": "static",
                    "config": {"uri": "/data", "driver_params": {"paths": ["/a", "/b"]}},
                }
            ],
            "senders": [
                {
                    "id": "out",
                    "type": "echo",
                    "config": {"driver_params": {"format": "json", "output": str(out)}},
                }
            ],
            "pipes": [{"id": p, "source_id": "files", "sender_id": "out"} for p in pipe_ids],
            "console": {"enabled": False},
            **top,
        }
    )


def wait_for(predicate: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class ForegroundAgent:
    """``fustor-agent start ARGS`` with stderr in a file; stopped (and reaped) by ``stop()``."""

    def __init__(
        self, home: Path, *args: str, stderr_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.home = home
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [agent_command(), "start", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            env={**os.environ, "FUSTOR_HOME": str(home), **(env or {})},
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [agent_command(), *args],
            env={**os.environ, "FUSTOR_HOME": str(self.home)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def status(self) -> dict[str, Any] | None:
        result = self.cli("status", "--json")
        return json.loads(result.stdout) if result.returncode == 0 else None

    def wait_running(self, *pipe_ids: str) -> dict[str, Any]:
        def running() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"the agent exited: {self.stderr_path.read_text()}")
            status = self.status()
            states = {p["id"]: p["state"] for p in (status or {}).get("pipes", [])}
            ok = status is not None and all(states.get(p) == "running" for p in pipe_ids)
            return status if ok else None

        return wait_for(running, what=f"pipes {pipe_ids} running")

    def wait(self, timeout: float = 30.0) -> int:
        """The exit status of an agent expected to exit by itself."""
        code = self.proc.wait(timeout)
        self._stderr.close()
        return code

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._stderr.close()
        return code
