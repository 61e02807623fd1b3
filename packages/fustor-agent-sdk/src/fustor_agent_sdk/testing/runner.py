"""A minimal in-process pipe: pulls a source's phases into a sender the way the host does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from fustor_agent_sdk.sender import SenderDriver
from fustor_agent_sdk.source import Phase, SourceDriver
from fustor_agent_sdk.testing.checks import check_batch
from fustor_core import (
    Batch,
    DriverError,
    MessageSource,
    PathEscapeError,
    PhaseSignal,
    SendResult,
    SendStatus,
    SessionInfo,
    SessionLostError,
    split_batch,
)

__all__ = ["PipeRunner", "split_batch"]  # split_batch: fustor_core's, re-exported

logger = logging.getLogger(__name__)


class PipeRunner:
    """One source feeding one sender, phase by phase, with no scheduling of its own.

    Unlike the agent host it never decides roles or timing: a test calls ``run_snapshot()``,
    ``run_audit()``, ``run_scan()``... and looks at what the sender received. Like the host it
    sends the phase signals, splits batches to ``sender.max_batch_size``, resends on ``RETRY``
    and consumes each phase only as fast as the sender accepts batches. With ``validate`` every
    batch is checked against the row and path contract before it is sent.
    """

    def __init__(
        self,
        source: SourceDriver,
        sender: SenderDriver,
        *,
        validate: bool = True,
        max_retries: int = 5,
    ) -> None:
        self.source = source
        self.sender = sender
        self.validate = validate
        self.max_retries = max_retries
        self.session: SessionInfo | None = None
        self.rejected: list[tuple[Batch, SendResult]] = []
        self.rescans: list[str] = []
        self.scan_errors: list[Exception] = []

    async def start(self) -> SessionInfo:
        """Start the source and open a session (the role is whatever the sender says)."""
        await self.source.start()
        self.session = await self.sender.open_session()
        return self.session

    async def stop(self) -> None:
        """Close the session and stop both ends (the host's orderly shutdown)."""
        await self.sender.close_session()
        await self.sender.close()
        await self.source.stop()

    async def _result(self, what: str, call: Any) -> SendResult:
        for attempt in range(self.max_retries + 1):
            result: SendResult = await call()
            if result.status is SendStatus.RETRY and attempt < self.max_retries:
                await asyncio.sleep(0.01 * 2**attempt)
                continue
            if result.status is SendStatus.SESSION_LOST:
                raise SessionLostError(f"{what}: {result.detail or 'session lost'}")
            if result.status is SendStatus.RETRY:
                raise DriverError(f"{what}: still failing after retries", retriable=True)
            return result
        raise AssertionError("unreachable")

    async def deliver(self, batch: Batch, source: MessageSource) -> None:
        """Send one batch a phase yielded (cut to the sender's batch size)."""
        if self.validate:
            check_batch(batch, source)
        self.rescans.extend(batch.rescan)
        for part in split_batch(batch, self.sender.max_batch_size):
            result = await self._result("send", lambda part=part: self.sender.send(part))
            if result.status is SendStatus.REJECTED:
                self.rejected.append((part, result))

    async def signal(self, signal: PhaseSignal, **details: Any) -> SendResult:
        return await self._result(signal.value, lambda: self.sender.signal(signal, **details))

    async def _pump(self, phase: AsyncIterator[Batch], source: MessageSource) -> int:
        rows = 0
        async with _closing(phase):
            async for batch in phase:
                rows += batch.row_count
                await self.deliver(batch, source)
        return rows

    async def run_snapshot(self) -> int:
        """Snapshot, then the snapshot end. Returns the number of rows sent."""
        rows = await self._pump(self.source.snapshot(), MessageSource.SNAPSHOT)
        await self.signal(PhaseSignal.SNAPSHOT_END)
        return rows

    async def run_audit(self, *, full: bool = False) -> int:
        """Audit start, the audit (``full`` as the host asks for it), audit end (also after an
        error), then, once the end was accepted, the source's ``audit_ended()``."""
        await self.signal(PhaseSignal.AUDIT_START)
        try:
            rows = await self._pump(self.source.audit(full), MessageSource.AUDIT)
        finally:
            ended = await self.signal(PhaseSignal.AUDIT_END)
        if ended.ok:
            await self.source.audit_ended()
        return rows

    async def run_scan(self, path: str, recursive: bool = True, job_id: str = "job00001") -> int:
        """An on-demand scan and its completion, which is sent even for a refused path."""
        rows = 0
        try:
            rows = await self._pump(self.source.scan(path, recursive), MessageSource.SCAN)
        except PathEscapeError as exc:
            logger.warning("scan refused: %s", exc)
            self.scan_errors.append(exc)
        await self.signal(PhaseSignal.SCAN_END, scan_path=path, job_id=job_id)
        return rows

    async def run_sentinel(self) -> int:
        """Ask the sender for suspect paths, stat them through the source, report back."""
        paths = await self.sender.sentinel_tasks()
        if not paths:
            return 0
        updates = await self.source.sentinel_check(paths)
        await self._result("sentinel", lambda: self.sender.sentinel_feedback(updates))
        return len(updates)

    async def run_realtime(self) -> int:
        """Forward realtime batches until the calling task is cancelled."""
        return await self._pump(self.source.realtime(), MessageSource.REALTIME)

    async def run_leader(self) -> int:
        """What a new leader does first: session, snapshot and its end, a full audit.

        Like the host, it skips the phases the source does not declare (the snapshot end is
        always sent: it is what makes Fusion's view ready).
        """
        await self.start()
        rows = 0
        if Phase.SNAPSHOT in self.source.phases:
            rows += await self.run_snapshot()
        else:
            await self.signal(PhaseSignal.SNAPSHOT_END)
        if Phase.AUDIT in self.source.phases:
            rows += await self.run_audit(full=True)
        return rows


class _closing:
    """``aclose()`` the phase iterator on the way out, as the host does on cancellation."""

    def __init__(self, phase: AsyncIterator[Batch]) -> None:
        self.phase = phase

    async def __aenter__(self) -> AsyncIterator[Batch]:
        return self.phase

    async def __aexit__(self, *exc: object) -> None:
        aclose = getattr(self.phase, "aclose", None)
        if aclose is not None:
            await aclose()
