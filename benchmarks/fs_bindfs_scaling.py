"""Snapshot speed through a FUSE mount (bindfs, every stat a round trip) for 1..8 workers.

Models latency-bound storage such as NFS (see TESTING_BLIND_SPOTS.md). Mounts a 100k-file
tree (fs_tree.py) with bindfs and kernel attribute/entry caching off, and prints rows/s and
the speed-up over one worker for each ``scan_workers`` value. Needs root and bindfs
(``apt-get install -y bindfs``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fs_snapshot import driver_snapshot
from fs_tree import build_tree, default_tree

from fustor_source_fs import FsSourceConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,4,8")
    args = parser.parse_args()
    if shutil.which("bindfs") is None:
        sys.exit("bindfs is missing: apt-get install -y bindfs")
    backing = build_tree(default_tree(args.files), args.files)
    mnt = tempfile.mkdtemp(prefix="fustor-bindfs-")
    subprocess.run(
        ["bindfs", "--multithreaded", "-o", "attr_timeout=0,entry_timeout=0", backing, mnt],
        check=True,
    )
    try:
        default = FsSourceConfig(uri=mnt).driver_params.scan_workers
        asyncio.run(driver_snapshot(mnt, scan_workers=8))  # warm the backing file system
        base = 0.0
        print(f"bindfs snapshot of {args.files} files (default scan_workers={default})")
        for workers in (int(w) for w in args.workers.split(",")):
            t = time.perf_counter()
            rows, _ = asyncio.run(driver_snapshot(mnt, scan_workers=workers))
            rate = rows / (time.perf_counter() - t)
            base = base or rate
            mark = "  <- default" if workers == default else ""
            print(f"  workers={workers}: {rate:>9,.0f} rows/s  x{rate / base:.2f}{mark}")
    finally:
        subprocess.run(["fusermount", "-u", mnt], check=False)
        os.rmdir(mnt)


if __name__ == "__main__":
    main()
