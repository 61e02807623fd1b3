"""fustor-agent host figures with the real ``fs`` source and the ``echo`` sender (no server).

Runs ``fustor-agent start --watch DIR --format json`` as a process and prints:

* time from process start to ``snapshot_end`` for a tree of N files, with the agent's
  CPU-seconds and peak RSS at that point;
* file create -> realtime row on the agent's stdout, p50/p95, for creates spaced 50 ms and
  500 ms apart (the idle-queue case).

Usage: python benchmarks/agent_host_bench.py [--files 100000] [--creates 100]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def agent_command() -> str:
    beside = Path(sys.executable).parent / "fustor-agent"
    return str(beside) if beside.exists() else (shutil.which("fustor-agent") or "fustor-agent")


def make_tree(root: Path, files: int, per_dir: int = 100) -> None:
    for i in range(files):
        d = root / f"d{i // per_dir:05d}"
        if i % per_dir == 0:
            d.mkdir()
        (d / f"f{i}").write_bytes(b"x")


def cpu_and_rss(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    hwm = next(
        line
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    return cpu, int(hwm.split()[1]) / 1024


def reader(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put((time.monotonic(), line))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_run(
    root: Path, lines: queue.Queue, count: int, spacing: float, tag: str
) -> list[float]:
    pending: dict[str, float] = {}
    delays: list[float] = []

    def drain(until: float) -> None:
        while True:
            timeout = until - time.monotonic()
            try:
                at, line = lines.get(timeout=max(0.0, timeout))
            except queue.Empty:
                return
            record = json.loads(line)
            path = (record.get("row") or {}).get("path")
            if record.get("message_source") == "realtime" and path in pending:
                delays.append((at - pending.pop(path)) * 1000)

    for i in range(count):
        path = root / f"{tag}{i}.txt"
        with open(path, "wb") as f:
            f.write(b"hello")
        pending["/" + path.name] = time.monotonic()
        drain(time.monotonic() + spacing)
    drain(time.monotonic() + 2.0)
    if pending:
        print(f"  {len(pending)} creates never appeared", file=sys.stderr)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--creates", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home, root = Path(tmp, "home"), Path(tmp, "tree")
        home.mkdir()
        root.mkdir()
        make_tree(root, args.files)
        (home / "agent-config.yaml").write_text("console: {enabled: false}\n")
        env = {**os.environ, "FUSTOR_HOME": str(home)}
        started = time.monotonic()
        proc = subprocess.Popen(
            [agent_command(), "start", "--watch", str(root), "--format", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=reader, args=(proc.stdout, lines), daemon=True).start()
        rows = 0
        while True:
            _, line = lines.get(timeout=300)
            if '"signal": "snapshot_end"' in line:
                break
            rows += 1
        elapsed = time.monotonic() - started
        cpu, rss = cpu_and_rss(proc.pid)
        print(
            f"snapshot of {args.files} files ({rows} rows): {elapsed:.2f} s from process "
            f"start, agent CPU {cpu:.2f} s, peak RSS {rss:.0f} MB"
        )
        for spacing, tag in ((0.05, "fast"), (0.5, "slow")):
            delays = latency_run(root, lines, args.creates, spacing, tag)
            print(
                f"create -> echo row, {args.creates} creates {spacing * 1000:.0f} ms apart: "
                f"p50 {statistics.median(delays):.1f} ms, p95 {percentile(delays, 0.95):.1f} ms,"
                f" max {max(delays):.1f} ms"
            )
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
