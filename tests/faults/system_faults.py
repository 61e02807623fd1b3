"""Root-only system knobs for fault tests, always undone: sysctls, bind mounts; an RSS sampler."""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RssSampler", "bind_mount", "is_mount_point", "sysctl", "umount"]


@contextlib.contextmanager
def sysctl(name: str, value: int) -> Iterator[int]:
    """Set ``/proc/sys/<name>`` (dotted name) for the block; the old value comes back after."""
    path = Path("/proc/sys") / name.replace(".", "/")
    old = path.read_text().strip()
    path.write_text(f"{value}\n")
    try:
        yield int(old)
    finally:
        path.write_text(f"{old}\n")


def is_mount_point(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


def umount(path: Path) -> None:
    """Unmount ``path``; lazily if something still holds it (the test must not hang)."""
    if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode:
        subprocess.run(["umount", "-l", str(path)], check=True)


@contextlib.contextmanager
def bind_mount(source: Path, target: Path) -> Iterator[None]:
    """``mount --bind source target`` for the block; unmounted after even if the test failed."""
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    try:
        yield
    finally:
        while is_mount_point(target):
            umount(target)


def _status_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class RssSampler(threading.Thread):
    """Samples the resident memory of the processes given by ``pids()`` every ``interval``.

    The kernel's own high-water mark (``VmHWM``) is read too, so a spike between two samples
    is not missed; ``peak_mb`` is the larger of the two over every process seen.
    """

    def __init__(self, pids: object, interval: float = 0.2) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self._pids = pids
        self.interval = interval
        self.peak_kb = 0
        self._stop_event = threading.Event()

    @property
    def peak_mb(self) -> float:
        return round(self.peak_kb / 1024, 1)

    def sample(self) -> None:
        for pid in self._pids():  # type: ignore[operator]
            for key in ("VmRSS", "VmHWM"):
                kb = _status_kb(pid, key)
                if kb is not None:
                    self.peak_kb = max(self.peak_kb, kb)

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> float:
        self._stop_event.set()
        self.join(5)
        self.sample()
        return self.peak_mb
