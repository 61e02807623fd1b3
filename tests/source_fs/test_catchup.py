"""WatchedUntil: the time realtime last covered the tree, kept across restarts (catchup.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fustor_source_fs.catchup import WATCHED_FILE, WRITE_EVERY_SEC, WatchedUntil


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
    from fustor_source_fs.filters import PathFilter
    from fustor_source_fs.rows import make_lister
    from fustor_source_fs.walk import RowSink

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
    import asyncio
    import time

    from fs_helpers import Live, make_source

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
