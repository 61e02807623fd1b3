"""The console of a real agent watching a real directory (``fs`` source, real inotify).

Ground truth: the directories on disk and the rows the ``echo`` sender wrote.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from console_agent import RunningAgent, running_agent, wait_for
from prometheus_client.parser import text_string_to_metric_families

from ports import free_port

PIPE = "tree-to-echo"


def echoed_rows(echo_file: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    if echo_file.exists():
        for line in echo_file.read_text().splitlines():
            record = json.loads(line)
            if "row" in record and record["pipe_id"] == PIPE:
                counts[record["message_source"]] += 1
    return counts


def echoed_paths(echo_file: Path, message_source: str) -> set[str]:
    paths = set()
    for line in echo_file.read_text().splitlines():
        record = json.loads(line)
        if "row" in record and record["message_source"] == message_source:
            paths.add(record["row"]["path"])
    return paths


def metric_samples(agent: RunningAgent) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(agent.get("/metrics").text)
        for s in family.samples
    }


def pipe_status(agent: RunningAgent) -> dict[str, Any]:
    return agent.get("/api/v1/status").json()["pipes"][0]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for d in ("a/c", "b"):
        (root / d).mkdir(parents=True)
    (root / "a" / "x.txt").write_text("x")
    (root / "b" / "y.txt").write_text("y")
    return root


def fs_config(root: Path, echo_file: Path) -> dict[str, Any]:
    return {
        "agent_id": "console-e2e-fs",
        "sources": [
            {
                "id": "tree",
                "type": "fs",
                "config": {
                    "uri": str(root),
                    "driver_params": {"throttle_interval_sec": 0, "health_check_interval_sec": 0.2},
                },
            }
        ],
        "senders": [
            {
                "id": "out",
                "type": "echo",
                "config": {"driver_params": {"format": "json", "output": str(echo_file)}},
            }
        ],
        "pipes": [{"id": PIPE, "source_id": "tree", "sender_id": "out"}],
    }


def test_counters_and_watch_coverage_follow_real_changes(tmp_path: Path, tree: Path) -> None:
    echo_file = tmp_path / "echo.jsonl"
    with running_agent(tmp_path, fs_config(tree, echo_file)) as agent:
        wait_for(lambda: agent.get("/readyz").status_code == 200, "the agent to be ready")
        samples = metric_samples(agent)
        pipe, tree_source = (("pipe", PIPE),), (("source", "tree"),)
        # root, a, a/c, b: every directory watched.
        assert samples[("fustor_agent_source_watched_directories", tree_source)] == 4
        assert samples[("fustor_agent_source_directories", tree_source)] == 4
        assert samples[("fustor_agent_source_event_overflows_total", tree_source)] == 0
        assert samples[("fustor_agent_source_root_available", tree_source)] == 1
        assert echoed_paths(echo_file, "snapshot") >= {"/", "/a", "/a/c", "/b", "/a/x.txt"}

        (tree / "b" / "new.txt").write_text("new")
        (tree / "d").mkdir()
        wait_for(
            lambda: {"/b/new.txt", "/d"} <= echoed_paths(echo_file, "realtime"),
            "inotify changes to reach the echo output",
        )
        # The counter is bumped once the sender returned: wait until they agree.
        wait_for(
            lambda: (
                pipe_status(agent)["rows_sent"]["realtime"] == echoed_rows(echo_file)["realtime"]
            ),
            "rows_sent to match the echo output",
        )
        echoed = echoed_rows(echo_file)
        status = pipe_status(agent)
        for source in ("realtime", "snapshot", "audit", "on_demand_job"):
            assert status["rows_sent"][source] == echoed[source]
        samples = metric_samples(agent)
        for source in ("realtime", "snapshot"):
            labels = (("message_source", source), *pipe)
            assert samples[("fustor_agent_rows_sent_total", labels)] == echoed[source]
        wait_for(lambda: pipe_status(agent)["source"]["watched_dirs"] == 5, "a watch on /d")
        assert metric_samples(agent)[("fustor_agent_source_watched_directories", tree_source)] == 5


def test_readyz_names_the_pipe_whose_root_went_away(tmp_path: Path, tree: Path) -> None:
    echo_file = tmp_path / "echo.jsonl"
    with running_agent(tmp_path, fs_config(tree, echo_file)) as agent:
        wait_for(lambda: agent.get("/readyz").status_code == 200, "the agent to be ready")
        tree.rename(tmp_path / "tree.moved")
        resp = wait_for(
            lambda: (r := agent.get("/readyz")).status_code == 503 and r,
            "readiness to drop",
        )
        body = resp.json()
        assert body["ready"] is False
        assert list(body["not_ready"]) == [PIPE]
        assert "root" in body["not_ready"][PIPE]
        status = pipe_status(agent)
        assert status["ready"] is False
        assert status["source"]["root_available"] is False
        samples = metric_samples(agent)
        assert samples[("fustor_agent_pipe_ready", (("pipe", PIPE),))] == 0


def test_an_unreachable_fusion_is_reported_and_no_secret_is_shown(
    tmp_path: Path, tree: Path
) -> None:
    secret = "s3cr3t-api-key-never-shown"
    config = fs_config(tree, tmp_path / "echo.jsonl")
    config["senders"] = [
        {
            "id": "fusion-main",
            "type": "fusion",
            "config": {"endpoint": f"http://127.0.0.1:{free_port()}", "credential": secret},
        }
    ]
    config["pipes"] = [{"id": PIPE, "source_id": "tree", "sender_id": "fusion-main"}]
    with running_agent(tmp_path, config) as agent:
        status = wait_for(
            lambda: (p := pipe_status(agent))["last_error"] is not None and p,
            "the pipe to report its connection failure",
        )
        assert status["state"] in ("backing_off", "starting")
        assert status["session"] is None
        assert "127.0.0.1" in status["last_error"]["message"]
        readyz = agent.get("/readyz")
        assert readyz.status_code == 503
        assert PIPE in readyz.json()["not_ready"]
        samples = metric_samples(agent)
        assert samples[("fustor_agent_pipe_state", (("pipe", PIPE), ("state", "running")))] == 0
        assert samples[("fustor_agent_last_error_timestamp_seconds", (("pipe", PIPE),))] > 0
        for path in ("/", "/api/v1/status", "/metrics", "/readyz"):
            assert secret not in agent.get(path).text, path
