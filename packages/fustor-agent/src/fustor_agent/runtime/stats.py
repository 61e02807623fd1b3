"""Per-pipe counters and state, as shown by ``status`` (see :mod:`fustor_agent.status`)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from fustor_agent.status import ErrorInfo, LatencyHistogram, PipeActivity, PipeRunState
from fustor_core import MessageSource, Role

__all__ = ["SEND_DURATION_BOUNDS", "DurationMeter", "PipeState", "RateMeter"]

SEND_DURATION_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Bucket bounds (seconds) of the send-duration histogram: a local echo takes well under
5 ms, a Fusion round trip tens of ms, a struggling receiver seconds."""


class RateMeter:
    """Rows per second over the last ``window`` seconds, in one-second buckets."""

    def __init__(self, window: int = 10) -> None:
        self.window = window
        self._buckets: deque[list[float]] = deque()

    def add(self, rows: int, now: float | None = None) -> None:
        second = float(int(now if now is not None else time.monotonic()))
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += rows
        else:
            self._buckets.append([second, float(rows)])
        self._trim(second)

    def _trim(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - self.window:
            self._buckets.popleft()

    def rate(self, now: float | None = None) -> float:
        current = now if now is not None else time.monotonic()
        self._trim(float(int(current)))
        return round(sum(rows for _, rows in self._buckets) / self.window, 1)


class DurationMeter:
    """A cumulative histogram of durations in seconds (fixed ``bounds``)."""

    def __init__(self, bounds: tuple[float, ...] = SEND_DURATION_BOUNDS) -> None:
        self.bounds = bounds
        self._counts = [0] * len(bounds)
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.sum += seconds
        for index, bound in enumerate(self.bounds):
            if seconds <= bound:
                self._counts[index] += 1
                break

    def snapshot(self) -> LatencyHistogram:
        cumulative, total = [], 0
        for count in self._counts:
            total += count
            cumulative.append(total)
        return LatencyHistogram(
            bounds=self.bounds, buckets=tuple(cumulative), count=self.count, sum=self.sum
        )


@dataclass(slots=True)
class PipeState:
    """Mutable runtime facts of one pipe; the runtime writes, ``status`` reads."""

    state: PipeRunState = PipeRunState.STARTING
    role: Role | None = None
    session_id: str | None = None
    bulk_activity: PipeActivity | None = None
    """``SNAPSHOT`` or ``AUDIT`` while one runs."""
    snapshot_rows: int = 0
    snapshot_done: bool = False
    audit_rows: int = 0
    audit_running: bool = False
    audit_cycles: int = 0
    rows_sent: dict[str, int] = field(
        default_factory=lambda: {source.value: 0 for source in MessageSource}
    )
    retries: int = 0
    rejected_batches: int = 0
    dropped_rows: int = 0
    bulk_queued_rows: int = 0
    last_error: ErrorInfo | None = None
    not_ready_reason: str | None = None
    failing: str | None = None
    """Set while a session cannot be opened, or sends or heartbeats to the receiver fail and
    are being retried (the pipe is not ready meanwhile); cleared by the next one that
    succeeds."""
    stalls: dict[int, str] = field(default_factory=dict)
    """Sends and signals that have not returned for a while, by call: each is a not-ready
    reason until that call returns (other calls succeeding meanwhile do not clear it)."""
    rate: RateMeter = field(default_factory=RateMeter)
    send_duration: DurationMeter = field(default_factory=DurationMeter)
    """Seconds each accepted or refused ``sender.send`` call took (retries each count)."""

    def count_sent(self, source: MessageSource, rows: int) -> None:
        self.rows_sent[source.value] += rows
        self.rate.add(rows)

    def error(self, message: str) -> None:
        self.last_error = ErrorInfo(message=message, at=time.time())

    @property
    def activity(self) -> PipeActivity:
        if self.session_id is None:
            return PipeActivity.IDLE
        return self.bulk_activity or PipeActivity.REALTIME

    def session_label(self) -> str | None:
        # A session id is a credential on Fusion's receiver port: show only a prefix.
        return f"{self.session_id[:8]}…" if self.session_id else None
