"""Prometheus exposition of the agent status dict (``GET /metrics``).

A custom Collector reads ``Agent.status()`` at scrape time, so the metrics can never
disagree with ``/api/v1/status``; it lives in a private CollectorRegistry so nothing else in
the process (or a second agent in the same interpreter, as in tests) leaks into the output.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

__all__ = ["CONTENT_TYPE", "PIPE_PHASES", "PIPE_STATES", "StatusCollector", "render_metrics"]

# What generate_latest() writes; newer prometheus_client versions call "latest" a format
# negotiated by escaping scheme, which would mislabel this output.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "fustor_agent"
PIPE_STATES = ("starting", "running", "backing_off", "stopped", "error")
PIPE_PHASES = ("snapshot", "audit", "realtime", "idle")
MESSAGE_SOURCES = ("realtime", "snapshot", "audit", "on_demand_job")
QUEUE_LANES = ("realtime", "bulk")

# Source keys with a metric of their own under a conventional name (they are also exported
# generically as fustor_agent_source_<key>, as the SDK contract promises).
_SOURCE_NAMED = {
    "overflows": (
        CounterMetricFamily,
        "inotify_overflows",
        "inotify event-queue overflows seen by the source (each one triggers a rescan).",
    ),
    "watched_dirs": (
        GaugeMetricFamily,
        "watched_directories",
        "Directories with a live inotify watch.",
    ),
    "dirs": (
        GaugeMetricFamily,
        "directories",
        "Directories known under the source root (watch coverage = watched / known).",
    ),
}
_METRIC_NAME_INVALID = re.compile(r"[^a-zA-Z0-9_]")

StatusGetter = Callable[[], Mapping[str, Any]]


class StatusCollector(Collector):
    """Turns one status dict per scrape into metric families."""

    def __init__(self, status: StatusGetter) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        yield from families(self._status())


def render_metrics(status: StatusGetter) -> bytes:
    """The Prometheus text exposition of ``status()``, from a private registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(status))
    return generate_latest(registry)


def _number(value: Any) -> float | None:
    """A metric value for ``value``: bools become 0/1; anything non-numeric is skipped."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def families(status: Mapping[str, Any]) -> Iterator[Metric]:
    """Every metric family of the agent, in a stable order."""
    yield from _agent_families(status)
    pipes = [p for p in status.get("pipes") or [] if isinstance(p, Mapping)]
    yield from _pipe_families(pipes)
    yield from _driver_families(pipes, "source")
    yield from _driver_families(pipes, "sender")


def _agent_families(status: Mapping[str, Any]) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        f"{PREFIX}_build_info",
        "Agent version and id; the value is always 1.",
        labels=["version", "agent_id"],
    )
    info.add_metric([str(status.get("version", "")), str(status.get("agent_id", ""))], 1)
    yield info
    started = _number(status.get("started_at"))
    if started is not None:
        yield GaugeMetricFamily(
            f"{PREFIX}_start_time_seconds", "Agent start time, Unix epoch seconds.", value=started
        )
    generation = _number(status.get("config_generation"))
    if generation is not None:
        yield GaugeMetricFamily(
            f"{PREFIX}_config_generation",
            "Configuration generation: 1 at start, +1 at each reload.",
            value=generation,
        )
    uptime = _number(status.get("uptime_sec"))
    if uptime is not None:
        yield GaugeMetricFamily(
            f"{PREFIX}_uptime_seconds", "Seconds since the agent started.", value=uptime
        )


def _pipe_families(pipes: list[Mapping[str, Any]]) -> Iterator[Metric]:
    def gauge(name: str, doc: str, extra: list[str] | None = None) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=["pipe", *(extra or [])])

    def counter(name: str, doc: str, extra: list[str] | None = None) -> CounterMetricFamily:
        return CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=["pipe", *(extra or [])])

    pipe_info = gauge(
        "pipe_info",
        "Source and sender of each pipe; the value is always 1.",
        ["source", "source_type", "sender", "sender_type"],
    )
    enabled = gauge("pipe_enabled", "1 when the pipe is enabled in the config.")
    up = gauge("pipe_up", "1 when the pipe is running (not starting, backing off or stopped).")
    state = gauge("pipe_state", "Pipe state: 1 for the current state, 0 for the others.", ["state"])
    ready = gauge("pipe_ready", "1 when the pipe has a live session and its watcher runs.")
    leader = gauge("is_leader", "1 when the pipe's session is the leader of its view.")
    phase = gauge("pipe_phase", "Pipe phase: 1 for the current phase, 0 for the others.", ["phase"])
    rows_sent = counter(
        "rows_sent", "Rows delivered to the sender, by message source.", ["message_source"]
    )
    rows_rate = gauge("rows_per_second", "Recent delivery rate in rows per second.")
    queue = gauge("queue_depth", "Batches waiting between source and sender, by lane.", ["lane"])
    retries = counter("retries", "Sends and signals the pipe had to retry.")
    rejected = counter("rejected_batches", "Batches the receiver refused for good (not resent).")
    dropped = counter("dropped_rows", "Realtime rows dropped on overflow (a resync follows).")
    snap_rows = gauge("snapshot_rows", "Rows produced by the current (or last) snapshot.")
    snap_done = gauge("snapshot_done", "1 when the snapshot of the current session finished.")
    audit_rows = gauge("audit_rows", "Rows produced by the current (or last) audit cycle.")
    audit_running = gauge("audit_running", "1 while an audit cycle runs.")
    audit_cycles = counter("audit_cycles", "Audit cycles completed.")
    last_error = gauge("last_error_timestamp_seconds", "When the pipe last failed, Unix epoch.")

    for pipe in pipes:
        pid = str(pipe.get("id", ""))
        pipe_info.add_metric(
            [
                pid,
                str(pipe.get("source_id", "")),
                str(pipe.get("source_type", "")),
                str(pipe.get("sender_id", "")),
                str(pipe.get("sender_type", "")),
            ],
            1,
        )
        enabled.add_metric([pid], float(bool(pipe.get("enabled"))))
        current_state = pipe.get("state")
        up.add_metric([pid], float(current_state == "running"))
        for name in PIPE_STATES:
            state.add_metric([pid, name], float(current_state == name))
        ready.add_metric([pid], float(bool(pipe.get("ready"))))
        leader.add_metric([pid], float(pipe.get("role") == "leader"))
        for name in PIPE_PHASES:
            phase.add_metric([pid, name], float(pipe.get("phase") == name))
        sent = _mapping(pipe.get("rows_sent"))
        for source in MESSAGE_SOURCES:
            rows_sent.add_metric([pid, source], _number(sent.get(source)) or 0.0)
        rate = _number(pipe.get("rows_per_sec"))
        if rate is not None:
            rows_rate.add_metric([pid], rate)
        depth = _mapping(pipe.get("queue_depth"))
        for lane in QUEUE_LANES:
            queue.add_metric([pid, lane], _number(depth.get(lane)) or 0.0)
        retries.add_metric([pid], _number(pipe.get("retries")) or 0.0)
        # Not in every host version: exported only when reported, so absence is not "zero".
        for family, key in ((rejected, "rejected_batches"), (dropped, "dropped_rows")):
            value = _number(pipe.get(key))
            if value is not None:
                family.add_metric([pid], value)
        progress = _mapping(pipe.get("progress"))
        snapshot, audit = _mapping(progress.get("snapshot")), _mapping(progress.get("audit"))
        snap_rows.add_metric([pid], _number(snapshot.get("rows")) or 0.0)
        snap_done.add_metric([pid], float(bool(snapshot.get("done"))))
        audit_rows.add_metric([pid], _number(audit.get("rows")) or 0.0)
        audit_running.add_metric([pid], float(bool(audit.get("running"))))
        audit_cycles.add_metric([pid], _number(audit.get("cycles")) or 0.0)
        error_at = _number(_mapping(pipe.get("last_error")).get("at"))
        if error_at is not None:
            last_error.add_metric([pid], error_at)

    yield from (
        pipe_info, enabled, up, state, ready, leader, phase, rows_sent, rows_rate, queue,
        retries, rejected, dropped, snap_rows, snap_done, audit_rows, audit_running,
        audit_cycles, last_error,
    )  # fmt: skip


def _driver_families(pipes: list[Mapping[str, Any]], kind: str) -> Iterator[Metric]:
    """Numeric keys of ``SourceDriver.status()`` / ``SenderDriver.status()`` as gauges.

    A sender belongs to one pipe: its series carry the ``pipe`` label. A source may feed
    several pipes, and its figures are the source's own (one snapshot count for all its
    pipes): its series carry the ``source`` label, once per source, so that a sum over
    series never counts a shared source twice.
    """
    label = "source" if kind == "source" else "pipe"
    named: dict[str, Metric] = {}
    generic: dict[str, GaugeMetricFamily] = {}
    seen: set[str] = set()
    for pipe in pipes:
        owner = str(pipe.get("source_id" if kind == "source" else "id", ""))
        figures = _mapping(pipe.get(kind))
        if owner in seen or not figures:
            continue
        seen.add(owner)
        for key, raw in figures.items():
            value = _number(raw)
            if value is None:
                continue
            if kind == "source" and key in _SOURCE_NAMED:
                family_cls, name, doc = _SOURCE_NAMED[key]
                if key not in named:
                    named[key] = family_cls(f"{PREFIX}_{name}", doc, labels=[label])
                named[key].add_metric([owner], value)  # type: ignore[attr-defined]
            metric = f"{PREFIX}_{kind}_{_METRIC_NAME_INVALID.sub('_', str(key))}"
            if metric not in generic:
                generic[metric] = GaugeMetricFamily(
                    metric, f"{kind} driver status key {key!r}.", labels=[label]
                )
            generic[metric].add_metric([owner], value)
    yield from named.values()
    yield from generic.values()
