"""Leader work of one session: snapshot, then periodic audit and sentinel rounds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fustor_agent.runtime.backoff import Backoff
from fustor_agent.runtime.delivery import Delivery, wrong_tier
from fustor_agent.runtime.heap import release_free_heap
from fustor_agent.runtime.stats import PipeState
from fustor_agent.status import PipeActivity
from fustor_agent_sdk import Phase, SenderDriver, SourceDriver
from fustor_core import Batch, EventType, MessageSource, PhaseSignal, SessionLostError

__all__ = ["LeaderWork", "SourceUnhealthy", "wait_healthy"]

logger = logging.getLogger(__name__)

HEALTH_POLL_SEC = 1.0
AUDIT_RETRY_SEC = 60.0
AUDIT_RETRY_MAX_SEC = 3600.0
"""Without periodic audits, an audit that did not end well is tried again after 60 s,
doubling up to an hour."""


class SourceUnhealthy(Exception):
    """The source reported a health problem in the middle of a walk."""


def health_of(driver: SourceDriver | SenderDriver, kind: str) -> str | None:
    """``driver.health()``; a driver whose check raises is unhealthy for that reason (a
    third-party bug must not break the status of every pipe)."""
    try:
        reason = driver.health()
    except Exception as exc:
        return f"{kind} health check failed: {type(exc).__name__}: {exc}"
    if reason is not None and not isinstance(reason, str):
        return f"{kind} health check returned {type(reason).__name__}, not a string or None"
    return reason


async def wait_healthy(source: SourceDriver, state: PipeState) -> None:
    """Return once ``source.health()`` is ``None``; meanwhile the pipe is not ready."""
    while (reason := health_of(source, "source")) is not None:
        if state.not_ready_reason != reason:
            logger.warning("source %s: %s; snapshot and audit wait", source.source_id, reason)
        state.not_ready_reason = reason
        await asyncio.sleep(HEALTH_POLL_SEC)
    state.not_ready_reason = None


def _contract_breach(batch: Batch, tier: MessageSource) -> str | None:
    """How a snapshot or audit batch breaks the source contract, or ``None``: each event of
    ``tier``, an upsert (snapshot and audit never delete: Fusion infers deletions)."""
    if (wrong := wrong_tier(batch, tier)) is not None:
        return wrong
    if any(event.event_type is EventType.DELETE for event in batch.events):
        return "has a delete event"
    return None


class LeaderWork:
    """Runs while the pipe leads a session; cancelled at once on demotion or session loss."""

    def __init__(
        self,
        pipe_id: str,
        source: SourceDriver,
        sender: SenderDriver,
        delivery: Delivery,
        state: PipeState,
        audit_interval: float | None,
        sentinel_interval: float | None,
        starts_empty: bool = False,
    ) -> None:
        self.pipe_id = pipe_id
        self.source = source
        self.sender = sender
        self.delivery = delivery
        self.state = state
        self.audit_interval = audit_interval or None
        self.audits_disabled = audit_interval == 0
        """``audit_interval_sec: 0``: the operator turned audits off (only lost events still
        trigger one)."""
        self.sentinel_interval = sentinel_interval or None
        self.starts_empty = starts_empty
        """The server's tree was empty when the session opened (``SessionInfo.starts_empty``):
        nothing can be stale there, so the first full audit waits for its interval."""
        self._audit_now = asyncio.Event()
        self._retuned = {"audit": asyncio.Event(), "sentinel": asyncio.Event()}
        """Set by :meth:`retune`: that loop measures its current wait with the new interval."""
        self._audit_full = True
        """The next audit trusts no state of earlier ones (first of the term, lost events,
        an audit with a rejected batch)."""
        self.rejected_in_walk = 0
        """Batches of the current (or last) snapshot or audit that the receiver rejected."""
        self._retry_backoff = Backoff(initial=AUDIT_RETRY_SEC, maximum=AUDIT_RETRY_MAX_SEC)
        """Without periodic audits: when to try again an audit that did not end well."""

    def retune(self, audit_interval: float | None, sentinel_interval: float | None) -> None:
        """New intervals (seconds; ``None`` or 0: none) from a reload, applied in place: the
        session, its role and Fusion's view stay. A wait under way keeps its start, so an
        audit already overdue by the new interval runs at once."""
        self.audit_interval = audit_interval or None
        self.audits_disabled = audit_interval == 0
        self.sentinel_interval = sentinel_interval or None
        for event in self._retuned.values():
            event.set()

    async def _interval_wait(self, kind: str, until: asyncio.Event | None = None) -> None:
        """Wait one ``kind`` interval (``audit`` or ``sentinel``), measured from the call,
        with the interval in force (:meth:`retune` may change it meanwhile; none: wait for
        ever), or until ``until`` is set."""
        retuned = self._retuned[kind]
        loop = asyncio.get_running_loop()
        since = loop.time()
        while True:
            if until is not None and until.is_set():
                return  # at once, as a set event's wait() does: no futures, no loop turn
            retuned.clear()
            interval = self.audit_interval if kind == "audit" else self.sentinel_interval
            left = None if interval is None else since + interval - loop.time()
            if left is not None and left <= 0:
                return
            waits = [asyncio.ensure_future(retuned.wait())]
            if until is not None:
                waits.append(asyncio.ensure_future(until.wait()))
            try:
                done, _ = await asyncio.wait(
                    waits, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiting in waits:
                    waiting.cancel()
            if not done:
                return

    def request_audit(self) -> None:
        """Audit as soon as possible, a full one (events were lost)."""
        if Phase.AUDIT not in self.source.phases:
            logger.warning("pipe %s: events were lost and the source cannot audit", self.pipe_id)
            return
        self._audit_full = True
        self._audit_now.set()

    async def run(self) -> None:
        await self._snapshot()
        if Phase.AUDIT in self.source.phases:
            # The snapshot never deletes (docs/fusion-protocol.md §5.4): what was deleted while this
            # agent did not lead (stopped, crashed, session lost) goes only through an audit,
            # so the first one runs right away, a full one. A tree that started empty holds
            # nothing stale: its first (full) audit keeps to the interval, and Fusion takes in
            # the snapshot without a second listing of the tree competing for its one queue.
            # A rejected snapshot batch is lost rows, like lost events: an audit sends them
            # again at once, also with periodic audits off.
            if self.rejected_in_walk or not (self.audits_disabled or self.starts_empty):
                self._audit_now.set()
        try:
            async with asyncio.TaskGroup() as group:
                if Phase.AUDIT in self.source.phases:
                    group.create_task(self._audit_loop(), name=f"fustor-audit-{self.pipe_id}")
                if Phase.SENTINEL in self.source.phases:
                    group.create_task(self._sentinel_loop(), name=f"fustor-sentinel-{self.pipe_id}")
        except* SessionLostError as group_error:
            # The group wraps it: re-raise it bare, so that the session loop ends the
            # session instead of taking it for a crash of the leader work (and retrying that
            # on a dead session).
            lost: BaseException = group_error
            while isinstance(lost, BaseExceptionGroup):
                lost = lost.exceptions[0]
            raise lost from None

    async def _walk(self, batches: AsyncIterator[Batch], tier: MessageSource, counter: str) -> None:
        """Send every batch, counting those the receiver rejected (dropped) in
        ``self.rejected_in_walk``. A batch without rows is not sent; one that breaks the
        source contract (another tier, a delete) is dropped with an error naming the source
        and counted as rejected (a realtime delete sent as part of a snapshot would delete
        that path from Fusion)."""
        self.rejected_in_walk = 0
        async with contextlib.aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                if (reason := health_of(self.source, "source")) is not None:
                    raise SourceUnhealthy(reason)
                if not batch.row_count:
                    continue
                if (broken := _contract_breach(batch, tier)) is not None:
                    self.rejected_in_walk += 1
                    self.state.error(f"{tier.value} batch dropped: {broken}")
                    logger.error(
                        "pipe %s: source %s yielded a %s batch that %s; dropped (a bug in the "
                        "source driver)",
                        self.pipe_id,
                        self.source.source_id,
                        tier.value,
                        broken,
                    )
                    continue
                self.state.bulk_queued_rows = batch.row_count
                if not await self.delivery.send(batch):
                    self.rejected_in_walk += 1
                self.state.bulk_queued_rows = 0
                setattr(self.state, counter, getattr(self.state, counter) + batch.row_count)

    async def _snapshot(self) -> None:
        state = self.state
        state.snapshot_rows, state.snapshot_done = 0, False
        if Phase.SNAPSHOT in self.source.phases:
            while True:
                await wait_healthy(self.source, state)
                state.bulk_activity = PipeActivity.SNAPSHOT
                try:
                    await self._walk(
                        self.source.snapshot(), MessageSource.SNAPSHOT, "snapshot_rows"
                    )
                    break
                except SourceUnhealthy as exc:
                    logger.warning("pipe %s: snapshot interrupted: %s", self.pipe_id, exc)
                    state.snapshot_rows = 0
                finally:
                    state.bulk_activity = None
                    state.bulk_queued_rows = 0
        await self.delivery.signal_until_accepted(PhaseSignal.SNAPSHOT_END)
        state.snapshot_done = True
        if self.rejected_in_walk:
            logger.warning(
                "pipe %s: snapshot done (%d rows; %d batch(es) rejected or dropped, sent "
                "again by the audit that follows)",
                self.pipe_id,
                state.snapshot_rows,
                self.rejected_in_walk,
            )
        else:
            logger.info("pipe %s: snapshot done (%d rows)", self.pipe_id, state.snapshot_rows)
        await asyncio.to_thread(release_free_heap)

    async def _audit_loop(self) -> None:
        while True:
            await self._interval_wait("audit", until=self._audit_now)
            self._audit_now.clear()
            await wait_healthy(self.source, self.state)
            await self._audit()

    async def _audit(self) -> None:
        state = self.state
        state.audit_rows, state.audit_running, state.bulk_activity = 0, True, PipeActivity.AUDIT
        unhealthy = failed = False
        self.rejected_in_walk = 0
        try:
            await self.delivery.signal(PhaseSignal.AUDIT_START)
            full, self._audit_full = self._audit_full, False
            await self._walk(self.source.audit(full), MessageSource.AUDIT, "audit_rows")
        except SourceUnhealthy as exc:
            # An unavailable root could look empty: no audit end, so nothing is inferred gone.
            unhealthy = True
            logger.warning("pipe %s: audit interrupted: %s", self.pipe_id, exc)
        except SessionLostError:
            raise
        except Exception as exc:
            failed = True
            state.error(f"audit failed: {exc}")
            logger.exception(
                "pipe %s: audit failed; no audit end sent, so Fusion infers no deletion from "
                "it (the next audit is a full one)",
                self.pipe_id,
            )
        finally:
            state.audit_running, state.bulk_activity, state.bulk_queued_rows = False, None, 0
            await asyncio.to_thread(release_free_heap)
        if rejected := self.rejected_in_walk:
            # At the end Fusion deletes every child of a listed directory that it did not
            # see (protocol §5.5): the rows of a rejected batch would be deleted. No end, so
            # nothing is inferred from this audit; the next one starts afresh.
            self._audit_full = True
            logger.warning(
                "pipe %s: %d audit batch(es) rejected; no audit end sent, so Fusion infers no "
                "deletion from an incomplete audit (the next audit is a full one)",
                self.pipe_id,
                rejected,
            )
        elif failed:
            # A walk cut short by an error (a third-party source's bug, say) may have sent a
            # directory's row before all its children: an end would delete those from Fusion.
            self._audit_full = True
        if rejected or failed:
            # Rows are missing from Fusion until an audit ends well: without periodic
            # audits, try again later (backing off) instead of never.
            if not self.audit_interval:
                delay = self._retry_backoff.next()
                logger.warning("pipe %s: the audit is tried again in %.0fs", self.pipe_id, delay)
                asyncio.get_running_loop().call_later(delay, self._audit_now.set)
            return
        self._retry_backoff.reset()
        # Every audit batch was acknowledged above (each send is awaited): the end follows
        # all of them.
        if not unhealthy:
            if await self.delivery.signal(PhaseSignal.AUDIT_END):
                await self._audit_ended()
            state.audit_cycles += 1
            logger.info(
                "pipe %s: audit %d done (%d rows)",
                self.pipe_id,
                state.audit_cycles,
                state.audit_rows,
            )

    async def _audit_ended(self) -> None:
        """Tell the source that Fusion took the audit's end (it may send again, as realtime
        rows, files that end deleted: ``SourceDriver.audit_ended``)."""
        try:
            await self.source.audit_ended()
        except Exception as exc:  # a driver's bug: logged, the leader's work goes on
            self.state.error(f"audit_ended failed: {exc}")
            logger.warning(
                "pipe %s: source %s failed after the audit end: %s",
                self.pipe_id,
                self.source.source_id,
                exc,
            )

    async def _sentinel_loop(self) -> None:
        while True:
            await self._interval_wait("sentinel")
            try:
                paths = await self.sender.sentinel_tasks()
                if paths:
                    rows = await self.source.sentinel_check(paths)
                    await self.sender.sentinel_feedback(rows)
            except SessionLostError:
                raise
            except Exception as exc:
                self.state.error(f"sentinel round failed: {exc}")
                logger.warning("pipe %s: sentinel round failed: %s", self.pipe_id, exc)
