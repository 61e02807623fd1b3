"""The base class of sender drivers: where batches go, session by session.

Contract:

* **Sessions.** ``open_session()`` opens a session and returns its role and the peer's
  suggested audit/sentinel intervals. ``heartbeat()`` is called by the host on its own timer
  (at most every ``timeout_sec / 3``) and returns the current role plus queued commands; it
  raises :class:`fustor_core.SessionLostError` when the peer no longer knows the session.
  ``close_session()`` ends it gracefully (best effort, never raises). A sender instance
  serves exactly one pipe.
* **Data.** ``send(batch)`` delivers one batch and returns a :class:`~fustor_core.SendResult`:
  ``OK``; ``RETRY`` (transient: the host resends the same batch, keeping order, with capped
  exponential backoff); ``SESSION_LOST``; ``REJECTED`` (never resend it unchanged). The host
  sends realtime batches one at a time in capture order; snapshot/audit batches may be in
  flight at the same time as a realtime one. Batches are never empty.
* **Signals.** ``signal(PhaseSignal, **details)``: ``SNAPSHOT_END``, ``AUDIT_START``,
  ``AUDIT_END`` and ``SCAN_END`` (with ``scan_path`` and ``job_id``). Same results as send.
* **Sentinel.** ``sentinel_tasks()`` returns suspect paths to stat; ``sentinel_feedback()``
  takes the ``{"path", "mtime", "size"}`` rows of the source.
* **Roles are decided by the host** from what the sender returns; a sender never starts phases.
* ``close()`` releases network resources; idempotent.
* ``check_connection()`` is what ``fustor-agent validate --connect`` runs, with no pipe
  started: by default it opens a session, reads ``health()`` and closes the session again.
* Errors other than session loss raise :class:`fustor_core.DriverError` with ``retriable`` set
  truthfully (a wrong credential is not retriable by itself; a refused connection is).

A complete minimal sender, which counts rows and always leads::

    from fustor_core import SEND_OK, Batch, HeartbeatResult, Role, SessionInfo
    from fustor_agent_sdk import SenderConfig, SenderDriver, hookimpl


    class CountingSender(SenderDriver):
        name = "count"
        config_model = SenderConfig

        def __init__(self, sender_id, config, context):
            super().__init__(sender_id, config, context)
            self.rows = 0

        async def open_session(self):
            return SessionInfo(
                session_id="local", role=Role.LEADER, timeout_sec=30.0
            )

        async def heartbeat(self, *, can_realtime):
            return HeartbeatResult(role=Role.LEADER)

        async def send(self, batch: Batch):
            self.rows += batch.row_count
            return SEND_OK

        async def signal(self, signal, **details):
            return SEND_OK


    @hookimpl
    def fustor_sender_drivers():
        return [CountingSender]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from fustor_agent_sdk.config import SenderConfig
from fustor_agent_sdk.metrics import MetricSpec
from fustor_core import SEND_OK, Batch, HeartbeatResult, PhaseSignal, Row, SendResult, SessionInfo

__all__ = ["PipeContext", "SenderDriver"]


@dataclass(frozen=True, slots=True)
class PipeContext:
    """What a sender knows about the pipe it serves."""

    agent_id: str
    pipe_id: str
    source_uri: str
    state_dir: Path
    """A private, persistent directory for this pipe's sender (e.g. the last session id)."""

    @property
    def task_id(self) -> str:
        return f"{self.agent_id}:{self.pipe_id}"


class SenderDriver(ABC):
    """Base class of sender drivers; see the module docstring for the contract."""

    name: ClassVar[str]
    """The ``type:`` of this driver in ``senders:``."""

    config_model: ClassVar[type[SenderConfig]] = SenderConfig
    """The pydantic model of the ``config:`` block (``extra="forbid"``)."""

    max_batch_size: int = 1000
    """Most rows the host puts in one ``send``."""

    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    """The ``status()`` keys the host exports on ``/metrics``, and as what (see
    :mod:`fustor_agent_sdk.metrics`); series carry a ``pipe`` label. Undeclared keys are
    shown in the JSON status only."""

    def __init__(self, sender_id: str, config: SenderConfig, context: PipeContext) -> None:
        self.sender_id = sender_id
        self.config = config
        self.context = context

    @abstractmethod
    async def open_session(self) -> SessionInfo:
        """Open a session for this pipe's task (``context.task_id``). No arguments.

        Returns a :class:`~fustor_core.SessionInfo`: the peer's session id, the role it gave
        (``LEADER`` or ``FOLLOWER``), the session timeout (``timeout_sec``, seconds) and the
        audit/sentinel intervals it suggests (seconds; ``None`` or 0: none). Errors:
        :class:`fustor_core.DriverError` (``retriable`` for an unreachable or busy peer). The
        host retries with capped exponential backoff either way; a non-retriable error shows
        the pipe as ``error`` rather than ``backing_off``.
        """

    @abstractmethod
    async def heartbeat(self, *, can_realtime: bool) -> HeartbeatResult:
        """Keep the session alive; the host calls it every ``min(timeout_sec / 3, 10)``
        seconds.

        ``can_realtime``: whether this agent's realtime is running (a peer may prefer a leader
        that has it). Returns a :class:`~fustor_core.HeartbeatResult`: the current role and
        the commands queued for this session (``ScanCommand``, each delivered once). Errors:
        :class:`fustor_core.SessionLostError` when the peer no longer knows the session (the
        host opens a new one); :class:`fustor_core.DriverError` for a failed call: a retriable
        one is tried again at the next beat until ``timeout_sec`` passes without a good beat,
        a non-retriable one gives the session up at once (a new one is opened).
        """

    @abstractmethod
    async def send(self, batch: Batch) -> SendResult:
        """Deliver one batch.

        ``batch``: events of one ``message_source``, at most ``max_batch_size`` rows in all,
        no empty event (rows as the source module describes). Returns a
        :class:`~fustor_core.SendResult`: ``OK``; ``RETRY`` (the host sends the same batch
        again before anything newer); ``SESSION_LOST`` (a new session and phase sequence
        follow); or ``REJECTED`` (this batch is dropped, counted and logged). Errors:
        :class:`fustor_core.DriverError` (``retriable`` ones are retried like ``RETRY``, others
        count as ``REJECTED``); :class:`fustor_core.SessionLostError` like ``SESSION_LOST``.
        """

    @abstractmethod
    async def signal(self, signal: PhaseSignal, **details: Any) -> SendResult:
        """Deliver a phase signal of the session's sequence.

        ``signal``: ``SNAPSHOT_END`` (after the last snapshot batch), ``AUDIT_START`` /
        ``AUDIT_END`` (around an audit's batches) or ``SCAN_END`` (after an on-demand scan,
        also a failed or refused one). ``details``: none, except for ``SCAN_END``:
        ``scan_path`` (the command's path, verbatim) and ``job_id`` (the command's id).
        Returns and raises like :meth:`send`.
        """

    async def sentinel_tasks(self) -> list[str]:
        """Paths (root-relative) the peer wants checked now; ``[]`` when none (the default).
        Errors: :class:`fustor_core.DriverError` (the round is skipped)."""
        return []

    async def sentinel_feedback(self, updates: list[Row]) -> SendResult:
        """Report the source's ``{"path", "mtime", "size"}`` answers to :meth:`sentinel_tasks`.
        Returns like :meth:`send` (the default accepts and drops them)."""
        return SEND_OK

    async def close_session(self) -> None:
        """End the session gracefully so a standby agent takes over at once. Best effort:
        never raises (a failure is logged; the peer's timeout ends the session anyway)."""

    async def close(self) -> None:
        """Release network resources. Idempotent; never raises."""

    async def check_connection(self) -> list[str]:
        """Open what a pipe would open, report what is wrong, leave nothing behind.

        Returns problems found on a working connection, as advice lines (empty: all well).
        Raises :class:`fustor_core.DriverError` when the connection or session cannot be
        opened. Called by ``fustor-agent validate --connect`` on an instance no pipe uses;
        ``close()`` follows. Override it to add checks that need no data to be sent.
        """
        info = await self.open_session()
        try:
            problem = self.health()
        finally:
            await self.close_session()
        if not isinstance(info, SessionInfo):
            return [f"open_session() returned {type(info).__name__}, not a SessionInfo"]
        return [problem] if problem else []

    def health(self) -> str | None:
        """Why the peer cannot currently act on what is sent (``None`` when all is well).

        For example a server that accepts data but is configured so that its consistency
        calls do nothing. The host shows it in status and readiness, with the fix.
        """
        return None

    def status(self) -> dict[str, Any]:
        """Sender figures for status and console: a flat, JSON-serialisable dict; never
        secrets. The keys named in ``metrics`` are also exported on ``/metrics``."""
        return {}
