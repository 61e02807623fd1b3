"""Cost of the in-place sweep (issue 8) on a 1M-file / 100k-directory tree.

Drives the fs source's audit directly (no host, no sender): full audits alternately with the
sweep off and with it recording every file (best of ``--rounds``), then sweep passes: one
unthrottled pass over every file (files/s and CPU per file; it must send no file rows, since
nothing changed), and one pass under the ceiling (the stats/s actually held, and the CPU it
costs). Prints the store's memory per tracked file (exact object sizes; directory names are
shared with the audit cache and counted apart). The tree is built once by fs_tree.py.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fs_tree import build_tree, default_tree

from fustor_source_fs import FsSource, FsSourceConfig


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def audit(source: FsSource, full: bool = False) -> tuple[int, float, float]:
    """(rows, wall seconds, CPU seconds) of one audit pass."""
    rows = 0
    wall, used = time.monotonic(), cpu()
    async for batch in source.audit(full):
        rows += batch.row_count
    return rows, time.monotonic() - wall, cpu() - used


def make(root: str, **params: Any) -> FsSource:
    return FsSource("bench", FsSourceConfig(uri=root, driver_params=params))


def owe(source: FsSource, seconds_of_period: float) -> None:
    """Make the next pass owe ``seconds_of_period`` worth of the period, and let it run."""
    budget = source._sweeper.budget  # type: ignore[union-attr]
    budget._accrued_at -= seconds_of_period  # type: ignore[operator]
    budget._pass_ended_at -= 10_000  # type: ignore[operator]


async def main(root: str, ceiling: float, ceiling_sec: float, rounds: int) -> None:
    params = {"audit_mtime_tick_sec": 2.0, "scan_workers": 4}
    plain = make(root, full_sweep_interval_sec=0, **params)
    source = make(root, full_sweep_interval_sec=3600, sweep_max_stats_per_sec=1e9, **params)
    await plain.start()
    await source.start()
    rss_before = rss()
    # Full audits alternately without and with the sweep recording (the machine is shared:
    # the best of several is the figure least disturbed by other jobs).
    best: dict[str, tuple[float, float]] = {"off": (1e9, 1e9), "recording": (1e9, 1e9)}
    for _ in range(rounds):
        for name, driver in (("off", plain), ("recording", source)):
            rows, wall, used = await audit(driver, full=True)
            best[name] = (min(best[name][0], wall), min(best[name][1], used))
    await plain.stop()
    for name, (wall, used) in best.items():
        print(
            f"full audit, sweep {name:<9}: {rows:,} rows, best of {rounds}: {wall:5.1f} s, "
            f"CPU {used:5.1f} s"
        )
    gc.collect()
    sweeper = source._sweeper
    assert sweeper is not None
    store = sweeper.store
    tracked = store.files
    blobs = sum(sys.getsizeof(b) for b in store.dirs.values())
    exact = blobs + sys.getsizeof(store.dirs) + sys.getsizeof(store.order)
    names = sum(sys.getsizeof(d) for d in store.dirs)
    print(
        f"store: {tracked:,} files in {len(store):,} directories: {exact / 1e6:.1f} MB = "
        f"{exact / tracked:.1f} bytes per tracked file (status estimate "
        f"{store.nbytes() / tracked:.1f}); directory names, shared with the audit cache, "
        f"would add {names / tracked:.1f}"
    )
    grown = rss() - rss_before
    print(
        f"RSS growth of both sources over {rounds} full audits (audit caches, store, allocator "
        f"slack): {grown / 1e6:.0f} MB"
    )

    rows, walk_wall, walk_cpu = await audit(source)
    print(
        f"next audit (mtime-skip walk, small sweep share): {rows:,} rows  {walk_wall:.1f} s  "
        f"CPU {walk_cpu:.1f} s"
    )

    owe(source, 3600)  # a whole round, no ceiling
    before = sweeper.files_checked
    rows, wall, used = await audit(source)
    checked = sweeper.files_checked - before
    wall, used = wall - walk_wall, used - walk_cpu  # the sweep's own share of the audit
    print(
        f"unthrottled sweep: {checked:,} files re-checked in {wall:.1f} s "
        f"({checked / wall:,.0f} files/s), CPU {used:.1f} s = {1e6 * used / checked:.1f} µs "
        f"per file; file rows sent: {rows - len(store)} (changes found: {sweeper.changes})"
    )

    sweeper.max_rate = ceiling
    owe(source, 3600 * ceiling * ceiling_sec / (tracked + len(store)))
    before = sweeper.files_checked
    rows, wall, used = await audit(source)
    checked = sweeper.files_checked - before
    status = source.status()
    wall, used = wall - walk_wall, max(0.0, used - walk_cpu)
    print(
        f"sweep under the ceiling of {ceiling:,.0f} stats/s: {checked:,} files in {wall:.1f} s, "
        f"{status['sweep_stats_per_sec']:,.0f} stats/s measured (files and directories), "
        f"CPU {used:.2f} s ({100 * used / wall:.1f}% of one core)"
    )
    full_period = (tracked + len(store)) / ceiling
    print(
        f"at this ceiling a whole round of {tracked:,} files takes {full_period:,.0f} s "
        f"(default full_sweep_interval_sec 3600: "
        f"{'met' if full_period <= 3600 else 'the ceiling wins'}); "
        f"CPU at the rate the default period needs ({(tracked + len(store)) / 3600:,.0f} "
        f"stats/s): {100 * used / wall * (tracked + len(store)) / 3600 / ceiling:.1f}% of one core"
    )
    await source.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--ceiling", type=float, default=1000.0)
    parser.add_argument("--ceiling-sec", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tree = build_tree(default_tree(args.files), args.files)
    asyncio.run(main(tree, args.ceiling, args.ceiling_sec, args.rounds))
