"""Log level and format from the command line and the ``logging:`` block; journald mode."""

from __future__ import annotations

import json
import os
from pathlib import Path

from agent_process import ForegroundAgent, static_config


def _json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_json_log_lines_carry_timestamp_level_logger_message_and_pipe(fustor_home, tmp_path):
    (fustor_home / "agent-config.yaml").write_text(static_config(tmp_path / "o.jsonl", "p1"))
    agent = ForegroundAgent(fustor_home, "--log-format", "json", stderr_path=tmp_path / "err")
    try:
        agent.wait_running("p1")
    finally:
        assert agent.stop() == 0
    for source in (fustor_home / "logs" / "agent.log", tmp_path / "err"):
        entries = _json_lines(source)  # every line is one JSON object
        assert entries, source
        for entry in entries:
            assert {"timestamp", "level", "logger", "message"} <= entry.keys(), entry
            assert entry["timestamp"].endswith("Z") and "T" in entry["timestamp"]
        started = [e for e in entries if e["message"].startswith("pipe p1 started")]
        assert started and started[0]["pipe_id"] == "p1" and started[0]["level"] == "INFO"
        # Lines logged by the pipe's own tasks carry its id too.
        assert any(
            e.get("pipe_id") == "p1" and e["logger"].startswith("fustor_agent.runtime")
            for e in entries
        ), entries


def test_logging_block_of_the_config_and_the_command_line_winning(fustor_home, tmp_path):
    logging_block = {"logging": {"level": "DEBUG", "format": "json"}}
    (fustor_home / "agent-config.yaml").write_text(
        static_config(tmp_path / "o.jsonl", "p1", **logging_block)
    )
    agent = ForegroundAgent(fustor_home, stderr_path=tmp_path / "err1")
    try:
        agent.wait_running("p1")
    finally:
        assert agent.stop() == 0
    log = fustor_home / "logs" / "agent.log"
    assert {"DEBUG", "INFO"} <= {e["level"] for e in _json_lines(log)}
    log.unlink()

    agent = ForegroundAgent(
        fustor_home,
        "--log-level",
        "warning",
        "--log-format",
        "text",
        stderr_path=tmp_path / "err2",
    )
    try:
        agent.wait_running("p1")
    finally:
        assert agent.stop() == 0
    text = log.read_text() if log.exists() else ""
    assert " INFO " not in text and " DEBUG " not in text and "{" not in text


def test_under_journald_stderr_has_priorities_no_timestamps_and_no_file(fustor_home, tmp_path):
    (fustor_home / "agent-config.yaml").write_text(static_config(tmp_path / "o.jsonl", "p1"))
    err = tmp_path / "journal"
    err.touch()
    stat = os.stat(err)
    # systemd sets JOURNAL_STREAM to the device and inode of the stream it connected.
    journal = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
    agent = ForegroundAgent(fustor_home, stderr_path=err, env=journal)
    try:
        agent.wait_running("p1")
    finally:
        assert agent.stop() == 0
    lines = err.read_text().splitlines()
    assert lines
    assert all(line[:3] in {"<3>", "<4>", "<6>", "<7>"} for line in lines), lines
    assert "<6>fustor_agent.agent: pipe p1 started (files -> out)" in lines
    assert not any(line[3:7].isdigit() for line in lines), "journald adds the time itself"
    assert not (fustor_home / "logs" / "agent.log").exists()

    # A configuration error is one line at priority 3 (err), and exit status 78.
    (fustor_home / "agent-config.yaml").write_text("pipes: [{id: x, source_id: a, sender_id: b}]")
    bad = ForegroundAgent(fustor_home, stderr_path=err, env=journal)
    assert bad.wait() == 78
    lines = err.read_text().splitlines()
    assert lines[0].startswith("<3>error: agent-config.yaml: ") and len(lines) == 2, lines


def test_a_journal_stream_that_is_not_our_stderr_is_ignored(fustor_home, tmp_path):
    (fustor_home / "agent-config.yaml").write_text(static_config(tmp_path / "o.jsonl", "p1"))
    agent = ForegroundAgent(
        fustor_home, stderr_path=tmp_path / "err", env={"JOURNAL_STREAM": "1:2"}
    )
    try:
        agent.wait_running("p1")
    finally:
        assert agent.stop() == 0
    assert not (tmp_path / "err").read_text().startswith("<")
    assert (fustor_home / "logs" / "agent.log").exists()


def test_a_wrong_log_variable_is_a_config_error_naming_it(run_cli):
    """Not click's usage error about an option nobody typed (exit 2: systemd would restart
    it every 5 s): one line naming the variable, exit 78."""
    for name, value, choices in (
        ("FUSTOR_LOG_LEVEL", "verbose", "debug, info, warning, error, critical"),
        ("FUSTOR_LOG_FORMAT", "xml", "text, json"),
    ):
        result = run_cli("start", **{name: value})
        assert (result.returncode, result.stderr) == (
            78,
            f"error: {name}={value!r} is not one of: {choices}\n",
        )


def test_a_background_agent_without_a_log_file_logs_to_its_output_file(
    run_cli, fustor_home, tmp_path
):
    """start -D with no log file (--no-log-file, or logging.file: false) logged nowhere
    and still named agent.log, which stayed empty."""
    for args, block in ((("--no-log-file",), {}), ((), {"logging": {"file": False}})):
        (fustor_home / "agent-config.yaml").write_text(
            static_config(tmp_path / "o.jsonl", "p1", **block)
        )
        result = run_cli("start", "-D", *args)
        try:
            assert result.returncode == 0, result.stderr
            assert result.stdout.endswith(f"log: {fustor_home / 'logs' / 'agent.out'}\n")
        finally:
            assert run_cli("stop").returncode == 0
        assert "pipe p1 started" in (fustor_home / "logs" / "agent.out").read_text()
        log = fustor_home / "logs" / "agent.log"
        assert not log.exists() or not log.read_text()
