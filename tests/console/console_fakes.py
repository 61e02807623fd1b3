"""Fakes shared by the console tests: a realistic status, built with the status model, and an
agent that returns it."""

from __future__ import annotations

import copy
from typing import Any

from fustor_agent.console import DeclaredMetrics
from fustor_agent.status import (
    AgentStatus,
    AuditProgress,
    ErrorInfo,
    PipeActivity,
    PipeRunState,
    PipeStatus,
    Progress,
    QueueDepth,
    SenderStatus,
    SnapshotProgress,
    SourceStatus,
)
from fustor_core import Role
from fustor_sender_echo.sender import EchoSender
from fustor_sender_http.sender import FusionSender
from fustor_source_fs.driver import FsSource

SAMPLE = AgentStatus(
    agent_id="agent-test-1",
    version="1.0.0",
    pid=4242,
    started_at=1_790_000_000.0,
    uptime_sec=3725.5,
    config_path="/etc/fustor/agent-config.yaml",
    config_generation=2,
    config_loaded_at=1_790_002_000.0,
    pipes=[
        PipeStatus(
            id="research-fs",
            source_id="research",
            source_type="fs",
            sender_id="fusion-main",
            sender_type="fusion",
            enabled=True,
            state=PipeRunState.RUNNING,
            role=Role.LEADER,
            session="3f2a9c1e…",
            activity=PipeActivity.AUDIT,
            progress=Progress(
                snapshot=SnapshotProgress(rows=120_000, done=True),
                audit=AuditProgress(rows=5_400, running=True, cycles=7),
            ),
            rows_sent={"realtime": 812, "snapshot": 120_000, "audit": 5_400, "on_demand_job": 3},
            rows_per_sec=42.5,
            queue_depth=QueueDepth(realtime=2, bulk=17),
            retries=4,
            rejected_batches=0,
            dropped_rows=250,
            last_error=ErrorInfo(message="fusion answered 503, retrying", at=1_790_003_000.0),
            ready=True,
            source_pipes=["research-fs"],
            source=SourceStatus.model_validate(
                {
                    "realtime_running": True,
                    "watched_dirs": 9_990,
                    "dirs": 10_000,
                    "overflows": 1,
                    "root_available": True,
                    "root": "/data/research",
                }
            ),
            sender=SenderStatus.model_validate(
                {"endpoint": "http://fusion.example:8102", "batches_sent": 321, "inflight": 1}
            ),
        ),
        PipeStatus(
            id="scratch</script><b>x",
            source_id="scratch",
            source_type="fs",
            sender_id="echo",
            sender_type="echo",
            enabled=True,
            state=PipeRunState.BACKING_OFF,
            rows_sent={"realtime": 0, "snapshot": 0, "audit": 0, "on_demand_job": 0},
            retries=11,
            not_ready_reason="root unavailable",
            source_pipes=["scratch</script><b>x"],
            source=SourceStatus.model_validate(
                {"watched_dirs": 0, "dirs": 0, "overflows": 0, "root_available": False}
            ),
        ),
    ],
)

SAMPLE_STATUS: dict[str, Any] = SAMPLE.to_json()
"""``SAMPLE`` as the JSON API answers it."""

DECLARED: DeclaredMetrics = {
    ("source", "fs"): FsSource.metrics,
    ("sender", "fusion"): FusionSender.metrics,
    ("sender", "echo"): EchoSender.metrics,
}
"""What the built-in drivers declare (the real declarations, not copies)."""


class FakeAgent:
    """Stands in for ``fustor_agent.Agent``: reads the model back from ``state`` (the JSON form,
    which tests may edit) on every call, so a fake status can never leave the model's shape."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state = copy.deepcopy(state if state is not None else SAMPLE_STATUS)
        self.calls = 0

    def status(self) -> AgentStatus:
        self.calls += 1
        return AgentStatus.model_validate(copy.deepcopy(self.state))

    def declared_metrics(self) -> DeclaredMetrics:
        return DECLARED
