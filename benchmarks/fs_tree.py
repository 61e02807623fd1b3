"""Build (once) the benchmark trees of the fs source: N files spread over N/10 directories."""

from __future__ import annotations

import argparse
import os
import time

__all__ = ["build_tree", "default_tree"]

BASE = os.environ.get("FUSTOR_BENCH_DIR", "/var/tmp/fustor-bench")


def default_tree(files: int) -> str:
    return os.path.join(BASE, f"tree-{files}")


def build_tree(root: str, files: int, per_dir: int = 10, fanout: int = 100) -> str:
    """``files`` empty files, ``per_dir`` per directory, directories two levels deep.

    A marker file records a complete build, so a tree is made once and reused.
    """
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        return root
    started = time.monotonic()
    dirs = files // per_dir
    for d in range(dirs):
        path = os.path.join(root, f"g{d % fanout:03d}", f"d{d:06d}")
        os.makedirs(path, exist_ok=True)
        for f in range(per_dir):
            fd = os.open(os.path.join(path, f"f{f:03d}.dat"), os.O_CREAT | os.O_WRONLY, 0o644)
            os.close(fd)
    with open(marker, "w") as f:
        f.write(f"{files} files in {dirs} directories\n")
    print(f"built {root}: {files} files, {dirs} dirs in {time.monotonic() - started:.0f} s")
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1_000_000)
    args = parser.parse_args()
    build_tree(default_tree(args.files), args.files)
