"""A sender that records every batch and signal, for tests of sources and of pipe runners."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fustor_agent_sdk.config import SenderConfig
from fustor_agent_sdk.sender import PipeContext, SenderDriver
from fustor_core import (
    SEND_OK,
    Batch,
    Command,
    HeartbeatResult,
    MessageSource,
    PhaseSignal,
    Role,
    Row,
    SendResult,
    SendStatus,
    SessionInfo,
    SessionLostError,
)

__all__ = ["Recorded", "RecordingSender"]

_session_ids = itertools.count(1)


@dataclass(slots=True)
class Recorded:
    """One call the sender received, in arrival order: a batch or a signal."""

    batch: Batch | None = None
    signal: PhaseSignal | None = None
    details: dict[str, Any] = field(default_factory=dict)


class RecordingSender(SenderDriver):
    """Keeps what it is sent in memory; its behaviour is scripted by plain attributes.

    * ``role``: what ``open_session`` and ``heartbeat`` report (leader by default).
    * ``send_delay``: seconds each ``send`` takes, to play a slow consumer.
    * ``results``: results to return, in order, before falling back to ``OK`` (e.g.
      ``[SendResult(SendStatus.RETRY)]`` to make the first send fail once).
    * ``commands``: queued commands, each delivered by one heartbeat.
    * ``sentinel_paths``: what ``sentinel_tasks`` returns.
    * ``session_lost``: once set, heartbeats raise ``SessionLostError`` and sends and signals
      return ``SESSION_LOST`` until a new session is opened.

    It refuses what no sender may be given: an empty batch or an event with no rows.
    """

    name = "recording"
    config_model = SenderConfig

    def __init__(
        self,
        sender_id: str = "recording",
        config: SenderConfig | None = None,
        context: PipeContext | None = None,
    ) -> None:
        super().__init__(
            sender_id,
            config or SenderConfig(),
            context or PipeContext("test-agent", "test-pipe", "", Path(".")),
        )
        self.role = Role.LEADER
        self.send_delay = 0.0
        self.results: list[SendResult] = []
        self.commands: list[Command] = []
        self.sentinel_paths: list[str] = []
        self.log: list[Recorded] = []
        self.sentinel_updates: list[Row] = []
        self.sessions_opened = 0
        self.sessions_closed = 0
        self.closed = False
        self.session_lost = False

    async def open_session(self) -> SessionInfo:
        self.sessions_opened += 1
        self.session_lost = False
        return SessionInfo(f"recording-{next(_session_ids)}", self.role, timeout_sec=30.0)

    async def heartbeat(self, *, can_realtime: bool) -> HeartbeatResult:
        if self.session_lost:
            raise SessionLostError("recording sender: session lost")
        commands, self.commands = self.commands, []
        return HeartbeatResult(self.role, commands)

    def _next_result(self) -> SendResult:
        if self.session_lost:
            return SendResult(SendStatus.SESSION_LOST)
        return self.results.pop(0) if self.results else SEND_OK

    async def send(self, batch: Batch) -> SendResult:
        if not batch.events:
            raise AssertionError("a sender is never given a batch without events")
        for event in batch.events:
            if not event.rows:
                raise AssertionError("a sender is never given an event with empty rows")
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        result = self._next_result()
        if result.ok:
            self.log.append(Recorded(batch=batch))
        return result

    async def signal(self, signal: PhaseSignal, **details: Any) -> SendResult:
        result = self._next_result()
        if result.ok:
            self.log.append(Recorded(signal=signal, details=details))
        return result

    async def sentinel_tasks(self) -> list[str]:
        return list(self.sentinel_paths)

    async def sentinel_feedback(self, updates: list[Row]) -> SendResult:
        self.sentinel_updates.extend(updates)
        return SEND_OK

    async def close_session(self) -> None:
        self.sessions_closed += 1

    async def close(self) -> None:
        self.closed = True

    # What the tests look at.

    @property
    def batches(self) -> list[Batch]:
        return [r.batch for r in self.log if r.batch is not None]

    @property
    def signals(self) -> list[PhaseSignal]:
        return [r.signal for r in self.log if r.signal is not None]

    def rows(self, source: MessageSource | None = None) -> list[Row]:
        """Every row received, in order, optionally only those of one tier."""
        return [
            row
            for batch in self.batches
            for event in batch.events
            if source is None or event.message_source is source
            for row in event.rows
        ]

    def paths(self, source: MessageSource | None = None) -> set[str]:
        return {row["path"] for row in self.rows(source)}

    def sequence(self) -> list[str]:
        """The log as short names: the tier of each batch or the name of each signal."""
        return [
            r.batch.message_source.value if r.batch is not None else r.signal.value  # type: ignore[union-attr]
            for r in self.log
        ]

    def clear(self) -> None:
        self.log.clear()
        self.sentinel_updates.clear()

    def status(self) -> dict[str, Any]:
        return {"batches": len(self.batches), "signals": len(self.signals)}

    def signal_details(self, signal: PhaseSignal) -> list[dict[str, Any]]:
        return [r.details for r in self.log if r.signal is signal]

    @staticmethod
    def flatten(batches: Iterable[Batch]) -> list[Row]:
        return [row for batch in batches for event in batch.events for row in event.rows]
