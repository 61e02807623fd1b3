"""Run a coroutine to completion in its own event loop, failing (not hanging) past a deadline."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["DeadlineExceeded", "run_with_deadline"]

T = TypeVar("T")


class DeadlineExceeded(AssertionError):
    """The coroutine, or the shutdown of its event loop, did not finish in time."""


def run_with_deadline(coro: Coroutine[Any, Any, T], deadline: float = 30.0) -> T:
    """``asyncio.run(coro)`` in a daemon thread; :class:`DeadlineExceeded` after ``deadline`` s.

    ``asyncio.run`` also waits for the default executor, so a driver thread that never stops
    (an inotify read nobody wakes up, a walk that ignores cancellation) makes this fail instead
    of hanging the test session. Exceptions of the coroutine are re-raised unchanged.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="fustor-testing-loop", daemon=True)
    thread.start()
    thread.join(deadline)
    if thread.is_alive():
        raise DeadlineExceeded(
            f"did not finish within {deadline:g} s (a driver task or worker thread that ignores "
            "cancellation keeps the event loop from closing)"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
