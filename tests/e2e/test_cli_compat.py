"""The 0.8.17 command line (``start [PIPE_ID|FILE.yaml]...``, ``-V``, ``list``, ``status PIPE``,
``stop PIPE...``) and ``--home``/``--config``, run as processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_process import ForegroundAgent, static_config

from cli_support import agent_command
from fustor_agent.lock import running_pid

LEGACY_A = """
sources:
  files: {driver: static, uri: /data, driver_params: {paths: [/a]}}
senders:
  out: {driver: echo, driver_params: {format: json, output: OUT}}
pipes:
  a1: {source: files, sender: out}
  a2: {source: files, sender: out}
"""
LEGACY_B = """
pipes:
  b1: {source: files, sender: out}
"""


@pytest.fixture
def home(fustor_home: Path) -> Iterator[Path]:
    """FUSTOR_HOME; whatever a failing test leaves running is killed."""
    yield fustor_home
    pid = running_pid(fustor_home / "agent.pid")
    if pid and pid > 0:
        os.kill(pid, signal.SIGKILL)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [agent_command(), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _legacy_home(home: Path, out: Path) -> None:
    (home / "agent-config").mkdir()
    (home / "agent-config" / "a.yaml").write_text(LEGACY_A.replace("OUT", str(out)))
    (home / "agent-config" / "b.yaml").write_text(LEGACY_B)


def _states(status: dict) -> dict[str, str]:
    return {p["id"]: p["state"] for p in status["pipes"]}


def test_list_shows_the_pipes_of_the_config_with_their_file(run_cli, home, tmp_path):
    _legacy_home(home, tmp_path / "out.jsonl")
    text = run_cli("list")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["PIPE", "SOURCE", "SENDER", "ENABLED", "FILE"]
    assert lines[1].split() == [
        "a1",
        "files",
        "(static)",
        "out",
        "(echo)",
        "yes",
        "agent-config/a.yaml",
    ]
    rows = json.loads(run_cli("list", "--json").stdout)
    assert [(r["id"], r["file"]) for r in rows] == [
        ("a1", "agent-config/a.yaml"),
        ("a2", "agent-config/a.yaml"),
        ("b1", "agent-config/b.yaml"),
    ]


def test_start_pipe_ids_runs_only_those_and_stop_pipe_stops_only_that(home, tmp_path):
    (home / "agent-config.yaml").write_text(static_config(tmp_path / "o.jsonl", "p1", "p2", "p3"))
    agent = ForegroundAgent(home, "p1", "p2", stderr_path=tmp_path / "err")
    try:
        status = agent.wait_running("p1", "p2")
        assert _states(status) == {"p1": "running", "p2": "running", "p3": "stopped"}
        p3 = next(p for p in status["pipes"] if p["id"] == "p3")
        assert p3["not_ready_reason"] == "not selected at start"

        one = agent.cli("status", "p2", "--json")
        assert one.returncode == 0, one.stderr
        assert [p["id"] for p in json.loads(one.stdout)["pipes"]] == ["p2"]
        text = agent.cli("status", "p2")
        assert "p2" in text.stdout and "p1 " not in text.stdout
        missing = agent.cli("status", "nope")
        assert missing.returncode == 78  # as start and stop of an unknown pipe
        assert missing.stderr == "error: the running agent has no pipe 'nope' (pipes: p1, p2, p3)\n"

        stop = agent.cli("stop", "p1")
        assert (stop.returncode, stop.stdout) == (0, "stopped: p1\n"), stop.stderr
        assert _states(agent.status()) == {"p1": "stopped", "p2": "running", "p3": "stopped"}
        assert agent.proc.poll() is None

        # start PIPE with an agent running starts it in that agent (p3 was not selected).
        start = agent.cli("start", "p1", "p3")
        assert (start.returncode, start.stdout) == (0, "started: p1, p3\n"), start.stderr
        agent.wait_running("p1", "p2", "p3")

        unknown = agent.cli("stop", "p9")
        assert unknown.returncode == 78
        assert unknown.stderr == "error: not in the configuration: 'p9' (pipes: p1, p2, p3)\n"
    finally:
        assert agent.stop() == 0


def test_start_with_an_unknown_pipe_id_is_a_config_error(run_cli, home, tmp_path):
    (home / "agent-config.yaml").write_text(static_config(tmp_path / "o.jsonl", "p1"))
    result = run_cli("start", "p7")
    assert result.returncode == 78
    assert result.stderr == "error: pipe 'p7' is not in the configuration (pipes: p1)\n"
    assert running_pid(home / "agent.pid") is None


def test_start_file_yaml_runs_the_pipes_of_that_legacy_file(run_cli, home, tmp_path):
    _legacy_home(home, tmp_path / "out.jsonl")
    assert run_cli("start", "-D", "b.yaml").returncode == 0
    status = json.loads(run_cli("status", "--json").stdout)
    assert _states(status)["b1"] in ("starting", "running")
    assert _states(status)["a1"] == _states(status)["a2"] == "stopped"
    assert run_cli("stop").returncode == 0
    wrong = run_cli("start", "c.yaml")
    assert wrong.returncode == 78
    assert (
        "no pipe of the configuration is defined in c.yaml (files with pipes: a.yaml, b.yaml)"
        in (wrong.stderr)
    )


def test_plain_start_runs_the_pipes_of_default_yaml_as_0817_did(run_cli, home, tmp_path):
    """0.8.17's ``start`` with no argument ran the pipes of ``agent-config/default.yaml``
    only; the other files' pipes ran when named (``start set2.yaml``)."""
    (home / "agent-config").mkdir()
    default = LEGACY_A.replace("OUT", str(tmp_path / "out.jsonl"))
    (home / "agent-config" / "default.yaml").write_text(default)
    (home / "agent-config" / "set2.yaml").write_text(LEGACY_B)
    assert run_cli("start", "-D").returncode == 0
    try:
        status = json.loads(run_cli("status", "--json").stdout)
        assert _states(status)["a1"] in ("starting", "running")
        assert _states(status)["a2"] in ("starting", "running")
        assert _states(status)["b1"] == "stopped"
        b1 = next(p for p in status["pipes"] if p["id"] == "b1")
        assert b1["not_ready_reason"] == "not selected at start"
        log = (home / "logs" / "agent.log").read_text()
        assert (
            "0.8.17 layout: a plain start runs the pipes of default.yaml only (a1, a2); not "
            "started: b1 (set2.yaml) (name them: fustor-agent start FILE.yaml or PIPE_ID)"
        ) in log
        # A pipe added to default.yaml starts on reload; one added to set2.yaml does not.
        (home / "agent-config" / "default.yaml").write_text(
            default + "  a3: {source: files, sender: out}\n"
        )
        (home / "agent-config" / "set2.yaml").write_text(
            LEGACY_B + "  b2: {source: files, sender: out}\n"
        )
        reload = run_cli("reload")
        assert reload.returncode == 0, reload.stderr
        states = _states(json.loads(run_cli("status", "--json").stdout))
        assert states["a3"] in ("starting", "running") and states["b2"] == "stopped", states
        started = run_cli("start", "set2.yaml")  # into the running agent
        assert (started.returncode, started.stdout) == (0, "started: b1, b2\n"), started.stderr
    finally:
        assert run_cli("stop").returncode == 0
    # Without a default.yaml (as in the test above), a plain start runs every pipe.
    (home / "agent-config" / "default.yaml").rename(home / "agent-config" / "a.yaml")
    assert run_cli("start", "-D").returncode == 0
    try:
        status = json.loads(run_cli("status", "--json").stdout)
        assert "stopped" not in _states(status).values(), status
    finally:
        assert run_cli("stop").returncode == 0


def test_start_file_yaml_outside_the_home_is_the_config(home, tmp_path):
    elsewhere = tmp_path / "candidate.yaml"
    elsewhere.write_text(static_config(tmp_path / "o.jsonl", "from-file"))
    agent = ForegroundAgent(home, str(elsewhere), stderr_path=tmp_path / "err")
    try:
        status = agent.wait_running("from-file")
        assert status["config_path"] == str(elsewhere)
    finally:
        assert agent.stop() == 0


def test_verbose_logs_debug_lines(home, tmp_path):
    (home / "agent-config.yaml").write_text(static_config(tmp_path / "o.jsonl", "p1"))
    agent = ForegroundAgent(home, "-V", stderr_path=tmp_path / "err")
    try:
        agent.wait_running("p1")
    finally:
        assert agent.stop() == 0
    log = (home / "logs" / "agent.log").read_text()
    assert " DEBUG " in log and " INFO " in log


@pytest.mark.parametrize("flag", ["--no-console-log", "--no-stderr-log"])
def test_the_0817_no_console_log_flag_keeps_the_log_off_stderr(home, tmp_path, flag):
    """0.8.17 started its daemon as ``start --no-console-log``; scripts may too."""
    (home / "agent-config.yaml").write_text(static_config(tmp_path / "o.jsonl", "p1"))
    agent = ForegroundAgent(home, flag, stderr_path=tmp_path / "err")
    try:
        agent.wait_running("p1")
    finally:
        assert agent.stop() == 0
    assert " INFO " in (home / "logs" / "agent.log").read_text()
    assert (tmp_path / "err").read_text() == ""


def test_home_and_config_options_and_their_variables(tmp_path):
    """Two agents on one host: one by --home, one by FUSTOR_HOME; configs from elsewhere."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "one.yaml").write_text(static_config(tmp_path / "1.jsonl", "one"))
    (etc / "two.yaml").write_text(static_config(tmp_path / "2.jsonl", "two"))
    h1, h2 = tmp_path / "h1", tmp_path / "h2"
    clean = {k: v for k, v in os.environ.items() if k not in ("FUSTOR_HOME", "FUSTOR_CONFIG")}
    env2 = {**clean, "FUSTOR_HOME": str(h2), "FUSTOR_CONFIG": str(etc / "two.yaml")}
    try:
        first = _run("start", "-D", "--home", str(h1), "--config", str(etc / "one.yaml"), env=clean)
        assert first.returncode == 0, first.stderr
        second = _run("--home", str(h2), "start", "-D", env=env2)
        assert second.returncode == 0, second.stderr
        s1 = json.loads(_run("--home", str(h1), "status", "--json", env=clean).stdout)
        s2 = json.loads(_run("status", "--json", env=env2).stdout)
        assert (s1["config_path"], [p["id"] for p in s1["pipes"]]) == (
            str(etc / "one.yaml"),
            ["one"],
        )
        assert (s2["config_path"], [p["id"] for p in s2["pipes"]]) == (
            str(etc / "two.yaml"),
            ["two"],
        )
        listed = _run("list", "--config", str(etc / "two.yaml"), env=clean)
        assert listed.stdout.splitlines()[1].split()[0] == "two"
    finally:
        assert _run("stop", "--home", str(h1), env=clean).returncode == 0
        assert _run("stop", env=env2).returncode == 0


def test_validate_path_checks_a_candidate_without_touching_the_live_one(run_cli, home, tmp_path):
    (home / "agent-config.yaml").write_text(static_config(tmp_path / "o.jsonl", "live"))
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(
        textwrap.dedent("""
        sources: [{id: s, type: static, config: {uri: /d, driver_params: {paths: [/a]}}}]
        senders: [{id: out, type: echo}]
        pipes: [{id: p, source_id: s, sender_id: nowhere}]
        """)
    )
    bad = run_cli("validate", str(candidate))
    assert bad.returncode == 78
    assert bad.stderr == (
        f"error: {candidate}: line 4: pipes[0].sender_id: unknown sender 'nowhere' (defined: out)\n"
    )
    assert run_cli("validate").returncode == 0
    missing = run_cli("validate", str(tmp_path / "nope.yaml"))
    assert (missing.returncode, missing.stderr) == (
        78,
        f"error: {tmp_path / 'nope.yaml'}: no such file or directory\n",
    )


def test_a_section_without_its_list_dash_is_not_read_as_the_old_layout(run_cli, tmp_path):
    """``sources: {id: s}`` is one entry of our layout missing its ``-``: "must be a list",
    not the 0.8.17 reading's "sources.id: must be a mapping"; a real 0.8.17 file's errors
    name the file by its full path, like every other error."""
    for name, text, error in (
        ("ours.yaml", "sources: {id: s, type: fs}\n", "line 1: sources: must be a list"),
        ("old.yaml", "pipes: {a: 1}\n", "line 1: pipes.a: must be a mapping"),
        # An old entry may be named "id": its value is a mapping, so this is the old layout.
        (
            "old-id.yaml",
            "sources: {id: {driver: fs}}\n",
            "line 1: sources.id.uri: missing required key",
        ),
    ):
        path = tmp_path / name
        path.write_text(text)
        result = run_cli("validate", str(path))
        assert (result.returncode, result.stderr) == (78, f"error: {path}: {error}\n")


def test_start_of_a_missing_file_yaml_names_it(run_cli, fustor_home):
    """Not "no configuration: neither agent-config.yaml nor ...": the file typed is missing."""
    fustor_home.mkdir(exist_ok=True)
    result = run_cli("start", "typo.yaml")
    assert (result.returncode, result.stderr) == (
        78,
        f"error: typo.yaml: no such file, nor {fustor_home / 'agent-config' / 'typo.yaml'}\n",
    )
