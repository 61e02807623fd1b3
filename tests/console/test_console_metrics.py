"""``GET /metrics``: the Prometheus exposition of the status dict, read by the reference parser."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import httpx
from console_fakes import SAMPLE_STATUS, FakeAgent
from prometheus_client.parser import text_string_to_metric_families

from fustor_agent.console import ConsoleSettings, start_console
from fustor_agent.console.metrics import metrics_registry, render_metrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """Sample values by (name, sorted labels), and each family's type."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, types


def metrics_of(status: dict[str, Any]) -> tuple[Samples, dict[str, str]]:
    return parse(render_metrics(metrics_registry(FakeAgent(status))).decode())


def test_metrics_endpoint_serves_the_text_format(fake_agent: FakeAgent) -> None:
    async def run() -> httpx.Response:
        handle = await start_console(ConsoleSettings(port=0), fake_agent)
        try:
            async with httpx.AsyncClient(base_url=handle.url) as client:
                return await client.get("/metrics")
        finally:
            await handle.close()

    resp = asyncio.run(run())
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples, types = parse(resp.text)
    assert samples[("fustor_agent_start_time_seconds", ())] == 1_790_000_000.0
    # The process and platform collectors are registered too.
    assert types["process_cpu_seconds"] == "counter"
    assert ("python_info", ()) not in samples  # it has labels
    assert any(name == "python_info" for name, _ in samples)


def test_agent_level_metrics() -> None:
    samples, _ = metrics_of(SAMPLE_STATUS)
    build = (("agent_id", "agent-test-1"), ("version", "1.0.0"))
    assert samples[("fustor_agent_build_info", build)] == 1
    assert samples[("fustor_agent_start_time_seconds", ())] == 1_790_000_000.0
    assert samples[("fustor_agent_config_generation", ())] == 2
    assert samples[("fustor_agent_config_last_reload_successful", ())] == 1
    loaded = ("fustor_agent_config_last_reload_success_timestamp_seconds", ())
    assert samples[loaded] == 1_790_002_000.0
    names = {name for name, _ in samples}
    assert "fustor_agent_uptime_seconds" not in names  # time() - start_time_seconds


def test_a_failed_reload_is_exported() -> None:
    status = copy.deepcopy(SAMPLE_STATUS)
    status["last_reload"] = {"at": 1_790_004_000.0, "ok": False, "error": "bad yaml"}
    samples, _ = metrics_of(status)
    assert samples[("fustor_agent_config_last_reload_successful", ())] == 0
    loaded = ("fustor_agent_config_last_reload_success_timestamp_seconds", ())
    assert samples[loaded] == 1_790_002_000.0  # the configuration in use is still that one


def test_rows_sent_are_counters_per_pipe_and_message_source() -> None:
    samples, types = metrics_of(SAMPLE_STATUS)
    assert types["fustor_agent_rows_sent"] == "counter"
    sent = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "fustor_agent_rows_sent_total"
    }
    pipe = "research-fs"
    expected = {"realtime": 812, "snapshot": 120_000, "audit": 5_400, "on_demand_job": 3}
    for source, rows in expected.items():
        assert sent[(("message_source", source), ("pipe", pipe))] == rows
    assert len(sent) == 8  # 2 pipes x 4 message sources, zeros included


def test_pipe_gauges_and_counters() -> None:
    samples, types = metrics_of(SAMPLE_STATUS)
    p1, p2 = (("pipe", "research-fs"),), (("pipe", "scratch</script><b>x"),)
    assert samples[("fustor_agent_is_leader", p1)] == 1
    assert samples[("fustor_agent_is_leader", p2)] == 0
    assert samples[("fustor_agent_pipe_ready", p2)] == 0
    assert samples[("fustor_agent_retries_total", p1)] == 4
    assert types["fustor_agent_retries"] == "counter"
    assert samples[("fustor_agent_queue_depth", (("lane", "bulk"), *p1))] == 17
    assert samples[("fustor_agent_queue_depth", (("lane", "realtime"), *p1))] == 2
    s1 = (("source", "research"),)
    assert samples[("fustor_agent_source_event_overflows_total", s1)] == 1
    assert types["fustor_agent_source_event_overflows"] == "counter"
    assert samples[("fustor_agent_source_watched_directories", s1)] == 9_990
    assert samples[("fustor_agent_source_directories", s1)] == 10_000
    names = {name for name, _ in samples}
    for gone in ("rows_per_second", "pipe_up", "inotify_overflows_total", "watched_directories"):
        assert f"fustor_agent_{gone}" not in names
    assert samples[("fustor_agent_snapshot_done", p1)] == 1
    assert samples[("fustor_agent_audit_cycles_total", p1)] == 7
    assert samples[("fustor_agent_last_error_timestamp_seconds", p1)] == 1_790_003_000.0
    assert ("fustor_agent_last_error_timestamp_seconds", p2) not in samples
    assert samples[("fustor_agent_dropped_rows_total", p1)] == 250
    assert samples[("fustor_agent_rejected_batches_total", p1)] == 0
    assert samples[("fustor_agent_dropped_rows_total", p2)] == 0


def test_state_and_activity_are_one_hot_enums() -> None:
    samples, _ = metrics_of(SAMPLE_STATUS)
    states = {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "fustor_agent_pipe_state" and dict(labels)["pipe"] == "research-fs"
    }
    assert states == {"starting": 0, "running": 1, "backing_off": 0, "stopped": 0, "error": 0}
    activity = (("activity", "audit"), ("pipe", "research-fs"))
    assert samples[("fustor_agent_pipe_activity", activity)] == 1


def test_declared_driver_keys_are_exported_as_declared() -> None:
    samples, types = metrics_of(SAMPLE_STATUS)
    p1, s1 = (("pipe", "research-fs"),), (("source", "research"),)
    assert samples[("fustor_agent_source_watched_directories", s1)] == 9_990
    assert samples[("fustor_agent_source_root_available", s1)] == 1  # bool -> 0/1
    assert samples[("fustor_agent_sender_batches_sent_total", p1)] == 321
    assert types["fustor_agent_sender_batches_sent"] == "counter"
    names = {name for name, _ in samples}
    assert "fustor_agent_source_root" not in names  # a string is not a metric
    assert "fustor_agent_sender_endpoint" not in names
    assert "fustor_agent_sender_inflight" not in names  # not declared by the fusion sender


def test_undeclared_driver_keys_are_not_exported() -> None:
    status = copy.deepcopy(SAMPLE_STATUS)
    status["pipes"][0]["source"].update({"bytes-read.total": 5, "nested": {"a": 1}, "n": 1.5})
    samples, _ = metrics_of(status)
    names = {name for name, _ in samples}
    assert not any(
        name.startswith(("fustor_agent_source_n", "fustor_agent_source_bytes")) for name in names
    )


def test_a_source_shared_by_two_pipes_is_exported_once() -> None:
    status = copy.deepcopy(SAMPLE_STATUS)
    twin = copy.deepcopy(status["pipes"][0])
    twin["id"] = "research-copy"
    twin["sender"] = {"batches_sent": 5}
    status["pipes"].append(twin)
    samples, _ = metrics_of(status)
    name = "fustor_agent_source_watched_directories"
    watched = {k: v for k, v in samples.items() if k[0] == name}
    assert watched[(name, (("source", "research"),))] == 9_990
    assert sum(v for (_, labels), v in watched.items() if ("source", "research") in labels) == 9_990
    # Each pipe has its own sender: those stay per pipe.
    sent = "fustor_agent_sender_batches_sent_total"
    assert samples[(sent, (("pipe", "research-copy"),))] == 5
    assert samples[(sent, (("pipe", "research-fs"),))] == 321


def test_a_sparse_status_still_renders() -> None:
    # The host may report fewer keys while a pipe starts; the scrape must not fail.
    pipe = {"id": "p", "source_id": "s", "source_type": "x", "sender_id": "o"}
    pipe |= {"sender_type": "y", "enabled": True}
    agent = {"agent_id": "a", "version": "1", "pid": 1, "started_at": 1.0, "uptime_sec": 0.0}
    samples, _ = metrics_of({**agent, "config_loaded_at": 1.0, "pipes": [pipe]})
    assert samples[("fustor_agent_pipe_state", (("pipe", "p"), ("state", "stopped")))] == 1
    audit_rows = ("fustor_agent_rows_sent_total", (("message_source", "audit"), ("pipe", "p")))
    assert samples[audit_rows] == 0


def test_label_values_are_escaped() -> None:
    status = copy.deepcopy(SAMPLE_STATUS)
    status["pipes"][0]["id"] = 'we"ird\\pipe\nid'
    samples, _ = metrics_of(status)
    assert samples[("fustor_agent_retries_total", (("pipe", 'we"ird\\pipe\nid'),))] == 4
