"""The session loop of one pipe: open, heartbeat, follow the role, recover from loss."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from fustor_agent.config import PipeEntry
from fustor_agent.runtime.backoff import Backoff, sleep_unless
from fustor_agent.runtime.delivery import Delivery
from fustor_agent.runtime.lane import RealtimeLane
from fustor_agent.runtime.leader import LeaderWork
from fustor_agent.runtime.scan import run_scan
from fustor_agent.runtime.stats import PipeState
from fustor_agent.status import PipeRunState
from fustor_agent_sdk import SenderDriver, SourceDriver
from fustor_core import (
    DriverError,
    HeartbeatResult,
    Role,
    ScanCommand,
    SessionInfo,
    SessionLostError,
)

__all__ = ["SessionRunner", "heartbeat_interval"]

logger = logging.getLogger(__name__)

MAX_HEARTBEAT_SEC = 10.0
STABLE_SESSION_SEC = 5.0


def heartbeat_interval(timeout_sec: float) -> float:
    return min(timeout_sec / 3, MAX_HEARTBEAT_SEC) if timeout_sec > 0 else MAX_HEARTBEAT_SEC


class _Session:
    """The tasks of one open session; all of them end with it."""

    def __init__(self, info: SessionInfo) -> None:
        self.info = info
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self.leader: LeaderWork | None = None
        self.leader_task: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def lose(self, reason: str) -> None:
        """The session is over (the first reason given is kept for status)."""
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A bug in a session task must not leave a half-working session behind.
            logger.error("%s failed; the session restarts", task.get_name(), exc_info=exc)
            self.lose(f"{task.get_name()} failed: {exc}")

    async def cancel_all(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class SessionRunner:
    """Runs the sessions of one pipe until ``shutdown()``; never gives up on errors."""

    def __init__(
        self,
        pipe: PipeEntry,
        source: SourceDriver,
        sender: SenderDriver,
        state: PipeState,
        can_realtime: Any,
    ) -> None:
        self.pipe = pipe
        self.source = source
        self.sender = sender
        self.state = state
        self._can_realtime = can_realtime
        self._connected = asyncio.Event()
        # Retrying for a session that has ended is pointless: the batch waits for the next.
        self.delivery = Delivery(pipe.id, sender, state, alive=self._connected.is_set)
        self._stopping = asyncio.Event()
        self._session: _Session | None = None
        self.resync_needed = False
        self.lane = RealtimeLane(pipe.id, state, pipe.max_buffered_rows, session=self)

    # -- the LaneSession the realtime lane calls (synchronously, on the loop) ---------------

    @property
    def connected(self) -> asyncio.Event:
        return self._connected

    def events_lost(self, paths: list[str]) -> None:
        session = self._session
        if session is None or session.lost.is_set():
            self.resync_needed = True
        elif session.leader is not None:
            logger.warning("pipe %s: events lost under %s; auditing now", self.pipe.id, paths)
            session.leader.request_audit()
        else:
            logger.warning(
                "pipe %s: events lost under %s; as follower, the leader's audit covers it",
                self.pipe.id,
                paths,
            )

    def current_session(self) -> object:
        return self._session

    def session_lost(self, session: object, reason: str = "") -> None:
        current = self._session
        if current is not None and session is current:
            self.connected.clear()
            current.lose(reason or "a realtime batch was refused for a lost session")

    # -- lifecycle -------------------------------------------------------------------------

    def shutdown(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        lane_task = asyncio.create_task(
            self._deliver_realtime(), name=f"fustor-lane-{self.pipe.id}"
        )
        try:
            await self._loop()
        finally:
            lane_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lane_task
            if self.lane.rows:
                logger.error(
                    "pipe %s: %d queued realtime rows not delivered at stop",
                    self.pipe.id,
                    self.lane.rows,
                )
            self.state.state = PipeRunState.STOPPED

    async def _deliver_realtime(self) -> None:
        backoff = Backoff(initial=1.0, maximum=30.0)
        while True:
            try:
                await self.lane.run(self.delivery)
            except Exception as exc:  # the realtime lane must never stop
                delay = backoff.next()
                self.state.error(f"realtime delivery failed: {exc}")
                logger.exception(
                    "pipe %s: realtime delivery failed; again in %.1fs", self.pipe.id, delay
                )
                await asyncio.sleep(delay)

    async def _loop(self) -> None:
        backoff = Backoff(initial=0.5, maximum=10.0)
        while not self._stopping.is_set():
            try:
                info = await self._open_unless_stopping()
                if info is None:
                    return
            except Exception as exc:
                retriable = isinstance(exc, DriverError) and exc.retriable
                self.state.state = PipeRunState.BACKING_OFF if retriable else PipeRunState.ERROR
                self.state.error(f"open session: {exc}")
                # The not-ready reason says why (a refused key, the wrong port): readiness
                # probes see only that (helper 29). A session that opens clears it.
                self.state.failing = f"no session: {exc}"
                delay = backoff.next()
                # Not retriable (a refused key, a wrong view): it needs an operator, so it
                # is an error in the log too (journalctl -p err), not only in status.
                logger.log(
                    logging.WARNING if retriable else logging.ERROR,
                    "pipe %s: cannot open a session (%s); retrying in %.1fs",
                    self.pipe.id,
                    exc,
                    delay,
                )
                if await sleep_unless(self._stopping, delay):
                    return
                continue
            opened = time.monotonic()
            if await self._serve(info):
                return
            if time.monotonic() - opened < STABLE_SESSION_SEC:
                # A session that dies at once must not become a tight loop.
                if await sleep_unless(self._stopping, backoff.next()):
                    return
            else:
                backoff.reset()

    async def _open_unless_stopping(self) -> SessionInfo | None:
        """``open_session()``, given up (``None``) when the pipe stops meanwhile: a receiver
        that accepts the connection and never answers must not hold ``stop`` for the whole
        request timeout. Raises what ``open_session`` raises."""
        opening = asyncio.ensure_future(self.sender.open_session())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait((opening, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not opening.done():
                opening.cancel()  # finishes on its own; nothing waits for it
        if not opening.done() or opening.cancelled():
            return None  # stopping
        info = opening.result()
        if not isinstance(info, SessionInfo):  # a sender's bug: retried like a failure
            raise DriverError(
                f"sender {self.sender.sender_id}: open_session() returned "
                f"{type(info).__name__}, not a SessionInfo",
                retriable=True,
            )
        return info

    async def _serve(self, info: SessionInfo) -> bool:
        """Run one session; True when it ended by shutdown, False when it was lost."""
        session = self._session = _Session(info)
        state = self.state
        state.state, state.session_id, state.role = PipeRunState.RUNNING, info.session_id, info.role
        state.failing = None
        logger.info(
            "pipe %s: session %s… open as %s", self.pipe.id, info.session_id[:8], info.role.value
        )
        resync, self.resync_needed = self.resync_needed, False
        if resync and info.role is Role.FOLLOWER:
            logger.warning(
                "pipe %s: realtime rows were dropped while disconnected; "
                "the leader's audit covers them",
                self.pipe.id,
            )
        self.connected.set()
        session.spawn(self._heartbeats(session), f"fustor-heartbeat-{self.pipe.id}")
        if info.role is Role.LEADER:
            # The leader audits right after its snapshot (it also covers rows dropped while
            # disconnected), unless the server's tree starts empty: the snapshot covers all.
            self._start_leader(session, starts_empty=info.starts_empty)
        stop_wait = asyncio.ensure_future(self._stopping.wait())
        lost_wait = asyncio.ensure_future(session.lost.wait())
        try:
            await asyncio.wait({stop_wait, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
            lost_wait.cancel()
        if not session.lost.is_set():
            await self._close(session)
            return True
        self.connected.clear()
        await session.cancel_all()
        self._session = None
        state.session_id, state.role, state.bulk_activity = None, None, None
        state.failing = None
        state.state = PipeRunState.STARTING
        state.error(f"session lost: {session.lost_reason or 'no reason given'}")
        logger.warning("pipe %s: session lost; opening a new one", self.pipe.id)
        return False

    async def _close(self, session: _Session) -> None:
        """Orderly end: leader work stops, queued realtime rows go out, the session closes."""
        if session.leader_task is not None:
            session.leader_task.cancel()
        for task in list(session.tasks):
            if not task.get_name().startswith("fustor-heartbeat"):
                task.cancel()
        await self.lane.drain()
        await session.cancel_all()
        self.connected.clear()
        try:
            await self.sender.close_session()
        except Exception:
            logger.exception("pipe %s: closing the session failed", self.pipe.id)
        self._session = None
        self.state.session_id, self.state.role = None, None

    # -- leader work and commands ---------------------------------------------------------

    def retune(self, pipe: PipeEntry) -> None:
        """Apply a reload that changed only ``pipe``'s intervals or ``max_buffered_rows``
        (:meth:`AgentConfig.retunes`), keeping the session: the queue's bound at
        once, the intervals in the running leader work (:meth:`LeaderWork.retune`) or at the
        next promotion."""
        self.pipe = pipe
        self.lane.max_rows = pipe.max_buffered_rows
        session = self._session
        if session is not None and session.leader is not None:
            session.leader.retune(*self._intervals(session))

    def _intervals(self, session: _Session) -> tuple[float | None, float | None]:
        """(audit, sentinel) seconds: the pipe's own, else what Fusion gave the session."""
        audit, sentinel = self.pipe.audit_interval_sec, self.pipe.sentinel_interval_sec
        return (
            audit if audit is not None else session.info.audit_interval_sec,
            sentinel if sentinel is not None else session.info.sentinel_interval_sec,
        )

    def _start_leader(self, session: _Session, starts_empty: bool = False) -> None:
        pipe = self.pipe
        session.leader = LeaderWork(
            pipe.id,
            self.source,
            self.sender,
            self.delivery,
            self.state,
            *self._intervals(session),
            starts_empty=starts_empty,
        )
        session.leader_task = session.spawn(
            self._lead(session, session.leader), f"fustor-leader-{pipe.id}"
        )

    async def _stop_leader(self, session: _Session) -> None:
        task, session.leader, session.leader_task = session.leader_task, None, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.state.bulk_activity = None

    async def _lead(self, session: _Session, work: LeaderWork) -> None:
        backoff = Backoff(initial=1.0, maximum=60.0)
        while True:
            try:
                await work.run()
                return
            except SessionLostError as exc:
                logger.warning("pipe %s: %s", self.pipe.id, exc)
                session.lose(str(exc))
                return
            except Exception as exc:
                delay = backoff.next()
                self.state.error(f"leader work failed: {exc}")
                logger.exception(
                    "pipe %s: leader work failed; restarting in %.1fs", self.pipe.id, delay
                )
                await asyncio.sleep(delay)

    async def _scan(self, session: _Session, command: ScanCommand) -> None:
        try:
            await run_scan(self.pipe.id, self.source, self.delivery, command, self.state)
        except SessionLostError as exc:
            session.lose(str(exc))

    async def _heartbeat(self, wait: float) -> HeartbeatResult:
        """One heartbeat; one that does not come back within ``wait`` seconds failed."""
        try:
            # Not asyncio.wait_for: on 3.11 it swallows a cancellation that arrives as the
            # heartbeat returns, and this loop ran on for another interval after a stop
            # (helper 29: a stop after a 60 s freeze took 15 s and logged an error).
            async with asyncio.timeout(wait):
                return await self.sender.heartbeat(can_realtime=bool(self._can_realtime()))
        except TimeoutError:
            raise DriverError(f"no answer within {wait:.0f}s", retriable=True) from None

    async def _heartbeats(self, session: _Session) -> None:
        timeout = session.info.timeout_sec
        interval = heartbeat_interval(timeout)
        # A heartbeat still out after a session timeout is as good as lost.
        wait = max(timeout, interval) if timeout > 0 else MAX_HEARTBEAT_SEC
        last_ok = time.monotonic()
        next_at = last_ok + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            # After a stall (a frozen process, a suspended VM) one heartbeat now, then the
            # interval again: not one for every interval missed, back to back.
            next_at = max(next_at + interval, time.monotonic())
            try:
                result = await self._heartbeat(wait)
            except SessionLostError as exc:
                logger.warning("pipe %s: heartbeat: %s", self.pipe.id, exc)
                session.lose(f"heartbeat: {exc}")
                return
            except Exception as exc:
                retriable = not isinstance(exc, DriverError) or exc.retriable
                self.state.error(f"heartbeat: {exc}")
                self.state.failing = f"heartbeat failing: {exc}"
                if not retriable or (timeout > 0 and time.monotonic() - last_ok > timeout):
                    logger.warning(
                        "pipe %s: heartbeat failed (%s); session given up", self.pipe.id, exc
                    )
                    session.lose(f"heartbeat failed: {exc}")
                    return
                logger.warning("pipe %s: heartbeat failed: %s", self.pipe.id, exc)
                continue
            last_ok = time.monotonic()
            if self.state.failing is not None and self.state.failing.startswith("heartbeat"):
                self.state.failing = None
            await self._follow_role(session, result.role)
            for command in result.commands:
                logger.info(
                    "pipe %s: scan job %s of %r", self.pipe.id, command.job_id, command.path
                )
                session.spawn(self._scan(session, command), f"fustor-scan-{command.job_id}")

    async def _follow_role(self, session: _Session, role: Role) -> None:
        if role is self.state.role:
            return
        self.state.role = role
        if role is Role.LEADER:
            logger.info("pipe %s: promoted to leader", self.pipe.id)
            self._start_leader(session)
        else:
            logger.warning("pipe %s: demoted to follower; leader work stops", self.pipe.id)
            await self._stop_leader(session)
