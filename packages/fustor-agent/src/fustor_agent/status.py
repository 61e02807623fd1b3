"""The typed status of the agent, its pipes, sources and senders.

``Agent.status()`` builds an :class:`AgentStatus`; the JSON API (``GET /api/v1/status``),
``/metrics``, ``/readyz``, the dashboard and ``fustor-agent status`` all read that one model.
Its JSON form (``to_json()``) is the documented API of docs/console.md; clients read it back
with ``AgentStatus.model_validate(json)``, which ignores fields it does not know (a newer agent).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, computed_field

from fustor_core import Role

__all__ = [
    "AgentStatus",
    "AuditProgress",
    "ErrorInfo",
    "LatencyHistogram",
    "PipeActivity",
    "PipeRunState",
    "PipeStatus",
    "Progress",
    "QueueDepth",
    "ReloadOutcome",
    "SenderStatus",
    "SnapshotProgress",
    "SourceStatus",
]


class PipeRunState(StrEnum):
    """Where a pipe is in its lifecycle."""

    STARTING = "starting"
    RUNNING = "running"
    BACKING_OFF = "backing_off"
    STOPPED = "stopped"
    ERROR = "error"


class PipeActivity(StrEnum):
    """What a running pipe is doing now (not a source driver's ``Phase``)."""

    SNAPSHOT = "snapshot"
    AUDIT = "audit"
    REALTIME = "realtime"
    IDLE = "idle"


class _Model(BaseModel):
    # Every field is always written: the schema of the output says so (required).
    # defer_build: the validators are built on first use, not at import (about 5 ms of every
    # start, and of every CLI command that never asks for a status).
    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        json_schema_serialization_defaults_required=True,
        defer_build=True,
    )


class ErrorInfo(_Model):
    """The last failure: its message and when (Unix epoch seconds)."""

    message: str
    at: float


class SnapshotProgress(_Model):
    rows: int = 0
    """Rows produced by the current (or last) snapshot."""
    done: bool = False


class AuditProgress(_Model):
    rows: int = 0
    """Rows produced by the current (or last) audit cycle."""
    running: bool = False
    cycles: int = 0
    """Audit cycles completed since the pipe started."""


class Progress(_Model):
    snapshot: SnapshotProgress = SnapshotProgress()
    audit: AuditProgress = AuditProgress()


class QueueDepth(_Model):
    """Rows waiting between source and sender, by lane."""

    realtime: int = 0
    bulk: int = 0


class LatencyHistogram(_Model):
    """Durations of sends, cumulative like a Prometheus histogram.

    ``buckets[i]`` counts the sends that took at most ``bounds[i]`` seconds; ``count`` counts
    them all (the ``+Inf`` bucket) and ``sum`` adds their seconds.
    """

    bounds: tuple[float, ...] = ()
    buckets: tuple[int, ...] = ()
    count: int = 0
    sum: float = 0.0


class _DriverFigures(BaseModel):
    # The driver's own keys stay at the top level, as drivers write them (docs/console.md);
    # a driver key that collides with a host field below is dropped by the builder.
    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        json_schema_serialization_defaults_required=True,
        defer_build=True,
    )

    status_error: str | None = None
    """Why the driver's ``status()`` failed, when it did."""

    def figures(self) -> dict[str, Any]:
        """The driver's own keys (those its ``status()`` returned)."""
        return dict(self.model_extra or {})

    @classmethod
    def of_driver(cls, figures: dict[str, Any], **host: Any) -> Self:
        """The driver's ``figures`` with the host's fields ``host``. A driver key named like a
        host field is left out; a value JSON cannot hold becomes its ``str()``, so one
        driver's mistake cannot break the status API for every pipe."""
        own = {k: _json_safe(v) for k, v in figures.items() if k not in cls.model_fields}
        return cls.model_validate({**own, **host})


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    return str(value)


class SourceStatus(_DriverFigures):
    """A source's ``status()`` figures, plus what the host knows of its realtime watch."""

    realtime_running: bool = False
    last_error: ErrorInfo | None = None
    """The last failure of the driver's start or realtime watch (a host-side fact)."""


class SenderStatus(_DriverFigures):
    """A sender's ``status()`` figures."""


class PipeStatus(_Model):
    """One pipe, running or not (then ``state`` is ``stopped`` or ``error``)."""

    id: str
    source_id: str
    source_type: str
    sender_id: str
    sender_type: str
    enabled: bool
    state: PipeRunState = PipeRunState.STOPPED
    role: Role | None = None
    session: str | None = None
    """A prefix of the session id (the full id is a credential on Fusion's port)."""
    activity: PipeActivity = PipeActivity.IDLE
    progress: Progress = Progress()
    rows_sent: dict[str, int] = Field(default_factory=dict)
    """Rows the sender accepted, by message source (``realtime``, ``snapshot``, ...)."""
    rows_per_sec: float = 0.0
    """Delivery rate over the last 10 seconds (for people; /metrics leaves rates to queries)."""
    queue_depth: QueueDepth = QueueDepth()
    retries: int = 0
    rejected_batches: int = 0
    dropped_rows: int = 0
    send_duration: LatencyHistogram = LatencyHistogram()
    last_error: ErrorInfo | None = None
    ready: bool = False
    not_ready_reason: str | None = None
    source_pipes: list[str] = Field(default_factory=list)
    """The enabled pipes sharing this pipe's source (its figures are the source's)."""
    source: SourceStatus = SourceStatus()
    sender: SenderStatus = SenderStatus()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def phase(self) -> PipeActivity:
        """Deprecated: the old name of ``activity``, kept in the JSON for existing readers."""
        return self.activity


class ReloadOutcome(_Model):
    """The last ``fustor-agent reload`` (SIGHUP): when, whether it applied, what it changed."""

    at: float
    ok: bool
    error: str | None = None
    config_error: bool = False
    """The new file was wrong (not an internal failure)."""
    partial: bool = False
    """It failed while applying the new file: some pipes may have changed already."""
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    restarted: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    """Pipes whose intervals or ``max_buffered_rows`` changed: applied in place, same session."""
    added_disabled: list[str] = Field(default_factory=list)
    removed_disabled: list[str] = Field(default_factory=list)


class AgentStatus(_Model):
    """The whole agent, as ``GET /api/v1/status`` answers it."""

    agent_id: str
    version: str
    pid: int
    started_at: float
    """Unix epoch seconds."""
    uptime_sec: float
    config_path: str | None = None
    config_generation: int = 1
    """1 at start, +1 at each successful reload."""
    config_loaded_at: float
    """When the configuration in use was loaded (start or last successful reload)."""
    last_reload: ReloadOutcome | None = None
    """``None`` until the first reload."""
    console_url: str | None = None
    """Where the web console answers (its port chosen at start when ``console.port`` is 0);
    ``None`` when it is off or could not start."""
    pipes: list[PipeStatus] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON API form (enums as their values, deprecated aliases included)."""
        return self.model_dump(mode="json")

    def readiness(self) -> tuple[bool, dict[str, str]]:
        """Whether every pipe meant to run is ready, and why each one that is not.

        Pipes kept stopped on purpose (disabled, stopped with ``fustor-agent stop``, not
        selected at start) are not waited for; a pipe stopped by a failure is. An agent with
        no pipe to wait for counts as ready.
        """
        reasons = {
            pipe.id: pipe.not_ready_reason or f"state {pipe.state.value}"
            for pipe in self.pipes
            if pipe.enabled
            and not pipe.ready
            and not (pipe.state is PipeRunState.STOPPED and pipe.last_error is None)
        }
        return not reasons, reasons

    def only_pipe(self, pipe_id: str) -> AgentStatus | None:
        """This status with only the pipe ``pipe_id``, or ``None`` when it has none."""
        pipes = [pipe for pipe in self.pipes if pipe.id == pipe_id]
        return self.model_copy(update={"pipes": pipes}) if pipes else None
