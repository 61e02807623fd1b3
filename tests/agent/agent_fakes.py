"""Scriptable in-memory source and sender for the runtime tests.

Each test gets its own :class:`World`: driver classes bound to it, and a log of every call
the host made, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from fustor_agent.agent import Agent
from fustor_agent.config import AgentConfig, ConsoleSettings, PipeEntry, SenderSpec, SourceSpec
from fustor_agent_sdk import (
    Phase,
    PipeContext,
    SenderConfig,
    SenderDriver,
    SourceConfig,
    SourceDriver,
)
from fustor_core import (
    SEND_OK,
    Batch,
    Command,
    EventType,
    HeartbeatResult,
    MessageSource,
    PhaseSignal,
    Role,
    Row,
    SendResult,
    SessionInfo,
    confine,
)

__all__ = ["World", "file_row", "running", "wait_until"]


def file_row(path: str) -> Row:
    return {
        "path": path,
        "size": 1,
        "modified_time": 1.0,
        "created_time": 1.0,
        "is_directory": False,
    }


async def wait_until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class World:
    """Shared state of one test's fake drivers."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.sources: dict[str, FakeSourceBase] = {}
        self.senders: dict[str, FakeSenderBase] = {}
        # Source behaviour
        self.snapshot_rows: list[Row] = [file_row(f"/s{i}") for i in range(3)]
        self.snapshot_batch = 2
        self.snapshot_extra: list[Batch] = []
        """Batches the snapshot yields first, as they are (contract-breaking ones too)."""
        self.walk_delay = 0.0
        self.audit_rows: list[Row] = [file_row("/a0")]
        self.audit_error: Exception | None = None
        self.audit_ended_error: Exception | None = None
        self.scan_error: Exception | None = None
        self.health: str | Exception | None = None
        """The source's ``health()`` answer; an exception is raised by it."""
        self.realtime: asyncio.Queue[Batch] | None = None
        self.phases = frozenset(Phase)
        # Sender behaviour
        self.open_role = Role.LEADER
        self.starts_empty = False
        self.role = Role.LEADER
        self.open_errors: deque[Exception] = deque()
        self.send_results: deque[SendResult | Exception] = deque()
        self.signal_results: dict[str, deque[SendResult | Exception]] = {}
        """Outcomes of the next signals of each kind (``"snapshot_end"``...), then OK."""
        self.send_delay = 0.0
        self.timeout_sec = 0.3
        self.audit_interval: float | None = None
        self.sentinel_interval: float | None = None
        self.sentinel_paths: list[str] = []
        self.commands: list[Command] = []
        self.heartbeat_errors: deque[Exception] = deque()
        self.heartbeat_hook: Callable[[], None] | None = None
        """Called inside each heartbeat, before it returns."""
        self.sender_health: str | None = None
        self.close_hangs = False
        self.heartbeat_hangs = False
        """The sender's ``heartbeat()`` never returns."""
        """The sender's ``close()`` never returns."""
        self.max_batch_size = 1000
        self.sessions = 0
        world = self

        class Source(FakeSourceBase):
            pass

        class Sender(FakeSenderBase):
            pass

        Source.world = world
        Sender.world = world
        self.Source = Source
        self.Sender = Sender

    def push(self, *paths: str, rescan: list[str] | None = None) -> None:
        """A realtime batch from the (single) fake source."""
        assert self.realtime is not None, "the realtime watch has not started"
        rows = [file_row(p) for p in paths]
        batch = (
            Batch.of(MessageSource.REALTIME, EventType.INSERT, rows)
            if rows
            else Batch(MessageSource.REALTIME)
        )
        batch.rescan = rescan or []
        self.realtime.put_nowait(batch)

    def sent_paths(self, source: str | None = None) -> list[str]:
        return [
            p
            for entry in self.log
            if entry[0] == "send" and source in (None, entry[1])
            for p in entry[2]
        ]

    def signals(self) -> list[str]:
        return [entry[1] for entry in self.log if entry[0] == "signal"]

    def config(
        self,
        *pipes: dict[str, Any],
        sources: tuple[str, ...] = ("src",),
        senders: tuple[str, ...] = ("out",),
    ) -> AgentConfig:
        return AgentConfig(
            sources={
                s: SourceSpec(s, "fake", self.Source, SourceConfig(uri=f"/{s}")) for s in sources
            },
            senders={s: SenderSpec(s, "fake", self.Sender, SenderConfig()) for s in senders},
            pipes={
                p["id"]: PipeEntry(**{"source_id": "src", "sender_id": "out", **p}) for p in pipes
            },
            console=ConsoleSettings(enabled=False),
        )


class FakeSourceBase(SourceDriver):
    name = "fake"
    world: World

    @property  # type: ignore[misc]
    def phases(self) -> frozenset[Phase]:  # type: ignore[override]
        return self.world.phases

    def __init__(self, source_id: str, config: SourceConfig) -> None:
        super().__init__(source_id, config)
        self.world.sources[source_id] = self
        self.full_audits = 0
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True

    async def _rows(self, source: MessageSource, rows: list[Row]) -> AsyncIterator[Batch]:
        size = self.world.snapshot_batch
        for start in range(0, len(rows), size):
            await asyncio.sleep(self.world.walk_delay)
            yield Batch.of(source, EventType.UPDATE, rows[start : start + size])

    async def snapshot(self) -> AsyncIterator[Batch]:
        for batch in self.world.snapshot_extra:
            yield batch
        async for batch in self._rows(MessageSource.SNAPSHOT, self.world.snapshot_rows):
            yield batch

    async def audit(self, full: bool = False) -> AsyncIterator[Batch]:
        if full:
            self.full_audits += 1
            self.world.log.append(("full_audit", self.source_id))
        async for batch in self._rows(MessageSource.AUDIT, self.world.audit_rows):
            yield batch
        if self.world.audit_error is not None:
            raise self.world.audit_error

    async def audit_ended(self) -> None:
        self.world.log.append(("audit_ended", self.source_id))
        if self.world.audit_ended_error is not None:
            raise self.world.audit_ended_error

    async def realtime(self) -> AsyncIterator[Batch]:
        self.world.realtime = queue = asyncio.Queue()
        while True:
            yield await queue.get()

    async def sentinel_check(self, paths: list[str]) -> list[Row]:
        return [{"path": p, "mtime": 1.0, "size": 1} for p in paths]

    async def scan(self, path: str, recursive: bool) -> AsyncIterator[Batch]:
        target = confine(path)
        if self.world.scan_error is not None:
            raise self.world.scan_error
        yield Batch.of(MessageSource.SCAN, EventType.UPDATE, [file_row(target)])

    def health(self) -> str | None:
        if isinstance(self.world.health, Exception):
            raise self.world.health
        return self.world.health

    def status(self) -> dict[str, Any]:
        return {"watched_dirs": 1}


class FakeSenderBase(SenderDriver):
    name = "fake"
    world: World

    def __init__(self, sender_id: str, config: SenderConfig, context: PipeContext) -> None:
        super().__init__(sender_id, config, context)
        self.world.senders[context.pipe_id] = self
        self.max_batch_size = self.world.max_batch_size
        self.closed = False

    def _log(self, *entry: Any) -> None:
        self.world.log.append(entry)

    async def open_session(self) -> SessionInfo:
        world = self.world
        if world.open_errors:
            raise world.open_errors.popleft()
        world.sessions += 1
        world.role = world.open_role
        self._log("open", self.context.pipe_id, world.open_role.value)
        return SessionInfo(
            f"session-{world.sessions}-0123456789",
            world.open_role,
            world.timeout_sec,
            world.audit_interval,
            world.sentinel_interval,
            starts_empty=world.starts_empty,
        )

    def health(self) -> str | None:
        return self.world.sender_health

    async def heartbeat(self, *, can_realtime: bool) -> HeartbeatResult:
        if self.world.heartbeat_hangs:
            await asyncio.Event().wait()
        if self.world.heartbeat_errors:
            raise self.world.heartbeat_errors.popleft()
        if self.world.heartbeat_hook is not None:
            self.world.heartbeat_hook()
        commands, self.world.commands = self.world.commands, []
        self._log("heartbeat", self.context.pipe_id)
        return HeartbeatResult(self.world.role, commands)

    async def send(self, batch: Batch) -> SendResult:
        assert batch.row_count > 0, "empty batch sent"
        if self.world.send_delay:
            await asyncio.sleep(self.world.send_delay)
        if self.world.send_results:
            outcome = self.world.send_results.popleft()
            if isinstance(outcome, Exception):
                raise outcome
            if not isinstance(outcome, SendResult):
                return outcome  # a buggy sender's answer, as it is
            if not outcome.ok:
                self._log(
                    "refused",
                    outcome.status.value,
                    [r["path"] for e in batch.events for r in e.rows],
                )
                return outcome
        self._log(
            "send",
            batch.message_source.value,
            [r["path"] for e in batch.events for r in e.rows],
            self.context.pipe_id,
        )
        return SEND_OK

    async def signal(self, signal: PhaseSignal, **details: Any) -> SendResult:
        outcomes = self.world.signal_results.get(signal.value)
        if outcomes:
            outcome = outcomes.popleft()
            self._log("signal refused", signal.value, str(outcome))
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        self._log("signal", signal.value, details)
        return SEND_OK

    async def sentinel_tasks(self) -> list[str]:
        return list(self.world.sentinel_paths)

    async def sentinel_feedback(self, updates: list[Row]) -> SendResult:
        self._log("sentinel_feedback", [u["path"] for u in updates])
        return SEND_OK

    async def close_session(self) -> None:
        self._log("close_session", self.context.pipe_id)

    async def close(self) -> None:
        if self.world.close_hangs:
            await asyncio.Event().wait()
        self.closed = True


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[Agent]:
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
