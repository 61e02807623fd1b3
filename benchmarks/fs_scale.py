"""The fs source at scale, per realtime backend: the real agent on a big tree of empty files.

Builds (once, cached under /var/tmp/fustor-bench) a tree of ``--files`` empty files in
``--dirs`` directories, then for each backend in ``--backends`` runs the real agent
(``fustor-agent start``, fs source → echo sender writing JSON lines to a file) and measures:

* time from start until every directory is covered by realtime (``watch_ready``), and the
  kernel memory it costs (``SUnreclaim`` of /proc/meminfo and the fsnotify slabs, before and
  after; needs root for /proc/slabinfo);
* snapshot rows/s (rows in the echo file / time to ``snapshot done``) against a bare
  ``os.scandir`` + ``lstat`` walk of the same tree in the same run (``--bare-share``: of
  that share of its top directories, without a warm-up walk: for a tree larger than the
  machine's inode and dentry caches, where a warm-up warms nothing);
* agent RSS and peak RSS with the snapshot done and realtime on (bytes per file / directory
  above an agent on an empty directory);
* create → row latency (row written by the echo sender) at ``--rate`` creates/s spread over
  random directories of the tree, p50 / p99: once during the pipe's first audit, once after;
* the pipe's first audit right after the snapshot (a full listing of the unchanged tree): wall
  time and agent CPU-s, from its start and end signals in the echo file; the figures below
  are taken once it is over (so RSS includes it and the in-place sweep it records);
* CPU of the agent while a sibling tree outside the root, on the same file system, receives
  ``--sibling-rate`` changes/s (fanotify sees every change of the file system);

and once, in this process, the cost of ``auto``'s directory count.
inotify on a tree with more directories than ``fs.inotify.max_user_watches`` needs the limit
raised: ``--raise-watches`` does it (root) and restores it after. ``--minutes`` bounds the whole
run: a stage that would outlast it is stopped and reported as unfinished (with what it reached),
the agents are stopped and their output files removed. A script, not a test: figures on a
shared machine are disturbed by other work; compare backends within one run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import shutil
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

from fustor_source_fs.backends import choose
from fustor_source_fs.config import FsParams
from fustor_source_fs.filters import PathFilter

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


class OutOfTime(Exception):
    """The run's ``--minutes`` are used up."""


DEADLINE = float("inf")
"""``time.monotonic()`` by which the run stops (set from ``--minutes``)."""


def left() -> float:
    return DEADLINE - time.monotonic()


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
        deadline = time.monotonic() + min(timeout, left())
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
            time.sleep(0.5)
        if left() <= 0:
            raise OutOfTime(f"waiting for {pattern!r}")
        raise SystemExit(f"agent: {pattern!r} not logged within {timeout:.0f} s ({self.home})")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)  # its echo output: GBs at 10M files


def _stamp(line: str) -> float:
    return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


class Echo:
    """Reads the echo sender's file as it grows: snapshot rows counted, signals timed."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.snapshot_rows = 0
        self.signals: dict[str, tuple[float, float]] = {}
        """signal -> (monotonic time first seen, agent CPU-s then)."""
        self._tail = b""

    def poll(self, pid: int) -> None:
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return
        with f:
            f.seek(self.offset)
            while chunk := f.read(64 << 20):
                self.offset += len(chunk)
                # Whole lines only: a pattern cut by the chunk's end is counted with the next.
                text, _, self._tail = (self._tail + chunk).rpartition(b"\n")
                # Row lines are compact (orjson), signal lines the standard library's.
                self.snapshot_rows += text.count(b'"message_source":"snapshot"')
                for name in ("snapshot_end", "audit_start", "audit_end"):
                    if name not in self.signals and f'"signal": "{name}"'.encode() in text:
                        self.signals[name] = (time.monotonic(), proc_cpu(pid))

    def wait(self, pid: int, name: str) -> tuple[float, float]:
        while name not in self.signals:
            if left() <= 0:
                raise OutOfTime(f"waiting for the {name} signal")
            time.sleep(0.5)
            self.poll(pid)
        return self.signals[name]


def latency(agent: Agent, dirs: list[str], rate: float, count: int) -> list[float]:
    offset = os.path.getsize(agent.out)
    creator = subprocess.Popen(
        [sys.executable, "-c", CREATOR, "\n".join(dirs), str(rate), str(count)]
    )
    found: dict[str, float] = {}
    deadline = time.monotonic() + min(count / rate + 30, max(left(), count / rate + 5))
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


def report_latency(agent: Agent, leaves: list[str], args: argparse.Namespace, when: str) -> None:
    values = latency(agent, leaves, args.rate, int(args.rate * args.seconds))
    if len(values) >= 2:
        q = statistics.quantiles(values, n=100)
        print(
            f"  create -> row at {args.rate:.0f}/s {when}: p50 {q[49]:.2f} ms, "
            f"p99 {q[98]:.2f} ms, max {values[-1]:.1f} ms (n={len(values)})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000_000)
    parser.add_argument("--dirs", type=int, default=1_000_000)
    parser.add_argument("--backends", default="fanotify,inotify")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sibling-rate", type=float, default=10_000.0)
    parser.add_argument("--raise-watches", action="store_true")
    parser.add_argument("--minutes", type=float, default=120.0, help="stop the run after this")
    parser.add_argument("--bare-share", type=float, default=1.0, help="see the module doc")
    args = parser.parse_args()
    global DEADLINE
    DEADLINE = time.monotonic() + args.minutes * 60
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
    tops = sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False))
    tops = [os.path.join(root, name) for name in tops[: max(1, round(len(tops) * args.bare_share))]]
    if args.bare_share >= 1:
        bare_walk(root)  # warm the caches once for everybody
    t, c = time.perf_counter(), time.process_time()
    entries = sum(bare_walk(top) for top in tops)
    bare = entries / (time.perf_counter() - t)
    print(
        f"bare scandir+lstat walk of {len(tops)} top directories: {entries:,} entries, "
        f"{bare:,.0f} entries/s ({time.process_time() - c:.1f} CPU-s)"
    )
    with tempfile.TemporaryDirectory() as empty:
        base = Agent(empty, "inotify", workdir)
        base.wait_log("snapshot done", 120)
        time.sleep(1)
        base_rss, _ = proc_mem(base.proc.pid)
        base.stop()
    print(f"agent RSS on an empty directory: {base_rss / 2**20:.1f} MiB")
    t = time.perf_counter()
    name, reason = choose(root, FsParams(), PathFilter())
    print(f"auto's choice took {time.perf_counter() - t:.2f} s: {name} ({reason})", flush=True)
    saved = None
    for backend in args.backends.split(","):
        if backend == "inotify" and args.raise_watches:
            with open(WATCHES) as f:
                saved = f.read().strip()
            if int(saved) < args.dirs + 10_000:
                with open(WATCHES, "w") as f:
                    f.write(str(args.dirs + 10_000))
        try:
            print(f"--- {backend}", flush=True)
            unreclaim, slab = meminfo("SUnreclaim"), slabs()
            agent = Agent(root, backend, workdir)
            echo = Echo(agent.out)
            try:
                mark_t, _ = agent.wait_log("realtime backend for", 7200)
                snap_t, snap_line = agent.wait_log(r"driver: snapshot of .* rows in", 7200)
                watch_t, _ = agent.wait_log(r"realtime: watching \d+ (of \d+ )?directories", 7200)
                snap_s = float(snap_line.rsplit(" in ", 1)[1].split()[0])
                echo.wait(agent.proc.pid, "snapshot_end")
                rows = echo.snapshot_rows
                rss_snap, _ = proc_mem(agent.proc.pid)
                print(
                    f"  snapshot: {rows:,} rows in {snap_s:.1f} s = {rows / snap_s:,.0f} rows/s "
                    f"({rows / snap_s / bare:.2f}x bare); done {snap_t:.1f} s after start; "
                    f"agent RSS then {rss_snap / 2**20:.0f} MiB"
                )
                a_t, a_cpu = echo.wait(agent.proc.pid, "audit_start")
                report_latency(agent, leaves, args, "during the first audit")
                e_t, e_cpu = echo.wait(agent.proc.pid, "audit_end")
                print(
                    f"  first audit (full listing of the unchanged tree): {e_t - a_t:.0f} s, "
                    f"{e_cpu - a_cpu:.0f} agent CPU-s"
                )
                source = agent.status().get("source", {})
                rss, hwm = proc_mem(agent.proc.pid)
                unreclaim2, slab2 = meminfo("SUnreclaim"), slabs()
                print(f"  reason: {source.get('watch_backend_reason')}")
                print(
                    f"  backend open {mark_t:.1f} s after the agent's first log line; "
                    f"every directory in the watch/handle tree after {watch_t:.1f} s "
                    f"({source.get('watched_dirs', 0):,} of {source.get('dirs', 0):,})"
                )
                delta = {k: slab2.get(k, 0) - slab.get(k, 0) for k in set(slab) | set(slab2)}
                print(
                    f"  kernel memory: SUnreclaim {(unreclaim2 - unreclaim) / 2**20:+.1f} MiB; "
                    + ", ".join(f"{k} {v / 2**20:+.1f} MiB" for k, v in sorted(delta.items()))
                )
                extra = rss - base_rss
                print(
                    f"  agent RSS {rss / 2**20:.0f} MiB after the audit (peak {hwm / 2**20:.0f} "
                    f"MiB = {hwm / 1e9:.2f} GB, target 1 GB; {rss_snap / 2**20:.0f} MiB at the "
                    "snapshot's end): "
                    f"{extra / args.files:.0f} B/file, {extra / args.dirs:.0f} B/dir above empty"
                )
                if left() < args.seconds + 40:
                    raise OutOfTime("before the latency and sibling-tree stages")
                report_latency(agent, leaves, args, "after it")
                quiet, busy = sibling_cpu(agent, sibling, args.sibling_rate, 10.0)
                print(
                    f"  agent CPU quiet {quiet * 100:.1f}% of a core; while the sibling tree "
                    f"changes: {busy * 100:.1f}%"
                )
                rss, hwm = proc_mem(agent.proc.pid)
                print(f"  agent RSS at the end {rss / 2**20:.0f} MiB (peak {hwm / 2**20:.0f} MiB)")
            except OutOfTime as exc:
                elapsed = time.monotonic() - agent.started
                echo.poll(agent.proc.pid)
                rows = echo.snapshot_rows
                rss, hwm = proc_mem(agent.proc.pid)
                print(
                    f"  unfinished: --minutes used up {exc}; {rows:,} snapshot rows echoed "
                    f"after {elapsed:.0f} s ({rows / elapsed:,.0f} rows/s); agent RSS "
                    f"{rss / 2**20:.0f} MiB (peak {hwm / 2**20:.0f} MiB)"
                )
                break
            finally:
                agent.stop()
        finally:
            if saved is not None:
                with open(WATCHES, "w") as f:
                    f.write(saved)
                saved = None
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
