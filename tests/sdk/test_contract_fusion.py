"""The ``fusion`` sender passes the SDK sender contract against a tiny fake receiver.

The fake answers on ``httpx.MockTransport`` the few routes of docs/fusion-protocol.md §3 and records
what arrives; the real-server behaviour is tested in tests/fusion.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from fustor_agent_sdk import PipeContext
from fustor_agent_sdk.testing import SenderDriverContract
from fustor_sender_http import FusionSender, FusionSenderConfig

pytest_plugins = ["fustor_agent_sdk.testing"]

ENDPOINT = "http://fusion.contract:8102"


@dataclass
class TinyReceiver:
    """Knows sessions, records ingest traffic as contract records, can forget every session."""

    records: list[dict[str, Any]] = field(default_factory=list)
    sessions: set[str] = field(default_factory=set)
    key: str = ""
    status_on_create: int = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/pipe/session/" and request.method == "POST":
            if request.headers.get("X-API-Key") != self.key or self.status_on_create == 401:
                return httpx.Response(401, json={"detail": "Invalid API Key"})
            sid = str(uuid.uuid4())
            self.sessions.add(sid)
            return httpx.Response(
                200, json={"session_id": sid, "role": "leader", "session_timeout_seconds": 30}
            )
        if path.endswith("/heartbeat"):
            sid = path.split("/")[-2]
            if sid not in self.sessions:
                return httpx.Response(419, json={"detail": "Session not found"})
            return httpx.Response(200, json={"status": "ok", "role": "leader", "commands": []})
        if request.method == "DELETE":
            self.sessions.discard(path.rstrip("/").split("/")[-1])
            return httpx.Response(200, json={"status": "ok"})
        if path.endswith("/consistency/audit/start"):
            self.records.append({"signal": "audit_start"})
            return httpx.Response(200, json={"status": "audit_started", "drivers_handled": 1})
        if path.endswith("/consistency/audit/end"):
            return httpx.Response(200, json={"status": "audit_ended", "drivers_handled": 1})
        if path.startswith("/api/v1/pipe/ingest/"):
            if path.split("/")[-2] not in self.sessions:
                return httpx.Response(404, json={"detail": "Session not found"})
            self._ingest(json.loads(request.content))
            return httpx.Response(200, json={"status": "ok"})
        return httpx.Response(404, json={"detail": "Not Found"})

    def _ingest(self, body: dict[str, Any]) -> None:
        kind = body.get("source_type")
        if kind == "job_complete":
            self.records.append({"signal": "job_complete", **body["metadata"]})
            return
        for event in body["events"]:
            self.records.extend(
                {
                    "message_source": event["message_source"],
                    "event_type": event["event_type"],
                    "path": row["path"],
                }
                for row in event["rows"]
            )
        if body.get("is_end"):
            self.records.append({"signal": f"{kind}_end"})


class TestFusionSenderContract(SenderDriverContract):
    entry_point = "fusion"
    secret = "fusion-agent-key-contract-91c4"

    @pytest.fixture
    def receiver(self) -> TinyReceiver:
        return TinyReceiver(key=self.secret)

    @pytest.fixture
    def make_sender(
        self, receiver: TinyReceiver, pipe_context: PipeContext
    ) -> Callable[[], FusionSender]:
        config = FusionSenderConfig(endpoint=ENDPOINT, credential=self.secret)
        transport = httpx.MockTransport(receiver)
        return lambda: FusionSender("fusion", config, pipe_context, transport=transport)

    @pytest.fixture
    def received(self, receiver: TinyReceiver) -> Callable[[], list[dict[str, Any]]]:
        return lambda: list(receiver.records)

    @pytest.fixture
    def lose_session(self, receiver: TinyReceiver) -> Callable[[], None]:
        return receiver.sessions.clear

    @pytest.fixture
    def failing_senders(self, pipe_context: PipeContext):
        def refused(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        def make(handler: Callable[[httpx.Request], httpx.Response], key: str) -> FusionSender:
            config = FusionSenderConfig(endpoint=ENDPOINT, credential=key)
            return FusionSender(
                "fusion", config, pipe_context, transport=httpx.MockTransport(handler)
            )

        return {
            "connection refused": (lambda: make(refused, self.secret), True),
            "wrong API key": (lambda: make(TinyReceiver(key="other"), "wrong-key"), False),
        }
