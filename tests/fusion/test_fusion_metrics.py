"""``/metrics`` and the status API of an agent sending to the real Fusion 0.8.17: the scrape
passes ``promtool check metrics`` and carries the fusion sender's declared metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from agent_harness import AgentProcess
from fusion_harness import FusionServer, disk_tree, wait_until
from prometheus_client.parser import text_string_to_metric_families

from metrics_support import assert_conventions, promtool_check
from ports import free_port
from status_schema import SCHEMA_PATH, schema_errors

pytestmark = pytest.mark.fusion


def test_a_fusion_pipe_scrape_is_clean_and_complete(
    fusion: FusionServer, make_agent: Callable[..., AgentProcess], tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    for name in ("a/one.txt", "a/b/two.txt", "three.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    port = free_port()
    agent = make_agent(root, console={"host": "127.0.0.1", "port": port})
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=30)
    url = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200, 20, 0.2, "readiness"
    )
    status = httpx.get(f"{url}/api/v1/status", timeout=5).json()
    assert schema_errors(status, json.loads(SCHEMA_PATH.read_text())) == []

    text = httpx.get(f"{url}/metrics", timeout=5).text
    assert promtool_check(text) == ""
    types = assert_conventions(text)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    pipe = (("pipe", "research"),)
    for counter in ("requests", "batches_sent", "sessions_opened", "sent_bytes"):
        name = f"fustor_agent_sender_{counter}_total"
        assert types[name] == "counter"
        assert samples[(name, pipe)] > 0, name
    assert samples[("fustor_agent_sender_last_http_status", pipe)] == 200
    assert samples[("fustor_agent_sender_session_timeout_seconds", pipe)] > 0
    assert samples[("fustor_agent_send_duration_seconds_count", pipe)] >= 1
    snapshot = (("message_source", "snapshot"), *pipe)
    assert samples[("fustor_agent_rows_sent_total", snapshot)] >= 6  # 3 files, 3 dirs
    names = {name for name, _ in samples}
    for gone in ("rows_sent", "batches_rejected", "last_latency_ms", "bytes_sent"):
        assert f"fustor_agent_sender_{gone}" not in names
