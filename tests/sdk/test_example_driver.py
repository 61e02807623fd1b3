"""The example third-party driver, pip-installed into a fresh venv like a user would install it.

One test, because building the venv is the slow part: it checks that the agent finds the
driver through its entry point, runs it through a pipe to the echo sender, and that the
example's own test suite (the SDK contract tests) passes where it is installed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "fustor-source-jsonl"
PACKAGES = [
    REPO / "packages" / "fustor-core",
    f"{REPO / 'packages' / 'fustor-agent-sdk'}[testing]",
    REPO / "packages" / "fustor-sender-echo",
    REPO / "packages" / "fustor-sender-http",
    REPO / "packages" / "fustor-agent",
    f"{EXAMPLE}[test]",
]


def _run(args: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,  # type: ignore[arg-type]
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _echo_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_example_driver_installs_is_discovered_runs_and_passes_the_contract(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    bin_dir = venv / "bin"
    _run([bin_dir / "python", "-m", "pip", "install", "--quiet", *PACKAGES])

    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "FUSTOR_HOME": str(home)}
    env.pop("VIRTUAL_ENV", None)

    plugins = _run([bin_dir / "fustor-agent", "plugins"], env=env).stdout
    assert "jsonl" in plugins, plugins

    catalogue = tmp_path / "catalogue"
    catalogue.mkdir()
    (catalogue / "tape.jsonl").write_text(
        json.dumps({"path": "/runs/a.h5", "size": 10, "mtime": 1767000000.0})
        + "\n"
        + json.dumps({"path": "/runs/b.h5", "size": 20, "mtime": 1767000001.0})
        + "\n"
    )
    output = tmp_path / "echo.jsonl"
    (home / "agent-config.yaml").write_text(
        f"""
sources:
  - id: tape
    type: jsonl
    config:
      uri: "{catalogue}"
      driver_params: {{poll_interval_sec: 0.05}}
senders:
  - id: out
    type: echo
    config:
      driver_params: {{format: json, output: "{output}"}}
pipes:
  - {{id: tape-to-echo, source_id: tape, sender_id: out, enabled: true}}
"""
    )
    agent = subprocess.Popen(
        [bin_dir / "fustor-agent", "start"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def snapshot_done() -> bool:
            return any(line.get("signal") == "snapshot_end" for line in _echo_lines(output))

        _wait_for(snapshot_done, 30, "the snapshot end in the echo output")
        rows = {
            (line["message_source"], line["row"]["path"])
            for line in _echo_lines(output)
            if "row" in line
        }
        assert {
            ("snapshot", "/"),
            ("snapshot", "/runs"),
            ("snapshot", "/runs/a.h5"),
            ("snapshot", "/runs/b.h5"),
        } <= rows

        with open(catalogue / "tape.jsonl", "a") as handle:
            handle.write(json.dumps({"path": "/runs/c.h5", "size": 30, "mtime": 1767000002.0}))
            handle.write("\n")

        def realtime_seen() -> bool:
            return any(
                line.get("message_source") == "realtime" and line["row"]["path"] == "/runs/c.h5"
                for line in _echo_lines(output)
            )

        _wait_for(realtime_seen, 15, "the appended line as a realtime row")
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            out, _ = agent.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            agent.kill()
            out, _ = agent.communicate()
    assert agent.returncode == 0, out[-3000:]

    result = subprocess.run(
        [bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", EXAMPLE / "tests"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout, result.stdout[-2000:]
