"""Cost of the audit's end recheck and of its post-end look, on a 1M-file / 100k-directory
tree (the tree of fs_tree.py).

Before its end, an audit ``lstat``s again every directory it skipped and sends each that
changed since, flagged; once Fusion has taken the end, it ``lstat``s them once more, and
realtime sends the files of each that changed after the recheck (docs/source-fs.md, the
audit). The cost matters most where nothing changed: an mtime-skip audit of an unchanged tree
is one ``lstat`` per directory, and each look adds one more. Drives the fs source's audit
directly (no host, no sender), in-place sweep off; prints, best of ``--rounds``, the
mtime-skip audit's wall and CPU seconds, the recheck's share of them (timed around
``AuditWalk.recheck``) and the post-end look's (``AuditWalk.files_changed_after_check``, which
``FsSource.audit_ended`` runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fs_sweep import audit, cpu
from fs_tree import build_tree, default_tree

from fustor_source_fs import FsSource, FsSourceConfig
from fustor_source_fs.audit import AuditWalk

RECHECK: list[tuple[float, float]] = []
_recheck = AuditWalk.recheck


def timed_recheck(self: AuditWalk, *args: object) -> None:
    wall, used = time.monotonic(), cpu()
    try:
        _recheck(self, *args)  # type: ignore[arg-type]
    finally:
        RECHECK.append((time.monotonic() - wall, cpu() - used))


AuditWalk.recheck = timed_recheck  # type: ignore[method-assign]


def after_end(source: FsSource, workers: int) -> tuple[float, float]:
    """Wall and CPU seconds of the post-end look of the audit that just ended."""
    view = source._skip_view
    assert view is not None
    audit, started_from, _ = view
    wall, used = time.monotonic(), cpu()
    files = audit.files_changed_after_check(started_from, threading.Event(), workers)
    assert files == [], files  # nothing changed
    return time.monotonic() - wall, cpu() - used


async def main(root: str, rounds: int, workers: int) -> None:
    params = {"audit_mtime_tick_sec": 2.0, "scan_workers": workers, "full_sweep_interval_sec": 0}
    source = FsSource("bench", FsSourceConfig(uri=root, driver_params=params))
    await source.start()
    await audit(source, full=True)
    await audit(source)  # the audit after a full one lists in full too
    best = (1e9, 1e9, 1e9, 1e9)
    best_after = (1e9, 1e9)
    for _ in range(rounds):
        rows, wall, used = await audit(source)
        check_wall, check_cpu = RECHECK[-1]
        best = min(best, (wall, used, check_wall, check_cpu))
        best_after = min(best_after, after_end(source, workers))
    await source.stop()
    wall, used, check_wall, check_cpu = best
    after_wall, after_cpu = best_after
    dirs = source.status().get("audit_dirs_skipped", 0)
    print(f"tree: {root}; {dirs:,} directories skipped, {rows:,} rows sent; best of {rounds}")
    print(f"mtime-skip audit of the unchanged tree: {wall:.2f} s, CPU {used:.2f} s")
    print(
        f"of which the end recheck: {check_wall:.2f} s ({100 * check_wall / wall:.0f}%), "
        f"CPU {check_cpu:.2f} s ({100 * check_cpu / used:.0f}%); "
        f"{1e6 * check_wall / max(dirs, 1):.1f} µs per skipped directory"
    )
    print(
        f"post-end look (after the audit, off its clock): {after_wall:.2f} s "
        f"({100 * after_wall / wall:.0f}% of the audit), CPU {after_cpu:.2f} s; "
        f"{1e6 * after_wall / max(dirs, 1):.1f} µs per skipped directory"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="scan_workers")
    args = parser.parse_args()
    asyncio.run(main(build_tree(default_tree(args.files), args.files), args.rounds, args.workers))
