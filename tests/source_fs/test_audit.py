"""Audit: protocol §7.4 mtime-skip, directory rows after their subtree, safe caching."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
import tracemalloc

import pytest
from fs_helpers import Live, make_source, rows_of, write

from fustor_core import DriverError, MessageSource
from fustor_source_fs import FsSource
from fustor_source_fs.audit import RECHECK_MTIME_BACK, cache_entry, cached_mtime, cached_subdirs


def _age(path: str, seconds: float = 100.0) -> None:
    """Make a directory look old enough to be cached (its mtime one tick+ in the past)."""
    t = time.time() - seconds
    os.utime(path, (t, t))


def _audit(source: FsSource, full: bool = False) -> list[dict]:
    async def main() -> list[dict]:
        await source.start()
        try:
            batches = [b async for b in source.audit(full)]
        finally:
            await source.stop()
        assert {b.message_source for b in batches} <= {MessageSource.AUDIT}
        return rows_of(batches)

    return asyncio.run(main())


def _tree(root: str) -> None:
    write(f"{root}/a.txt")
    write(f"{root}/d1/b.txt")
    write(f"{root}/d1/d2/c.txt")
    for d in (f"{root}/d1/d2", f"{root}/d1", root):
        _age(d)


def test_first_audit_lists_everything_dirs_after_children(root: str) -> None:
    _tree(root)
    rows = _audit(make_source(root))
    order = [r["path"] for r in rows]
    assert set(order) == {"/", "/a.txt", "/d1", "/d1/b.txt", "/d1/d2", "/d1/d2/c.txt"}
    # A directory changed lately (all of these) also gets a row ahead of its subtree; its
    # own row, the last one, comes after everything under it.
    last = {path: i for i, path in enumerate(order)}
    for row in rows:
        if row["path"] != "/":
            parent = row["path"].rsplit("/", 1)[0] or "/"
            # Every row goes before its parent directory's row.
            assert order.index(row["path"]) < last[parent]
            assert row["parent_path"] == parent
            assert row["parent_mtime"] == os.stat(root + (parent if parent != "/" else "")).st_mtime
        if row["is_directory"]:
            assert row["audit_skipped"] is False
        else:
            assert "audit_skipped" not in row
    assert order[-1] == "/"
    assert "parent_path" not in rows[-1]


def test_unchanged_dirs_are_skipped_changed_ones_listed(root: str) -> None:
    _tree(root)
    source = make_source(root)
    _audit(source)
    write(f"{root}/d1/new.txt")  # changes d1's mtime only
    _age(f"{root}/d1", 50)
    rows = {r["path"]: r for r in _audit(source)}
    assert rows["/"]["audit_skipped"] is True
    assert rows["/d1/d2"]["audit_skipped"] is True
    assert rows["/d1"]["audit_skipped"] is False
    # Files of skipped directories are not listed; the changed one's are, all of them.
    assert "/a.txt" not in rows and "/d1/d2/c.txt" not in rows
    assert {"/d1/b.txt", "/d1/new.txt"} <= set(rows)
    rows = {r["path"]: r for r in _audit(source, full=True)}
    assert rows["/"]["audit_skipped"] is False and "/a.txt" in rows
    # The audit after a full one lists everything again (a session opened during the full
    # one may have made Fusion delete what it listed early, B19); then skipping resumes.
    rows = {r["path"]: r for r in _audit(source)}
    assert rows["/"]["audit_skipped"] is False and "/a.txt" in rows
    rows = {r["path"]: r for r in _audit(source)}
    assert rows["/"]["audit_skipped"] is True and "/a.txt" not in rows


def test_a_skipped_directory_changed_during_the_audit_goes_again_flagged_at_its_end(
    root: str,
) -> None:
    """Another agent's realtime row of a directory this audit skipped would make Fusion
    delete its files at the audit end (B23): once every row of the walk is out, each
    skipped directory that changed since goes again, ``audit_skipped``, as the last rows;
    unchanged ones do not."""
    _tree(root)
    source = make_source(root)
    for _ in range(2):  # the first two list in full
        _audit(source)

    async def main() -> list[dict]:
        await source.start()
        rows: list[dict] = []
        try:
            async for batch in source.audit():
                rows += rows_of([batch])
                if rows[-1]["path"] == "/":  # the walk's last row: then a change in /d1/d2
                    write(f"{root}/d1/d2/new.txt")
        finally:
            await source.stop()
        return rows

    rows = asyncio.run(main())
    walked = rows.index(next(r for r in rows if r["path"] == "/")) + 1
    assert all(r["audit_skipped"] for r in rows[:walked] if r["is_directory"])
    again = rows[walked:]
    assert [(r["path"], r["audit_skipped"]) for r in again] == [("/d1/d2", True)]
    # Set back a little, so that the next audit's listing of it (the disk's mtime) is newer
    # and Fusion takes it, clearing the flag.
    mtime = os.stat(f"{root}/d1/d2").st_mtime
    assert again[0]["modified_time"] == mtime - RECHECK_MTIME_BACK < mtime
    assert "/d1/d2/new.txt" not in {r["path"] for r in rows}  # realtime's to send


@pytest.mark.parametrize("when", ["after-the-check", "before-the-check"])
def test_files_of_a_skipped_directory_changed_before_the_end_go_again_after_it(
    root: str, when: str
) -> None:
    """Another agent's row of a directory this audit skipped, taken by Fusion after the end
    check, makes the end delete the directory's files (B23). Once the end is accepted
    (``audit_ended``), realtime sends every file of each skipped directory that changed
    since the check, from the disk; a change the check saw (its flagged row went out) and
    the unchanged directories send nothing."""
    _tree(root)
    source = make_source(root)

    async def main() -> tuple[list[dict], Live]:
        async with Live(source) as live:
            for full in (True, False):  # the first two list in full
                [b async for b in source.audit(full)]
            rows: list[dict] = []
            async for batch in source.audit():
                rows += rows_of([batch])
                if when == "before-the-check" and rows[-1]["path"] == "/":
                    write(f"{root}/d1/d2/new.txt")
            if when == "after-the-check":
                write(f"{root}/d1/d2/new.txt")
            await live.wait(lambda: "/d1/d2/new.txt" in live.paths())
            await live.settle()
            live.events.clear()
            await source.audit_ended()
            await live.settle()
        return rows, live

    rows, live = asyncio.run(main())
    rechecked = [r["path"] for r in rows if r["path"] == "/d1/d2"]
    if when == "after-the-check":
        assert rechecked == ["/d1/d2"]  # the walk's row only
        assert live.paths() == {"/d1/d2/c.txt", "/d1/d2/new.txt"}
    else:
        assert rechecked == ["/d1/d2", "/d1/d2"]  # the walk's, then the check's
        assert live.paths() == set()


def test_skipped_directories_reach_subdirectories_of_any_name(root: str) -> None:
    """The cache packs subdirectory names into bytes: any name os.scandir gives comes back."""
    names = ["é ü", "a b", os.fsdecode(b"raw\xff\xfe"), "x" * 255, ".hidden"]
    for name in names:
        write(f"{root}/top/{name}/inner/f.txt")
        for d in (f"{root}/top/{name}/inner", f"{root}/top/{name}"):
            _age(d)
    for d in (f"{root}/top", root):
        _age(d)
    source = make_source(root)
    _audit(source)
    rows = {r["path"]: r for r in _audit(source)}
    for name in names:
        assert rows[f"/top/{name}/inner"]["audit_skipped"] is True, name
    assert not any(r["path"].endswith("f.txt") for r in rows.values())
    write(f"{root}/top/{names[2]}/inner/new.txt")  # found below two skipped directories
    _age(f"{root}/top/{names[2]}/inner", 50)
    rows = {r["path"]: r for r in _audit(source)}
    assert rows[f"/top/{names[2]}/inner"]["audit_skipped"] is False
    assert f"/top/{names[2]}/inner/new.txt" in rows


def test_cache_entries_cost_at_most_64_bytes_per_directory() -> None:
    """One bytes per directory (its path string and dict slot are the dict's, not counted)."""
    entries = [(1.7e9 + i, 10_000 + i, [f"d{i:06d}"]) for i in range(20_000)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cached = [cache_entry(*e) for e in entries]
        used = tracemalloc.get_traced_memory()[0] - before - sys.getsizeof(cached)
    finally:
        tracemalloc.stop()
    assert used / len(cached) <= 64, used / len(cached)
    assert [(cached_mtime(c), cached_subdirs(c)) for c in cached[:2]] == [
        (1.7e9, ["d000000"]),
        (1.7e9 + 1, ["d000001"]),
    ]
    assert cached_subdirs(cache_entry(1.0, 1, [])) == []


def test_once_older_tombstones_are_purged_one_audit_lists_everything(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fusion may hide paths behind tombstones this instance never saw (stamped before its
    first full audit: before a crash, or by another agent). The first audit after an audit
    end past the TTL lists everything once, which re-sends them (docs/CONSISTENCY_DESIGN.md
    section 8)."""
    from fustor_source_fs import tombstones

    monkeypatch.setattr(tombstones, "LAG_SLACK_SEC", 0.0)
    _tree(root)
    source = make_source(root, tombstone_ttl_sec=0.5)

    def lists_all() -> bool:
        rows = {r["path"]: r for r in _audit(source)}
        return rows["/"]["audit_skipped"] is False and "/a.txt" in rows

    _audit(source, full=True)
    assert lists_all()  # the B19 relist
    assert not lists_all()  # ended within the TTL of the first full audit
    time.sleep(0.6)
    assert not lists_all()  # ends past it: tombstones from before are purged now
    assert lists_all()  # so this one re-sends what they hid
    assert not lists_all() and not lists_all()  # once only
    _audit(source, full=True)  # a new session of the same instance: its tracker knew it all
    assert lists_all()  # the B19 relist
    time.sleep(0.6)
    assert not lists_all() and not lists_all()


def test_recently_changed_dir_is_not_cached(root: str) -> None:
    write(f"{root}/fresh/x.txt")  # mtime = now: within one tick of the listing
    _age(root)
    source = make_source(root)
    _audit(source)
    rows = {r["path"]: r for r in _audit(source)}
    assert rows["/fresh"]["audit_skipped"] is False
    assert "/fresh/x.txt" in rows
    assert rows["/"]["audit_skipped"] is True


def test_interrupted_audit_does_not_update_the_cache(root: str) -> None:
    for i in range(50):
        write(f"{root}/d{i:02d}/f.txt")
        _age(f"{root}/d{i:02d}")
    _age(root)
    source = make_source(root, batch_size=5, queue_batches=1, scan_workers=1)

    async def partial() -> None:
        await source.start()
        it = source.audit()
        await it.__anext__()
        await it.aclose()
        await source.stop()

    asyncio.run(partial())
    rows = {r["path"]: r for r in _audit(source)}
    assert all(r["audit_skipped"] is False for r in rows.values() if r["is_directory"])


def test_audit_filters_like_snapshot(root: str) -> None:
    write(f"{root}/k/a.dat")
    write(f"{root}/k/b.txt")
    write(f"{root}/.snapshot/z.dat")
    rows = _audit(make_source(root, file_pattern="*.dat", exclude=[".snapshot"]))
    assert {r["path"] for r in rows} == {"/", "/k", "/k/a.dat"}


def test_audit_refuses_when_root_is_gone(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(tmp_path, "r")
    write(f"{root}/a.txt")
    source = make_source(root)

    async def main() -> None:
        await source.start()
        os.rename(root, root + ".moved")
        with pytest.raises(DriverError) as info:
            async for _ in source.audit():
                pass
        assert info.value.retriable
        assert source.health() is not None and "does not exist" in source.health()
        with pytest.raises(DriverError):
            async for _ in source.snapshot():
                pass
        os.rename(root + ".moved", root)
        assert len([b async for b in source.audit()]) > 0
        assert source.health() is None
        await source.stop()

    asyncio.run(main())


def test_a_full_audit_while_another_runs_lists_everything(root: str) -> None:
    """Two pipes on one source: one runs an incremental audit, the other (just promoted)
    asks for a full one meanwhile; each call stands on its own."""
    for i in range(20):
        write(f"{root}/d{i:02d}/f.txt")
        _age(f"{root}/d{i:02d}")
    _age(root)
    source = make_source(root, batch_size=5, queue_batches=1, scan_workers=1)

    async def main() -> list[dict]:
        await source.start()
        [b async for b in source.audit()]  # fills the cache
        it = source.audit()
        await it.__anext__()
        rows = rows_of([b async for b in source.audit(True)])
        async for _ in it:
            pass
        await source.stop()
        return rows

    rows = asyncio.run(main())
    assert all(r["audit_skipped"] is False for r in rows if r["is_directory"])
    assert len([r for r in rows if not r["is_directory"]]) == 20


def test_a_subdirectory_changed_lately_gets_a_row_ahead_of_its_subtree(root: str) -> None:
    """In a directory with no cached listing, a subdirectory changed since the last complete
    audit (or the source's start) may be a file in Fusion (a rename storm): its row goes
    ahead of the rows under it, as listed, or Fusion 0.8.17 keeps a stale file entry that
    empties the directory at every later skipped audit (helper 24). One changed before
    gets none."""
    write(f"{root}/old/f.txt")
    source = make_source(root)
    source._changed_since = time.time() + 0.5  # "old" was there before
    time.sleep(0.6)
    write(f"{root}/new/inner")
    rows = _audit(source)
    order = [(r["path"], r.get("audit_skipped")) for r in rows]
    assert order.count(("/new", False)) == 2  # ahead, and its own row after its subtree
    assert order.index(("/new", False)) < order.index(("/new/inner", None))
    assert order.count(("/old", False)) == 1
    assert order.index(("/old/f.txt", None)) < order.index(("/old", False))
    ahead = rows[order.index(("/new", False))]
    assert ahead["is_directory"] is True
    assert (ahead["parent_path"], ahead["parent_mtime"]) == ("/", os.stat(root).st_mtime)
