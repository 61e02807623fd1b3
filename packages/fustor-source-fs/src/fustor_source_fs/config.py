"""Config model of the ``fs`` source: ``uri`` plus typed ``driver_params``."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, field_validator

from fustor_agent_sdk import SourceConfig
from fustor_agent_sdk.config import StrictModel, absolute_path, config_warning

__all__ = ["FsParams", "FsSourceConfig"]


class FsParams(StrictModel):
    """``sources[].config.driver_params`` of the ``fs`` source (see docs/source-fs.md)."""

    file_pattern: str = "*"
    """Glob on the file name; non-matching files are never reported (directories always are)."""
    exclude: list[str] = Field(default_factory=list)
    """Globs that skip whole subtrees: without ``/`` they match a name, with ``/`` the
    root-relative path (anchored at the root)."""
    throttle_interval_sec: float = Field(5.0, ge=0)
    """At most one in-progress (``is_atomic_write: false``) upsert per file per interval."""
    watch_backend: Literal["auto", "inotify", "fanotify"] = "auto"
    """Realtime through inotify (one watch per directory) or one fanotify filesystem mark
    (root, Linux >= 5.9); ``auto``: fanotify where it works and the directories would not
    fit the inotify budget, else inotify."""
    max_watches: int | None = Field(None, ge=1)
    """Most inotify watches to place (one per directory); ``None``: up to the kernel limit."""
    scan_workers: int = Field(4, ge=1, le=64)
    """Most threads that list and stat in parallel, used once listings wait on storage
    (NFS/FUSE latency; a warm local walk stays in one thread); 1 = always sequential."""
    batch_size: int = Field(1000, ge=1, le=100_000)
    """Rows per batch handed to the host."""
    queue_batches: int = Field(8, ge=1, le=1024)
    """Batches buffered between the walk threads and the host before the walk waits."""
    max_pending_paths: int = Field(100_000, ge=16)
    """Distinct changed paths held between inotify and the host; beyond it, changes degrade
    to "rescan this directory" markers instead of making the inotify reader wait."""
    delete_settle_sec: float = Field(0.3, ge=0, le=5)
    """A realtime delete (or a directory's replacement) waits until its path has been quiet,
    and nothing in the tree was written, this long (5 s at most), then is checked against
    the disk: a path that exists again by then (safe save by rename, ``git checkout``,
    ``tar x``) is sent as an upsert, so no Fusion tombstone hides it. 0 sends deletes at
    once."""
    tombstone_ttl_sec: float = Field(3600.0, gt=0)
    """Set it to Fusion's ``tombstone_ttl_seconds``: how long a path deleted and then back
    with an old mtime can stay hidden by Fusion's tombstone; audits restore such paths once
    an audit end has happened past it."""
    audit_mtime_tick_sec: float = Field(2.0, ge=0)
    """A directory whose mtime is this close to the time it was listed is not cached by audit."""
    health_check_interval_sec: float = Field(1.0, gt=0)
    """How often the root's identity (device, inode, mount point) is checked."""
    recovery_ctime_slack_sec: float = Field(60.0, ge=0)
    """After an overflow, files changed (ctime) since the last good read minus this slack are
    upserted again by the local rescan."""
    full_sweep_interval_sec: float = Field(3600.0, ge=0)
    """The leader's audits re-stat every file of the directories they skip once per this
    period, to catch in-place edits by other NFS clients; 0 turns the sweep off."""
    sweep_max_stats_per_sec: float = Field(1000.0, gt=0)
    """Ceiling on the sweep's stats per second (it wins over ``full_sweep_interval_sec``)."""


class FsSourceConfig(SourceConfig):
    """``sources[].config`` of the ``fs`` source."""

    driver_params: FsParams = FsParams()

    @field_validator("uri")
    @classmethod
    def _root_must_be_a_directory(cls, value: str) -> str:
        path = value[len("file://") :] if value.startswith("file://") else value
        if not path:
            raise ValueError("uri is empty: give the directory to watch")
        path = absolute_path("uri", path)
        if not os.path.exists(path):
            # A share not mounted yet (at boot): the pipe waits for the root, as for one
            # that goes away while running.
            config_warning(f"uri {path!r} does not exist (yet): the pipe waits until it does")
        elif not os.path.isdir(path):
            raise ValueError(f"uri {path!r} is not a directory")
        return path
