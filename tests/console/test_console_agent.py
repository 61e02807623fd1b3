"""The console of a real agent process: each endpoint checked against what the agent did.

The agent runs as ``fustor-agent start`` with the test-only ``static`` (snapshot) and
``counter`` (realtime) sources and the ``echo`` sender writing JSON lines; the rows in that
file are the ground truth. One agent serves every test of the module (read-only checks).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from console_agent import RunningAgent, running_agent, wait_for
from console_browser import chromium, ensure_chromium
from prometheus_client.parser import text_string_to_metric_families

from cli_support import agent_command
from fustor_agent.status import AgentStatus
from metrics_support import assert_conventions, promtool_check
from status_schema import SCHEMA_PATH, schema_errors

PIPE = "fixed-to-echo"
LIVE = "counting"
PATHS = [f"/dir{i % 3}/file{i}.dat" for i in range(25)]
REALTIME_ROWS = 40


def config(echo_file: Path) -> dict[str, Any]:
    return {
        "agent_id": "console-e2e",
        "sources": [
            {
                "id": "fixed",
                "type": "static",
                "config": {"uri": "static://fixed", "driver_params": {"paths": PATHS}},
            },
            {
                "id": "ticks",
                "type": "counter",
                "config": {
                    "uri": "counter://ticks",
                    "driver_params": {"count": REALTIME_ROWS, "per_batch": 10},
                },
            },
        ],
        "senders": [
            {
                "id": "out",
                "type": "echo",
                "config": {"driver_params": {"format": "json", "output": str(echo_file)}},
            }
        ],
        "pipes": [
            {"id": PIPE, "source_id": "fixed", "sender_id": "out"},
            {"id": LIVE, "source_id": "ticks", "sender_id": "out"},
            {"id": "parked", "source_id": "fixed", "sender_id": "out", "enabled": False},
        ],
    }


def echoed_rows(echo_file: Path, pipe_id: str) -> Counter[str]:
    """Rows the echo sender wrote for ``pipe_id``, by message source."""
    counts: Counter[str] = Counter()
    if echo_file.exists():
        for line in echo_file.read_text().splitlines():
            record = json.loads(line)
            if "row" in record and record["pipe_id"] == pipe_id:
                counts[record["message_source"]] += 1
    return counts


def pipe_status(agent: RunningAgent, pipe_id: str = PIPE) -> dict[str, Any]:
    status = agent.get("/api/v1/status").json()
    return next(p for p in status["pipes"] if p["id"] == pipe_id)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp_path = tmp_path_factory.mktemp("agent")
    echo_file = tmp_path / "echo.jsonl"
    with running_agent(tmp_path, config(echo_file)) as running:
        wait_for(
            lambda: pipe_status(running)["progress"]["snapshot"]["done"], "the snapshot to finish"
        )
        wait_for(
            lambda: pipe_status(running, LIVE)["rows_sent"]["realtime"] == REALTIME_ROWS,
            "the realtime rows to be sent",
        )
        wait_for(lambda: running.get("/readyz").status_code == 200, "the agent to be ready")
        yield running, echo_file


def test_status_api_reports_what_the_agent_did(agent: tuple[RunningAgent, Path]) -> None:
    running, echo_file = agent
    status = running.get("/api/v1/status").json()
    assert status["agent_id"] == "console-e2e"
    assert status["pid"] == running.proc.pid
    assert status["config_path"] == str(running.home / "agent-config.yaml")
    assert status["uptime_sec"] > 0
    pipes = {p["id"]: p for p in status["pipes"]}
    assert set(pipes) == {PIPE, LIVE, "parked"}
    pipe = pipes[PIPE]
    assert (pipe["source_type"], pipe["sender_type"]) == ("static", "echo")
    assert pipe["state"] == "running"
    assert pipe["role"] == "leader"
    assert pipe["session"].endswith("…") and len(pipe["session"]) == 9
    assert pipe["progress"]["snapshot"] == {"rows": len(PATHS), "done": True}
    assert echoed_rows(echo_file, PIPE) == Counter(snapshot=len(PATHS))
    assert pipe["rows_sent"] == {"realtime": 0, "snapshot": len(PATHS), "audit": 0,
                                 "on_demand_job": 0}  # fmt: skip
    live = pipes[LIVE]
    assert echoed_rows(echo_file, LIVE) == Counter(realtime=REALTIME_ROWS)
    assert live["rows_sent"]["realtime"] == REALTIME_ROWS
    assert live["source_type"] == "counter"
    assert pipes["parked"]["enabled"] is False


def test_metrics_match_the_rows_in_the_echo_output(agent: tuple[RunningAgent, Path]) -> None:
    running, echo_file = agent
    resp = running.get("/metrics")
    assert resp.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }
    for pipe_id in (PIPE, LIVE):
        echoed = echoed_rows(echo_file, pipe_id)
        for source in ("realtime", "snapshot", "audit", "on_demand_job"):
            labels = (("message_source", source), ("pipe", pipe_id))
            assert samples[("fustor_agent_rows_sent_total", labels)] == echoed[source]
    assert echoed_rows(echo_file, PIPE)["snapshot"] == len(PATHS)
    assert echoed_rows(echo_file, LIVE)["realtime"] == REALTIME_ROWS
    assert samples[("fustor_agent_pipe_state", (("pipe", PIPE), ("state", "running")))] == 1
    assert samples[("fustor_agent_is_leader", (("pipe", PIPE),))] == 1
    assert samples[("fustor_agent_pipe_ready", (("pipe", PIPE),))] == 1
    assert samples[("fustor_agent_pipe_enabled", (("pipe", "parked"),))] == 0
    assert samples[("fustor_agent_build_info", (("agent_id", "console-e2e"), ("version", "1.0.0")))]
    assert samples[("fustor_agent_start_time_seconds", ())] > 0
    assert samples[("fustor_agent_send_duration_seconds_count", (("pipe", PIPE),))] > 0


def test_health_and_readiness(agent: tuple[RunningAgent, Path]) -> None:
    running, _ = agent
    health = running.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = running.get("/readyz")
    # The disabled pipe is not waited for.
    assert (ready.status_code, ready.json()) == (200, {"ready": True, "not_ready": {}})


def test_dashboard_in_chromium_shows_the_pipes_and_their_state(
    agent: tuple[RunningAgent, Path],
) -> None:
    running, _ = agent
    ensure_chromium()
    dom = asyncio.run(chromium("--virtual-time-budget=3000", "--dump-dom", running.url + "/"))
    assert '<section class="pipe" data-pipe="fixed-to-echo" data-state="running">' in dom
    assert '<section class="pipe" data-pipe="counting" data-state="running">' in dom
    assert '<section class="pipe" data-pipe="parked" data-state="disabled">' in dom
    assert '<b id="agent-id">console-e2e</b>' in dom
    assert f"<dt>snapshot</dt><dd>done · {len(PATHS)} rows</dd>" in dom


def test_a_taken_console_port_stops_the_start_with_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = {**config(tmp_path / "echo.jsonl"), "console": {"port": port}}
        (home / "agent-config.yaml").write_text(yaml.safe_dump(settings))
        proc = subprocess.run(
            [agent_command(), "start"],
            env={**os.environ, "FUSTOR_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    expected = (
        f"console port {port} on 127.0.0.1 is already in use; "
        "set console.port or console.enabled: false"
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if expected in line]
    # No pipe started: nothing was sent before the agent gave up.
    assert not (tmp_path / "echo.jsonl").exists() or not (tmp_path / "echo.jsonl").read_text()
    assert len(lines) == 1, proc.stderr


def test_the_live_status_follows_the_checked_in_schema(agent: tuple[RunningAgent, Path]) -> None:
    running, _ = agent
    status = running.get("/api/v1/status").json()
    assert schema_errors(status, json.loads(SCHEMA_PATH.read_text())) == []
    assert AgentStatus.model_validate(status).to_json() == status  # no key outside the model


def test_the_scrape_passes_promtool_and_the_naming_rules(agent: tuple[RunningAgent, Path]) -> None:
    running, _ = agent
    text = running.get("/metrics").text
    assert promtool_check(text) == ""
    types = assert_conventions(text)
    assert types["fustor_agent_rows_sent_total"] == "counter"
    assert types["fustor_agent_send_duration_seconds"] == "histogram"
    assert types["fustor_agent_config_last_reload_successful"] == "gauge"
    assert types["process_cpu_seconds_total"] == "counter"
    assert types["python_info"] == "gauge"
    # The echo sender declares one counter; its rows_written (= rows_sent_total) stays out.
    assert types["fustor_agent_sender_signals_written_total"] == "counter"
    assert not any("rows_written" in name for name in types)
    for gone in ("uptime_seconds", "pipe_up", "rows_per_second", "pipe_phase"):
        assert f"fustor_agent_{gone}" not in types


def test_a_third_party_driver_exports_the_counter_and_histogram_it_declares(
    agent: tuple[RunningAgent, Path],
) -> None:
    running, _ = agent
    text = running.get("/metrics").text
    assert "# TYPE fustor_agent_source_produced_rows_total counter" in text
    assert f'fustor_agent_source_produced_rows_total{{source="ticks"}} {REALTIME_ROWS}.0' in text
    # Four batches of 10 rows: none at most 1, all four at most 10 (cumulative buckets).
    batches = REALTIME_ROWS // 10
    assert "# TYPE fustor_agent_source_batch_rows histogram" in text
    for le, n in (("1.0", 0), ("10.0", batches), ("100.0", batches), ("+Inf", batches)):
        assert f'fustor_agent_source_batch_rows_bucket{{le="{le}",source="ticks"}} {n}.0' in text
    assert f'fustor_agent_source_batch_rows_count{{source="ticks"}} {batches}.0' in text
    assert f'fustor_agent_source_batch_rows_sum{{source="ticks"}} {REALTIME_ROWS}.0' in text
    # Its undeclared status key is in the JSON status only.
    assert pipe_status(running, LIVE)["source"]["note"] == "not a metric"
    assert "note" not in text
