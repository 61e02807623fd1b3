"""A writer thread that keeps changing a tree, with sequence numbers in names so gaps show."""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

__all__ = ["SequenceWriter", "burst"]


class SequenceWriter(threading.Thread):
    """Creates, modifies, renames and deletes files (and now and then directories) under
    ``root`` at about ``rate`` operations per second until :meth:`stop`.

    Every name carries the sequence number of the operation that made it (``f0000123.dat``,
    renamed ``f0000123.r0000456``), so a file missing from Fusion's view names the step that
    was lost. ``max_files`` bounds the tree: beyond it, deletes take over.
    """

    def __init__(
        self, root: Path, rate: float = 200.0, max_files: int = 400, seed: int = 7, tag: str = ""
    ) -> None:
        super().__init__(name="fault-writer", daemon=True)
        self.root = root
        self.rate = rate
        self.max_files = max_files
        self.random = random.Random(seed)
        self.tag = tag
        """Prefix of every name, so that writers one after another in a tree never collide."""
        self.seq = 0
        self.counts: Counter[str] = Counter()
        self.files: list[Path] = []
        self.dirs: list[Path] = []
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def stop(self) -> Counter[str]:
        """Stop and wait; re-raises what broke the writer (a test bug, not an agent one)."""
        self._stop_event.set()
        self.join(10)
        if self.error is not None:
            raise AssertionError(f"the writer failed: {self.error!r}")
        return self.counts

    @property
    def ops(self) -> int:
        return sum(self.counts.values())

    def run(self) -> None:
        try:
            for i in range(4):
                self._op_mkdir(self.root / f"{self.tag}w{i}")
            interval = 1.0 / self.rate
            next_at = time.monotonic()
            while not self._stop_event.is_set():
                self.step()
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stop_event.wait(delay)
                else:
                    next_at = time.monotonic()  # behind: do not burst to catch up
        except BaseException as exc:
            self.error = exc

    def step(self) -> None:
        self.seq += 1
        roll = self.random.random()
        if len(self.files) >= self.max_files:
            roll = 0.95
        if not self.files or roll < 0.45:
            self._op_create()
        elif roll < 0.65:
            self._op_modify()
        elif roll < 0.78:
            self._op_rename()
        elif roll < 0.97:
            self._op_delete()
        elif roll < 0.985:
            self._op_mkdir(self.random.choice(self.dirs) / f"{self.tag}d{self.seq:07d}")
        else:
            self._op_rename_dir()

    def _op_create(self) -> None:
        path = self.random.choice(self.dirs) / f"{self.tag}f{self.seq:07d}.dat"
        path.write_bytes(b"x" * self.random.randrange(0, 4096))
        self.files.append(path)
        self.counts["create"] += 1

    def _op_modify(self) -> None:
        path = self.random.choice(self.files)
        with open(path, "ab") as f:
            f.write(b"y" * self.random.randrange(1, 512))
        self.counts["modify"] += 1

    def _op_rename(self) -> None:
        index = self.random.randrange(len(self.files))
        path = self.files[index]
        target = path.with_name(f"{path.name.split('.')[0]}.r{self.seq:07d}")
        os.rename(path, target)
        self.files[index] = target
        self.counts["rename"] += 1

    def _op_delete(self) -> None:
        path = self.files.pop(self.random.randrange(len(self.files)))
        path.unlink()
        self.counts["delete"] += 1

    def _op_mkdir(self, path: Path) -> None:
        path.mkdir()
        self.dirs.append(path)
        self.counts["mkdir"] += 1

    def _op_rename_dir(self) -> None:
        movable = [d for d in self.dirs if d.parent != self.root]
        if not movable:
            return
        old = self.random.choice(movable)
        new = old.with_name(f"{self.tag}m{self.seq:07d}")
        os.rename(old, new)
        self.dirs = [_moved(d, old, new) for d in self.dirs]
        self.files = [_moved(f, old, new) for f in self.files]
        self.counts["rename_dir"] += 1
        if self.random.random() < 0.3:
            # Now and then a whole subtree goes, files and all.
            shutil.rmtree(new)
            self.dirs = [d for d in self.dirs if not d.is_relative_to(new)]
            self.files = [f for f in self.files if not f.is_relative_to(new)]
            self.counts["rmtree"] += 1


def _moved(path: Path, old: Path, new: Path) -> Path:
    """Where ``path`` is after its ancestor (or itself) ``old`` was renamed to ``new``."""
    if path == old:
        return new
    if path.is_relative_to(old):
        return new / path.relative_to(old)
    return path


def burst(root: Path, dirs: int, per_dir: int, prefix: str = "b") -> int:
    """``dirs`` new directories of ``per_dir`` small files each, as fast as Python can."""
    made = 0
    for d in range(dirs):
        directory = root / f"{prefix}{d:04d}"
        directory.mkdir()
        for i in range(per_dir):
            with open(directory / f"{i:05d}.dat", "wb") as f:
                f.write(b"z" * (i % 7))
            made += 1
    return made
