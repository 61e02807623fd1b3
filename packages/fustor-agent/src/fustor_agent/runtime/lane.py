"""The realtime lane of a pipe: a bounded queue sent one request at a time, in order."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from fustor_agent.runtime.delivery import Delivery, wrong_tier
from fustor_agent.runtime.stats import PipeState
from fustor_core import Batch, Event, MessageSource, SessionLostError

__all__ = ["LaneSession", "RealtimeLane"]

logger = logging.getLogger(__name__)


class LaneSession(Protocol):
    """The session side of a pipe, as its realtime lane sees it (the pipe's session loop)."""

    @property
    def connected(self) -> asyncio.Event:
        """Set while a session is open and batches may be sent."""
        ...

    def current_session(self) -> object:
        """An identity token of the open session (``None`` when there is none); compared with
        ``is`` only, so a late answer for an old session never ends a newer one."""
        ...

    def session_lost(self, session: object, reason: str = "") -> None:
        """The peer refused a batch sent in ``session`` (a token from :meth:`current_session`)
        for a lost session (``reason``: what the peer said): end that session, if it is
        still the current one."""
        ...

    def events_lost(self, paths: list[str]) -> None:
        """Events under ``paths`` (root-relative) were lost: the source said so, or the lane
        dropped its queue (then ``["/"]``). Recover by an audit or a resync."""
        ...


class RealtimeLane:
    """Queued realtime events of one pipe and the task that delivers them.

    ``offer`` never blocks the source (one source feeds several pipes): past
    ``max_rows`` queued rows (an empty queue takes any one batch) the queue is dropped,
    counted and logged, and the session's
    ``events_lost(["/"])`` starts the recovery. Queued batches are merged up to the sender's
    ``max_batch_size`` rows per request; an idle lane sends a new event at once, with no
    batching delay.
    """

    def __init__(self, pipe_id: str, state: PipeState, max_rows: int, session: LaneSession) -> None:
        self.pipe_id = pipe_id
        self.state = state
        self.max_rows = max_rows
        self.session = session
        self._events: deque[Event] = deque()
        self.rows = 0
        self._wakeup = asyncio.Event()
        self._in_flight = False

    @property
    def idle(self) -> bool:
        return self.rows == 0 and not self._in_flight

    def offer(self, batch: Batch) -> None:
        if batch.rescan:
            self.session.events_lost(list(batch.rescan))
        count = batch.row_count
        if count == 0:
            return
        if (wrong := wrong_tier(batch, MessageSource.REALTIME)) is not None:
            # A source's bug: a snapshot-tier row sent as realtime would be arbitrated as
            # one (protocol §5.4). Dropped, and the audit that follows covers its paths.
            self.state.error("a realtime batch of another tier was dropped (a source bug)")
            logger.error(
                "pipe %s: the source's realtime yielded a batch that %s; dropped",
                self.pipe_id,
                wrong,
            )
            self.session.events_lost(["/"])
            return
        if self.rows and self.rows + count > self.max_rows:
            # An empty queue takes any one batch: a bound below the source's batch size
            # must not drop every large batch while the sender keeps up.
            queued = self.rows
            dropped = queued + count
            self._events.clear()
            self.rows = 0
            self.state.dropped_rows += dropped
            self.state.error(f"realtime queue over {self.max_rows} rows: {dropped} rows dropped")
            logger.error(
                "pipe %s: realtime queue over max_buffered_rows (%d): %d queued + %d new; "
                "dropped %d rows, resync scheduled",
                self.pipe_id,
                self.max_rows,
                queued,
                count,
                dropped,
            )
            self.session.events_lost(["/"])
            return
        self._events.extend(event for event in batch.events if event.rows)
        self.rows += count
        self._wakeup.set()

    def _take(self, max_rows: int) -> Batch:
        """Up to ``max_rows`` rows from the head, adjacent events of one type merged."""
        events: list[Event] = []
        room = max_rows
        while self._events and room > 0:
            head = self._events[0]
            if len(head.rows) <= room:
                self._events.popleft()
                rows = head.rows
            else:
                # Events are shared with the other pipes of the source: never mutate one.
                rows = head.rows[:room]
                self._events[0] = Event(head.event_type, head.rows[room:], head.message_source)
            room -= len(rows)
            if events and events[-1].event_type is head.event_type:
                events[-1].rows.extend(rows)
            else:
                events.append(Event(head.event_type, list(rows), head.message_source))
        taken = max_rows - room
        self.rows -= taken
        return Batch(MessageSource.REALTIME, events)

    def _put_back(self, batch: Batch) -> None:
        self._events.extendleft(reversed(batch.events))
        self.rows += batch.row_count

    async def run(self, delivery: Delivery) -> None:
        """Deliver forever (until cancelled); waits while the session is not ``connected``.

        A batch refused for a lost session goes back to the head of the queue and is sent
        again, first, in the next session. ``session_lost`` gets the session the batch was
        sent in, so a late answer for an old session never ends a newer one.
        """
        handle = self.session
        connected = handle.connected
        while True:
            await connected.wait()
            if not self._events:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            session = handle.current_session()
            batch = self._take(delivery.sender.max_batch_size)
            self._in_flight = True
            try:
                await delivery.send_one(batch)
            except SessionLostError as exc:
                self._put_back(batch)
                handle.session_lost(session, str(exc))
                # The session loop clears ``connected`` once it has noticed; don't spin.
                while connected.is_set() and handle.current_session() is session:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            except BaseException:
                self._put_back(batch)
                raise
            finally:
                self._in_flight = False

    async def drain(self) -> None:
        """Return once every queued row has been delivered (or the session is gone)."""
        connected = self.session.connected
        # Two conditions owned by different tasks; 10 ms polling is fine at shutdown.
        while not self.idle and connected.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
