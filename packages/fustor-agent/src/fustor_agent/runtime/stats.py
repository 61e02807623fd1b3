"""Per-pipe counters and state, as shown by ``status``."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from fustor_core import MessageSource, Role

__all__ = ["PipeState", "RateMeter"]

State = Literal["starting", "running", "backing_off", "stopped", "error"]
Phase = Literal["snapshot", "audit", "realtime", "idle"]


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


@dataclass(slots=True)
class PipeState:
    """Mutable runtime facts of one pipe; the runtime writes, ``status`` reads."""

    state: State = "starting"
    role: Role | None = None
    session_id: str | None = None
    bulk_phase: Literal["snapshot", "audit"] | None = None
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
    last_error: dict[str, Any] | None = None
    not_ready_reason: str | None = None
    rate: RateMeter = field(default_factory=RateMeter)

    def count_sent(self, source: MessageSource, rows: int) -> None:
        self.rows_sent[source.value] += rows
        self.rate.add(rows)

    def error(self, message: str) -> None:
        self.last_error = {"message": message, "at": time.time()}

    @property
    def phase(self) -> Phase:
        if self.session_id is None:
            return "idle"
        return self.bulk_phase or "realtime"

    def session_label(self) -> str | None:
        # A session id is a credential on Fusion's receiver port: show only a prefix.
        return f"{self.session_id[:8]}…" if self.session_id else None
