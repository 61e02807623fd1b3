"""Agent memory with a 1M-file / 100k-directory tree fully watched, and the figure per directory.

Runs the real agent (``fustor-agent start --watch DIR``, echo output discarded) twice: on an
empty directory, then on the big tree (fs_tree.py). Once the snapshot has ended and every
directory is watched, reads VmRSS/VmHWM of the agent. Needs fs.inotify.max_user_watches
above the directory count; ``--raise-watches`` raises it temporarily (root) and restores it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fs_tree import build_tree, default_tree

WATCHES = "/proc/sys/fs/inotify/max_user_watches"


def _mem(pid: int) -> tuple[int, int]:
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def run_agent(directory: str, timeout: float) -> tuple[int, int, dict]:
    agent = os.path.join(os.path.dirname(sys.executable), "fustor-agent")
    with tempfile.TemporaryDirectory(prefix="fustor-rss-") as home:
        env = {**os.environ, "FUSTOR_HOME": home}
        proc = subprocess.Popen(
            [agent, "start", "--watch", directory, "--format", "json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                time.sleep(1.0)
                out = subprocess.run(
                    [agent, "status", "--json"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                try:
                    pipe = json.loads(out.stdout)["pipes"][0]
                except (ValueError, KeyError, IndexError):
                    continue
                source = pipe.get("source", {})
                if pipe["progress"]["snapshot"]["done"] and source.get("watch_ready"):
                    time.sleep(2.0)
                    rss, hwm = _mem(proc.pid)
                    return rss, hwm, source
            raise SystemExit(f"agent on {directory} not ready within {timeout:.0f} s")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--raise-watches", type=int, default=0, metavar="N")
    args = parser.parse_args()
    root = build_tree(default_tree(args.files), args.files)
    saved = None
    if args.raise_watches:
        with open(WATCHES) as f:
            saved = f.read().strip()
        with open(WATCHES, "w") as f:
            f.write(str(args.raise_watches))
    try:
        with tempfile.TemporaryDirectory() as empty:
            base_rss, _, _ = run_agent(empty, 60)
        rss, hwm, source = run_agent(root, 900)
    finally:
        if saved is not None:
            with open(WATCHES, "w") as f:
                f.write(saved)
    dirs = source.get("watched_dirs", 0)
    mb = 1024 * 1024
    print(f"agent RSS, empty directory      : {base_rss / mb:7.1f} MB")
    tree = f"{args.files} files / {source.get('dirs')} dirs"
    print(f"agent RSS, {tree}: {rss / mb:7.1f} MB (peak {hwm / mb:.1f} MB)")
    print(f"snapshot rows: {source.get('snapshot_rows')}")
    print(f"watched directories: {dirs} (coverage {source.get('watch_coverage')})")
    if dirs:
        print(f"per watched directory: {(rss - base_rss) / dirs:.0f} bytes above the empty agent")


if __name__ == "__main__":
    main()
