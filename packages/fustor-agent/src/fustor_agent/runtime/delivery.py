"""Sending one batch or signal through a sender, with retries, until it is done with."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fustor_agent.runtime.backoff import Backoff
from fustor_agent.runtime.stats import PipeState
from fustor_agent_sdk import SenderDriver
from fustor_core import (
    Batch,
    DriverError,
    MessageSource,
    PhaseSignal,
    SendResult,
    SendStatus,
    SessionLostError,
    split_batch,
)

__all__ = ["Delivery", "wrong_tier"]

logger = logging.getLogger(__name__)

STALL_WARN_SEC = 60.0
"""A send or signal that has not returned for this long is logged, and again each period."""


def wrong_tier(batch: Batch, tier: MessageSource) -> str | None:
    """How ``batch`` or one of its events is marked with another tier than ``tier`` (the
    source contract: one tier per phase), or ``None``."""
    if batch.message_source is not tier:
        return f"is marked {batch.message_source.value}"
    for event in batch.events:
        if event.message_source is not tier:
            return f"has an event marked {event.message_source.value}"
    return None


class Delivery:
    """Delivers batches and signals of one pipe.

    ``RETRY`` and retriable errors are retried (same batch) with capped exponential backoff;
    ``REJECTED`` and non-retriable errors drop that batch only (logged and counted), except
    for signals sent with :meth:`signal_until_accepted`; ``SESSION_LOST`` raises
    :class:`SessionLostError` for the session loop to handle.
    """

    def __init__(
        self,
        pipe_id: str,
        sender: SenderDriver,
        state: PipeState,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self.pipe_id = pipe_id
        self.sender = sender
        self.state = state
        self.alive = alive
        """False once the session ended: retries stop with :class:`SessionLostError`."""
        self.on_sent: Callable[[Batch], None] | None = None
        """Called with every batch the sender accepted (``fustor-agent tap``); must not block."""

    async def send(self, batch: Batch) -> bool:
        """Deliver every row of the batch (in pieces of ``max_batch_size``); False if any
        piece was rejected."""
        delivered = True
        for piece in split_batch(batch, self.sender.max_batch_size):
            delivered = await self.send_one(piece) and delivered
        return delivered

    async def send_one(self, batch: Batch) -> bool:
        rows = batch.row_count

        async def timed_send() -> SendResult:
            started = time.perf_counter()
            try:
                return await self.sender.send(batch)
            finally:
                self.state.send_duration.observe(time.perf_counter() - started)

        ok = await self._attempt(timed_send, f"{batch.message_source.value} batch of {rows} rows")
        if ok:
            self.state.count_sent(batch.message_source, rows)
            if self.on_sent is not None:
                self.on_sent(batch)
        return ok

    async def signal(self, signal: PhaseSignal, **details: Any) -> bool:
        return await self._attempt(
            lambda: self.sender.signal(signal, **details), f"signal {signal.value}"
        )

    async def signal_until_accepted(self, signal: PhaseSignal) -> None:
        """Send a signal that must not be lost, such as the snapshot end: without it Fusion's
        view answers 503 for the whole leadership term (docs/fusion-protocol.md §5.2). A
        rejection (a 4xx to this fixed, valid request: a misbehaving server or proxy) is
        retried like a busy server, with backoff up to 30 s, until the session ends
        (:class:`SessionLostError`)."""
        await self._attempt(
            lambda: self.sender.signal(signal), f"signal {signal.value}", until_accepted=True
        )

    async def _attempt(
        self, call: Callable[[], Awaitable[SendResult]], what: str, until_accepted: bool = False
    ) -> bool:
        backoff = Backoff(initial=0.2, maximum=30.0 if until_accepted else 5.0)
        while True:
            if not self.alive():
                raise SessionLostError("the session ended")
            try:
                result = await self._watched(call(), what)
            except SessionLostError:
                raise
            except DriverError as exc:
                result = SendResult(
                    SendStatus.RETRY if exc.retriable else SendStatus.REJECTED, str(exc)
                )
            if not isinstance(result, SendResult):  # a sender's bug: say what it returned
                result = SendResult(
                    SendStatus.REJECTED,
                    f"sender {self.sender.sender_id} returned {type(result).__name__}, not a "
                    "SendResult (a bug in the sender driver)",
                )
            if result.status is SendStatus.OK:
                self.state.failing = None
                return True
            if result.status is SendStatus.SESSION_LOST:
                raise SessionLostError(result.detail or "session lost")
            if result.status is SendStatus.REJECTED:
                if not until_accepted:
                    self._reject(what, result.detail)
                    return False
            delay = backoff.next()
            self.state.retries += 1
            self.state.error(f"{what}: {result.detail or 'retry'}")
            self.state.failing = f"{what} failing, retrying: {result.detail or 'retry'}"
            logger.warning(
                "pipe %s: %s failed (%s); retrying in %.1fs",
                self.pipe_id,
                what,
                result.detail or "retry",
                delay,
            )
            await asyncio.sleep(delay)

    async def _watched(self, call: Awaitable[SendResult], what: str) -> SendResult:
        """``await call``, saying so (log and not-ready reason) every ``STALL_WARN_SEC`` it
        has not returned: a sender that hangs must not stall its pipe silently. Not
        cancelled here: the sender's own timeouts decide (the fusion sender has them)."""
        task = asyncio.ensure_future(call)
        stalls = self.state.stalls
        try:
            waited = 0.0
            while True:
                done, _ = await asyncio.wait({task}, timeout=STALL_WARN_SEC)
                if done:
                    return task.result()
                waited += STALL_WARN_SEC
                stall = f"{what}: sender {self.sender.sender_id} has not answered for {waited:.0f}s"
                stalls[id(task)] = stall
                logger.warning("pipe %s: %s", self.pipe_id, stall)
        finally:
            stalls.pop(id(task), None)
            if not task.done():
                task.cancel()

    def _reject(self, what: str, detail: str) -> None:
        self.state.rejected_batches += 1
        self.state.error(f"{what} rejected: {detail}")
        logger.error("pipe %s: %s rejected, dropped: %s", self.pipe_id, what, detail)
