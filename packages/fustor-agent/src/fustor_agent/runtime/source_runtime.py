"""One running source instance and its realtime watch, fanned out to every pipe using it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

from fustor_agent.config import SourceSpec
from fustor_agent.runtime.backoff import Backoff
from fustor_agent.status import ErrorInfo, SourceStatus
from fustor_agent_sdk import Phase, SourceDriver
from fustor_core import ROOT, Batch, DriverError, MessageSource

__all__ = ["START_REPEAT_SEC", "SourceRuntime"]

logger = logging.getLogger(__name__)

START_REPEAT_SEC = 600.0
"""A source that keeps failing to start the same way is logged again this often (it is
retried every 10 s at most; status shows the error all along)."""

Subscriber = Callable[[Batch], None]


class SourceRuntime:
    """Owns a source driver: started once, watched once, shared by its pipes."""

    def __init__(self, spec: SourceSpec, state_dir: Path | None = None) -> None:
        self.spec = spec
        self.driver: SourceDriver = spec.driver(spec.id, spec.config)
        self.driver.state_dir = state_dir
        self.driver.realtime_delivered = self._delivered
        self._subscribers: dict[str, Subscriber] = {}
        self._idle: dict[str, Callable[[], bool]] = {}
        self._task: asyncio.Task[None] | None = None
        self._starter: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self.last_error: ErrorInfo | None = None
        self.start_retriable = True
        """``False`` while the last start failed for a reason a retry will not fix (a
        non-retriable :class:`DriverError`, or another exception): its pipes show
        ``error``. Starts are still retried (the cause may be fixed outside the agent)."""
        self.realtime_running = False

    def subscribe(
        self, pipe_id: str, subscriber: Subscriber, idle: Callable[[], bool] | None = None
    ) -> None:
        """``subscriber`` takes each realtime batch; ``idle`` says whether all it took has
        been acknowledged (nothing queued or in flight)."""
        self._subscribers[pipe_id] = subscriber
        if idle is not None:
            self._idle[pipe_id] = idle

    def unsubscribe(self, pipe_id: str) -> None:
        self._subscribers.pop(pipe_id, None)
        self._idle.pop(pipe_id, None)

    def _delivered(self) -> bool:
        """Every pipe has delivered all realtime rows it took (read from driver threads)."""
        return all(idle() for idle in list(self._idle.values()))

    @property
    def users(self) -> int:
        return len(self._subscribers)

    def launch(self) -> None:
        """Start the driver in the background, retrying until it starts, then watch."""
        if self._starter is None:
            self._starter = asyncio.create_task(self._start(), name=f"fustor-source-{self.spec.id}")

    @property
    def started(self) -> bool:
        return self._started.is_set()

    async def wait_started(self) -> None:
        await self._started.wait()

    async def _start(self) -> None:
        backoff = Backoff(initial=0.5, maximum=10.0)
        said, said_at = "", -math.inf
        while True:
            try:
                await self.driver.start()
                break
            except Exception as exc:
                delay = backoff.next()
                self.last_error = ErrorInfo(message=f"start failed: {exc}", at=time.time())
                self.start_retriable = isinstance(exc, DriverError) and exc.retriable
                # A root not there yet (a share mounted later) is expected: a warning, said
                # again when it changes or every START_REPEAT_SEC, not an error each retry.
                level = logging.DEBUG
                if str(exc) != said or time.monotonic() - said_at >= START_REPEAT_SEC:
                    retriable = isinstance(exc, DriverError) and exc.retriable
                    level = logging.WARNING if retriable else logging.ERROR
                    said, said_at = str(exc), time.monotonic()
                logger.log(
                    level,
                    "source %s: start failed (%s); retrying in %.1fs",
                    self.spec.id,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
        self.last_error = None
        self.start_retriable = True
        self._started.set()
        if Phase.REALTIME in self.driver.phases:
            self._task = asyncio.create_task(self._watch(), name=f"fustor-realtime-{self.spec.id}")

    def _fan_out(self, batch: Batch) -> None:
        for pipe_id, subscriber in list(self._subscribers.items()):
            try:
                subscriber(batch)
            except Exception:
                logger.exception(
                    "source %s: pipe %s failed to queue a batch", self.spec.id, pipe_id
                )

    async def _watch(self) -> None:
        backoff = Backoff(initial=0.5, maximum=30.0)
        restarted = False
        while True:
            try:
                if restarted:
                    # Changes between the failure and the new watch are unknown.
                    self._fan_out(Batch(MessageSource.REALTIME, rescan=[ROOT]))
                self.realtime_running = True
                batches = self.driver.realtime()
                async with contextlib.aclosing(batches):  # type: ignore[type-var]
                    async for batch in batches:
                        backoff.reset()
                        self._fan_out(batch)
                message = "realtime watch ended"
            except asyncio.CancelledError:
                self.realtime_running = False
                raise
            except Exception as exc:
                message = f"realtime watch failed: {exc}"
                logger.warning("source %s: %s", self.spec.id, message, exc_info=True)
            self.realtime_running = False
            self.last_error = ErrorInfo(message=message, at=time.time())
            restarted = True
            delay = backoff.next()
            logger.warning("source %s: %s; restarting in %.1fs", self.spec.id, message, delay)
            await asyncio.sleep(delay)

    async def stop_watch(self) -> None:
        """Stop producing realtime batches (first step of an orderly shutdown)."""
        for task in (self._starter, self._task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = None

    async def stop(self) -> None:
        await self.stop_watch()
        if self._started.is_set():
            self._started.clear()
            try:
                await asyncio.wait_for(self.driver.stop(), 10)
            except Exception:
                logger.exception("source %s: stop failed", self.spec.id)

    def status(self) -> SourceStatus:
        """The driver's figures with the host's facts (see ``SourceStatus.of_driver``)."""
        try:
            figures, problem = dict(self.driver.status()), None
        except Exception as exc:
            figures, problem = {}, str(exc)
        return SourceStatus.of_driver(
            figures,
            realtime_running=self.realtime_running,
            last_error=self.last_error,
            status_error=problem,
        )
