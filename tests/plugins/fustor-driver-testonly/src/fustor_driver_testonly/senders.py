"""Test-only sender ``slowfile``: appends one JSON line per row to a file, slowly."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict

from fustor_agent_sdk import PipeContext, SenderConfig, SenderDriver
from fustor_core import SEND_OK, Batch, HeartbeatResult, PhaseSignal, Role, SendResult, SessionInfo

__all__ = ["SlowFileSender"]


class SlowFileParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output: str
    delay_sec: float = 0.1
    """Pause before each send: makes a queue build up behind it."""
    max_batch_size: int = 5


class SlowFileConfig(SenderConfig):
    driver_params: SlowFileParams


class SlowFileSender(SenderDriver):
    name = "slowfile"
    config_model = SlowFileConfig

    def __init__(self, sender_id: str, config: SenderConfig, context: PipeContext) -> None:
        super().__init__(sender_id, config, context)
        assert isinstance(config, SlowFileConfig)
        self.params = config.driver_params
        self.max_batch_size = self.params.max_batch_size

    def _append(self, lines: list[dict[str, Any]]) -> None:
        with open(self.params.output, "a", encoding="utf-8") as out:
            out.write("".join(json.dumps(line) + "\n" for line in lines))

    async def open_session(self) -> SessionInfo:
        self._append([{"session": "open"}])
        return SessionInfo(session_id=uuid.uuid4().hex, role=Role.LEADER, timeout_sec=30.0)

    async def heartbeat(self, *, can_realtime: bool) -> HeartbeatResult:
        return HeartbeatResult(role=Role.LEADER)

    async def send(self, batch: Batch) -> SendResult:
        await asyncio.sleep(self.params.delay_sec)
        self._append(
            [
                {"source": e.message_source.value, "type": e.event_type.value, "path": row["path"]}
                for e in batch.events
                for row in e.rows
            ]
        )
        return SEND_OK

    async def signal(self, signal: PhaseSignal, **details: Any) -> SendResult:
        self._append([{"signal": signal.value}])
        return SEND_OK

    async def close_session(self) -> None:
        self._append([{"session": "closed"}])
