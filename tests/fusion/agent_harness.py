"""Run our ``fustor-agent`` as a process (fs source → fusion sender) against a test Fusion."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from fusion_harness import AGENT_KEY, FusionServer

__all__ = ["AgentProcess", "agent_executable"]


def agent_executable() -> Path:
    """``fustor-agent`` of the environment running the tests (the workspace, editable)."""
    exe = Path(sys.executable).parent / "fustor-agent"
    if not exe.exists():
        raise AssertionError(f"{exe} not found: install packages/fustor-agent in this environment")
    return exe


@dataclass
class AgentProcess:
    """One agent with its own ``FUSTOR_HOME``; ``start()`` may be called again after a stop."""

    home: Path
    root: Path
    fusion: FusionServer
    pipe: dict[str, Any] = field(default_factory=dict)
    source_params: dict[str, Any] = field(default_factory=dict)
    sender_params: dict[str, Any] = field(default_factory=dict)
    command_prefix: list[str] = field(default_factory=list)
    """Put before the agent's command (e.g. ``setpriv`` to drop capabilities)."""
    console: dict[str, Any] = field(default_factory=lambda: {"enabled": False})
    """The ``console:`` block (off unless a test needs the status API or /metrics)."""
    process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        config = {
            "sources": [
                {
                    "id": "files",
                    "type": "fs",
                    "config": {"uri": str(self.root), "driver_params": self.source_params},
                }
            ],
            "senders": [
                {
                    "id": "to-fusion",
                    "type": "fusion",
                    "config": {
                        "endpoint": self.fusion.endpoint,
                        "credential": "${FUSION_KEY}",
                        "driver_params": {"trust_env": False, **self.sender_params},
                    },
                }
            ],
            "pipes": [
                {"id": "research", "source_id": "files", "sender_id": "to-fusion", **self.pipe}
            ],
            "console": self.console,
        }
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "agent-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (self.home / ".env").write_text(f"FUSION_KEY={AGENT_KEY}\n")

    def start(self) -> None:
        self.write_config()
        env = {**os.environ, "FUSTOR_HOME": str(self.home)}
        out = open(self.home / "agent-stdout.log", "ab")
        self.process = subprocess.Popen(
            [*self.command_prefix, str(agent_executable()), "start"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        out.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Signal the process this object started (by its PID) and wait for it."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
            raise AssertionError(
                f"agent did not stop within {timeout}s:\n{self.log_tail()}"
            ) from None

    @property
    def agent_id(self) -> str:
        return (self.home / "agent.id").read_text().strip()

    def log_tail(self, lines: int = 60) -> str:
        texts = []
        for path in (self.home / "agent-stdout.log", self.home / "logs" / "agent.log"):
            if path.exists():
                texts.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n---\n".join(texts)
