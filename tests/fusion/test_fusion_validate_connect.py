"""``validate --connect`` and the management-port diagnosis against the real Fusion 0.8.17."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from fusion_harness import AGENT_KEY, FusionServer

from cli_support import agent_command
from fustor_agent.lock import running_pid
from ports import free_port

pytestmark = pytest.mark.fusion


def _config(endpoint: str, credential: str = AGENT_KEY) -> str:
    return yaml.safe_dump(
        {
            "sources": [
                {
                    "id": "files",
                    "type": "static",
                    "config": {"uri": "/data", "driver_params": {"paths": ["/a"]}},
                }
            ],
            "senders": [
                {
                    "id": "to-fusion",
                    "type": "fusion",
                    "config": {
                        "endpoint": endpoint,
                        "credential": credential,
                        "driver_params": {"trust_env": False},
                    },
                }
            ],
            "pipes": [{"id": "p1", "source_id": "files", "sender_id": "to-fusion"}],
            "console": {"enabled": False},
        }
    )


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [agent_command(), *args],
        env={**os.environ, "FUSTOR_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _connect(home: Path, config: str) -> subprocess.CompletedProcess[str]:
    (home / "agent-config.yaml").write_text(config)
    return _run(home, "validate", "--connect")


def test_validate_connect_finds_each_connection_problem(fusion: FusionServer, tmp_path: Path):
    home = tmp_path / "h"
    home.mkdir()
    good = _connect(home, _config(fusion.endpoint))
    assert good.returncode == 0, good.stderr
    assert "pipe p1: sender to-fusion connected, no problem found" in good.stdout
    assert not (home / "state").exists()  # nothing of the check stays in the home

    wrong_key = _connect(home, _config(fusion.endpoint, credential="not-the-key"))
    assert wrong_key.returncode == 1
    assert wrong_key.stderr.startswith("error: pipe p1 (sender to-fusion): Fusion at ")
    assert "refused the API key (401" in wrong_key.stderr
    assert "not-the-key" not in wrong_key.stderr

    management = _connect(home, _config(fusion.api))
    assert management.returncode == 1
    assert f"{fusion.api} is Fusion's management port" in management.stderr
    assert "receivers.<id>.port" in management.stderr

    nobody = _connect(home, _config(f"http://127.0.0.1:{free_port()}"))
    assert nobody.returncode == 1
    assert "cannot reach Fusion at http://127.0.0.1:" in nobody.stderr
    assert all(line.startswith("error: ") for line in nobody.stderr.splitlines())


@pytest.mark.parametrize("fusion_options", [{"pipe_id": "p-other", "view_id": "research"}])
def test_validate_connect_reports_pipe_id_not_view_id(fusion: FusionServer, tmp_path: Path):
    home = tmp_path / "h"
    home.mkdir()
    result = _connect(home, _config(fusion.endpoint))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "drivers_handled: 0" in result.stderr
    assert "make the Fusion pipe id equal to its (first) view id" in result.stderr


def test_an_agent_on_the_management_port_says_so_in_status(fusion: FusionServer, tmp_path: Path):
    home = tmp_path / "h"
    home.mkdir()
    (home / "agent-config.yaml").write_text(_config(fusion.api))
    started = _run(home, "start", "-D")
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 30
        error = None
        while time.monotonic() < deadline and not error:
            status = json.loads(_run(home, "status", "--json").stdout)
            pipe = status["pipes"][0]
            error = (
                f"{(pipe.get('last_error') or {}).get('message')} {pipe.get('not_ready_reason')}"
            )
            error = error if error and "management port" in error else None
            time.sleep(0.2)
        # The session opens on that port, but the pipe is not ready, and says why.
        assert error and f"{fusion.api} is Fusion's management port" in error, status
        assert pipe["ready"] is False
    finally:
        if _run(home, "stop").returncode != 0:
            pid = running_pid(home / "agent.pid")
            if pid and pid > 0:
                os.kill(pid, signal.SIGKILL)
