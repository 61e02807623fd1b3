"""Prometheus exposition of the agent's status (``GET /metrics``).

A custom Collector reads ``agent.status()`` (an :class:`AgentStatus`) at scrape time, so the
metrics can never disagree with ``/api/v1/status``. Driver figures are exported only where
the driver declares them (``SourceDriver.metrics`` / ``SenderDriver.metrics``): the host
does not know what a driver's keys mean. Everything lives in a private CollectorRegistry
(with the process and platform collectors), so nothing else in the process (or a second
agent in the same interpreter, as in tests) leaks into the output.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from fustor_agent.status import AgentStatus, PipeActivity, PipeRunState, PipeStatus
from fustor_agent_sdk import MetricKind, MetricSpec
from fustor_core import MessageSource, Role

__all__ = [
    "CONTENT_TYPE",
    "DeclaredMetrics",
    "MetricsSource",
    "StatusCollector",
    "families",
    "metrics_registry",
    "render_metrics",
]

logger = logging.getLogger(__name__)

# What generate_latest() writes; newer prometheus_client versions call "latest" a format
# negotiated by escaping scheme, which would mislabel this output.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "fustor_agent"
QUEUE_LANES = ("realtime", "bulk")

DeclaredMetrics = Mapping[tuple[str, str], tuple[MetricSpec, ...]]
"""The metrics each driver type declares, by (``"source"`` or ``"sender"``, driver type)."""


class MetricsSource(Protocol):
    """What the exporter reads from the agent at each scrape."""

    def status(self) -> AgentStatus: ...

    def declared_metrics(self) -> DeclaredMetrics: ...


class StatusCollector(Collector):
    """Turns one status per scrape into metric families."""

    def __init__(self, agent: MetricsSource) -> None:
        self._agent = agent

    def collect(self) -> Iterator[Metric]:
        yield from families(self._agent.status(), self._agent.declared_metrics())


def metrics_registry(agent: MetricsSource) -> CollectorRegistry:
    """A private registry with the agent's status and the process and platform collectors."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(agent))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)


def families(status: AgentStatus, declared: DeclaredMetrics) -> Iterator[Metric]:
    """Every metric family of the agent, in a stable order."""
    yield from _agent_families(status)
    yield from _pipe_families(status.pipes)
    yield from _driver_families(status.pipes, declared, "source")
    yield from _driver_families(status.pipes, declared, "sender")


def _agent_families(status: AgentStatus) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        f"{PREFIX}_build_info",
        "Agent version and id; the value is always 1.",
        labels=["version", "agent_id"],
    )
    info.add_metric([status.version, status.agent_id], 1)
    yield info
    yield GaugeMetricFamily(
        f"{PREFIX}_start_time_seconds",
        "Agent start time, Unix epoch seconds.",
        value=status.started_at,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_config_generation",
        "Configuration generation: 1 at start, +1 at each successful reload.",
        value=status.config_generation,
    )
    reload = status.last_reload
    yield GaugeMetricFamily(
        f"{PREFIX}_config_last_reload_successful",
        "1 when the last configuration reload applied (or none was tried), 0 when it failed.",
        value=1.0 if reload is None or reload.ok else 0.0,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_config_last_reload_success_timestamp_seconds",
        "When the configuration in use was loaded (start or last good reload), Unix epoch.",
        value=status.config_loaded_at,
    )


def _pipe_families(pipes: list[PipeStatus]) -> Iterator[Metric]:
    def gauge(name: str, doc: str, extra: list[str] | None = None) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=["pipe", *(extra or [])])

    def counter(name: str, doc: str, extra: list[str] | None = None) -> CounterMetricFamily:
        # CounterMetricFamily writes the name with "_total".
        return CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=["pipe", *(extra or [])])

    pipe_info = gauge(
        "pipe_info",
        "Source and sender of each pipe; the value is always 1.",
        ["source", "source_type", "sender", "sender_type"],
    )
    enabled = gauge("pipe_enabled", "1 when the pipe is enabled in the config.")
    state = gauge("pipe_state", "Pipe state: 1 for the current state, 0 for the others.", ["state"])
    ready = gauge("pipe_ready", "1 when the pipe has a live session and its watcher runs.")
    leader = gauge("is_leader", "1 when the pipe's session is the leader of its view.")
    activity = gauge(
        "pipe_activity",
        "What the pipe does: 1 for the current activity, 0 for the others.",
        ["activity"],
    )
    rows_sent = counter(
        "rows_sent", "Rows the sender accepted, by message source.", ["message_source"]
    )
    queue = gauge("queue_depth", "Rows waiting between source and sender, by lane.", ["lane"])
    retries = counter("retries", "Sends and signals the pipe had to retry.")
    rejected = counter("rejected_batches", "Batches the receiver refused for good (not resent).")
    dropped = counter("dropped_rows", "Realtime rows dropped on overflow (a resync follows).")
    snap_rows = gauge("snapshot_rows", "Rows the pipe sent in its current (or last) snapshot.")
    snap_done = gauge("snapshot_done", "1 when the snapshot of the current session finished.")
    audit_rows = gauge("audit_rows", "Rows the pipe sent in its current (or last) audit cycle.")
    audit_running = gauge("audit_running", "1 while an audit cycle runs.")
    audit_cycles = counter("audit_cycles", "Audit cycles completed.")
    last_error = gauge("last_error_timestamp_seconds", "When the pipe last failed, Unix epoch.")
    send_duration = HistogramMetricFamily(
        f"{PREFIX}_send_duration_seconds",
        "Time one batch took in the sender's send(), retries counted one by one.",
        labels=["pipe"],
    )

    for pipe in pipes:
        pid = pipe.id
        pipe_info.add_metric(
            [pid, pipe.source_id, pipe.source_type, pipe.sender_id, pipe.sender_type], 1
        )
        enabled.add_metric([pid], float(pipe.enabled))
        for run_state in PipeRunState:
            state.add_metric([pid, run_state.value], float(pipe.state is run_state))
        ready.add_metric([pid], float(pipe.ready))
        leader.add_metric([pid], float(pipe.role is Role.LEADER))
        for kind in PipeActivity:
            activity.add_metric([pid, kind.value], float(pipe.activity is kind))
        message_sources = [source.value for source in MessageSource]
        message_sources += sorted(set(pipe.rows_sent) - set(message_sources))
        for source in message_sources:
            rows_sent.add_metric([pid, source], float(pipe.rows_sent.get(source, 0)))
        queue.add_metric([pid, "realtime"], pipe.queue_depth.realtime)
        queue.add_metric([pid, "bulk"], pipe.queue_depth.bulk)
        retries.add_metric([pid], pipe.retries)
        rejected.add_metric([pid], pipe.rejected_batches)
        dropped.add_metric([pid], pipe.dropped_rows)
        progress = pipe.progress
        snap_rows.add_metric([pid], progress.snapshot.rows)
        snap_done.add_metric([pid], float(progress.snapshot.done))
        audit_rows.add_metric([pid], progress.audit.rows)
        audit_running.add_metric([pid], float(progress.audit.running))
        audit_cycles.add_metric([pid], progress.audit.cycles)
        if pipe.last_error is not None:
            last_error.add_metric([pid], pipe.last_error.at)
        histogram = pipe.send_duration
        buckets = [
            (_le(bound), float(count))
            for bound, count in zip(histogram.bounds, histogram.buckets, strict=True)
        ]
        buckets.append(("+Inf", float(histogram.count)))
        send_duration.add_metric([pid], buckets, histogram.sum)

    yield from (
        pipe_info, enabled, state, ready, leader, activity, rows_sent, queue, retries,
        rejected, dropped, snap_rows, snap_done, audit_rows, audit_running, audit_cycles,
        last_error, send_duration,
    )  # fmt: skip


def _le(bound: float) -> str:
    return repr(float(bound))


def _number(value: Any) -> float | None:
    """A sample value for ``value``: bools become 0/1; ``None`` and non-numbers give none."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    return None


def _histogram(value: Any) -> tuple[list[tuple[str, float]], float] | None:
    """Buckets (``+Inf`` last) and sum of a ``Histogram.snapshot()`` mapping; ``None`` for
    anything else (a driver's bad value exports no sample rather than a wrong one)."""
    try:
        bounds, counts = list(value["bounds"]), list(value["buckets"])
        count, total = float(value["count"]), float(value["sum"])
    except (TypeError, KeyError, ValueError):
        return None
    if len(bounds) != len(counts):
        return None
    buckets = [(_le(b), float(n)) for b, n in zip(bounds, counts, strict=True)]
    return [*buckets, ("+Inf", count)], total


def _family(spec: MetricSpec, name: str, label: str) -> Metric:
    if spec.kind is MetricKind.COUNTER:
        return CounterMetricFamily(name, spec.help, labels=[label])
    if spec.kind is MetricKind.HISTOGRAM:
        return HistogramMetricFamily(name, spec.help, labels=[label])
    return GaugeMetricFamily(name, spec.help, labels=[label])


def _driver_families(
    pipes: list[PipeStatus], declared: DeclaredMetrics, kind: str
) -> Iterator[Metric]:
    """The declared keys of ``SourceDriver.status()`` / ``SenderDriver.status()``.

    A sender belongs to one pipe: its series carry the ``pipe`` label. A source may feed
    several pipes, and its figures are the source's own (one snapshot count for all its
    pipes): its series carry the ``source`` label, once per source, so that a sum over
    series never counts a shared source twice. Two driver types declaring the same name
    share the family when they agree on its kind; a conflicting kind is left out (logged).
    """
    label = "source" if kind == "source" else "pipe"
    found: dict[str, tuple[MetricSpec, Metric]] = {}
    seen: set[str] = set()
    for pipe in pipes:
        owner = pipe.source_id if kind == "source" else pipe.id
        driver_type = pipe.source_type if kind == "source" else pipe.sender_type
        figures = (pipe.source if kind == "source" else pipe.sender).figures()
        if owner in seen or not figures:
            continue
        seen.add(owner)
        for spec in declared.get((kind, driver_type), ()):
            raw = figures.get(spec.key)
            sample = _histogram(raw) if spec.kind is MetricKind.HISTOGRAM else _number(raw)
            if sample is None:
                continue
            name = spec.exported_name(f"{PREFIX}_{kind}")
            if name not in found:
                found[name] = (spec, _family(spec, name, label))
            first, family = found[name]
            if first.kind is not spec.kind:
                logger.debug("%s driver %r: %s declared as another kind", kind, driver_type, name)
                continue
            if isinstance(family, HistogramMetricFamily) and isinstance(sample, tuple):
                family.add_metric([owner], sample[0], sample[1])
            elif isinstance(family, CounterMetricFamily | GaugeMetricFamily) and isinstance(
                sample, float
            ):
                family.add_metric([owner], sample)
    for _, family in found.values():
        yield family
