"""The fs source's metrics: which ``FsSource.status()`` keys ``/metrics`` exports, and as what.

Keys left out stay in the JSON status only: text (root, backend names), per-phase progress the
host already exports per pipe (``snapshot_rows``, ``audit_rows``), rates (left to queries) and
figures derived from others (``watch_coverage``, ``sweep_bytes_per_file``).
"""

from __future__ import annotations

from fustor_agent_sdk import MetricKind, MetricSpec, MetricUnit

__all__ = ["FS_METRICS"]

_C, _G = MetricKind.COUNTER, MetricKind.GAUGE

FS_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("root_available", _G, "1 while the source root is present and trusted."),
    MetricSpec("audits", _C, "Audit cycles the source ran."),
    MetricSpec("audit_cache_dirs", _G, "Directories in the audit's mtime cache.",
               name="audit_cache_directories"),
    MetricSpec("audit_dirs_listed", _G, "Directories the last audit listed.",
               name="audit_listed_directories"),
    MetricSpec("audit_dirs_skipped", _G, "Directories the last audit skipped (mtime unchanged).",
               name="audit_skipped_directories"),
    MetricSpec("tombstone_hidden_paths", _G,
               "Paths re-created too soon after their delete (Fusion may hide them)."),
    MetricSpec("tombstone_restored_paths", _C,
               "Hidden paths an audit sent again after their tombstone was purged."),
    MetricSpec("tracked_deletes", _G, "Realtime deletes remembered for tombstone checks."),
    MetricSpec("hard_link_names", _G, "Extra names of hard-linked files being tracked."),
    MetricSpec("watched_dirs", _G, "Directories with a live watch.",
               name="watched_directories"),
    MetricSpec("dirs", _G, "Directories known under the root (coverage = watched / known).",
               name="directories"),
    MetricSpec("watch_limited", _G, "1 when the watch limit left directories unwatched."),
    MetricSpec("unwatchable_dirs", _G, "Directories that could not be watched.",
               name="unwatchable_directories"),
    MetricSpec("watch_ready", _G, "1 once the realtime watch covers the tree."),
    MetricSpec("watch_fanotify", _G, "1 when the realtime watch uses fanotify, 0 for inotify."),
    MetricSpec("overflows", _C,
               "Kernel event-queue overflows (each one triggers a rescan).",
               name="event_overflows"),
    MetricSpec("inotify_events", _C, "Kernel file events read by the realtime watch.",
               name="watch_events"),
    MetricSpec("pending_paths", _G, "Changed paths waiting to settle before they are sent."),
    MetricSpec("degraded_changes", _C,
               "Changes folded into a directory rescan because too many paths were pending."),
    MetricSpec("dir_rescans", _C, "Directory rescans run by the realtime watch.",
               name="directory_rescans"),
    MetricSpec("recoveries", _C, "Recoveries of the realtime watch after a failure."),
    MetricSpec("realtime_rows", _C, "Realtime rows the watch produced."),
    MetricSpec("deletes_suppressed", _C, "Deletes not sent because the path came back."),
    MetricSpec("deletes_held", _G, "Deletes held back for a moment in case the path returns."),
    MetricSpec("deletes_cancelled", _C, "Held deletes cancelled because the path returned."),
    MetricSpec("handles_resolved", _C, "fanotify file handles resolved to paths."),
    MetricSpec("events_outside_root", _C, "fanotify events dropped as outside the root."),
    MetricSpec("sweep_tracked_files", _G, "Files the sweep tracks."),
    MetricSpec("sweep_tracked_dirs", _G, "Directories the sweep tracks.",
               name="sweep_tracked_directories"),
    MetricSpec("sweep_round_progress", _G, "Share of the current sweep round done.",
               unit=MetricUnit.RATIO),
    MetricSpec("sweep_rounds", _C, "Sweep rounds completed."),
    MetricSpec("sweep_files_checked", _C, "Files the sweep stat()ed."),
    MetricSpec("sweep_changes_found", _C, "Changes the sweep found that realtime missed."),
    MetricSpec("sweep_forced_rows", _C, "Rows the sweep sent although nothing seemed changed."),
    MetricSpec("sweep_deferred", _C, "Sweep checks deferred (the path was still settling)."),
    MetricSpec("sweep_period_target_sec", _G, "Configured time for one sweep round.",
               unit=MetricUnit.SECONDS, name="sweep_period_target"),
    MetricSpec("sweep_period_achieved_sec", _G, "Time the last sweep round took.",
               unit=MetricUnit.SECONDS, name="sweep_period_achieved"),
    MetricSpec("sweep_memory_bytes", _G, "Memory the sweep's file table uses.",
               unit=MetricUnit.BYTES, name="sweep_memory"),
)  # fmt: skip
