"""Lost events: a real kernel queue overflow, a full pending structure, too few watches."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
from fs_helpers import Live, make_source, write


def _max_queued_events() -> int:
    with open("/proc/sys/fs/inotify/max_queued_events") as f:
        return int(f.read())


def test_kernel_queue_overflow_is_counted_and_recovered(
    root: str, caplog: pytest.LogCaptureFixture
) -> None:
    write(f"{root}/pre/existing.txt")
    os.makedirs(f"{root}/burst")
    # Each new file queues CREATE and CLOSE_WRITE: this is more than the queue holds.
    count = _max_queued_events() // 2 + 1000

    async def main() -> None:
        async with Live(make_source(root)) as rt:
            assert rt.source._realtime is not None and rt.source._realtime.reader is not None
            reader = rt.source._realtime.reader
            reader.paused.set()
            await asyncio.sleep(0.25)  # the reader finishes its current read and parks
            for i in range(count):  # in a watched directory, so every file queues events
                write(f"{root}/burst/f{i:05d}")
            reader.paused.clear()
            expected = {f"/burst/f{i:05d}" for i in range(count)}
            await rt.wait(lambda: expected <= rt.paths(), within=20)
            status = rt.source.status()
            assert status["overflows"] >= 1
            assert status["recoveries"] >= 1
            # The host is told to audit everything (deletions lost in the overflow).
            assert ["/"] in rt.rescans

    with caplog.at_level(logging.WARNING, logger="fustor_source_fs"):
        asyncio.run(main())
    assert any("overflow" in r.getMessage() for r in caplog.records)


def test_full_pending_structure_degrades_to_directory_rescans(root: str) -> None:
    for d in range(4):
        os.makedirs(f"{root}/d{d}")

    async def main() -> None:
        async with Live(make_source(root, max_pending_paths=16)) as rt:
            reader = rt.source._realtime.reader  # type: ignore[union-attr]
            reader.paused.set()
            await asyncio.sleep(0.25)
            expected = set()
            for i in range(200):
                write(f"{root}/d{i % 4}/f{i:03d}")
                expected.add(f"/d{i % 4}/f{i:03d}")
            reader.paused.clear()
            await rt.wait(lambda: expected <= rt.paths(), within=10)
            # The rescan marker follows the rows of the rescan: it may still be on its way.
            await rt.wait(lambda: bool(rt.rescans))
            status = rt.source.status()
            assert status["degraded_changes"] > 0 and status["overflows"] == 0
            rescanned = {p for batch in rt.rescans for p in batch}
            assert rescanned and rescanned <= {"/d0", "/d1", "/d2", "/d3"}

    asyncio.run(main())


def test_watch_limit_watches_what_it_can_and_says_so(
    root: str, caplog: pytest.LogCaptureFixture
) -> None:
    for d in range(10):
        os.makedirs(f"{root}/d{d}/sub")

    async def main() -> None:
        async with Live(make_source(root, max_watches=5, watch_backend="inotify")) as rt:
            status = rt.source.status()
            assert status["watched_dirs"] == 5
            assert status["dirs"] == 21
            assert status["watch_coverage"] == round(5 / 21, 4)
            assert status["watch_limited"] is True
            write(f"{root}/top.txt")  # the root is watched (breadth first)
            await rt.wait(lambda: rt.upserts("/top.txt"))
            # No watch left, but a directory that comes in is still seen with what it holds
            # when listed. Moved in whole: a file written after the listing would only be seen
            # by an audit, and a test making it right after mkdir raced the listing.
            staging = f"{root}/../staging"
            os.makedirs(staging)
            write(f"{staging}/f.txt")
            os.rename(staging, f"{root}/newdir")
            await rt.wait(lambda: rt.upserts("/newdir") and rt.upserts("/newdir/f.txt"))
        assert rt.source.health() is None

    with caplog.at_level(logging.WARNING, logger="fustor_source_fs"):
        asyncio.run(main())
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "watching 5 of 21 directories" in text
    # The configured limit is what to raise, not the kernel's.
    assert "(max_watches=5). Raise it (driver_params.max_watches to at least 21, or unset" in text
    assert "sysctl" not in text


def test_kernel_watch_limit_enospc(
    root: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel refusing a watch (ENOSPC from inotify_add_watch) is the same story."""
    import errno

    import inotify_simple

    import fustor_source_fs.backends as backends_module

    class LimitedINotify(inotify_simple.INotify):
        # Lowering fs.inotify.max_user_watches would hit every process on the machine.
        def add_watch(self, path, mask):
            if self.placed >= 4:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.placed += 1
            return super().add_watch(path, mask)

        placed = 0

    monkeypatch.setattr(backends_module, "INotify", LimitedINotify)
    for d in range(6):
        os.makedirs(f"{root}/d{d}")

    async def main() -> None:
        async with Live(make_source(root, watch_backend="inotify")) as rt:
            status = rt.source.status()
            assert (status["watched_dirs"], status["dirs"]) == (4, 7)
            assert status["watch_limited"] is True
            write(f"{root}/top.txt")
            await rt.wait(lambda: rt.upserts("/top.txt"))

    with caplog.at_level(logging.WARNING, logger="fustor_source_fs"):
        asyncio.run(main())
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "watching 4 of 7 directories" in text
    assert "the kernel limit fs.inotify.max_user_watches" in text
    assert "sysctl -w fs.inotify.max_user_watches=" in text


@pytest.mark.parametrize("kind", ["file", "symlink"])
@pytest.mark.parametrize("lost", ["kernel overflow", "pending full"])
def test_a_directory_replaced_while_events_are_lost_ends_as_the_new_entry(
    root: str, lost: str, kind: str
) -> None:
    """``rm -rf sub/a && echo > sub/a`` while events are lost: the rescan upserted the file
    and then deleted ``/sub/a`` as a watched directory it did not meet again, so Fusion lost
    the file and kept a tombstone on it (helper 37, one run in two). The rescan now takes a
    watched directory listed as something else for a type change: its row, no delete."""
    os.makedirs(f"{root}/sub/a")
    write(f"{root}/sub/a/s")
    os.makedirs(f"{root}/keep")
    params = {} if lost == "kernel overflow" else {"max_pending_paths": 16}
    count = _max_queued_events() // 2 + 1000 if lost == "kernel overflow" else 300

    async def main() -> None:
        async with Live(make_source(root, **params)) as rt:
            reader = rt.source._realtime.reader  # type: ignore[union-attr]
            reader.paused.set()
            await asyncio.sleep(0.25)  # the reader finishes its current read and parks
            for i in range(count):
                write(f"{root}/keep/x{i:05d}")
            os.remove(f"{root}/sub/a/s")
            os.rmdir(f"{root}/sub/a")
            if kind == "file":
                write(f"{root}/sub/a", b"file\n")
            else:
                os.symlink("nowhere", f"{root}/sub/a")
            reader.paused.clear()
            await rt.wait(lambda: bool(rt.upserts("/sub/a")), within=20)
            await rt.settle(1.0)
            last = [(t, r) for t, r in rt.events if r["path"] == "/sub/a"][-1]
            assert last[0] == "update" and last[1]["is_directory"] is False, last
            assert not rt.deleted("/sub/a/s") or rt.deleted("/sub/a")

    asyncio.run(main())
