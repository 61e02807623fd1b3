"""Realtime with the real kernel, inotify and fanotify alike: every kind of change, moves,
new subtrees, filters."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from fs_helpers import Live, make_source, write

from deep_paths import DEEP_NAMES, deep_dir, touch_at
from fustor_core import Batch

pytestmark = pytest.mark.usefixtures("watch_backend")


def live(root: str, test: Callable[[Live], Awaitable[None]], **params: object) -> None:
    async def main() -> None:
        async with Live(make_source(root, **params)) as rt:
            await test(rt)

    asyncio.run(main())


def test_create_write_close_gives_atomic_upsert_and_parent_mtime(root: str) -> None:
    async def body(rt: Live) -> None:
        write(f"{root}/a.txt", b"hello")
        await rt.wait(lambda: any(r["size"] == 5 for r in rt.upserts("/a.txt")))
        row = rt.upserts("/a.txt")[-1]
        st = os.stat(f"{root}/a.txt")
        assert row["is_atomic_write"] is True and row["is_directory"] is False
        assert row["modified_time"] == st.st_mtime
        # The parent's new mtime follows the create.
        await rt.wait(
            lambda: any(r["modified_time"] == os.stat(root).st_mtime for r in rt.upserts("/"))
        )

    live(root, body)


def test_touch_and_cp_p_report_the_final_mtime(root: str) -> None:
    write(f"{root}/src.txt", b"abc")
    os.utime(f"{root}/src.txt", (1_000_000, 1_000_000))

    async def body(rt: Live) -> None:
        subprocess.run(["cp", "-p", f"{root}/src.txt", f"{root}/copy.txt"], check=True)  # noqa: ASYNC221
        subprocess.run(["touch", "-d", "@2000000", f"{root}/src.txt"], check=True)  # noqa: ASYNC221
        await rt.wait(lambda: any(r["modified_time"] == 1_000_000 for r in rt.upserts("/copy.txt")))
        await rt.wait(lambda: any(r["modified_time"] == 2_000_000 for r in rt.upserts("/src.txt")))
        await rt.settle(0.2)
        assert rt.upserts("/copy.txt")[-1]["modified_time"] == 1_000_000

    live(root, body)


def test_in_progress_writes_are_partial_and_throttled(root: str) -> None:
    async def body(rt: Live) -> None:
        with open(f"{root}/big.bin", "wb") as f:  # noqa: ASYNC230
            f.write(b"x")
            f.flush()
            await rt.wait(lambda: len(rt.upserts("/big.bin")) >= 1)
            for _ in range(20):
                f.write(b"y" * 100)
                f.flush()
                await asyncio.sleep(0.01)
            await rt.settle(0.2)
            partial = [r for r in rt.upserts("/big.bin") if r["is_atomic_write"] is False]
            assert len(partial) == 1  # one per throttle interval, not one per write
        await rt.wait(lambda: rt.upserts("/big.bin")[-1]["is_atomic_write"] is True)
        assert rt.upserts("/big.bin")[-1]["size"] == 2001

    live(root, body, throttle_interval_sec=30)


def test_delete_gives_delete_row_and_parent_mtime(root: str) -> None:
    write(f"{root}/d/gone.txt")

    async def body(rt: Live) -> None:
        os.remove(f"{root}/d/gone.txt")
        await rt.wait(lambda: rt.deleted("/d/gone.txt"))
        await rt.wait(
            lambda: any(
                r["modified_time"] == os.stat(f"{root}/d").st_mtime for r in rt.upserts("/d")
            )
        )
        shutil.rmtree(f"{root}/d")
        await rt.wait(lambda: rt.deleted("/d"))

    live(root, body)


def test_file_rename_is_upsert_then_settled_delete(root: str) -> None:
    """The new name goes out at once; the old name's delete after ``delete_settle_sec``,
    once the disk confirms it is still gone."""
    write(f"{root}/old.txt")

    async def body(rt: Live) -> None:
        os.rename(f"{root}/old.txt", f"{root}/new.txt")
        await rt.wait(lambda: rt.deleted("/old.txt") and rt.upserts("/new.txt"))
        kinds = [(t, r["path"]) for t, r in rt.events if r["path"] in ("/old.txt", "/new.txt")]
        assert kinds == [("update", "/new.txt"), ("delete", "/old.txt")]

    live(root, body)


def test_directory_rename_moves_the_whole_watched_subtree(root: str) -> None:
    write(f"{root}/a/b/c/f.txt")
    write(f"{root}/a/g.txt")

    async def body(rt: Live) -> None:
        os.rename(f"{root}/a", f"{root}/z")
        await rt.wait(lambda: rt.deleted("/a"))
        await rt.wait(lambda: {"/z", "/z/b", "/z/b/c", "/z/b/c/f.txt", "/z/g.txt"} <= rt.paths())
        # Watches followed the inodes: a change deep down now has the new path.
        write(f"{root}/z/b/c/later.txt")
        await rt.wait(lambda: rt.upserts("/z/b/c/later.txt"))
        assert not any(r["path"].startswith("/a/") for _, r in rt.events)

    live(root, body)


def test_subtree_moved_out_is_deleted_and_unwatched(root: str, tmp_path: os.PathLike[str]) -> None:
    write(f"{root}/out/sub/f.txt")
    elsewhere = os.path.join(tmp_path, "elsewhere")

    async def body(rt: Live) -> None:
        watched = rt.source.status()["watched_dirs"]
        os.rename(f"{root}/out", elsewhere)
        await rt.wait(lambda: rt.deleted("/out"))
        await rt.wait(lambda: rt.source.status()["watched_dirs"] == watched - 2)
        before = len(rt.events)
        write(os.path.join(elsewhere, "sub", "after.txt"))
        await rt.settle(0.3)
        assert not any("after.txt" in r["path"] for _, r in rt.events[before:])

    live(root, body)


def test_subtree_moved_in_is_watched_and_scanned(root: str, tmp_path: os.PathLike[str]) -> None:
    outside = os.path.join(tmp_path, "incoming")
    write(f"{outside}/x/y/deep.txt")
    write(f"{outside}/top.txt")

    async def body(rt: Live) -> None:
        os.rename(outside, f"{root}/in")
        await rt.wait(
            lambda: {"/in", "/in/x", "/in/x/y", "/in/x/y/deep.txt", "/in/top.txt"} <= rt.paths()
        )
        write(f"{root}/in/x/y/new.txt")
        await rt.wait(lambda: rt.upserts("/in/x/y/new.txt"))

    live(root, body)


def test_files_created_right_after_mkdir_are_not_missed(root: str) -> None:
    async def body(rt: Live) -> None:
        expected = set()
        for i in range(20):
            d = f"{root}/n{i}/a/b"
            os.makedirs(d)
            for j in range(10):
                write(f"{d}/f{j}")
                expected.add(f"/n{i}/a/b/f{j}")
        await rt.wait(lambda: expected <= rt.paths())
        assert rt.source.status()["watched_dirs"] == 1 + 60

    live(root, body)


def test_filters_apply_in_realtime(root: str) -> None:
    async def body(rt: Live) -> None:
        write(f"{root}/a.tmp")
        write(f"{root}/b.txt")
        os.makedirs(f"{root}/.snapshot/x")
        write(f"{root}/.snapshot/x/c.dat")
        write(f"{root}/c.dat")
        await rt.wait(lambda: rt.upserts("/c.dat"))
        await rt.settle(0.2)
        assert rt.paths() <= {"/", "/c.dat"}
        os.rename(f"{root}/c.dat", f"{root}/c.tmp")  # renamed out of the pattern: gone
        await rt.wait(lambda: rt.deleted("/c.dat"))

    live(root, body, file_pattern="*.dat", exclude=[".snapshot", "*.tmp"])


def test_own_scans_generate_no_events(root: str) -> None:
    for i in range(30):
        write(f"{root}/d{i % 5}/f{i}")

    async def body(rt: Live) -> None:
        await rt.settle(0.2)
        events = rt.source.status()["inotify_events"]
        rows = len(rt.events)
        [b async for b in rt.source.snapshot()]
        [b async for b in rt.source.audit(True)]
        [b async for b in rt.source.scan("/", True)]
        await rt.source.sentinel_check(["/d1/f1"])
        await asyncio.sleep(0.3)
        assert rt.source.status()["inotify_events"] == events
        assert len(rt.events) == rows

    live(root, body)


def test_stop_is_prompt_and_leaves_no_threads(root: str) -> None:
    import threading

    before = set(threading.enumerate())

    async def main() -> float:
        async with Live(make_source(root)) as rt:
            write(f"{root}/x")
            await rt.wait(lambda: rt.upserts("/x"))
            started = time.monotonic()
        took = time.monotonic() - started
        alive = [t.name for t in set(threading.enumerate()) - before if t.name.startswith("fs-")]
        assert alive == []
        return took

    assert asyncio.run(main()) < 1.0


def test_odd_names_in_realtime(root: str) -> None:
    raw_name = b"caf\xe9\nnew line.txt"

    async def body(rt: Live) -> None:
        with open(os.fsencode(root) + b"/" + raw_name, "wb") as f:  # noqa: ASYNC230
            f.write(b"x")
        expected = "/" + os.fsdecode(raw_name)
        await rt.wait(lambda: rt.upserts(expected))
        # The path maps back to the very file (surrogate escapes round-trip). A blocking stat of
        # a tmp file is harmless in a test, as is the open() above.
        assert os.path.exists(os.fsencode(root) + os.fsencode(expected))  # noqa: ASYNC240
        os.remove(os.fsencode(root) + b"/" + raw_name)
        await rt.wait(lambda: rt.deleted(expected))

    live(root, body)


def test_a_link_made_while_running_carries_writes_to_the_first_name(root: str) -> None:
    """``link()`` raises no event on the first name's directory: a write through the new
    name must still update the first one (same directory), also with a name that the
    filter hides, which is never reported."""
    os.makedirs(f"{root}/d")
    write(f"{root}/d/f1", b"1")

    async def body(rt: Live) -> None:
        os.link(f"{root}/d/f1", f"{root}/d/f1.tmp")  # excluded below: never reported
        os.link(f"{root}/d/f1", f"{root}/d/f1.link")
        await rt.wait(lambda: rt.upserts("/d/f1.link"))
        with open(f"{root}/d/f1.link", "ab") as f:  # noqa: ASYNC230
            f.write(b"more")
        await rt.wait(lambda: any(r["size"] == 5 for r in rt.upserts("/d/f1")))
        assert not rt.upserts("/d/f1.tmp")

    live(root, body, exclude=["*.tmp"])


def test_deleting_one_of_two_names_fusion_sees_as_one_keeps_the_other(root: str) -> None:
    """A raw-bytes name and a name spelling those bytes as ``%FF`` go to Fusion as one path:
    deleting either sends the other's upsert, never a delete (its tombstone would hide the
    file that is still there from every audit)."""
    raw = os.fsencode(root) + b"/bad\xffbyte"
    literal = f"{root}/bad%FFbyte"
    write(raw, b"raw")
    write(literal, b"literal!")
    raw_rel = "/" + os.fsdecode(b"bad\xffbyte")

    async def body(rt: Live) -> None:
        os.remove(literal)
        await rt.wait(lambda: any(r["size"] == 3 for r in rt.upserts(raw_rel)))
        write(literal, b"literal!")
        await rt.wait(lambda: rt.upserts("/bad%FFbyte"))
        os.remove(raw)
        await rt.wait(lambda: any(r["size"] == 8 for r in rt.upserts("/bad%FFbyte")[1:]))
        await asyncio.sleep(0.5)  # past delete_settle_sec
        assert not rt.deleted("/bad%FFbyte") and not rt.deleted(raw_rel)

    live(root, body)


def test_aliases_in_a_mix_of_raw_and_spelled_bytes_and_none_for_valid_utf8(root: str) -> None:
    """``x%FF\xfe`` and ``x\xff%FE`` both go as ``/d/x%FF%FE``: deleting one keeps the other.
    ``%C3%A9`` is no alias of ``\xc3\xa9`` (valid UTF-8, sent as ``é``): its delete is a delete."""
    base = os.fsencode(root) + b"/d/"
    write(base + b"x%FF\xfe", b"1")
    write(base + b"x\xff%FE", b"22")
    write(base + b"\xc3\xa9", b"1")
    write(base + b"%C3%A9", b"22")

    async def body(rt: Live) -> None:
        os.remove(base + b"x%FF\xfe")
        os.remove(base + b"%C3%A9")
        survivor = "/d/" + os.fsdecode(b"x\xff%FE")
        await rt.wait(lambda: rt.upserts(survivor) and rt.deleted("/d/%C3%A9"))
        await asyncio.sleep(0.5)  # past delete_settle_sec
        assert not rt.deleted("/d/" + os.fsdecode(b"x%FF\xfe"))
        assert not rt.upserts("/d/%C3%A9")

    live(root, body)


async def _until_row(realtime: AsyncIterator[Batch], first: asyncio.Task[Batch], path: str) -> None:
    """Read realtime batches (``first`` already asked for) until one carries ``path``."""
    batch = await asyncio.wait_for(first, 5)
    while path not in {r["path"] for e in batch.events for r in e.rows}:
        batch = await asyncio.wait_for(realtime.__anext__(), 5)


def test_snapshot_while_watches_are_being_placed(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot watches each directory before listing it while the watch walk waits;
    once it has covered the tree, the watch walk must not list it a second time."""
    from fustor_source_fs import realtime as realtime_module
    from fustor_source_fs import rows as rows_module

    for i in range(300):
        os.makedirs(f"{root}/d{i:03d}/sub")
    listings: list[tuple[str, str]] = []  # (walk, directory) in the order they happened

    def counting(walk: str, listing):  # type: ignore[no-untyped-def]
        # list_dir(fd, rel_dir, ...) for the watch walk, open_dir(abs_dir, rel_dir) for the
        # snapshot's visitor (it lists in place).
        def wrapper(where: object, rel_dir: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            listings.append((walk, rel_dir))
            return listing(where, rel_dir, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(realtime_module, "list_dir", counting("watch", realtime_module.list_dir))
    monkeypatch.setattr(rows_module, "open_dir", counting("snapshot", rows_module.open_dir))

    async def main() -> None:
        source = make_source(root)
        await source.start()
        realtime = source.realtime()
        first = asyncio.create_task(realtime.__anext__())
        await asyncio.sleep(0)
        rows = [r for b in [b async for b in source.snapshot()] for e in b.events for r in e.rows]
        assert len(rows) == 1 + 600
        # Every directory the snapshot listed is watched by the time it ends.
        assert source.status()["watched_dirs"] == 601
        rt = source._realtime
        assert rt is not None
        assert await asyncio.to_thread(rt.ready.wait, 20)
        assert source.status()["watch_ready"] is True
        # The watch walk pauses once the snapshot begins: after the snapshot's first
        # listing, only the listings its threads had already begun (one per thread).
        begun = listings.index(("snapshot", "/"))
        late = [d for walk, d in listings[begun:] if walk == "watch"]
        assert len(late) <= source.params.scan_workers, late
        write(f"{root}/d299/sub/late.txt")
        await _until_row(realtime, first, "/d299/sub/late.txt")
        os.makedirs(f"{root}/d150/sub/new")
        write(f"{root}/d150/sub/new/late.txt")
        await _until_row(realtime, first, "/d150/sub/new/late.txt")
        await realtime.aclose()
        await source.stop()

    asyncio.run(main())


def test_a_snapshot_stopped_midway_leaves_the_rest_to_the_watch_walk(root: str) -> None:
    """The watch walk waits while a snapshot watches each directory before listing it; a
    snapshot that ends early must not leave the directories it did not reach unwatched."""
    for i in range(300):
        os.makedirs(f"{root}/d{i:03d}/sub")

    async def main() -> None:
        source = make_source(root, batch_size=10, queue_batches=1)
        await source.start()
        realtime = source.realtime()
        first = asyncio.create_task(realtime.__anext__())
        await asyncio.sleep(0)
        snapshot = source.snapshot()
        await snapshot.__anext__()  # begun, then dropped by its consumer
        await snapshot.aclose()
        rt = source._realtime
        assert rt is not None
        assert await asyncio.to_thread(rt.ready.wait, 20)
        assert source.status()["watched_dirs"] == 601
        write(f"{root}/d299/sub/late.txt")
        await _until_row(realtime, first, "/d299/sub/late.txt")
        await realtime.aclose()
        await source.stop()

    asyncio.run(main())


def test_tar_x_and_rsync_style_renames_end_with_the_final_mtime(
    root: str, tmp_path: os.PathLike[str]
) -> None:
    src = os.path.join(tmp_path, "src")
    write(f"{src}/pkg/one.txt", b"1")
    write(f"{src}/pkg/two.txt", b"22")
    for p in (f"{src}/pkg/one.txt", f"{src}/pkg/two.txt"):
        os.utime(p, (1_000_000, 1_000_000))
    archive = os.path.join(tmp_path, "a.tar")
    subprocess.run(["tar", "-C", src, "-cf", archive, "pkg"], check=True)

    async def body(rt: Live) -> None:
        subprocess.run(["tar", "-C", root, "-xf", archive], check=True)  # noqa: ASYNC221
        for name in ("one.txt", "two.txt"):
            await rt.wait(
                lambda n=name: any(r["modified_time"] == 1_000_000 for r in rt.upserts(f"/pkg/{n}"))
            )
            await rt.settle(0.2)
            assert rt.upserts(f"/pkg/{name}")[-1]["modified_time"] == 1_000_000
        # rsync writes a temporary file and renames it over the target.
        write(f"{root}/pkg/.one.txt.Xy12", b"new")
        os.utime(f"{root}/pkg/.one.txt.Xy12", (2_000_000, 2_000_000))
        os.rename(f"{root}/pkg/.one.txt.Xy12", f"{root}/pkg/one.txt")
        await rt.wait(lambda: rt.upserts("/pkg/one.txt")[-1]["modified_time"] == 2_000_000)
        assert rt.upserts("/pkg/one.txt")[-1]["size"] == 3

    live(root, body)


def test_the_backend_asked_for_is_the_one_running(root: str, watch_backend: str) -> None:
    async def body(rt: Live) -> None:
        status = rt.source.status()
        assert status["watch_backend"] == watch_backend
        assert status["watch_backend_reason"] == f"watch_backend: {watch_backend}"
        assert status["watch_fanotify"] is (watch_backend == "fanotify")

    live(root, body)


def test_move_out_then_move_in_back_to_back_are_not_paired(
    root: str, tmp_path: os.PathLike[str]
) -> None:
    write(f"{root}/a/old.txt")
    incoming = os.path.join(tmp_path, "incoming")
    write(f"{incoming}/in.txt")

    async def body(rt: Live) -> None:
        os.rename(f"{root}/a", os.path.join(tmp_path, "gone"))
        os.rename(incoming, f"{root}/b")
        await rt.wait(lambda: rt.deleted("/a") and {"/b", "/b/in.txt"} <= rt.paths())
        write(f"{root}/b/later.txt")  # b's own directory is the one followed, not a's
        await rt.wait(lambda: rt.upserts("/b/later.txt"))
        write(os.path.join(tmp_path, "gone", "outside.txt"))
        await rt.settle(0.3)
        assert not any("outside.txt" in r["path"] for _, r in rt.events)

    live(root, body)


def test_rm_rf_sends_one_delete_for_the_tree(root: str) -> None:
    """The deletes of everything under a removed directory wait for the directory's own
    delete, which removes the subtree in Fusion: one tombstone instead of one per file, so a
    restore of the tree from a backup (old mtimes) is not hidden file by file."""
    for d in range(3):
        for f in range(20):
            write(f"{root}/top/d{d}/f{f}")
    write(f"{root}/keep/k")

    async def body(rt: Live) -> None:
        shutil.rmtree(f"{root}/top")
        os.remove(f"{root}/keep/k")
        await rt.wait(lambda: rt.deleted("/top") and rt.deleted("/keep/k"))
        await rt.settle(0.8)
        deleted = sorted(r["path"] for t, r in rt.events if t == "delete")
        assert deleted == ["/keep/k", "/top"]

    live(root, body)


def test_a_slow_rm_rf_sends_one_delete_for_the_tree(root: str) -> None:
    """An ``rm -rf`` slower than the settle window (100 files 10 ms apart, then the
    directory): the files' deletes went out one by one while the directory still existed,
    each leaving a tombstone that hid a restore with old mtimes (``cp -a``) for the
    tombstone's lifetime, an hour (helper 28: 71 of 100 files). They wait while their
    directory still loses entries, and its delete takes them all."""
    for f in range(100):
        write(f"{root}/top/f{f:03}")

    async def body(rt: Live) -> None:
        for f in range(100):
            os.remove(f"{root}/top/f{f:03}")
            await asyncio.sleep(0.01)
        os.rmdir(f"{root}/top")
        await rt.wait(lambda: rt.deleted("/top"), within=10)
        await rt.settle(0.8)
        assert sorted(r["path"] for t, r in rt.events if t == "delete") == ["/top"]

    live(root, body)


def test_a_directory_beyond_path_max_has_realtime(root: str) -> None:
    """Its path fits no syscall: inotify watches it through ``/proc/self/fd/N``, fanotify
    takes its handle from an ``O_PATH`` fd; creates, new directories, moves and deletes in
    it come in realtime all the same."""
    with deep_dir(root, DEEP_NAMES, create=True) as fd:
        touch_at(fd, "early.txt")
    rel = "/" + "/".join(DEEP_NAMES)
    assert len(os.fsencode(root + rel)) > 4096

    async def body(rt: Live) -> None:
        with deep_dir(root, DEEP_NAMES) as fd:
            touch_at(fd, "later.txt")
            os.mkdir("sub", dir_fd=fd)
            sub = os.open("sub", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            touch_at(sub, "inner.txt")
            os.close(sub)
        expected = {rel + "/later.txt", rel + "/sub", rel + "/sub/inner.txt"}
        await rt.wait(lambda: expected <= rt.paths())
        with deep_dir(root, DEEP_NAMES) as fd:
            os.rename("later.txt", "moved.txt", src_dir_fd=fd, dst_dir_fd=fd)
            os.unlink("early.txt", dir_fd=fd)
        await rt.wait(lambda: rt.upserts(rel + "/moved.txt") and rt.deleted(rel + "/later.txt"))
        await rt.wait(lambda: rt.deleted(rel + "/early.txt"))
        assert rt.source.status()["unwatchable_dirs"] == 0

    live(root, body)


def test_an_mtime_set_back_after_an_audit_read_it_is_sent_again(root: str) -> None:
    """The audit reads f (new mtime); f's mtime is then set back (touch -d, cp -p, tar x)
    and realtime sends the old mtime; the audit's row, newer, would then win in Fusion for
    good (a compensating row with a newer mtime is taken, protocol §5.4; helper 15, F3).
    Realtime sends f again once the audit is over."""
    for i in range(40):
        write(f"{root}/d/f{i:02d}", b"x")
    old = 1_000_000_000.0

    async def body(rt: Live) -> None:
        audit = rt.source.audit(full=True)
        first = await anext(audit)  # the walk reads ahead: every file is read by now
        await asyncio.sleep(0.3)
        os.utime(f"{root}/d/f39", (old, old))
        await rt.wait(lambda: any(r["modified_time"] == old for r in rt.upserts("/d/f39")))
        sent = len(rt.upserts("/d/f39"))
        rows = [
            row
            for batch in [first, *[b async for b in audit]]
            for e in batch.events
            for row in e.rows
        ]
        assert [r["modified_time"] for r in rows if r["path"] == "/d/f39"] != [old]
        await rt.wait(lambda: len(rt.upserts("/d/f39")) > sent)
        assert rt.upserts("/d/f39")[-1]["modified_time"] == old

    live(root, body, batch_size=5, scan_workers=1)


def _three_dirs(root: str) -> None:
    for name in ("a", "z", "b"):
        for i in range(20):
            write(f"{root}/{name}/f{i:02d}", b"x")


async def _snapshot_around(
    rt: Live, change: Callable[[], None], seen: Callable[[], bool]
) -> list[dict]:
    """Every row of a snapshot, with ``change`` made after the walk read the whole tree
    and before its rows were taken, once realtime's row for it is ``seen``."""
    snapshot = rt.source.snapshot()
    first = await anext(snapshot)  # the walk reads ahead: every file is read by now
    await asyncio.sleep(0.3)
    change()
    await rt.wait(seen)
    return [
        row
        for batch in [first, *[b async for b in snapshot]]
        for e in batch.events
        for row in e.rows
    ]


def test_a_directory_renamed_after_the_snapshot_read_it_is_deleted_again(root: str) -> None:
    """The snapshot reads z/* ahead; ``mv z y`` then makes realtime delete /z while those
    rows are still queued. Arriving after the delete, they made /z again in Fusion as a
    placeholder its tombstone kept from every audit (helper 17). Realtime deletes /z
    again once the snapshot is over; a path deleted and back by then is sent as itself."""
    _three_dirs(root)

    def change() -> None:
        os.rename(f"{root}/z", f"{root}/y")
        os.rename(f"{root}/b", f"{root}/b.old")
        write(f"{root}/b/new", b"n")

    async def body(rt: Live) -> None:
        def seen() -> bool:
            return rt.deleted("/z") and bool(rt.upserts("/b/new"))

        rows = await _snapshot_around(rt, change, seen)
        assert any(r["path"].startswith("/z/") for r in rows)  # read before the rename

        def deletes() -> int:
            return sum(t == "delete" and r["path"] == "/z" for t, r in rt.events)

        before = deletes()
        await rt.wait(lambda: deletes() > before)
        await rt.settle()
        assert not rt.deleted("/b")  # back before the phase ended: not deleted again

    live(root, body, batch_size=5, scan_workers=1, queue_batches=64)


def test_paths_back_with_an_old_mtime_are_logged_once_a_minute(
    root: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A path deleted and back with an old mtime, again and again (a flapping path), logged
    a line per realtime batch; one line a minute now carries the count."""
    old = 1_000_000_000.0

    async def body(rt: Live) -> None:
        def deletes() -> int:
            return sum(t == "delete" for t, _ in rt.events)

        for i in range(1, 7):
            write(f"{root}/f", b"x" * i)
            os.utime(f"{root}/f", (old, old))
            await rt.wait(lambda n=i: any(r["size"] == n for r in rt.upserts("/f")))
            os.unlink(f"{root}/f")
            await rt.wait(lambda n=i: deletes() >= n)

    with caplog.at_level("INFO", logger="fustor_source_fs.realtime"):
        live(root, body, delete_settle_sec=0)
    lines = [r.getMessage() for r in caplog.records if "are back with an mtime" in r.getMessage()]
    assert len(lines) == 1, lines


def test_a_directory_replaced_by_a_file_after_the_snapshot_read_it_is_sent_again(
    root: str,
) -> None:
    """``git checkout`` replaces directory z by a file after the snapshot read z/*: the
    queued rows under z, arriving after realtime's row of the file, made z a directory
    again in Fusion (a row's missing parents are made as directories). Realtime sends z
    again once the snapshot is over, as the file it is."""
    _three_dirs(root)

    def change() -> None:
        shutil.rmtree(f"{root}/z")
        write(f"{root}/z", b"now a file")

    async def body(rt: Live) -> None:
        def files() -> int:
            return len([r for r in rt.upserts("/z") if not r["is_directory"]])

        rows = await _snapshot_around(rt, change, lambda: files() > 0)
        assert any(r["path"].startswith("/z/") for r in rows)  # read before the checkout
        sent = files()
        await rt.wait(lambda: files() > sent)
        assert rt.upserts("/z")[-1]["size"] == len(b"now a file")

    live(root, body, batch_size=5, scan_workers=1, queue_batches=64)


def test_a_delete_waits_while_the_tree_is_busy(root: str) -> None:
    """``git checkout`` removes d/s, writes other files for a while, then writes d/s again:
    a delete sent in between left a tombstone that Fusion stamps when it applies it, later
    than the new file's mtime when its queue lags, and hid the file for the tombstone's
    lifetime (helper 18). While anything in the tree is written, or its directory still
    loses entries, a delete waits (5 s at most): the path back by then goes out as its
    upsert, never as a delete."""
    write(f"{root}/d/s", b"old")

    async def body(rt: Live) -> None:
        os.unlink(f"{root}/d/s")
        for i in range(12):  # 1.2 s of other changes, four times the settle window
            write(f"{root}/other/f{i:02d}", b"x")
            await asyncio.sleep(0.1)
        write(f"{root}/d/s", b"new!")
        await rt.wait(lambda: any(r["size"] == 4 for r in rt.upserts("/d/s")))
        assert not rt.deleted("/d/s")
        # A quiet tree: the delete goes out after the window.
        os.unlink(f"{root}/other/f00")
        await rt.wait(lambda: rt.deleted("/other/f00"), within=2.0)
        # Deletes in one directory 0.15 s apart (a script removing files in turn, or an
        # rm -rf that may remove the directory next): they wait while it goes on, and go
        # out once it pauses, one by one, as the directory stays.
        for i in range(1, 12):
            os.unlink(f"{root}/other/f{i:02d}")
            await asyncio.sleep(0.15)
        assert not rt.deleted("/other/f01")  # 1.5 s on: held, its directory still emptying
        await rt.wait(lambda: all(rt.deleted(f"/other/f{i:02d}") for i in range(1, 12)), 2.0)
        assert not rt.deleted("/other")

    live(root, body)


def test_a_directory_whose_mtime_alone_is_set_is_sent(root: str) -> None:
    """``touch -m -d`` on directories (an mtime-only utimensat: a MODIFY, not an ATTRIB):
    fanotify reports it only on the directory itself (name "."), which was dropped."""
    write(f"{root}/a/b/f.txt")
    old = 946684800.0  # 2000-01-01

    async def main() -> None:
        async with Live(make_source(root)) as rt:
            subprocess.run(  # noqa: ASYNC221
                ["touch", "-m", "-d", "@946684800", f"{root}/a", f"{root}/a/b"], check=True
            )
            await rt.wait(lambda: any(r["modified_time"] == old for r in rt.upserts("/a")))
            await rt.wait(lambda: any(r["modified_time"] == old for r in rt.upserts("/a/b")))

    asyncio.run(main())


def test_a_path_flipping_between_file_and_directory_never_gets_a_delete(root: str) -> None:
    """Each path flips between a file and a directory (with a file inside) 101 times as fast
    as Python can, old mtimes all along, and ends as a file: it never stops existing for
    more than microseconds, so no delete may go out (a tombstone would hide the final file,
    whose mtime is old, for the tombstone's life). A held delete let out early because a
    child goes out was sent when the path had vanished again in between (helper 22)."""
    old = 1_000_000_000.0
    os.mkdir(f"{root}/flip")
    paths = 25

    async def main() -> None:
        async with Live(make_source(root)) as rt:
            await rt.settle(0.2)
            for n in range(paths):
                _flip(f"{root}/flip/q{n}", 101, old)
            await rt.settle(1.0)
            for n in range(paths):
                mine = [e for e in rt.events if e[1]["path"].startswith(f"/flip/q{n}")]
                assert not rt.deleted(f"/flip/q{n}"), mine[-6:]
                last = rt.upserts(f"/flip/q{n}")[-1]
                assert (last["is_directory"], last["modified_time"]) == (False, old)

    asyncio.run(main())


def _flip(path: str, times: int, mtime: float) -> None:
    """A file, a directory with a file in it, a file...: ``times`` states, ending on a file
    when ``times`` is odd, every mtime set to ``mtime``."""
    import shutil

    for i in range(times):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        if i % 2 == 0:
            with open(path, "w") as f:
                f.write(f"file {i}\n")
        else:
            os.mkdir(path)
            with open(f"{path}/inner", "w") as f:
                f.write("x")
            os.utime(f"{path}/inner", (mtime, mtime))
        os.utime(path, (mtime, mtime))


def test_a_held_delete_during_steady_writes_does_not_spin(root: str) -> None:
    """A delete held while the tree is written (it waits for a quiet window) used to make
    the emitter loop without waiting, a full core for up to 5 s a delete, for good under
    steady writes (helper 26). The loop wakes for writes and for the moment a held delete
    may go, only; the delete still goes out once the writes stop."""
    write(f"{root}/gone.txt")
    write(f"{root}/busy.log")

    async def body(rt: Live) -> None:
        realtime = rt.source._realtime
        assert realtime is not None
        passes = [0]
        process = realtime._process

        def counted(work: object) -> object:
            passes[0] += 1
            return process(work)  # type: ignore[arg-type]

        realtime._process = counted  # type: ignore[method-assign]
        os.remove(f"{root}/gone.txt")
        started = time.monotonic()
        while time.monotonic() - started < 2.0:  # appends every 50 ms: never quiet for 0.3 s
            write(f"{root}/busy.log", b"x\n")
            await asyncio.sleep(0.05)
        assert passes[0] < 400, f"{passes[0]} emitter passes in 2 s of 40 writes"
        await rt.wait(lambda: rt.deleted("/gone.txt"))

    live(root, body, delete_settle_sec=0.3)
