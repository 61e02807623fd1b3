"""Capped exponential backoff with jitter, and a sleep that a stop request interrupts."""

from __future__ import annotations

import asyncio
import random

__all__ = ["Backoff", "sleep_unless"]


class Backoff:
    """Delays ``initial * factor**n`` capped at ``maximum``, each scaled by ±``jitter``."""

    def __init__(
        self, initial: float = 0.2, maximum: float = 30.0, factor: float = 2.0, jitter: float = 0.2
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self.attempts = 0

    def next(self) -> float:
        base = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

    def reset(self) -> None:
        self.attempts = 0


async def sleep_unless(event: asyncio.Event, delay: float) -> bool:
    """Sleep ``delay`` seconds; return True at once if ``event`` gets set meanwhile."""
    if event.is_set():
        return True
    try:
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that
        # arrives as the wait completes, and the task then runs on after its cancel.
        async with asyncio.timeout(delay):
            await event.wait()
    except TimeoutError:
        return False
    return True
