"""What only the fanotify backend has to prove: one mark sees the whole file system, so the
root is enforced by us (events elsewhere dropped), handles we do not know are resolved through
the kernel, its queue overflow recovers like inotify's, and it fails loudly where it cannot work.
Real fanotify throughout; the tests run as root (CAP_SYS_ADMIN), as in CI."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import subprocess
import sys

import pytest
from fs_helpers import Live, make_source, write

from deep_paths import DEEP_NAMES, deep_dir, touch_at
from fustor_core import DriverError
from fustor_source_fs import backends
from fustor_source_fs.backends import choose
from fustor_source_fs.config import FsParams
from fustor_source_fs.fanotify import Fanotify
from fustor_source_fs.filters import PathFilter


def _max_queued_events() -> int:
    with open("/proc/sys/fs/fanotify/max_queued_events") as f:
        return int(f.read())


def test_changes_outside_the_root_are_dropped(root: str, tmp_path: os.PathLike[str]) -> None:
    sibling = os.path.join(tmp_path, "sibling")
    write(f"{sibling}/deep/er/f")

    async def main() -> None:
        async with Live(make_source(root, watch_backend="fanotify")) as rt:
            for i in range(200):
                write(f"{sibling}/deep/er/n{i}")
                os.rename(f"{sibling}/deep/er/n{i}", f"{sibling}/deep/m{i}")
            write(f"{root}/inside.txt")
            await rt.wait(lambda: rt.upserts("/inside.txt"))
            await rt.settle(0.3)
            assert all(r["path"] in ("/", "/inside.txt") for _, r in rt.events), rt.events[:5]
            status = rt.source.status()
            # Each sibling directory cost one kernel lookup; later events a dict hit.
            assert status["events_outside_root"] >= 400
            assert status["handles_resolved"] == 0

    asyncio.run(main())


def test_a_directory_moved_in_from_a_known_outside_place_is_followed(
    root: str, tmp_path: os.PathLike[str]
) -> None:
    outside = os.path.join(tmp_path, "outside")
    write(f"{outside}/sub/a")

    async def main() -> None:
        async with Live(make_source(root, watch_backend="fanotify")) as rt:
            write(f"{outside}/sub/b")  # its handle is now cached as "outside the root"
            await rt.settle(0.2)
            os.rename(outside, f"{root}/came")
            expected = {"/came", "/came/sub", "/came/sub/a", "/came/sub/b"}
            await rt.wait(lambda: expected <= rt.paths())
            write(f"{root}/came/sub/c")
            await rt.wait(lambda: rt.upserts("/came/sub/c"))

    asyncio.run(main())


def test_unknown_directory_handle_is_resolved_through_the_kernel(root: str) -> None:
    write(f"{root}/a/b/old.txt")

    async def main() -> None:
        async with Live(make_source(root, watch_backend="fanotify")) as rt:
            realtime = rt.source._realtime
            assert realtime is not None and realtime.watches is not None
            watches = realtime.watches
            # Forget what the walk learned about /a (as if the event beat the walk).
            node = watches.node_at("/a")
            assert node is not None
            watches.remove(node, rm_watch=False)
            assert watches.node_at("/a/b") is None
            write(f"{root}/a/b/new.txt")
            await rt.wait(lambda: rt.upserts("/a/b/new.txt"))
            status = rt.source.status()
            assert status["handles_resolved"] == 1
            assert watches.node_at("/a/b") is not None  # learned: the next event is a lookup
            write(f"{root}/a/b/newer.txt")
            await rt.wait(lambda: rt.upserts("/a/b/newer.txt"))
            assert rt.source.status()["handles_resolved"] == 1

    asyncio.run(main())


def test_unknown_directory_beyond_path_max_is_resolved_by_climbing(root: str) -> None:
    """The kernel cannot print a path that long (``readlink`` fails): the handle is resolved
    by walking ``..`` up to a directory the map knows."""
    with deep_dir(root, DEEP_NAMES, create=True) as fd:
        touch_at(fd, "old.txt")
    rel = "/" + "/".join(DEEP_NAMES)

    async def main() -> None:
        async with Live(make_source(root, watch_backend="fanotify")) as rt:
            realtime = rt.source._realtime
            assert realtime is not None and realtime.watches is not None
            watches = realtime.watches
            node = watches.node_at("/" + DEEP_NAMES[0])
            assert node is not None and watches.node_at(rel) is not None
            watches.remove(node, rm_watch=False)  # as if the events beat the walk
            with deep_dir(root, DEEP_NAMES) as fd:
                touch_at(fd, "new.txt")
            await rt.wait(lambda: rt.upserts(rel + "/new.txt"))
            assert rt.source.status()["handles_resolved"] == 1
            assert watches.node_at(rel) is not None
            with deep_dir(root, DEEP_NAMES) as fd:
                touch_at(fd, "newer.txt")
            await rt.wait(lambda: rt.upserts(rel + "/newer.txt"))
            assert rt.source.status()["handles_resolved"] == 1

    asyncio.run(main())


def test_queue_overflow_is_counted_and_recovered(
    root: str, caplog: pytest.LogCaptureFixture
) -> None:
    os.makedirs(f"{root}/burst")
    # One event per new file (its create and close-write merge): more than the queue holds.
    count = _max_queued_events() + 1000

    async def main() -> None:
        async with Live(make_source(root, watch_backend="fanotify")) as rt:
            reader = rt.source._realtime.reader  # type: ignore[union-attr]
            reader.paused.set()
            await asyncio.sleep(0.25)
            for i in range(count):
                write(f"{root}/burst/f{i:05d}")
            reader.paused.clear()
            expected = {f"/burst/f{i:05d}" for i in range(count)}
            await rt.wait(lambda: expected <= rt.paths(), within=30)
            status = rt.source.status()
            assert status["overflows"] >= 1 and status["recoveries"] >= 1
            assert ["/"] in rt.rescans

    with caplog.at_level(logging.WARNING, logger="fustor_source_fs"):
        asyncio.run(main())
    assert any("fanotify queue overflow" in r.getMessage() for r in caplog.records)


def test_replaced_root_reports_the_new_tree_and_nothing_of_the_old(
    root: str, tmp_path: os.PathLike[str]
) -> None:
    write(f"{root}/sub/f.txt")
    old = os.path.join(tmp_path, "root.old")

    async def main() -> None:
        source = make_source(root, watch_backend="fanotify", health_check_interval_sec=0.1)
        async with Live(source) as rt:
            os.rename(root, old)
            os.mkdir(root)
            write(f"{root}/new.txt")
            await rt.wait(lambda: rt.upserts("/new.txt"))
            await rt.settle(0.3)
            before = len(rt.events)
            write(f"{old}/sub/late.txt")
            os.remove(f"{old}/sub/f.txt")
            write(f"{root}/later.txt")
            await rt.wait(lambda: rt.upserts("/later.txt"))
            await rt.settle(0.3)
            assert not any("late.txt" in r["path"] for _, r in rt.events[before:])
            assert not any(r["path"] == "/sub/f.txt" for _, r in rt.events[before:])

    asyncio.run(main())


def test_unmounted_root_is_detected_and_the_new_mount_is_watched(
    tmp_path: os.PathLike[str],
) -> None:
    mnt = os.path.join(tmp_path, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "fustor-test", mnt], check=True)
    mounted = True
    try:
        write(f"{mnt}/a.txt")
        source = make_source(mnt, watch_backend="fanotify", health_check_interval_sec=0.1)

        async def main() -> None:
            nonlocal mounted
            async with Live(source) as rt:
                write(f"{mnt}/seen.txt")
                await rt.wait(lambda: rt.upserts("/seen.txt"))
                subprocess.run(["umount", mnt], check=True)  # noqa: ASYNC221
                mounted = False
                await rt.wait(lambda: source.health() is not None)
                assert "no longer a mount point" in (source.health() or "")
                write(f"{mnt}/underneath.txt")  # on the parent file system, not the root's
                subprocess.run(  # noqa: ASYNC221
                    ["mount", "-t", "tmpfs", "-o", "size=8m", "fustor-test", mnt], check=True
                )
                mounted = True
                await rt.wait(lambda: source.health() is None)
                write(f"{mnt}/after.txt")
                await rt.wait(lambda: rt.upserts("/after.txt"))
                assert not rt.upserts("/underneath.txt")

        asyncio.run(main())
    finally:
        if mounted:
            subprocess.run(["umount", mnt], check=False)


def test_explicit_fanotify_names_what_is_missing_filesystem(tmp_path: os.PathLike[str]) -> None:
    async def main() -> None:
        source = make_source("/proc/sys", watch_backend="fanotify")
        with pytest.raises(DriverError) as info:
            await source.start()  # refused at start, before any phase runs
        message = str(info.value)
        assert message == (
            "watch_backend fanotify cannot work: "
            "the file system of /proc/sys does not support file handles"
        )
        assert not info.value.retriable

    asyncio.run(main())


def test_explicit_fanotify_names_what_is_missing_capability(root: str) -> None:
    """CAP_SYS_ADMIN really dropped (setpriv), in a child process: no simulation."""
    script = (
        "import asyncio, sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from fs_helpers import make_source\n"
        "async def main():\n"
        "    source = make_source(sys.argv[1], watch_backend='fanotify')\n"
        "    try:\n"
        "        await source.start()\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
        "    finally:\n"
        "        await source.stop()\n"
        "asyncio.run(main())\n"
    )
    here = os.path.dirname(__file__)
    out = subprocess.run(
        [
            "setpriv",
            "--inh-caps=-sys_admin",
            "--bounding-set=-sys_admin",
            sys.executable,
            "-c",
            script,
            root,
            here,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == (
        "DriverError watch_backend fanotify cannot work: "
        "needs CAP_SYS_ADMIN for a filesystem mark (run the agent as root)"
    ), out.stderr


def test_auto_picks_inotify_when_the_tree_fits_and_says_why(root: str) -> None:
    for d in range(3):
        os.makedirs(f"{root}/d{d}/sub")

    async def main() -> None:
        async with Live(make_source(root)) as rt:
            status = rt.source.status()
            assert status["watch_backend"] == "inotify"
            assert status["watch_backend_reason"].startswith("auto: ")

    asyncio.run(main())


def test_auto_picks_fanotify_over_the_inotify_budget(root: str) -> None:
    assert choose(root, FsParams(), PathFilter("*", []), budget=5) == (
        "inotify",
        "auto: 1 directory fits the inotify budget of 5 watches",
    )
    for d in range(6):
        os.makedirs(f"{root}/d{d}")
    name, reason = choose(root, FsParams(), PathFilter("*", []), budget=5)
    assert (name, reason) == (
        "fanotify",
        "auto: more than 5 directories, over the inotify budget (fs.inotify.max_user_watches)",
    )
    assert choose(root, FsParams(), PathFilter("*", []), budget=7) == (
        "inotify",
        "auto: 7 directories fit the inotify budget of 7 watches",
    )


def test_auto_counts_directories_by_link_count_and_honours_excludes(root: str) -> None:
    for a in range(3):
        for b in range(4):
            os.makedirs(f"{root}/a{a}/b{b}/c")
        write(f"{root}/a{a}/f")
    os.makedirs(f"{root}/skip/x/y")
    assert backends._count_dirs(root, PathFilter("*", ["skip"]), 1000) == 1 + 3 + 12 + 12
    assert backends._count_dirs(root, PathFilter("*", []), 1000) == 1 + 3 + 12 + 12 + 3
    # Over the limit: stops there (with no excludes, from the link counts near the top).
    assert backends._count_dirs(root, PathFilter("*", []), 10) == 10
    assert backends._count_dirs(root, PathFilter("*", ["skip"]), 10) == 10


def test_auto_stops_counting_on_slow_storage_and_picks_fanotify(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backends, "_COUNT_SECONDS", 0.0)  # as if every listing took long
    name, reason = choose(root, FsParams(), PathFilter("*", []), budget=1000)
    assert name == "fanotify"
    assert reason.startswith("auto: counting the directories took over 0 s")


def test_events_merged_into_a_move_keep_the_move(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without FAN_RENAME, a write just before a rename merges into its MOVED_FROM."""
    monkeypatch.setattr(backends, "Fanotify", functools.partial(Fanotify, rename=False))
    write(f"{root}/f.txt")

    async def main() -> None:
        async with Live(make_source(root, watch_backend="fanotify")) as rt:
            reader = rt.source._realtime.reader  # type: ignore[union-attr]
            reader.paused.set()
            await asyncio.sleep(0.25)  # the queue holds the events: the kernel merges them
            with open(f"{root}/f.txt", "ab") as f:  # noqa: ASYNC230
                f.write(b"more")
                f.flush()
                os.rename(f"{root}/f.txt", f"{root}/g.txt")
            reader.paused.clear()
            await rt.wait(lambda: rt.deleted("/f.txt") and rt.upserts("/g.txt"))

    asyncio.run(main())
