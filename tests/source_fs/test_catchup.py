"""WatchedUntil: the time realtime last covered the tree, kept across restarts (catchup.py)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path

import pytest
from fs_helpers import Live, make_source

from fustor_source_fs.catchup import WATCHED_FILE, WRITE_EVERY_SEC, WatchedUntil
from fustor_source_fs.filters import PathFilter
from fustor_source_fs.rows import make_lister
from fustor_source_fs.walk import RowSink


def test_the_time_is_written_at_most_every_few_seconds_and_read_back(tmp_path: Path) -> None:
    state = tmp_path / "state" / "sources" / "source-tree"  # made on the first write
    watched = WatchedUntil(state, "/data")
    assert watched.load() is None
    watched.note(now=1000.0)
    watched.note(now=1000.0 + WRITE_EVERY_SEC / 2)  # too soon: not written
    assert WatchedUntil(state, "/data").load() == 1000.0
    watched.note(now=1000.0 + WRITE_EVERY_SEC / 2, force=True)  # a clean stop
    assert WatchedUntil(state, "/data").load() == 1000.0 + WRITE_EVERY_SEC / 2
    assert not (state / "watched-until.tmp").exists()


def test_another_roots_time_means_no_catch_up(tmp_path: Path) -> None:
    (tmp_path / WATCHED_FILE).write_text('{"root": "/other", "until": 5}')
    assert WatchedUntil(tmp_path, "/data").load() is None


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"root": "/data"}',
        "[]",
        '{"root": "/data", "until": NaN}',
        '{"root": "/data", "until": 1e12}',
        '{"root": "/data", "until": "-Infinity"}',
        '{"root": "/data", "until": -5}',
        '{"root": "/data", "until": [1]}',
        "{}",
        '{"until": 5}',
    ],
)
def test_a_damaged_file_means_everything_goes_again(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What changed while no agent watched cannot be told: the catch-up covers everything
    (0.0). It had been no catch-up at all, a start failing on NaN, or a time to come that
    covered nothing (helper 33)."""
    (tmp_path / WATCHED_FILE).write_text(content)
    assert WatchedUntil(tmp_path, "/data").load() == 0.0
    assert any("the first snapshot's entries all go again" in m for m in caplog.messages)


def test_no_state_dir_keeps_nothing_and_a_write_error_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    WatchedUntil(None, "/data").note(force=True)  # a host without state: nothing happens
    blocker = tmp_path / "file"
    blocker.write_text("")
    watched = WatchedUntil(blocker / "state", "/data")  # its parent is a file
    watched.note(now=1.0)
    watched.note(now=100.0)
    assert json.dumps(caplog.messages).count("cannot write") == 1


def test_the_snapshot_notes_entries_changed_since_and_stops_one_past_the_limit(
    tmp_path: Path,
) -> None:
    (tmp_path / "d").mkdir()
    for name in "abcde":
        (tmp_path / "d" / name).write_text(name)
    rows: list = []
    sink = RowSink(rows.extend, 100)

    def notes(since: float, limit: int) -> list[str]:
        changed: list[str] = []
        visit = make_lister(PathFilter("*", []), sink, 100, None, None, None, since, changed, limit)
        for task in visit((str(tmp_path), "/")):
            visit(task)
        return changed

    def paths(since: float, limit: int) -> list[str]:
        return sorted(path for path, _ in notes(since, limit))

    assert paths(0.0, 100) == ["/d", "/d/a", "/d/b", "/d/c", "/d/d", "/d/e"]
    assert len(notes(0.0, 2)) == 3  # one past the limit: "too many", nothing more kept
    assert notes(2e9, 100) == []  # nothing changed since a time to come
    # A directory renamed in (its ctime new, its mtime old) is marked: all of it goes again.
    os.utime(tmp_path / "d", (1e9, 1e9))
    assert dict(notes(1.5e9, 100))["/d"] is True
    assert dict(notes(0.0, 100))["/d"] is False


def test_a_loaded_time_not_caught_up_yet_is_written_again_not_a_later_one(
    tmp_path: Path,
) -> None:
    """A process that dies before its catch-up is queued leaves it to the next (helper 31)."""
    WatchedUntil(tmp_path, "/data").note(now=1000.0)
    second = WatchedUntil(tmp_path, "/data")
    second.held = second.load()
    second.note(now=2000.0)
    assert WatchedUntil(tmp_path, "/data").load() == 1000.0
    second.held = None  # its catch-up is queued
    second.note(now=3000.0)
    assert WatchedUntil(tmp_path, "/data").load() == 3000.0


def test_the_time_is_written_under_steady_churn_held_back_to_what_still_waits(
    tmp_path: Path,
) -> None:
    """A build making and removing a temporary file every 0.2 s: a delete is always held
    for its settle window, and the time used to be never written, so a crash lost the
    catch-up (helper 33). It is written, and never later than a change not yet sent."""
    root = tmp_path / "w"
    (root / "tmp").mkdir(parents=True)
    state = tmp_path / "state"

    async def main() -> float | None:
        source = make_source(str(root))
        source.state_dir = state
        async with Live(source) as rt:
            started = time.time()
            deadline = time.monotonic() + 4 * WRITE_EVERY_SEC
            until = None
            i = held = 0
            while time.monotonic() < deadline:
                scratch = root / "tmp" / f"t{i % 5}"
                scratch.write_text("x")
                await asyncio.sleep(0.05)
                scratch.unlink()
                await asyncio.sleep(0.2)
                i += 1
                assert rt.source._realtime is not None
                held = max(held, len(rt.source._realtime._held))
                until = WatchedUntil(state, str(root)).load()
                if until is not None and until > started:
                    break
            assert held, "no delete was ever held: no churn"
            return until if until is not None and until > started else None

    until = asyncio.run(main())
    assert until is not None, "never written while a delete was held"
    assert until <= time.time()


def test_a_path_sent_again_holds_the_time_back_until_it_is_out(tmp_path: Path) -> None:
    """A re-send (a catch-up, a set-back a walk found) may stand for a change hours old:
    while it waits, nothing is written, or a crash then would lose it (helper 35)."""
    root = tmp_path / "w"
    root.mkdir()
    state = tmp_path / "state"
    f = root / "f"

    async def main() -> tuple[float, list]:
        source = make_source(
            str(root), recovery_ctime_slack_sec=0.0, health_check_interval_sec=0.05
        )
        source.state_dir = state
        async with Live(source) as live:
            rt = source._realtime
            assert rt is not None and rt.watched is not None
            f.write_text("put back while the snapshot ran")
            ctime = os.stat(f).st_ctime
            await live.settle()
            await asyncio.sleep(1.5)
            # The emitter is between take() and _covered_until(): e.g. in _check_health,
            # which stats the root (slow on NFS). Emulated with a gate.
            gate, inside = threading.Event(), threading.Event()
            real = rt._check_health

            def slow_check() -> None:
                inside.set()
                gate.wait(5)
                real()

            rt._check_health = slow_check  # type: ignore[method-assign]
            await asyncio.to_thread(inside.wait, 5)
            notes: list = []
            real_note = rt.watched.note

            def spy(now: float | None = None, *, force: bool = False) -> None:
                notes.append((now, "/f" in rt.pending.changes))
                real_note(now, force=force)

            rt.watched.note = spy  # type: ignore[method-assign]
            rt.watched._written = 0.0  # the 5 s rate limit is not what is tested
            rt.resend(["/f"])  # as _catch_up / _stream's set-back re-send / _resend_hidden do
            rt._check_health = real  # type: ignore[method-assign]
            gate.set()
            await live.settle()
            assert live.upserts("/f"), "the re-send never went out"
            return ctime, notes

    ctime, notes = asyncio.run(main())
    bad = [n for n in notes if n[0] is not None and n[0] > ctime and n[1]]
    assert not bad, (
        f"watched-until {bad[0][0]:.3f} written while /f (ctime {ctime:.3f}) was still queued"
        " for its re-send: a crash now loses it (next catch-up starts after its ctime)"
    )


def test_a_stop_while_the_emitter_holds_taken_work_writes_no_later_time(
    tmp_path: Path,
) -> None:
    """A clean stop notes the time once more; work the emitter took but did not send yet
    holds it back to when that work arrived (helper 35). ``recovery_ctime_slack_sec``
    covers the moment between a change and its arrival."""
    root = tmp_path / "w"
    root.mkdir()
    state = tmp_path / "state"
    f = root / "f"

    async def main() -> tuple[float, int]:
        source = make_source(str(root), recovery_ctime_slack_sec=0.0)
        source.state_dir = state
        live = Live(source)
        await live.__aenter__()
        rt = source._realtime
        assert rt is not None
        gate, inside = threading.Event(), threading.Event()
        real = rt._rows_for

        def slow_rows(changes):  # reading 100,000 catch-up paths from NFS takes a while
            if "/f" in changes:
                inside.set()
                gate.wait(3)
            return real(changes)

        rt._rows_for = slow_rows  # type: ignore[method-assign]
        f.write_text("x")
        ctime = os.stat(f).st_ctime
        await asyncio.to_thread(inside.wait, 5)
        await asyncio.sleep(0.1)
        await live.__aexit__(None, None, None)  # a stop (SIGTERM): close() runs on the loop
        gate.set()
        return ctime, len(live.upserts("/f"))

    ctime, sent = asyncio.run(main())
    until = WatchedUntil(state, str(root)).load()
    assert not (sent == 0 and until is not None and until > ctime + 0.05), (
        f"/f never went out, yet watched-until {until} > its ctime {ctime}"
    )
