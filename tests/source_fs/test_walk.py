"""The walk goes parallel only when listings wait on storage, never on a CPU-bound walk."""

from __future__ import annotations

import threading
import time

import pytest

from fustor_source_fs.walk import walk


def _run(cost: str, dirs: int = 3000) -> tuple[set[str], int]:
    threads: set[str] = set()
    count = 0
    lock = threading.Lock()

    def visit(task: int) -> list[int]:
        nonlocal count
        with lock:
            count += 1
            threads.add(threading.current_thread().name)
        if cost == "wait":
            time.sleep(0.0002)  # off the CPU, as a listing waiting on an NFS server
        else:
            end = time.thread_time() + 0.00002
            while time.thread_time() < end:  # on the CPU, as a warm local listing
                pass
        children = [task * 4 + i for i in range(1, 5)]
        return [c for c in children if c < dirs]

    walk([0], visit, workers=4, stop=threading.Event())
    return threads, count


def test_cpu_bound_walk_stays_in_the_calling_thread() -> None:
    threads, count = _run("cpu")
    assert count == 3000
    assert threads == {threading.current_thread().name}


def test_latency_bound_walk_hands_off_to_the_workers() -> None:
    threads, count = _run("wait")
    assert count == 3000
    assert {t for t in threads if t.startswith("fs-walk-")}, threads


def test_going_parallel_is_logged_once_with_the_measured_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("INFO", logger="fustor_source_fs.walk"):
        _run("wait")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "going on in 4 threads" in lines[0], lines
    wait = float(lines[0].split("listings wait ")[1].split(" us")[0])
    assert wait >= 200, lines  # each listing of the test sleeps 200 us
