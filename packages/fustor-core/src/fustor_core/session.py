"""Sessions, roles, commands and send results: the session protocol of a sender."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "SEND_OK",
    "Command",
    "HeartbeatResult",
    "PhaseSignal",
    "Role",
    "ScanCommand",
    "SendResult",
    "SendStatus",
    "SessionInfo",
]


class Role(StrEnum):
    LEADER = "leader"
    FOLLOWER = "follower"


@dataclass(slots=True, frozen=True)
class SessionInfo:
    """What opening a session returns. Intervals of ``None`` or ``0`` mean "disabled"."""

    session_id: str
    role: Role
    timeout_sec: float
    audit_interval_sec: float | None = None
    sentinel_interval_sec: float | None = None
    starts_empty: bool = False
    """The server holds nothing for this session's tree yet: the session leads and no
    other session was there before it (Fusion wipes a view when its last session ends,
    docs/fusion-protocol.md §5.1). The snapshot alone then makes the tree complete, so the
    leader's first full audit may wait for its interval instead of running right after the
    snapshot. ``False`` (unknown) is always safe."""


@dataclass(slots=True, frozen=True)
class ScanCommand:
    """An on-demand scan request. ``path`` is kept verbatim: the completion must echo it."""

    path: str
    recursive: bool
    job_id: str


Command = ScanCommand


@dataclass(slots=True)
class HeartbeatResult:
    """The current role and the commands queued for this session (each delivered once)."""

    role: Role
    commands: list[Command] = field(default_factory=list)


class PhaseSignal(StrEnum):
    SNAPSHOT_END = "snapshot_end"
    AUDIT_START = "audit_start"
    AUDIT_END = "audit_end"
    SCAN_END = "job_complete"
    """An on-demand scan is over (details: ``scan_path`` verbatim, ``job_id``); sent also
    when the scan failed or was refused. The value is the protocol's name."""
    JOB_COMPLETE = "job_complete"
    """Deprecated alias of :attr:`SCAN_END` (SDK 1.0 name); the same member."""


class SendStatus(StrEnum):
    OK = "ok"
    RETRY = "retry"  # transient failure: send the same batch again later, keeping order
    SESSION_LOST = "session_lost"  # open a new session and restart the phase sequence
    REJECTED = "rejected"  # the peer refused this batch for good; do not resend it unchanged


@dataclass(slots=True, frozen=True)
class SendResult:
    status: SendStatus
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status is SendStatus.OK


SEND_OK = SendResult(SendStatus.OK)
