"""Fakes shared by the console tests: a realistic status dict and an agent that returns it."""

from __future__ import annotations

import copy
from typing import Any

SAMPLE_STATUS: dict[str, Any] = {
    "agent_id": "agent-test-1",
    "version": "1.0.0",
    "pid": 4242,
    "started_at": 1_790_000_000.0,
    "uptime_sec": 3725.5,
    "config_path": "/etc/fustor/agent-config.yaml",
    "config_generation": 2,
    "pipes": [
        {
            "id": "research-fs",
            "source_id": "research",
            "source_type": "fs",
            "sender_id": "fusion-main",
            "sender_type": "fusion",
            "enabled": True,
            "state": "running",
            "role": "leader",
            "session": "3f2a9c1e…",
            "phase": "audit",
            "progress": {
                "snapshot": {"rows": 120_000, "done": True},
                "audit": {"rows": 5_400, "running": True, "cycles": 7},
            },
            "rows_sent": {"realtime": 812, "snapshot": 120_000, "audit": 5_400, "on_demand_job": 3},
            "rows_per_sec": 42.5,
            "queue_depth": {"realtime": 2, "bulk": 17},
            "retries": 4,
            "rejected_batches": 0,
            "dropped_rows": 250,
            "last_error": {"message": "fusion answered 503, retrying", "at": 1_790_003_000.0},
            "ready": True,
            "not_ready_reason": None,
            "source": {
                "watched_dirs": 9_990,
                "dirs": 10_000,
                "overflows": 1,
                "root_available": True,
                "root": "/data/research",
            },
            "sender": {
                "endpoint": "http://fusion.example:8102",
                "batches_sent": 321,
                "inflight": 1,
            },
        },
        {
            "id": "scratch</script><b>x",
            "source_id": "scratch",
            "source_type": "fs",
            "sender_id": "echo",
            "sender_type": "echo",
            "enabled": True,
            "state": "backing_off",
            "role": None,
            "session": None,
            "phase": "idle",
            "progress": {
                "snapshot": {"rows": 0, "done": False},
                "audit": {"rows": 0, "running": False, "cycles": 0},
            },
            "rows_sent": {"realtime": 0, "snapshot": 0, "audit": 0, "on_demand_job": 0},
            "rows_per_sec": 0.0,
            "queue_depth": {"realtime": 0, "bulk": 0},
            "retries": 11,
            "last_error": None,
            "ready": False,
            "not_ready_reason": "root unavailable",
            "source": {"watched_dirs": 0, "dirs": 0, "overflows": 0, "root_available": False},
            "sender": {},
        },
    ],
}


class FakeAgent:
    """Stands in for ``fustor_agent.Agent``: returns a copy of ``state`` on every call."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state = copy.deepcopy(state if state is not None else SAMPLE_STATUS)
        self.calls = 0

    def status(self) -> dict[str, Any]:
        self.calls += 1
        return copy.deepcopy(self.state)
