"""The loop watch names a blocked event loop's place, once per stall, and its end."""

from __future__ import annotations

import asyncio
import logging
import time

from fustor_agent.loopwatch import LoopWatch


def blocking_snapshot(seconds: float) -> None:
    time.sleep(seconds)  # what a driver must not do on the loop


def test_a_blocked_loop_is_reported_once_with_the_blocking_line_and_its_end(caplog):
    caplog.set_level(logging.WARNING, logger="fustor_agent.loopwatch")

    async def main() -> LoopWatch:
        watch = LoopWatch(asyncio.get_running_loop(), threshold=0.4)
        watch.start()
        try:
            await asyncio.sleep(0.3)  # running: nothing to say
            assert caplog.messages == []
            blocking_snapshot(1.2)  # three thresholds: still one warning
            await asyncio.sleep(0.3)  # the loop runs again: the end is logged
        finally:
            watch.stop()
        return watch

    watch = asyncio.run(main())
    assert watch.stalls == 1
    blocked, again = caplog.messages
    assert blocked.startswith("event loop blocked for 0."), blocked
    assert "s: no pipe sends, heartbeats or answers status until it runs again" in blocked
    # The innermost frame is time.sleep's caller here (sleep is C): this file's line.
    assert f"{__file__}:" in blocked and "in blocking_snapshot" in blocked, blocked
    assert "run blocking calls with asyncio.to_thread" in blocked
    seconds = float(again.removeprefix("event loop running again after ").split("s ")[0])
    assert 0.8 <= seconds <= 2.0, again


def test_a_loop_that_keeps_running_is_never_reported(caplog):
    caplog.set_level(logging.WARNING, logger="fustor_agent.loopwatch")

    async def main() -> None:
        watch = LoopWatch(asyncio.get_running_loop(), threshold=0.4)
        watch.start()
        try:
            for _ in range(12):  # busy, but yielding every 0.1 s
                time.sleep(0.1)  # noqa: ASYNC251 - busy on purpose
                await asyncio.sleep(0)
        finally:
            watch.stop()
        assert watch.stalls == 0

    asyncio.run(main())
    assert caplog.messages == []


def test_driver_frames_in_site_packages_are_not_taken_for_the_standard_library():
    """In a venv, site-packages lies under ``platstdlib``: a third-party driver installed
    there must still be named as the caller (it was taken for the standard library)."""
    import sysconfig
    import threading as stdlib_module

    from fustor_agent.loopwatch import in_stdlib

    site = sysconfig.get_paths()["purelib"]
    assert in_stdlib(stdlib_module.__file__)
    assert in_stdlib("<frozen importlib._bootstrap>")
    assert not in_stdlib(f"{site}/fustor_driver_example/sources.py")
    assert not in_stdlib(__file__)
