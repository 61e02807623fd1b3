"""The base class of source drivers: where rows come from.

Contract (the host relies on every point):

* **Phases.** A source declares the phases it supports in ``phases``. The host pulls each phase
  as an async iterator of :class:`~fustor_core.events.Batch`:

  - ``snapshot()``: every directory (root ``/`` included) and file, as ``snapshot`` upserts.
  - ``realtime()``: changes as they happen, as ``realtime`` rows, until cancelled. The host
    calls it **once per source instance** and fans the batches out to every pipe that uses
    the source, so one source feeding several pipes is watched once. A batch with a non-empty
    ``rescan`` says events were lost for those paths (see :class:`~fustor_core.Batch`).
  - ``audit(full)``: ``audit`` rows for the consistency check (protocol §7.4); a directory's
    row comes after its children's rows. The host sends the audit start/end signals around it
    and asks for a ``full`` audit as the first one of each leadership term and after lost
    events. Once the peer has accepted the end, it calls ``audit_ended()``.
  - ``sentinel_check(paths)``: ``{"path", "mtime", "size"}`` for each path that exists.
  - ``scan(path, recursive)``: ``MessageSource.SCAN`` rows for one node or a subtree.
    ``path`` is a root-relative request from outside and must be confined to the root (raise
    :class:`fustor_core.paths.PathEscapeError` for one that escapes).

* **Rows** (:data:`fustor_core.Row`, a dict). An upsert has ``path``, ``size`` (bytes, int),
  ``modified_time`` and ``created_time`` (seconds since the epoch, float: ``st_mtime`` and
  ``st_ctime``) and ``is_directory`` (bool; a symlink is reported as a link, not followed);
  realtime upserts add ``is_atomic_write``, audit file rows add ``parent_path`` and
  ``parent_mtime``. A delete is ``{"path"}`` alone and only realtime sends deletes (Fusion
  infers the others from the listings). ``fustor_agent_sdk.testing.checks`` checks all this.
* **Paths** are root-relative with a leading ``/`` (root = ``/``), see ``fustor_core.paths``.
* **Blocking work** (walks, stats, inotify reads) runs off the event loop, inside the driver.
* **Back-pressure.** The host consumes an iterator at the pace its sender can deliver; a driver
  never runs ahead of it by more than a bounded buffer.
* **Cancellation.** The host may stop any phase at any moment by cancelling the task that
  iterates it (``aclose()`` of the generator). The driver stops its blocking work promptly:
  within one second, even in the middle of a long walk.
* **Roles are not the driver's business.** The host decides which phases run, and when.
* **Lifecycle.** ``start()`` and ``stop()`` are idempotent; ``stop()`` returns within five
  seconds. Errors are :class:`fustor_core.DriverError` with ``retriable`` set truthfully.

A complete minimal source, which reports the files of one directory (no realtime)::

    import asyncio, os
    from collections.abc import AsyncIterator, Callable
    from fustor_core import Batch, EventType, MessageSource
    from fustor_agent_sdk import Phase, SourceConfig, SourceDriver, hookimpl


    class ListDirSource(SourceDriver):
        name = "listdir"
        config_model = SourceConfig
        phases = frozenset({Phase.SNAPSHOT})

        async def snapshot(self) -> AsyncIterator[Batch]:
            entries = await asyncio.to_thread(
                lambda: list(os.scandir(self.config.uri))
            )
            rows = [
                {
                    "path": "/",
                    "size": 0,
                    "modified_time": 0.0,
                    "created_time": 0.0,
                    "is_directory": True,
                }
            ]
            for e in entries:
                st = e.stat()
                rows.append(
                    {
                        "path": "/" + e.name,
                        "size": st.st_size,
                        "modified_time": st.st_mtime,
                        "created_time": st.st_ctime,
                        "is_directory": e.is_dir(),
                    }
                )
            yield Batch.of(MessageSource.SNAPSHOT, EventType.UPDATE, rows)


    @hookimpl
    def fustor_source_drivers():
        return [ListDirSource]
"""

from __future__ import annotations

from abc import ABC
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from fustor_agent_sdk.config import SourceConfig
from fustor_agent_sdk.metrics import MetricSpec
from fustor_core import Batch, DriverError, Row

__all__ = ["Phase", "SourceDriver"]


class Phase(StrEnum):
    SNAPSHOT = "snapshot"
    REALTIME = "realtime"
    AUDIT = "audit"
    SENTINEL = "sentinel"
    SCAN = "scan"


class SourceDriver(ABC):
    """Base class of source drivers; see the module docstring for the contract."""

    name: ClassVar[str]
    """The ``type:`` of this driver in ``sources:``."""

    config_model: ClassVar[type[SourceConfig]] = SourceConfig
    """The pydantic model of the ``config:`` block (``extra="forbid"``)."""

    phases: ClassVar[frozenset[Phase]] = frozenset()
    """The phases this driver implements; the host never asks for any other."""

    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    """The ``status()`` keys the host exports on ``/metrics``, and as what (see
    :mod:`fustor_agent_sdk.metrics`); series carry a ``source`` label. Undeclared keys are
    shown in the JSON status only."""

    state_dir: Path | None = None
    """A private, persistent directory for this source, set by the host before
    :meth:`start` (``$FUSTOR_HOME/state/sources/source-<id>``; it may not exist yet).
    ``None``: nothing is kept across restarts. The fs source keeps there the time up to
    which its watcher covered the tree, to catch up on what changed while no agent ran."""

    realtime_delivered: Callable[[], bool] | None = None
    """Set by the host before :meth:`start`: whether every realtime row this source yielded
    so far has been acknowledged by the peer of every pipe it feeds (cheap; may be called from
    the driver's threads). ``None``: unknown. The fs source moves its "watched until" time
    on only while it is true."""

    def __init__(self, source_id: str, config: SourceConfig) -> None:
        self.source_id = source_id
        self.config = config

    async def start(self) -> None:
        """Acquire resources (open the root, start monitors). Idempotent; called before any
        phase. Errors: :class:`fustor_core.DriverError` (``retriable`` when a later try may
        succeed, e.g. a share not mounted yet)."""

    async def stop(self) -> None:
        """Release resources and stop every phase's blocking work. Idempotent; returns within
        five seconds. Never raises."""

    def _unsupported(self, phase: Phase) -> DriverError:
        return DriverError(f"source {self.name!r} does not support {phase.value}", retriable=False)

    def snapshot(self) -> AsyncIterator[Batch]:
        """The whole tree as it is now. No arguments.

        Yields batches of ``MessageSource.SNAPSHOT`` upsert rows: one per directory (the root
        ``/`` included) and per file, as ``lstat`` says now (``size`` in bytes,
        ``modified_time`` and ``created_time`` in seconds since the epoch, float). Ends when
        the walk is complete; the host then sends ``SNAPSHOT_END``. Errors:
        :class:`fustor_core.DriverError` (retriable when the storage may come back; the host
        retries the whole snapshot).
        """
        raise self._unsupported(Phase.SNAPSHOT)

    def realtime(self) -> AsyncIterator[Batch]:
        """Changes as they happen, for as long as the host iterates. No arguments.

        Yields batches of ``MessageSource.REALTIME`` rows in capture order: upserts (with
        ``is_atomic_write``: ``True`` when the file was closed after writing, so its content
        is final) and deletes (``{"path"}`` only). A batch may carry ``rescan`` paths
        (root-relative; ``["/"]`` for everything) with or without events when events were
        lost; the leader then runs a full audit. Runs once per source, whatever the number of
        pipes. Ending or raising (:class:`fustor_core.DriverError`, or anything) is logged;
        the host calls ``realtime()`` again with capped backoff and treats everything as lost
        meanwhile (a rescan of ``/``).
        """
        raise self._unsupported(Phase.REALTIME)

    def audit(self, full: bool = False) -> AsyncIterator[Batch]:
        """The tree as it is now, for Fusion's consistency check (protocol §7.4).

        ``full``: trust nothing kept from earlier audits and report every directory's
        complete listing (the host asks for it as the first audit of each leadership term and
        after events were lost). Otherwise a driver may send an unchanged directory as one row
        with ``audit_skipped: true`` instead of its listing.

        Yields batches of ``MessageSource.AUDIT`` upsert rows: each file with ``parent_path``
        (its directory) and ``parent_mtime`` (that directory's mtime, seconds since the epoch),
        each directory as an upsert row that comes after the rows of its children. The host
        sends ``AUDIT_START`` before and ``AUDIT_END`` after. Errors:
        :class:`fustor_core.DriverError` (retriable when the storage may come back); the host
        logs it, shows it in status and audits again at the next interval.
        """
        raise self._unsupported(Phase.AUDIT)

    async def audit_ended(self) -> None:
        """The peer accepted the end of the audit this driver last yielded (``AUDIT_END``
        answered OK). Called once per such audit, before the next one starts.

        Fusion 0.8.17 judges a directory at the audit end by the flag of its last accepted
        row (protocol §5.5): a row without ``audit_skipped`` of a directory the audit sent
        as skipped (another agent's realtime row, a scan's) makes the end delete the files of
        it that the audit did not list. A driver that can tell which directories changed may
        send their files again here, as realtime rows. The default does nothing. Errors are
        logged by the host and change nothing else.
        """

    async def sentinel_check(self, paths: list[str]) -> list[Row]:
        """``{"path", "mtime", "size"}`` (float seconds since the epoch, int bytes) for each of
        ``paths`` (root-relative, as Fusion sent them) that exists now; missing paths are left
        out (a report of a missing file would write mtime 0 into Fusion). Paths escaping the
        root are ignored. Errors: :class:`fustor_core.DriverError` (retriable: the round is
        skipped)."""
        raise self._unsupported(Phase.SENTINEL)

    def scan(self, path: str, recursive: bool) -> AsyncIterator[Batch]:
        """An on-demand scan of one node, asked for by the peer (a ``ScanCommand``).

        ``path``: root-relative, verbatim from a Fusion user (untrusted). ``recursive``: also
        everything under ``path``; otherwise ``path`` and its direct entries. Yields batches
        of ``MessageSource.SCAN`` upsert rows shaped like snapshot rows; nothing for a path
        that does not exist. Errors: :class:`fustor_core.PathEscapeError` (raised before any
        row) for a path that escapes the root by ``..`` or a symlink;
        :class:`fustor_core.DriverError`. The host sends ``SCAN_END`` in every case.
        """
        raise self._unsupported(Phase.SCAN)

    def health(self) -> str | None:
        """Why the source cannot currently be trusted (``None`` when it is healthy).

        For example "root unavailable: /data is no longer a mount point". The host shows it
        in status and readiness, and runs no snapshot or audit while it is set.
        """
        return None

    def status(self) -> dict[str, Any]:
        """Driver figures for status and console: a flat, JSON-serialisable dict.

        The keys named in ``metrics`` are also exported on ``/metrics`` (numbers or bools;
        ``None`` exports no sample). Never secrets; cheap to compute (called on every scrape).
        """
        return {}
