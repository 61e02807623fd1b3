"""Realtime latency of the fs source: file creation -> row leaving the driver, at 100 creates/s.

A separate process creates files at a steady rate, each named after its creation time
(``time.time_ns()`` just before ``open``); the driver's realtime batches are consumed in
this process and each file's first upsert is timed on arrival. Prints p50/p99/max.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time

from fustor_source_fs import FsSource, FsSourceConfig

CREATOR = """
import os, sys, time
root, rate, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
start = time.monotonic()
for i in range(count):
    delay = start + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    with open(os.path.join(root, f"f{i:06d}_{time.time_ns()}"), "wb") as f:
        f.write(b"x")
"""


async def measure(root: str, rate: float, count: int) -> list[float]:
    source = FsSource("bench", FsSourceConfig(uri=root))
    await source.start()
    latencies: dict[str, float] = {}
    done = asyncio.Event()

    async def pump() -> None:
        async for batch in source.realtime():
            now = time.time_ns()
            for event in batch.events:
                for row in event.rows:
                    name = row["path"].rsplit("/", 1)[-1]
                    if name.startswith("f") and "_" in name and name not in latencies:
                        latencies[name] = (now - int(name.split("_")[1])) / 1e6
            if len(latencies) >= count:
                done.set()

    task = asyncio.create_task(pump())
    # ready is a threading.Event set by the watch thread, hence polling.
    while source._realtime is None or not source._realtime.ready.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    creator = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CREATOR, root, str(rate), str(count)
    )
    await creator.wait()
    await asyncio.wait_for(done.wait(), 30)
    task.cancel()
    await source.stop()
    return list(latencies.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    count = int(args.rate * args.seconds)
    with tempfile.TemporaryDirectory(prefix="fustor-latency-") as root:
        values = sorted(asyncio.run(measure(root, args.rate, count)))
    q = statistics.quantiles(values, n=100)
    print(f"realtime latency, {count} creates at {args.rate:.0f}/s (create -> row out of driver)")
    print(f"  p50 {q[49]:.2f} ms   p99 {q[98]:.2f} ms   max {values[-1]:.2f} ms   n={len(values)}")


if __name__ == "__main__":
    main()
