"""One pipe: its sender instance, its session runner and its status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fustor_agent.config import PipeEntry, SenderSpec
from fustor_agent.runtime.backoff import Backoff
from fustor_agent.runtime.leader import health_of
from fustor_agent.runtime.session import SessionRunner
from fustor_agent.runtime.source_runtime import SourceRuntime
from fustor_agent.runtime.stats import PipeState
from fustor_agent.status import (
    AuditProgress,
    ErrorInfo,
    PipeRunState,
    PipeStatus,
    Progress,
    QueueDepth,
    SenderStatus,
    SnapshotProgress,
)
from fustor_agent_sdk import PipeContext, SenderDriver
from fustor_core import DriverError, MessageSource, Role

__all__ = ["Pipe", "close_sender", "create_sender", "idle_pipe_status"]

logger = logging.getLogger(__name__)


MIN_CLOSE_SEC = 2.0
"""Time a sender's ``close()`` gets at stop even when the flush used up the grace period."""


async def close_sender(sender: SenderDriver, within_sec: float) -> str | None:
    """``sender.close()`` within ``within_sec`` seconds; what went wrong, or ``None``. A close
    that hangs is abandoned (its connections go with the process): a third-party sender
    must not keep the agent from stopping."""
    try:
        await asyncio.wait_for(sender.close(), within_sec)
    except TimeoutError:
        return f"sender {sender.sender_id} did not close within {within_sec:.0f}s; left open"
    except Exception as exc:
        logger.debug("closing sender %s", sender.sender_id, exc_info=True)
        return f"closing sender {sender.sender_id} failed: {type(exc).__name__}: {exc}"
    return None


def create_sender(spec: SenderSpec, context: PipeContext) -> SenderDriver:
    """The pipe's sender driver, created from ``spec``. Raises what its constructor raises,
    or :class:`DriverError` (not retriable) when its ``max_batch_size`` is not a positive
    ``int``: batches could not be split to its size (a bug in the driver)."""
    sender = spec.driver(spec.id, spec.config, context)
    size = sender.max_batch_size
    if type(size) is not int or size < 1:
        raise DriverError(
            f"sender {spec.id} ({spec.type}): max_batch_size is {size!r}, not a positive "
            "number of rows per send (a bug in the sender driver)",
            retriable=False,
        )
    return sender


class Pipe:
    def __init__(
        self,
        entry: PipeEntry,
        source: SourceRuntime,
        sender_spec: SenderSpec,
        agent_id: str,
        state_dir: Any,
    ) -> None:
        self.entry = entry
        self.source = source
        self.sender_spec = sender_spec
        self.state = PipeState()
        self.context = PipeContext(agent_id, entry.id, source.spec.config.uri, state_dir)
        self.sender = create_sender(sender_spec, self.context)
        self.runner = SessionRunner(
            entry, source.driver, self.sender, self.state, lambda: source.realtime_running
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self.entry.id

    def retune(self, entry: PipeEntry) -> None:
        """Take a reload that changed only ``entry``'s intervals or ``max_buffered_rows``
        (:meth:`AgentConfig.retunes`) in place: same sender, same session."""
        self.entry = entry
        self.runner.retune(entry)
        logger.info(
            "pipe %s: updated in place (audit_interval_sec %s, sentinel_interval_sec %s, "
            "max_buffered_rows %d)",
            self.id,
            entry.audit_interval_sec,
            entry.sentinel_interval_sec,
            entry.max_buffered_rows,
        )

    async def start(self) -> None:
        lane = self.runner.lane
        self.source.subscribe(self.id, lane.offer, lambda: lane.idle)
        self._task = asyncio.create_task(self._supervise(), name=f"fustor-pipe-{self.id}")

    async def _supervise(self) -> None:
        backoff = Backoff(initial=1.0, maximum=60.0)
        if not self.source.started:
            self.state.not_ready_reason = "source not started"
            await self.source.wait_started()
            self.state.not_ready_reason = None
        while True:
            try:
                await self.runner.run()
                return
            except Exception as exc:
                delay = backoff.next()
                self.state.state = PipeRunState.ERROR
                self.state.error(f"pipe failed: {exc}")
                logger.exception("pipe %s failed; restarting in %.1fs", self.id, delay)
                await asyncio.sleep(delay)

    async def stop(self, grace_sec: float) -> None:
        """Flush queued realtime rows, close the session and the sender, within ``grace_sec``
        (the sender's ``close()`` gets what is left of it, at least ``MIN_CLOSE_SEC``)."""
        deadline = asyncio.get_running_loop().time() + grace_sec
        self.source.unsubscribe(self.id)
        self.runner.shutdown()
        if self._task is not None and not self.source.started:
            self._task.cancel()  # still waiting for its source: nothing to flush
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace_sec)
            except asyncio.CancelledError:
                pass
            except TimeoutError:
                logger.error("pipe %s: not stopped within %.0fs; cancelled", self.id, grace_sec)
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        left = max(deadline - asyncio.get_running_loop().time(), MIN_CLOSE_SEC)
        if (problem := await close_sender(self.sender, left)) is not None:
            logger.error("pipe %s: %s", self.id, problem)
        self.state.state = PipeRunState.STOPPED

    def status(self) -> PipeStatus:
        state, entry = self.state, self.entry
        try:
            sender = SenderStatus.of_driver(dict(self.sender.status()))
        except Exception as exc:
            sender = SenderStatus(status_error=str(exc))
        source = self.source.status()
        not_ready = (
            state.not_ready_reason
            or health_of(self.source.driver, "source")
            or health_of(self.sender, "sender")  # a diagnosis, with the fix: before symptoms
            or next(iter(state.stalls.values()), None)
            or state.failing
        )
        run_state = state.state
        if not self.source.started and source.last_error is not None:
            not_ready = f"source not started: {source.last_error.message}"  # a root not there yet
            if not self.source.start_retriable:  # e.g. fanotify without CAP_SYS_ADMIN
                run_state = PipeRunState.ERROR
        if not_ready is None and state.session_id is None:
            not_ready = "no session"
        elif not_ready is None and state.role is Role.LEADER and not state.snapshot_done:
            not_ready = "snapshot in progress"
        return PipeStatus(
            id=entry.id,
            source_id=entry.source_id,
            source_type=self.source.spec.type,
            sender_id=entry.sender_id,
            sender_type=self.sender_spec.type,
            enabled=True,
            state=run_state,
            role=state.role,
            session=state.session_label(),
            activity=state.activity,
            progress=Progress(
                snapshot=SnapshotProgress(rows=state.snapshot_rows, done=state.snapshot_done),
                audit=AuditProgress(
                    rows=state.audit_rows, running=state.audit_running, cycles=state.audit_cycles
                ),
            ),
            rows_sent=dict(state.rows_sent),
            rows_per_sec=state.rate.rate(),
            queue_depth=QueueDepth(realtime=self.runner.lane.rows, bulk=state.bulk_queued_rows),
            retries=state.retries,
            rejected_batches=state.rejected_batches,
            dropped_rows=state.dropped_rows,
            send_duration=state.send_duration.snapshot(),
            last_error=state.last_error,
            ready=not_ready is None,
            not_ready_reason=not_ready,
            source=source,
            sender=sender,
        )


def idle_pipe_status(
    entry: PipeEntry,
    source_type: str,
    sender_type: str,
    failure: ErrorInfo | None = None,
    reason: str | None = None,
) -> PipeStatus:
    """Status of a pipe that does not run: disabled, held, not selected, or its drivers could
    not be created (``failure``). ``reason`` overrides the not-ready reason of an enabled pipe."""
    if failure is not None:
        reason = failure.message
    elif not entry.enabled:
        reason = "disabled"
    return PipeStatus(
        id=entry.id,
        source_id=entry.source_id,
        source_type=source_type,
        sender_id=entry.sender_id,
        sender_type=sender_type,
        enabled=entry.enabled,
        state=PipeRunState.ERROR if failure else PipeRunState.STOPPED,
        rows_sent={source.value: 0 for source in MessageSource},
        last_error=failure,
        not_ready_reason=reason or "disabled",
    )
