"""Build (once) the benchmark trees of the fs source: N files spread over N/10 directories,
or the directory-heavy shape (many directories, one file per hundred of them)."""

from __future__ import annotations

import argparse
import os
import time

__all__ = ["build_dir_heavy_tree", "build_tree", "default_tree", "dir_heavy_tree"]

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


def dir_heavy_tree(dirs: int) -> str:
    return os.path.join(BASE, f"dirs-{dirs}")


def build_dir_heavy_tree(root: str, dirs: int = 202_536, files_every: int = 100) -> str:
    """``dirs`` directories (the root included) three levels deep, fan-out ~60, and one empty
    file in every ``files_every``-th directory: the shape of issue 12's slow snapshot."""
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        return root
    started = time.monotonic()
    fanout = max(2, round((dirs - 1) ** (1 / 3)))
    made = 1
    os.makedirs(root, exist_ok=True)
    for a in range(fanout):
        for b in range(fanout):
            for c in range(fanout + 1):
                if made >= dirs:
                    break
                for path in (f"{root}/a{a:03d}", f"{root}/a{a:03d}/b{b:03d}"):
                    if not os.path.isdir(path):
                        os.mkdir(path)
                        made += 1
                leaf = f"{root}/a{a:03d}/b{b:03d}/c{c:03d}"
                os.mkdir(leaf)
                made += 1
                if made % files_every == 0:
                    os.close(os.open(f"{leaf}/f.dat", os.O_CREAT | os.O_WRONLY, 0o644))
    with open(marker, "w") as f:
        f.write(f"{made} directories, one file per {files_every}\n")
    print(f"built {root}: {made} dirs in {time.monotonic() - started:.0f} s")
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--dir-heavy", type=int, metavar="DIRS", help="build that shape instead")
    args = parser.parse_args()
    if args.dir_heavy:
        build_dir_heavy_tree(dir_heavy_tree(args.dir_heavy), args.dir_heavy)
    else:
        build_tree(default_tree(args.files), args.files)
