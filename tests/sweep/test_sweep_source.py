"""What the fs source's audit sends for in-place edits in directories it skips (issue 8)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sweep_helpers import age_tree

from fustor_core import Row
from fustor_source_fs import FsSource, FsSourceConfig
from fustor_source_fs.audit import cache_entry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "source_fs"))

from fs_helpers import collect, rows_of

FILES = [f"d{d}/f{f}.dat" for d in range(3) for f in range(4)] + ["top.dat"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x" * 10)
    age_tree(root)
    return root


def make(root: Path, **params: Any) -> FsSource:
    # A period far shorter than the gap between audits: every pass re-checks every file.
    params = {"full_sweep_interval_sec": 1e-6, "audit_mtime_tick_sec": 0.5, **params}
    return FsSource("t", FsSourceConfig(uri=str(root), driver_params=params))


async def audit(source: FsSource, full: bool = False) -> list[Row]:
    return rows_of(await collect(source.audit(full)))


def file_rows(rows: list[Row]) -> dict[str, Row]:
    return {r["path"]: r for r in rows if not r["is_directory"]}


def run(source: FsSource, body: Callable[[FsSource], Awaitable[None]]) -> None:
    async def main() -> None:
        await source.start()
        try:
            await body(source)
        finally:
            await source.stop()

    asyncio.run(main())


def keep_mtime(path: Path, edit: Callable[[], None], shift_ns: int = 0) -> None:
    """Edit a file, then put its mtime back (plus ``shift_ns``), as some writers do."""
    st = os.stat(path)
    edit()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + shift_ns))


def append(path: Path, data: bytes = b"more") -> Callable[[], None]:
    def edit() -> None:
        with open(path, "ab") as f:
            f.write(data)

    return edit


def test_unchanged_files_send_no_rows_while_every_file_is_rechecked(tree: Path) -> None:
    source = make(tree)

    async def body(source: FsSource) -> None:
        first = await audit(source)
        assert len(file_rows(first)) == len(FILES)  # the full audit lists everything
        for _ in range(3):
            rows = await audit(source)
            assert file_rows(rows) == {}
            assert all(r["audit_skipped"] for r in rows)  # directories: skipped, not relisted
        status = source.status()
        assert status["sweep_tracked_files"] == len(FILES)
        assert status["sweep_files_checked"] >= 3 * len(FILES)
        assert status["sweep_changes_found"] == 0
        assert status["sweep_rounds"] >= 2

    run(source, body)


def test_append_and_truncate_go_out_as_plain_audit_rows(tree: Path) -> None:
    source = make(tree)

    async def body(source: FsSource) -> None:
        await audit(source)
        append(tree / "d1" / "f2.dat", b"0123456789")()
        os.truncate(tree / "d2" / "f0.dat", 3)
        rows = file_rows(await audit(source))
        assert set(rows) == {"/d1/f2.dat", "/d2/f0.dat"}
        assert rows["/d1/f2.dat"]["size"] == 20
        assert rows["/d2/f0.dat"]["size"] == 3
        for path, row in rows.items():
            # Strictly newer mtimes: Fusion's ordinary arbitration applies them (§5.4).
            assert "audit_skipped" not in row
            assert row["parent_path"] == path.rsplit("/", 1)[0]
            assert row["parent_mtime"] == os.stat(tree / row["parent_path"][1:]).st_mtime
            assert row["modified_time"] == os.stat(tree / path[1:]).st_mtime
        assert file_rows(await audit(source)) == {}  # reported once
        assert source.status()["sweep_changes_found"] == 2

    run(source, body)


def test_a_size_change_that_keeps_the_mtime_is_forced(tree: Path) -> None:
    source = make(tree, audit_mtime_tick_sec=0.0)

    async def body(source: FsSource) -> None:
        await audit(source)
        keep_mtime(tree / "d0" / "f1.dat", append(tree / "d0" / "f1.dat"))
        keep_mtime(tree / "d1" / "f1.dat", append(tree / "d1" / "f1.dat"), shift_ns=-(10**9))
        rows = file_rows(await audit(source))
        assert set(rows) == {"/d0/f1.dat", "/d1/f1.dat"}
        # Not newer: only audit_skipped makes Fusion take them.
        assert all(r["audit_skipped"] is True for r in rows.values())
        assert rows["/d0/f1.dat"]["size"] == 14
        assert source.status()["sweep_forced_rows"] == 2

    run(source, body)


@pytest.mark.parametrize("before", ["listed", "forgotten"])
def test_a_full_listing_fusion_drops_does_not_hide_the_change(tree: Path, before: str) -> None:
    """A full listing carries the edit with its old mtime, which Fusion drops (protocol §5.4):
    the sweep must still force it afterwards (seen in CI: the relist after the startup audit)."""
    source = make(tree, audit_mtime_tick_sec=0.0)
    edited = tree / "d0" / "f1.dat"

    async def body(source: FsSource) -> None:
        await audit(source, full=True)
        if before == "forgotten":
            await audit(source)  # the relist
            keep_mtime(edited, append(edited))
            listed = file_rows(await audit(source, full=True))  # a new session
        else:
            keep_mtime(edited, append(edited))
            listed = file_rows(await audit(source))  # the relist after the full audit
        assert listed["/d0/f1.dat"]["size"] == 14
        assert "audit_skipped" not in listed["/d0/f1.dat"]  # unforced: Fusion keeps 10
        forced = []
        for _ in range(3):
            forced += [r for r in file_rows(await audit(source)).values() if r.get("audit_skipped")]
        assert [(r["path"], r["size"]) for r in forced] == [("/d0/f1.dat", 14)]

    run(source, body)


def test_a_forced_row_waits_until_the_file_has_settled(tree: Path) -> None:
    source = make(tree, audit_mtime_tick_sec=30.0)  # ctime of the edit is younger than this

    async def body(source: FsSource) -> None:
        await audit(source)
        keep_mtime(tree / "d0" / "f1.dat", append(tree / "d0" / "f1.dat"))
        assert file_rows(await audit(source)) == {}
        assert source.status()["sweep_deferred"] == 1
        assert source._sweeper is not None
        source._sweeper.settle_sec = 0.0
        rows = file_rows(await audit(source))  # still owed: the record kept the old state
        assert rows["/d0/f1.dat"]["audit_skipped"] is True

    run(source, body)


def test_a_forced_row_is_not_sent_while_realtime_holds_a_change(tree: Path) -> None:
    source = make(tree, audit_mtime_tick_sec=0.0)

    async def body(source: FsSource) -> None:
        await audit(source)
        keep_mtime(tree / "d2" / "f3.dat", append(tree / "d2" / "f3.dat"))
        assert source._sweeper is not None
        source._sweeper.realtime_pending = lambda rel: rel == "/d2/f3.dat"
        assert file_rows(await audit(source)) == {}
        source._sweeper.realtime_pending = lambda rel: False
        assert set(file_rows(await audit(source))) == {"/d2/f3.dat"}

    run(source, body)


def test_an_interrupted_audit_reports_the_change_again(tree: Path) -> None:
    source = make(tree, batch_size=1)

    async def body(source: FsSource) -> None:
        await audit(source)
        append(tree / "d1" / "f0.dat")()
        batches = source.audit()
        async with contextlib.aclosing(batches):
            async for batch in batches:
                if any(r["path"] == "/d1/f0.dat" for e in batch.events for r in e.rows):
                    break  # the host lost its session before the audit ended
        assert source.status()["sweep_changes_found"] == 0
        assert set(file_rows(await audit(source))) == {"/d1/f0.dat"}

    run(source, body)


def test_files_that_come_or_go_behind_a_restored_directory_mtime(tree: Path) -> None:
    source = make(tree)

    async def body(source: FsSource) -> None:
        await audit(source)
        st = os.stat(tree / "d0")
        (tree / "d0" / "new.dat").write_bytes(b"n")
        (tree / "d0" / "f0.dat").unlink()
        os.utime(tree / "d0", ns=(st.st_atime_ns, st.st_mtime_ns))  # rsync -a, tar -x ...
        rows = file_rows(await audit(source))
        assert set(rows) == {"/d0/new.dat"}  # a delete cannot be sent; Fusion infers those
        assert "audit_skipped" not in rows["/d0/new.dat"]
        assert source.status()["sweep_tracked_files"] == len(FILES)

    run(source, body)


def test_a_full_audit_records_everything_anew(tree: Path) -> None:
    source = make(tree)

    async def body(source: FsSource) -> None:
        await audit(source)
        append(tree / "d2" / "f2.dat")()
        rows = file_rows(await audit(source, full=True))  # a new session or a promotion
        assert len(rows) == len(FILES)  # the full listing carries the change
        assert source.status()["sweep_tracked_files"] == len(FILES)
        assert source.status()["sweep_changes_found"] == 0

    run(source, body)


def test_excluded_and_unwanted_files_are_never_swept(tree: Path) -> None:
    (tree / "d0" / "skip.tmp").write_bytes(b"t")
    age_tree(tree)
    source = make(tree, file_pattern="*.dat", exclude=["d1"])

    async def body(source: FsSource) -> None:
        await audit(source)
        append(tree / "d0" / "skip.tmp")()
        append(tree / "d1" / "f0.dat")()
        assert file_rows(await audit(source)) == {}
        assert source.status()["sweep_tracked_files"] == len(FILES) - 4

    run(source, body)


def test_a_zero_interval_turns_the_sweep_off(tree: Path) -> None:
    source = make(tree, full_sweep_interval_sec=0)

    async def body(source: FsSource) -> None:
        await audit(source)
        append(tree / "d1" / "f2.dat")()
        assert file_rows(await audit(source)) == {}
        assert not any(key.startswith("sweep_") for key in source.status())

    run(source, body)


def test_the_ceiling_wins_and_status_shows_the_longer_period(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for d in range(20):
        for f in range(10):
            (root / f"d{d:02d}").mkdir(parents=True, exist_ok=True)
            (root / f"d{d:02d}" / f"{f}.dat").write_bytes(b"x")
    age_tree(root)
    source = make(root, sweep_max_stats_per_sec=100)  # a round is 221 stats

    async def body(source: FsSource) -> None:
        await audit(source)
        started = asyncio.get_running_loop().time()
        await audit(source)  # owes a whole round, may take about a second
        took = asyncio.get_running_loop().time() - started
        status = source.status()
        assert 0 < status["sweep_files_checked"] < 200
        assert 0 < status["sweep_round_progress"] < 1
        assert took < 2.5
        # At 100 stats/s a round of 221 stats needs more than 2 s: far above the target.
        assert status["sweep_period_achieved_sec"] > 1.5
        assert status["sweep_period_target_sec"] == 1e-6

    run(source, body)


def test_a_directory_gone_before_its_turn_is_forgotten_and_the_share_checked(
    tree: Path,
) -> None:
    from fustor_core import DriverError
    from fustor_source_fs.sweep import Sweeper
    from fustor_source_fs.sweepstore import Columns

    checks: list[str] = []

    def check_root() -> None:
        checks.append("checked")
        if len(checks) > 1:
            raise DriverError("root unavailable: gone", retriable=True)

    sweeper = Sweeper(
        str(tree),
        FsSource("t", FsSourceConfig(uri=str(tree))).filter,
        period=1e-6,
        max_rate=1e6,
        settle_sec=0,
        check_root=check_root,
        realtime_pending=lambda rel: False,
    )
    columns = Columns()
    columns.add(hash("/gone/a.dat"), 1.0, 1)
    sweeper.store.put("/gone", columns.pack())
    sent: list[Row] = []

    class Sink:
        def extend(self, rows: list[Row]) -> None:
            sent.extend(rows)

    cache = {"/gone": cache_entry(1.0, 1, [])}
    first = sweeper.begin()
    first.run(cache, Sink(), threading.Event(), 2)  # type: ignore[arg-type]  # owes nothing yet
    sweeper.commit(first, cache)
    second = sweeper.begin()
    second.run(cache, Sink(), threading.Event(), 2)  # type: ignore[arg-type]
    assert checks == ["checked"] and second.updates == {"/gone": None}
    sweeper.commit(second, cache)
    assert sweeper.store.files == 0 and sent == []
    sweeper.store.put("/gone", columns.pack())
    third = sweeper.begin()
    with pytest.raises(DriverError):
        third.run(cache, Sink(), threading.Event(), 2)  # type: ignore[arg-type]
    assert sent == []
