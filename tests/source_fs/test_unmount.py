"""An unmounted share or a deleted root must never look like "everything was deleted"."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest
from fs_helpers import Live, collect, make_source, rows_of, write

from bindfs_support import ensure_bindfs
from fustor_core import DriverError


@pytest.fixture(scope="module")
def bindfs() -> str:
    return ensure_bindfs()


def _mount(bindfs: str, backing: str, mountpoint: str) -> None:
    subprocess.run([bindfs, backing, mountpoint], check=True)


def _unmount(mountpoint: str) -> None:
    subprocess.run(["fusermount", "-u", mountpoint], check=True)


def test_unmounted_share_stops_reporting_and_resumes(
    bindfs: str, tmp_path: os.PathLike[str]
) -> None:
    backing = os.path.join(tmp_path, "backing")
    mnt = os.path.join(tmp_path, "mnt")
    write(f"{backing}/data/a.txt")
    write(f"{backing}/b.txt")
    os.mkdir(mnt)
    _mount(bindfs, backing, mnt)
    mounted = True
    try:
        source = make_source(mnt, health_check_interval_sec=0.1)

        async def main() -> None:
            nonlocal mounted
            async with Live(source) as rt:
                assert source.health() is None
                write(f"{mnt}/data/seen.txt")
                await rt.wait(lambda: rt.upserts("/data/seen.txt"))
                _unmount(mnt)
                mounted = False
                await rt.wait(lambda: source.health() is not None)
                assert "no longer a mount point" in (source.health() or "")
                assert source.status()["root_available"] is False
                with pytest.raises(DriverError) as info:
                    [b async for b in source.audit()]
                assert info.value.retriable
                with pytest.raises(DriverError):
                    [b async for b in source.snapshot()]
                # Meanwhile on the share (another client): a new file.
                write(f"{backing}/data/while_away.txt")
                await asyncio.sleep(0.3)
                assert not any(t == "delete" for t, _ in rt.events)
                _mount(bindfs, backing, mnt)
                mounted = True
                await rt.wait(lambda: source.health() is None)
                # Back: the host is told to audit, and what changed meanwhile is upserted.
                await rt.wait(lambda: ["/"] in rt.rescans)
                await rt.wait(lambda: rt.upserts("/data/while_away.txt"))
                write(f"{mnt}/data/after.txt")  # watches are in place again
                await rt.wait(lambda: rt.upserts("/data/after.txt"))
                audit = [
                    r["path"]
                    for b in [b async for b in source.audit()]
                    for e in b.events
                    for r in e.rows
                ]
                assert "/data/a.txt" in audit
                assert not any(t == "delete" for t, _ in rt.events)

        asyncio.run(main())
    finally:
        if mounted:
            _unmount(mnt)


def test_deleted_root_reports_unavailable_never_deletes_root(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(tmp_path, "root")
    write(f"{root}/d/a.txt")
    source = make_source(root, health_check_interval_sec=0.1)

    async def main() -> None:
        async with Live(source) as rt:
            shutil.rmtree(root)
            await rt.wait(lambda: source.health() is not None)
            assert "does not exist" in (source.health() or "")
            await rt.settle(0.3)
            assert not rt.deleted("/")
            with pytest.raises(DriverError):
                [b async for b in source.audit()]
            os.makedirs(f"{root}/again")
            await rt.wait(lambda: source.health() is None)
            await rt.wait(lambda: rt.upserts("/again"))
            write(f"{root}/again/x.txt")
            await rt.wait(lambda: rt.upserts("/again/x.txt"))

    asyncio.run(main())


def test_deletes_are_suppressed_while_the_root_is_covered(tmp_path: os.PathLike[str]) -> None:
    """A file system mounted over the root: our watches still see the hidden tree (through a
    bind mount here), but nothing it reports may delete rows while the root is not ours."""
    root = os.path.join(tmp_path, "root")
    alias = os.path.join(tmp_path, "alias")
    write(f"{root}/a.txt")
    os.mkdir(alias)
    subprocess.run(["mount", "--bind", root, alias], check=True)
    covered = False
    try:
        source = make_source(root, health_check_interval_sec=0.1)

        async def main() -> None:
            nonlocal covered
            async with Live(source) as rt:
                subprocess.run(["mount", "-t", "tmpfs", "none", root], check=True)  # noqa: ASYNC221
                covered = True
                await rt.wait(lambda: source.health() is not None)
                assert "another device" in (source.health() or "")
                os.remove(f"{alias}/a.txt")  # the watched (hidden) tree changes
                await rt.wait(lambda: source.status()["deletes_suppressed"] >= 1)
                assert not rt.deleted("/a.txt")
                subprocess.run(["umount", root], check=True)  # noqa: ASYNC221
                covered = False
                await rt.wait(lambda: source.health() is None)
                await rt.wait(lambda: ["/"] in rt.rescans)  # the host audits: a.txt goes then

        asyncio.run(main())
    finally:
        if covered:
            subprocess.run(["umount", root], check=False)
        subprocess.run(["umount", alias], check=False)


def test_a_share_mounted_on_the_empty_root_after_start_is_taken_as_the_root(
    tmp_path: os.PathLike[str], watch_backend: str
) -> None:
    """Started on the empty mount point (boot race, ``nofail``): the share mounted later is
    the new tree, listed and watched, not 'on another device (share gone?)' for good."""
    mnt = os.path.join(tmp_path, "mnt")
    os.mkdir(mnt)
    source = make_source(mnt, health_check_interval_sec=0.1)
    mounted = False
    try:

        async def main() -> None:
            nonlocal mounted
            async with Live(source) as rt:
                assert source.health() is None
                subprocess.run(  # noqa: ASYNC221
                    ["mount", "-t", "tmpfs", "-o", "size=8m", "fustor-test", mnt], check=True
                )
                mounted = True
                write(f"{mnt}/on-the-share.txt")  # right after the mount, before any check
                await rt.wait(lambda: rt.upserts("/on-the-share.txt"))
                write(f"{mnt}/later/deep.txt")
                await rt.wait(lambda: rt.upserts("/later/deep.txt"))
                assert source.health() is None
                assert source.status()["root_available"] is True
                rows = rows_of(await collect(source.audit(True)))
                assert {r["path"] for r in rows} >= {"/on-the-share.txt", "/later/deep.txt"}
                subprocess.run(["umount", mnt], check=True)  # noqa: ASYNC221
                mounted = False
                await rt.wait(lambda: "no longer a mount point" in (source.health() or ""))

        asyncio.run(main())
    finally:
        if mounted:
            subprocess.run(["umount", mnt], check=False)


def test_a_root_replaced_by_a_symbolic_link_is_unavailable_and_says_so(
    tmp_path: os.PathLike[str],
) -> None:
    """``mv data data.moved; ln -s data.moved data``: every walk opens the root without
    following links, so it would list nothing while looking healthy; it is unavailable, with
    the fix in the reason, and available again when a directory is back."""
    root = os.path.join(tmp_path, "data")
    write(f"{root}/sub/f1")
    source = make_source(root, health_check_interval_sec=0.1)

    async def main() -> None:
        async with Live(source) as rt:
            assert source.health() is None
            os.rename(root, root + ".moved")
            os.symlink(root + ".moved", root)
            await rt.wait(lambda: "symbolic link" in (source.health() or ""))
            assert source.health() == (
                f"root unavailable: {root} is a symbolic link now (to {root}.moved); a root's "
                "link is resolved only when its pipe starts: restart the pipe to follow it"
            )
            assert source.status()["root_available"] is False
            with pytest.raises(DriverError) as info:
                await collect(source.audit())
            assert info.value.retriable
            os.unlink(root)
            os.rename(root + ".moved", root)
            await rt.wait(lambda: source.health() is None)

    asyncio.run(main())
