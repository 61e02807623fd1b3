"""Snapshot throughput of the fs source vs a bare single-threaded os.scandir + lstat walk.

Builds a 1M-file / 100k-directory tree once (see fs_tree.py), or with ``--dir-heavy`` the
directory-heavy shape (202,536 directories, one file per hundred), warms the cache, then
measures in the same run: the bare walk, and the driver's snapshot (rows reaching the
consumer) with its default worker count and with one worker. Prints rows/s, the ratio
driver/bare, and the CPU seconds of the process for each. ``--echo`` adds the real agent's
snapshot into the echo sender (JSON lines to a file; time from the agent's own log line).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fs_tree import build_dir_heavy_tree, build_tree, default_tree, dir_heavy_tree

from fustor_source_fs import FsSource, FsSourceConfig


def bare_walk(root: str) -> int:
    count = 1
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                entry.stat(follow_symlinks=False)
                count += 1
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return count


async def driver_snapshot(root: str, **params: object) -> tuple[int, float]:
    source = FsSource("bench", FsSourceConfig(uri=root, driver_params=params))
    await source.start()
    rows = 0
    first = 0.0
    started = time.perf_counter()
    async for batch in source.snapshot():
        if not rows:
            first = time.perf_counter() - started
        rows += batch.row_count
    await source.stop()
    return rows, first


def echo_snapshot(root: str) -> tuple[int, float]:
    """Rows and seconds of the agent's snapshot of ``root`` into the echo sender."""
    from fs_scale import Agent

    with tempfile.TemporaryDirectory(prefix="fustor-snap-", dir="/var/tmp") as work:
        agent = Agent(root, "auto", work)
        try:
            _, line = agent.wait_log(r"driver: snapshot of .* rows in", 3600)
        finally:
            agent.stop()
    found = re.search(r": (\d+) rows in ([\d.]+) s", line)
    assert found, line
    return int(found[1]), float(found[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--dir-heavy", type=int, metavar="DIRS", help="the directory-heavy shape (202536)"
    )
    parser.add_argument("--echo", action="store_true", help="also through the agent into echo")
    args = parser.parse_args()
    if args.dir_heavy:
        root = build_dir_heavy_tree(dir_heavy_tree(args.dir_heavy), args.dir_heavy)
    else:
        root = build_tree(default_tree(args.files), args.files)
    bare_walk(root)  # warm the dentry/inode caches
    default_workers = FsSourceConfig(uri=root).driver_params.scan_workers
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for _ in range(args.rounds):
        t, c = time.perf_counter(), time.process_time()
        n = bare_walk(root)
        best["bare"] = max(best.get("bare", 0), n / (time.perf_counter() - t))
        cpu["bare"] = min(cpu.get("bare", 1e9), time.process_time() - c)
        for label, workers in (
            (f"driver workers={default_workers}", default_workers),
            ("driver workers=1", 1),
        ):
            t, c = time.perf_counter(), time.process_time()
            rows, first = asyncio.run(driver_snapshot(root, scan_workers=workers))
            rate = rows / (time.perf_counter() - t)
            cpu[label] = min(cpu.get(label, 1e9), time.process_time() - c)
            best[label] = max(best.get(label, 0), rate)
            best[f"{label} first batch s"] = first
        assert rows == n, (rows, n)
        if args.echo:
            rows, seconds = echo_snapshot(root)
            assert rows == n, (rows, n)
            best["agent -> echo"] = max(best.get("agent -> echo", 0), rows / seconds)
    print(f"tree: {n} entries ({root}); best of {args.rounds} rounds")
    print(
        f"bare scandir+lstat walk : {best['bare']:>10,.0f} entries/s"
        f"  {n / best['bare']:.2f} s  {cpu['bare']:.2f} CPU-s"
    )
    for label in (f"driver workers={default_workers}", "driver workers=1"):
        print(
            f"{label:<24}: {best[label]:>10,.0f} rows/s  ratio {best[label] / best['bare']:.2f}"
            f"  {n / best[label]:.2f} s  {cpu[label]:.2f} CPU-s"
            f"  first batch after {best[label + ' first batch s'] * 1000:.0f} ms"
        )
    if args.echo:
        rate = best["agent -> echo"]
        print(
            f"{'agent -> echo sender':<24}: {rate:>10,.0f} rows/s  ratio {rate / best['bare']:.2f}"
            f"  {n / rate:.2f} s"
        )


if __name__ == "__main__":
    main()
