"""The fs source at scale, per realtime backend: the real agent on a big tree of empty files.

Builds (once, cached under /var/tmp/fustor-bench) a tree of ``--files`` empty files in
``--dirs`` directories, then for each backend in ``--backends`` runs the real agent
(``fustor-agent start``, fs source → echo sender writing JSON lines to a file) and measures:

* time from start until every directory is covered by realtime (``watch_ready``), and the
  kernel memory it costs (``SUnreclaim`` of /proc/meminfo and the fsnotify slabs, before and
  after; needs root for /proc/slabinfo);
* snapshot rows/s (rows in the echo file / time to ``snapshot done``) against a bare
  ``os.scandir`` + ``lstat`` walk of the same tree in the same run;
* agent RSS and peak RSS with the snapshot done and realtime on (bytes per file / directory
  above an agent on an empty directory);
* create → row latency (row written by the echo sender) at ``--rate`` creates/s spread over
  random directories of the tree, p50 / p99;
* CPU of the agent while a sibling tree outside the root, on the same file system, receives
  ``--sibling-rate`` changes/s (fanotify sees every change of the file system);

and once, in this process, a full audit of the unchanged tree (wall time and CPU-s).
inotify on a tree with more directories than ``fs.inotify.max_user_watches`` needs the limit
raised: ``--raise-watches`` does it (root) and restores it after. A script, not a test: figures
on a shared machine are disturbed by other work; compare backends within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fs_rss import _mem as proc_mem
from fs_snapshot import bare_walk
from fs_tree import BASE, build_tree

from fustor_source_fs import FsSource, FsSourceConfig

WATCHES = "/proc/sys/fs/inotify/max_user_watches"
SLABS = ("inotify_inode_mark", "fanotify_mark", "fsnotify_mark_connector", "fanotify_fid_event")

CREATOR = """
import os, random, sys, time
dirs, rate, count = sys.argv[1].split("\\n"), float(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
start = time.monotonic()
for i in range(count):
    delay = start + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    with open(os.path.join(rng.choice(dirs), f"lat{i:06d}_{time.time_ns()}"), "wb") as f:
        f.write(b"x")
"""

SIBLING = """
import os, sys, time
root, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
os.makedirs(root, exist_ok=True)
start = time.monotonic()
i = 0
while time.monotonic() - start < seconds:
    for _ in range(100):
        path = os.path.join(root, f"s{i % 1000}")
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        os.unlink(path)
        i += 2
    delay = start + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print(i)
"""


def meminfo(key: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def slabs() -> dict[str, int]:
    """Bytes held per fsnotify slab (active objects x object size)."""
    out: dict[str, int] = {}
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                fields = line.split()
                if fields and fields[0] in SLABS:
                    out[fields[0]] = int(fields[1]) * int(fields[3])
    except OSError:
        pass
    return out


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Agent:
    """One agent process on ``root`` with ``watch_backend`` and the echo sender to a file."""

    def __init__(self, root: str, backend: str, workdir: str) -> None:
        self.home = tempfile.mkdtemp(prefix="home-", dir=workdir)
        self.out = os.path.join(self.home, "rows.jsonl")
        self.cli = os.path.join(os.path.dirname(sys.executable), "fustor-agent")
        config = {
            "sources": [
                {
                    "id": "tree",
                    "type": "fs",
                    "config": {"uri": root, "driver_params": {"watch_backend": backend}},
                }
            ],
            "senders": [
                {
                    "id": "echo",
                    "type": "echo",
                    "config": {"driver_params": {"format": "json", "output": self.out}},
                }
            ],
            "pipes": [{"id": "p", "source_id": "tree", "sender_id": "echo"}],
        }
        with open(os.path.join(self.home, "agent-config.yaml"), "w") as f:
            json.dump(config, f)  # JSON is YAML
        self.env = {**os.environ, "FUSTOR_HOME": self.home}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [self.cli, "start", "--no-console"],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.home, "stderr.log"), "w"),
            env=self.env,
        )

    def status(self) -> dict:
        out = subprocess.run(
            [self.cli, "status", "--json"], env=self.env, capture_output=True, text=True
        )
        try:
            return json.loads(out.stdout)["pipes"][0]
        except (ValueError, KeyError, IndexError):
            return {}

    def wait_log(self, pattern: str, timeout: float) -> tuple[float, str]:
        """Seconds from the agent's first log line to the first line matching ``pattern``
        (read from agent.log: polling ``status`` would cost a CLI process per poll)."""
        log = os.path.join(self.home, "logs", "agent.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(log) as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                lines = []
            for line in lines:
                if re.search(pattern, line):
                    return _stamp(line) - _stamp(lines[0]), line
            if self.proc.poll() is not None:
                raise SystemExit(f"agent exited ({self.home}/stderr.log)")
            time.sleep(0.2)
        raise SystemExit(f"agent: {pattern!r} not logged within {timeout:.0f} s ({self.home})")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _stamp(line: str) -> float:
    return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def rows_in(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if b'"row"' in line)


def latency(agent: Agent, dirs: list[str], rate: float, count: int) -> list[float]:
    offset = os.path.getsize(agent.out)
    creator = subprocess.Popen(
        [sys.executable, "-c", CREATOR, "\n".join(dirs), str(rate), str(count)]
    )
    found: dict[str, float] = {}
    deadline = time.monotonic() + count / rate + 30
    with open(agent.out, "rb") as f:
        f.seek(offset)
        buf = b""
        while len(found) < count and time.monotonic() < deadline:
            chunk = f.read()
            if not chunk:
                time.sleep(0.0005)
                continue
            now = time.time_ns()
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                start = line.find(b"/lat")
                if start < 0:
                    continue
                name = line[start + 1 : line.find(b'"', start)].decode()
                if name not in found and "_" in name:
                    found[name] = (now - int(name.split("_")[1])) / 1e6
    creator.wait()
    for d in dirs:  # the cached tree stays as built
        for name in os.listdir(d):
            if name.startswith("lat"):
                os.unlink(os.path.join(d, name))
    return sorted(found.values())


def sibling_cpu(agent: Agent, sibling: str, rate: float, seconds: float) -> tuple[float, float]:
    """Agent CPU (fraction of a core) while quiet, and while the sibling tree changes."""
    pid = agent.proc.pid
    c, t = proc_cpu(pid), time.monotonic()
    time.sleep(seconds)
    quiet = (proc_cpu(pid) - c) / (time.monotonic() - t)
    c, t = proc_cpu(pid), time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", SIBLING, sibling, str(rate), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    )
    busy = (proc_cpu(pid) - c) / (time.monotonic() - t)
    changes = int(out.stdout) / seconds
    print(f"    sibling tree: {changes:,.0f} changes/s achieved")
    return quiet, busy


async def audit(root: str) -> tuple[float, float, int]:
    source = FsSource("scale", FsSourceConfig(uri=root, driver_params={"scan_workers": 4}))
    await source.start()
    t, c, rows = time.perf_counter(), time.process_time(), 0
    async for batch in source.audit():
        rows += batch.row_count
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    await source.stop()
    return wall, cpu, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000_000)
    parser.add_argument("--dirs", type=int, default=1_000_000)
    parser.add_argument("--backends", default="fanotify,inotify")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sibling-rate", type=float, default=10_000.0)
    parser.add_argument("--raise-watches", action="store_true")
    args = parser.parse_args()
    fanout = max(100, int(args.dirs**0.5))
    root = build_tree(
        os.path.join(BASE, f"scale-{args.files}-{args.dirs}"),
        args.files,
        per_dir=max(1, args.files // args.dirs),
        fanout=fanout,
    )
    rng = random.Random(1)
    leaves = [
        os.path.join(root, f"g{d % fanout:03d}", f"d{d:06d}")
        for d in rng.sample(range(args.dirs), min(2000, args.dirs))
    ]
    workdir = tempfile.mkdtemp(prefix="fustor-scale-", dir="/var/tmp")
    sibling = os.path.join(BASE, "scale-sibling")
    print(f"tree {root}: {args.files:,} files in {args.dirs:,} directories")
    bare_walk(root)  # warm the caches once for everybody
    t, c = time.perf_counter(), time.process_time()
    entries = bare_walk(root)
    bare = entries / (time.perf_counter() - t)
    print(f"bare scandir+lstat walk: {bare:,.0f} entries/s ({time.process_time() - c:.1f} CPU-s)")
    with tempfile.TemporaryDirectory() as empty:
        base = Agent(empty, "inotify", workdir)
        base.wait_log("snapshot done", 120)
        time.sleep(1)
        base_rss, _ = proc_mem(base.proc.pid)
        base.stop()
    print(f"agent RSS on an empty directory: {base_rss / 2**20:.1f} MB")
    saved = None
    for backend in args.backends.split(","):
        if backend == "inotify" and args.raise_watches:
            with open(WATCHES) as f:
                saved = f.read().strip()
            if int(saved) < args.dirs + 10_000:
                with open(WATCHES, "w") as f:
                    f.write(str(args.dirs + 10_000))
        try:
            print(f"--- {backend}")
            unreclaim, slab = meminfo("SUnreclaim"), slabs()
            agent = Agent(root, backend, workdir)
            try:
                mark_t, _ = agent.wait_log("realtime backend for", 7200)
                snap_t, snap_line = agent.wait_log(r"driver: snapshot of .* rows in", 7200)
                watch_t, _ = agent.wait_log(r"realtime: watching \d+ (of \d+ )?directories", 7200)
                snap_s = float(snap_line.rsplit(" in ", 1)[1].split()[0])
                time.sleep(2)
                source = agent.status().get("source", {})
                rss, hwm = proc_mem(agent.proc.pid)
                unreclaim2, slab2 = meminfo("SUnreclaim"), slabs()
                rows = rows_in(agent.out)
                print(f"  reason: {source.get('watch_backend_reason')}")
                print(
                    f"  backend open {mark_t:.1f} s after the agent's first log line; "
                    f"every directory in the watch/handle tree after {watch_t:.1f} s "
                    f"({source.get('watched_dirs', 0):,} of {source.get('dirs', 0):,})"
                )
                delta = {k: slab2.get(k, 0) - slab.get(k, 0) for k in set(slab) | set(slab2)}
                print(
                    f"  kernel memory: SUnreclaim {(unreclaim2 - unreclaim) / 2**20:+.1f} MB; "
                    + ", ".join(f"{k} {v / 2**20:+.1f} MB" for k, v in sorted(delta.items()))
                )
                rate = rows / snap_s
                print(
                    f"  snapshot: {rows:,} rows in {snap_s:.1f} s = {rate:,.0f} rows/s "
                    f"({rate / bare:.2f}x bare); done {snap_t:.1f} s after start"
                )
                extra = rss - base_rss
                print(
                    f"  agent RSS {rss / 2**20:.0f} MB (peak {hwm / 2**20:.0f} MB): "
                    f"{extra / args.files:.0f} B/file, {extra / args.dirs:.0f} B/dir above empty"
                )
                values = latency(agent, leaves, args.rate, int(args.rate * args.seconds))
                if len(values) >= 2:
                    q = statistics.quantiles(values, n=100)
                    print(
                        f"  create -> row at {args.rate:.0f}/s: p50 {q[49]:.2f} ms, "
                        f"p99 {q[98]:.2f} ms, max {values[-1]:.1f} ms (n={len(values)})"
                    )
                quiet, busy = sibling_cpu(agent, sibling, args.sibling_rate, 10.0)
                print(
                    f"  agent CPU quiet {quiet * 100:.1f}% of a core; while the sibling tree "
                    f"changes: {busy * 100:.1f}%"
                )
            finally:
                agent.stop()
        finally:
            if saved is not None:
                with open(WATCHES, "w") as f:
                    f.write(saved)
                saved = None
    wall, cpu, rows = asyncio.run(audit(root))
    print(f"full audit of the unchanged tree: {rows:,} rows, {wall:.1f} s, {cpu:.1f} CPU-s")


if __name__ == "__main__":
    main()
