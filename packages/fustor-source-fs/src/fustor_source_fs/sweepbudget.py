"""The sweep's cost bounds: how much each audit pass re-checks, and the stats-per-second ceiling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Pacer", "SweepBudget"]


class SweepBudget:
    """Stats owed to the sweep so that every tracked file is re-checked once per ``period``.

    The debt grows by ``cost of a round / period`` stats per second of wall time (at most one
    whole round) and each audit pass pays the stats it made. A pass may run at most as long as
    the pause since the previous pass, so a rate ceiling that cannot keep the period never
    delays an audit's end (which is what detects deletions) by more than about one audit
    interval; the period achieved then grows, and :meth:`period` reports it.
    """

    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self.clock = clock
        self.credit = 0.0
        self._accrued_at: float | None = None
        self._pass_ended_at: float | None = None
        self.rounds = 0
        self.round_started_at: float | None = None
        self.round_checked = 0
        self.last_round_sec: float | None = None

    def start_pass(self, round_cost: int) -> tuple[float, float]:
        """``(stats to make, seconds this pass may take)`` for a pass starting now."""
        now = self.clock()
        if self._accrued_at is None:
            # Nothing is owed before the first pass: it lists everything in full anyway.
            self._accrued_at = self._pass_ended_at = self.round_started_at = now
            return 0.0, 0.0
        if self.period > 0:
            self.credit += round_cost * (now - self._accrued_at) / self.period
        self.credit = min(self.credit, float(round_cost))
        self._accrued_at = now
        assert self._pass_ended_at is not None
        return self.credit, max(1.0, now - self._pass_ended_at)

    def end_pass(self, cost: int, checked_files: int, tracked: int) -> None:
        """A pass was committed: it paid ``cost`` and re-checked ``checked_files``."""
        now = self.clock()
        self.credit = max(0.0, self.credit - cost)
        self._pass_ended_at = now
        if self.round_started_at is None:
            self.round_started_at = now
        self.round_checked += checked_files
        if tracked and self.round_checked >= tracked:
            self.last_round_sec = now - self.round_started_at
            self.rounds += 1
            self.round_started_at, self.round_checked = now, 0

    def progress(self, tracked: int) -> float:
        """Share of the tracked files re-checked in the current round (0..1)."""
        return min(1.0, self.round_checked / tracked) if tracked else 0.0

    def period_achieved(self, tracked: int) -> float | None:
        """Seconds a whole round takes: the last complete one, else a projection of this one."""
        if self.last_round_sec is not None:
            return self.last_round_sec
        if self.round_started_at is None or not self.round_checked or not tracked:
            return None
        return (self.clock() - self.round_started_at) * tracked / self.round_checked


class Pacer:
    """At most ``rate`` units per second over all threads (a ceiling, with a 0.1 s burst)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self._burst = 0.1
        self._due = 0.0
        self._lock = threading.Lock()
        self.taken = 0

    def take(self, units: int, stop: threading.Event) -> bool:
        """Wait until ``units`` more fit under the ceiling; ``False`` if ``stop`` was set."""
        with self._lock:
            now = self.clock()
            self._due = max(self._due, now) + units / self.rate
            wait = self._due - now - self._burst
            self.taken += units
        if wait > 0:
            return not stop.wait(wait)
        return not stop.is_set()
