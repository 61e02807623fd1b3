"""The realtime lane against a fake session handle: overflow, lost events, lost sessions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fustor_agent.runtime.delivery import Delivery
from fustor_agent.runtime.lane import RealtimeLane
from fustor_agent.runtime.stats import PipeState
from fustor_agent_sdk import PipeContext, SenderConfig, SenderDriver
from fustor_core import (
    SEND_OK,
    Batch,
    EventType,
    HeartbeatResult,
    MessageSource,
    PhaseSignal,
    Role,
    SendResult,
    SendStatus,
    SessionInfo,
)


class FakeSession:
    """A LaneSession whose session token the test switches by hand."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.token: object = "session-1"
        self.lost_calls: list[object] = []
        self.lost = asyncio.Event()
        self.lost_paths: list[list[str]] = []

    def current_session(self) -> object:
        return self.token

    def session_lost(self, session: object, reason: str = "") -> None:
        self.lost_calls.append(session)
        self.connected.clear()
        self.lost.set()

    def events_lost(self, paths: list[str]) -> None:
        self.lost_paths.append(paths)


class ScriptedSender(SenderDriver):
    """Answers each send with the next scripted status (then OK); records what was accepted."""

    name = "scripted"

    def __init__(self, script: list[SendStatus]) -> None:
        super().__init__("s", SenderConfig(), PipeContext("a", "p", "/", Path("/nonexistent")))
        self.script = script
        self.accepted: list[list[str]] = []
        self.refused: list[list[str]] = []

    async def open_session(self) -> SessionInfo:
        return SessionInfo("s1", Role.LEADER, 30.0)

    async def heartbeat(self, *, can_realtime: bool) -> HeartbeatResult:
        return HeartbeatResult(Role.LEADER)

    async def send(self, batch: Batch) -> SendResult:
        paths = [row["path"] for event in batch.events for row in event.rows]
        if self.script:
            self.refused.append(paths)
            return SendResult(self.script.pop(0))
        self.accepted.append(paths)
        return SEND_OK

    async def signal(self, signal: PhaseSignal, **details: object) -> SendResult:
        return SEND_OK


def realtime(*paths: str) -> Batch:
    return Batch.of(MessageSource.REALTIME, EventType.UPDATE, [{"path": p} for p in paths])


def test_overflow_drops_the_queue_counts_it_and_reports_everything_lost() -> None:
    session, state = FakeSession(), PipeState()
    lane = RealtimeLane("p", state, max_rows=3, session=session)
    lane.offer(realtime("/a", "/b"))
    lane.offer(realtime("/c", "/d"))  # 4 rows > 3: everything queued goes
    assert lane.rows == 0
    assert state.dropped_rows == 4
    assert session.lost_paths == [["/"]]


def test_an_empty_queue_takes_one_batch_larger_than_the_bound() -> None:
    """``max_buffered_rows`` below the source's batch size must not drop every large batch
    while the sender keeps up (helper 29: 293 rows of a replaced root dropped into an empty
    queue); the next batch past the bound still drops the queue."""
    session, state = FakeSession(), PipeState()
    lane = RealtimeLane("p", state, max_rows=3, session=session)
    lane.offer(realtime("/a", "/b", "/c", "/d", "/e"))
    assert lane.rows == 5 and state.dropped_rows == 0 and session.lost_paths == []
    lane.offer(realtime("/f"))
    assert lane.rows == 0 and state.dropped_rows == 6 and session.lost_paths == [["/"]]


def test_a_batch_with_rescan_reports_those_paths() -> None:
    session = FakeSession()
    lane = RealtimeLane("p", PipeState(), max_rows=100, session=session)
    lane.offer(Batch(MessageSource.REALTIME, rescan=["/d1", "/d2"]))
    assert session.lost_paths == [["/d1", "/d2"]]
    assert lane.idle


def test_a_batch_refused_for_a_lost_session_goes_first_in_the_next() -> None:
    async def main() -> tuple[FakeSession, ScriptedSender]:
        session = FakeSession()
        sender = ScriptedSender([SendStatus.SESSION_LOST])
        state = PipeState()
        lane = RealtimeLane("p", state, max_rows=100, session=session)
        delivery = Delivery("p", sender, state, alive=session.connected.is_set)
        session.connected.set()
        task = asyncio.create_task(lane.run(delivery))
        lane.offer(realtime("/1", "/2"))
        await session.lost.wait()
        lane.offer(realtime("/3"))  # arrives while there is no session
        session.token = "session-2"
        session.connected.set()
        await lane.drain()  # until every queued row is delivered
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return session, sender

    session, sender = asyncio.run(asyncio.wait_for(main(), 10))
    assert session.lost_calls == ["session-1"]  # the token of the session the batch went in
    assert sender.refused == [["/1", "/2"]]
    assert [p for batch in sender.accepted for p in batch] == ["/1", "/2", "/3"]
