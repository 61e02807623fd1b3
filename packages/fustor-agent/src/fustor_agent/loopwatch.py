"""Notices an event loop that stopped running and says where it is stuck.

Every pipe of the agent shares one asyncio loop: a driver that blocks it (``time.sleep`` or
a blocking HTTP call in ``snapshot()`` instead of ``asyncio.to_thread``) stops every pipe's
sends, heartbeats and the status answers with it. A thread asks the loop to run a callback
about every second; when none has run for :data:`BLOCKED_WARN_SEC`, it logs one warning
with what the loop's thread is executing (the innermost frame, and the innermost outside
the standard library: usually the driver's own line), and one more when the loop runs again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import sysconfig
import threading
import time
import traceback

__all__ = ["BLOCKED_WARN_SEC", "LoopWatch", "in_stdlib", "stuck_at"]

logger = logging.getLogger(__name__)

BLOCKED_WARN_SEC = 5.0
"""Seconds without a loop iteration before the warning (heartbeats are due every 10 s)."""

_PATHS = sysconfig.get_paths()
_STDLIB = (_PATHS["stdlib"] + os.sep, _PATHS["platstdlib"] + os.sep)
_SITE = (_PATHS["purelib"] + os.sep, _PATHS["platlib"] + os.sep)


def in_stdlib(filename: str) -> bool:
    """Whether a frame's file is the standard library's: under its directories but not in
    site-packages (which lies under them, in a venv under ``platstdlib``), or frozen."""
    if filename.startswith("<"):
        return True
    return filename.startswith(_STDLIB) and not filename.startswith(_SITE)


def stuck_at(thread_id: int) -> str:
    """``file:line in function`` of the thread's innermost frame, then `` (called from
    ...)`` with the innermost frame outside the standard library when that is another."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return "an unknown place (the thread is gone)"
    stack = traceback.extract_stack(frame)
    if not stack:
        return "an unknown place"

    def where(entry: traceback.FrameSummary) -> str:
        return f"{entry.filename}:{entry.lineno} in {entry.name}"

    text = where(stack[-1])
    ours = next((e for e in reversed(stack) if not in_stdlib(e.filename)), None)
    if ours is not None and ours is not stack[-1]:
        text += f" (called from {where(ours)})"
    return text


class LoopWatch:
    """Watches ``loop`` from a daemon thread; create it on the loop's own thread.

    ``threshold``: seconds without a loop iteration before the warning. A process that was
    suspended as a whole (SIGSTOP, a frozen VM) is not reported: the watch notices that it
    did not run either and starts counting again.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, threshold: float = BLOCKED_WARN_SEC):
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._threshold = threshold
        self._period = min(1.0, threshold / 4)
        self._last = time.monotonic()
        self._asked = False
        self._reported = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fustor-loopwatch", daemon=True)
        self.stalls = 0
        """Times the loop was reported blocked."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self._period + 1)

    def _beat(self) -> None:
        now = time.monotonic()
        if self._reported:
            self._reported = False
            logger.warning("event loop running again after %.1fs blocked", now - self._last)
        self._last, self._asked = now, False

    def _run(self) -> None:
        woke = time.monotonic()
        while not self._stop.wait(self._period):
            now = time.monotonic()
            if now - woke > self._period + self._threshold / 2:
                # This thread did not run either: the whole process was suspended.
                self._last = now
            woke = now
            if not self._asked:
                self._asked = True
                try:
                    self._loop.call_soon_threadsafe(self._beat)
                except RuntimeError:  # the loop is closed
                    return
            blocked = now - self._last
            if blocked >= self._threshold and not self._reported:
                self._reported = True
                self.stalls += 1
                logger.warning(
                    "event loop blocked for %.1fs: no pipe sends, heartbeats or answers "
                    "status until it runs again; it is in %s (a driver must not block the "
                    "loop: run blocking calls with asyncio.to_thread)",
                    blocked,
                    stuck_at(self._loop_thread),
                )
