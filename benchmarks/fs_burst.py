"""A burst of 20,000 file creations in 100 new directories while the agent runs: all reported?

Runs the real agent (``fustor-agent start --watch DIR --format json``: fs source -> echo
sender) and, once its snapshot has ended, a separate process creates 100 directories with
200 files each as fast as it can. Counts the distinct burst files in the echo JSON output
(realtime rows, and rows of any tier), and prints the source's overflow/rescan figures.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

CREATOR = """
import os, sys
root, dirs, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(dirs):
    path = os.path.join(root, f"burst{d:03d}")
    os.mkdir(path)
    for f in range(per):
        fd = os.open(os.path.join(path, f"f{f:04d}.dat"), os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b"x")
        os.close(fd)
"""


QUEUE = "/proc/sys/fs/inotify/max_queued_events"


def _set_queue(value: int) -> int:
    with open(QUEUE) as f:
        old = int(f.read())
    with open(QUEUE, "w") as f:
        f.write(str(value))
    return old


def _wait_watching(agent: str, env: dict[str, str]) -> None:
    """Until the agent's inotify instance exists (the queue size is fixed at creation)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(
            [agent, "status", "--json"], env=env, capture_output=True, text=True, check=False
        )
        try:
            if json.loads(out.stdout)["pipes"][0]["source"].get("watch_ready"):
                return
        except (ValueError, KeyError, IndexError):
            pass
        time.sleep(0.2)
    sys.exit("the agent's watches were not ready within 30 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dirs", type=int, default=100)
    parser.add_argument("--per-dir", type=int, default=200)
    parser.add_argument(
        "--max-queued-events",
        type=int,
        default=0,
        metavar="N",
        help="give the agent's inotify instance a queue of N events (root: the sysctl is "
        "lowered while the agent starts, then restored) to force overflows",
    )
    args = parser.parse_args()
    agent = os.path.join(os.path.dirname(sys.executable), "fustor-agent")
    expected = {
        f"/burst{d:03d}/f{f:04d}.dat" for d in range(args.dirs) for f in range(args.per_dir)
    }
    with tempfile.TemporaryDirectory(prefix="fustor-burst-") as tmp:
        root = os.path.join(tmp, "watched")
        os.mkdir(root)
        env = {**os.environ, "FUSTOR_HOME": os.path.join(tmp, "home")}
        saved_queue = None
        if args.max_queued_events:
            saved_queue = _set_queue(args.max_queued_events)
        proc = subprocess.Popen(
            [agent, "start", "--watch", root, "--format", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: [lines.put(x) for x in stdout], daemon=True).start()
        realtime: set[str] = set()
        anytier: set[str] = set()
        snapshot_done = False

        def drain(until: float) -> None:
            nonlocal snapshot_done
            while time.monotonic() < until:
                try:
                    line = lines.get(timeout=0.1)
                except queue.Empty:
                    continue
                item = json.loads(line)
                if item.get("signal") == "snapshot_end":
                    snapshot_done = True
                row = item.get("row")
                if row and item.get("event_type") != "delete" and row["path"] in expected:
                    anytier.add(row["path"])
                    if item.get("message_source") == "realtime":
                        realtime.add(row["path"])
                if snapshot_done and len(realtime) == len(expected):
                    return

        try:
            deadline = time.monotonic() + 30
            while not snapshot_done and time.monotonic() < deadline:
                drain(time.monotonic() + 0.2)
            if not snapshot_done:
                sys.exit("the agent did not finish its snapshot within 30 s")
            if saved_queue is not None:
                _wait_watching(agent, env)
                _set_queue(saved_queue)
                saved_queue = None
            time.sleep(0.5)  # let the realtime watches settle
            started = time.monotonic()
            subprocess.run(
                [sys.executable, "-c", CREATOR, root, str(args.dirs), str(args.per_dir)], check=True
            )
            created = time.monotonic() - started
            drain(time.monotonic() + 60)
            reported = time.monotonic() - started
            status = subprocess.run(
                [agent, "status", "--json"], env=env, capture_output=True, text=True, check=False
            )
        finally:
            if saved_queue is not None:
                _set_queue(saved_queue)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
    source: dict = {}
    try:
        source = json.loads(status.stdout)["pipes"][0]["source"]
    except (ValueError, KeyError, IndexError):
        pass
    print(
        f"burst: {len(expected)} files in {args.dirs} new directories, created in {created:.2f} s"
    )
    total = len(expected)
    print(f"  reported as realtime: {len(realtime)}/{total}   any tier: {len(anytier)}/{total}")
    print(f"  all reported after {reported:.2f} s" if len(realtime) == total else "  MISSING rows")
    keys = ("overflows", "recoveries", "degraded_changes", "dir_rescans", "watched_dirs")
    print("  source: " + " ".join(f"{k}={source.get(k, '?')}" for k in keys))


if __name__ == "__main__":
    main()
