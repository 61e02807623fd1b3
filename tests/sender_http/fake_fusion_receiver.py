"""A scripted Fusion receiver behind ``httpx.MockTransport`` for the fusion sender's unit tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from fustor_agent_sdk import PipeContext
from fustor_sender_http import FusionSender, FusionSenderConfig

__all__ = ["ENDPOINT", "KEY", "FakeReceiver", "make_sender"]

ENDPOINT = "http://fusion.test:8102"
KEY = "agent-key-not-for-logs-7f3a"

Reply = httpx.Response | Exception


@dataclass
class FakeReceiver:
    """Answers like a 0.8.17 receiver; ``script`` queues replies per ``"METHOD /path-kind"``.

    Route kinds: ``POST create``, ``POST heartbeat``, ``DELETE session``, ``POST ingest``,
    ``POST audit/start``, ``POST audit/end``, ``GET sentinel/tasks``,
    ``POST sentinel/feedback``. A queued ``Exception`` is raised (a network failure).
    """

    role: str = "leader"
    requests: list[httpx.Request] = field(default_factory=list)
    probes: list[httpx.Request] = field(default_factory=list)
    """``GET /api/v1/management/views``: 404 here, as on a real receiver port."""
    scripts: dict[str, list[Reply]] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)
    drivers_handled: int = 1

    def script(self, route: str, *replies: Reply) -> None:
        self.scripts.setdefault(route, []).extend(replies)

    def bodies(self, route: str) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.of(route)]

    def of(self, route: str) -> list[httpx.Request]:
        return [r for r in self.requests + self.probes if _route(r) == route]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        route = _route(request)
        # The sender's one-off check of which Fusion port it talks to is kept apart, so the
        # protocol sequences the tests compare stay what Fusion's receiver sees.
        (self.probes if route == PROBE else self.requests).append(request)
        queued = self.scripts.get(route)
        if queued:
            reply = queued.pop(0)
            if isinstance(reply, Exception):
                raise reply
            return reply
        return self._default(route, request)

    def _default(self, route: str, request: httpx.Request) -> httpx.Response:
        if route == "POST create":
            sid = str(uuid.uuid4())
            self.issued.append(sid)
            return httpx.Response(
                200,
                json={
                    "session_id": sid,
                    "role": self.role,
                    "session_timeout_seconds": 30,
                    "audit_interval_sec": 600.0,
                    "sentinel_interval_sec": 120.0,
                    "message": "Session created successfully",
                },
            )
        if route == "POST heartbeat":
            return httpx.Response(
                200,
                json={
                    "status": "ok",
                    "role": self.role,
                    "message": None,
                    "can_realtime": None,
                    "commands": [],
                },
            )
        if route == "DELETE session":
            sid = request.url.path.rsplit("/", 1)[-1]
            return httpx.Response(200, json={"status": "terminated", "session_id": sid})
        if route == "POST ingest":
            count = len(json.loads(request.content)["events"])
            return httpx.Response(200, json={"status": "ok", "count": count})
        if route in ("POST audit/start", "POST audit/end"):
            kind = route.rsplit("/", 1)[-1]
            status = "audit_started" if kind == "start" else "audit_ended"
            return httpx.Response(
                200, json={"status": status, "drivers_handled": self.drivers_handled}
            )
        if route == "GET sentinel/tasks":
            return httpx.Response(200, json={})
        if route == "POST sentinel/feedback":
            return httpx.Response(200, json={"status": "processed", "drivers_updated": 1})
        return httpx.Response(404, json={"detail": "Not Found"})


PROBE = "GET /api/v1/management/views"


def _route(request: httpx.Request) -> str:
    path = request.url.path
    method = request.method
    if path == "/api/v1/pipe/session/":
        kind = "create"
    elif path.startswith("/api/v1/pipe/session/") and path.endswith("/heartbeat"):
        kind = "heartbeat"
    elif path.startswith("/api/v1/pipe/session/"):
        kind = "session"
    elif path.startswith("/api/v1/pipe/ingest/"):
        kind = "ingest"
    elif path.startswith("/api/v1/pipe/consistency/"):
        kind = path.removeprefix("/api/v1/pipe/consistency/")
    else:
        kind = path
    return f"{method} {kind}"


def make_sender(
    tmp_path: Path,
    receiver: Callable[[httpx.Request], httpx.Response],
    **driver_params: Any,
) -> FusionSender:
    config = FusionSenderConfig.model_validate(
        {"endpoint": ENDPOINT, "credential": KEY, "driver_params": driver_params}
    )
    context = PipeContext(
        agent_id="agent-7",
        pipe_id="research",
        source_uri="/data/research",
        state_dir=tmp_path / "state",
    )
    return FusionSender("to-fusion", config, context, transport=httpx.MockTransport(receiver))
