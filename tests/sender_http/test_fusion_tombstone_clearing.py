"""A re-created path's Fusion tombstone is cleared in the same send (B15; the real server's
side is tests/fusion/test_fusion_everyday_ops.py)."""

from __future__ import annotations

import asyncio
import math
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_fusion_receiver import FakeReceiver, make_sender

from fustor_core import Batch, Event, EventType, MessageSource, SendStatus
from fustor_sender_http import tombstones
from fustor_sender_http.tombstones import CLEAR_AHEAD_SEC, DeletedPaths
from fustor_sender_http.watermark import WatermarkLead

RT = MessageSource.REALTIME
OLD = 1_500_000_000.0


def _row(path: str, mtime: float = OLD) -> dict[str, Any]:
    return {
        "path": path,
        "file_name": path.rsplit("/", 1)[-1],
        "size": 3,
        "modified_time": mtime,
        "created_time": mtime + 10,
        "is_directory": False,
        "is_atomic_write": True,
    }


def _deletes(*paths: str) -> Event:
    return Event(EventType.DELETE, [{"path": p} for p in paths], RT)


def _upserts(*paths: str) -> Event:
    return Event(EventType.UPDATE, [_row(p) for p in paths], RT)


def _send_all(tmp_path: Path, fusion: FakeReceiver, *batches: Batch) -> list[Any]:
    sender = make_sender(tmp_path, fusion)

    async def run() -> list[Any]:
        await sender.open_session()
        return [(await sender.send(b)).status for b in batches]

    statuses = asyncio.run(run())
    assert statuses == [SendStatus.OK] * len(batches), statuses
    return fusion.bodies("POST ingest")


def test_an_upsert_after_an_acknowledged_delete_is_followed_by_its_clearing_pair(
    tmp_path: Path,
) -> None:
    fusion = FakeReceiver()
    before = time.time()
    bodies = _send_all(
        tmp_path,
        fusion,
        Batch(RT, [_deletes("/d/g", "/d/h")]),
        Batch(RT, [_upserts("/d/f", "/d/g")]),
    )
    assert len(bodies) == 3, bodies  # the delete, the batch as it is, then the pair
    assert [r["path"] for r in bodies[1]["events"][0]["rows"]] == ["/d/f", "/d/g"]
    pair = bodies[2]
    assert pair["source_type"] == "message"
    ahead, real = pair["events"]
    assert (ahead["message_source"], real["message_source"]) == ("snapshot", "realtime")
    assert [r["path"] for r in ahead["rows"]] == ["/d/g"] == [r["path"] for r in real["rows"]]
    assert real["rows"][0] == _row("/d/g")  # applied last: the node ends as read
    # newer than any stamp Fusion can have given the delete (its watermark follows the clock)
    assert ahead["rows"][0]["modified_time"] >= before + CLEAR_AHEAD_SEC
    assert {k: v for k, v in ahead["rows"][0].items() if k != "modified_time"} == {
        k: v for k, v in _row("/d/g").items() if k != "modified_time"
    }


def test_a_path_cleared_once_is_not_cleared_again(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    bodies = _send_all(
        tmp_path,
        fusion,
        Batch(RT, [_deletes("/g")]),
        Batch(RT, [_upserts("/g")]),
        Batch(RT, [_upserts("/g")]),  # an edit: no tombstone any more
    )
    assert len(bodies) == 4


def test_order_inside_one_batch_decides(tmp_path: Path) -> None:
    """Deleted then back in one batch: cleared after it. Back then deleted again: not put
    back (the last delete stamps a new tombstone, and the path is gone)."""
    fusion = FakeReceiver()
    bodies = _send_all(
        tmp_path,
        fusion,
        Batch(RT, [_deletes("/a", "/b"), _upserts("/a", "/b"), _deletes("/b")]),
        Batch(RT, [_upserts("/b")]),
    )
    assert len(bodies) == 4
    assert [r["path"] for r in bodies[1]["events"][1]["rows"]] == ["/a"]
    assert [r["path"] for r in bodies[3]["events"][1]["rows"]] == ["/b"]


def test_a_retried_batch_keeps_its_clearing_pair(tmp_path: Path) -> None:
    """The pair goes out until Fusion acknowledged it: a failed request is resent, and the
    deleted path is remembered until its upsert went out."""
    fusion = FakeReceiver()
    fusion.script("POST ingest", httpx.Response(200, json={"status": "ok", "count": 1}))
    fusion.script("POST ingest", httpx.Response(200, json={"status": "ok", "count": 1}))
    fusion.script("POST ingest", httpx.Response(503, text="Event handler not configured"))
    sender = make_sender(tmp_path, fusion)
    again = Batch(RT, [_upserts("/g")])

    async def run() -> list[SendStatus]:
        await sender.open_session()
        return [
            (await sender.send(Batch(RT, [_deletes("/g")]))).status,
            (await sender.send(again)).status,
            (await sender.send(again)).status,
        ]

    assert asyncio.run(run()) == [SendStatus.OK, SendStatus.RETRY, SendStatus.OK]
    bodies = fusion.bodies("POST ingest")
    # delete; batch; pair refused; then only the pair again (the batch was acknowledged)
    assert len(bodies) == 4
    for pair in bodies[2:]:
        assert [e["message_source"] for e in pair["events"]] == ["snapshot", "realtime"]
        assert [e["rows"][0]["path"] for e in pair["events"]] == ["/g", "/g"]
    assert sender.status()["tombstones_cleared"] == 1


def test_other_tiers_and_untouched_paths_cost_no_extra_request(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    bodies = _send_all(
        tmp_path,
        fusion,
        Batch(RT, [_deletes("/g")]),
        Batch(MessageSource.AUDIT, [Event(EventType.UPDATE, [_row("/g")], MessageSource.AUDIT)]),
        Batch(RT, [_upserts("/f")]),
    )
    assert len(bodies) == 3


def test_many_put_backs_keep_each_pair_in_one_request_within_the_limits(tmp_path: Path) -> None:
    paths = [f"/d/f{i:04}" for i in range(450)]
    fusion = FakeReceiver()
    sender = make_sender(tmp_path, fusion, max_batch_size=200, max_rows_per_event=30)

    async def run() -> None:
        await sender.open_session()
        assert (await sender.send(Batch(RT, [_deletes(*paths)]))).ok
        assert (await sender.send(Batch(RT, [_upserts(*paths)]))).ok

    asyncio.run(run())
    bodies = fusion.bodies("POST ingest")
    pairs = [b for b in bodies if b["events"][0]["message_source"] == "snapshot"]
    cleared: list[str] = []
    for body in pairs:
        events = body["events"]
        assert sum(len(e["rows"]) for e in events) <= 200
        assert all(len(e["rows"]) <= 30 for e in events)
        for ahead, real in zip(events[::2], events[1::2], strict=True):
            assert (ahead["message_source"], real["message_source"]) == ("snapshot", "realtime")
            assert [r["path"] for r in ahead["rows"]] == [r["path"] for r in real["rows"]]
            cleared += [r["path"] for r in real["rows"]]
    assert cleared == paths


def test_no_pair_for_a_path_whose_directory_goes_later_in_the_batch(tmp_path: Path) -> None:
    """The pair goes after the whole batch: a later delete of a directory above the path,
    or a row that makes it a file (a type change, a reset), must not be undone by it."""
    dir_row = {**_row("/d"), "is_directory": True}
    file_row = {**_row("/d"), "is_directory": False}
    fusion = FakeReceiver()
    bodies = _send_all(
        tmp_path,
        fusion,
        Batch(RT, [_deletes("/d/f", "/d/g", "/d/e/h", "/x")]),
        Batch(RT, [_upserts("/d/f"), _deletes("/d")]),
        Batch(RT, [_upserts("/d/g"), Event(EventType.UPDATE, [file_row], RT)]),
        Batch(RT, [_upserts("/d/e/h", "/x"), Event(EventType.UPDATE, [dir_row], RT)]),
    )
    # /d/f and /d/g get no pair; /d itself (deleted, then back as a file) and the last
    # batch's paths do.
    assert len(bodies) == 6, bodies
    assert [r["path"] for r in bodies[3]["events"][1]["rows"]] == ["/d"]
    assert [r["path"] for r in bodies[5]["events"][1]["rows"]] == ["/d/e/h", "/x"]


def test_a_path_not_cleared_stays_remembered() -> None:
    deleted = DeletedPaths()
    deleted.commit(Batch(RT, [_deletes("/d/f")]), [])
    batch = Batch(RT, [_upserts("/d/f"), _deletes("/d")])
    assert deleted.to_clear(batch) == []
    deleted.commit(batch, [])
    assert [r["path"] for r in deleted.to_clear(Batch(RT, [_upserts("/d/f")]))] == ["/d/f"]


def test_deletes_are_kept_in_the_state_dir_for_the_next_process(tmp_path: Path) -> None:
    """A crash after the delete reached Fusion: the next process still clears the path's
    tombstone when it comes back (helper 31). The log restarts past the limit, keeping one
    older file."""
    log = tmp_path / "state" / "fusion-deleted-paths.log"
    first = DeletedPaths(limit=3, log=log)
    first.commit(Batch(RT, [_deletes("/a", "/caf\udce9")]), [])
    first.commit(Batch(RT, [_deletes("/b", "/c")]), [])  # 4 lines: the next write rotates
    first.commit(Batch(RT, [_deletes("/d")]), [])
    assert log.with_suffix(".old").exists()
    again = DeletedPaths(limit=3, log=log)
    assert len(again) == 3  # the newest 3 exactly, the 2 older ones in the filter
    back = Batch(RT, [_upserts("/a", "/b", "/c", "/d", "/caf\udce9", "/e")])
    assert sorted(r["path"] for r in again.to_clear(back)) == [
        "/a",
        "/b",
        "/c",
        "/caf\udce9",
        "/d",
    ]


def test_an_unwritable_state_dir_keeps_deletes_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("")
    deleted = DeletedPaths(log=tmp_path / "file" / "fusion-deleted-paths.log")
    deleted.commit(Batch(RT, [_deletes("/a")]), [])
    deleted.commit(Batch(RT, [_deletes("/b")]), [])
    assert [r["path"] for r in deleted.to_clear(Batch(RT, [_upserts("/a", "/b")]))] == [
        "/a",
        "/b",
    ]
    assert sum("cannot keep deleted paths" in m for m in caplog.messages) == 1


def test_a_damaged_log_keeps_its_paths_and_skips_the_rest(tmp_path: Path) -> None:
    """Any JSON value may stand on a damaged line: a list or a mapping made the pipe
    impossible to create, and the agent idled while Fusion emptied the view (helper 33)."""
    log = tmp_path / "fusion-deleted-paths.log"
    log.write_text('"/a"\n[1, 2]\n{"x": 1}\nnull\n7\n"/b\n\x00\xff\n"/c"\n')
    deleted = DeletedPaths(log=log)
    back = Batch(RT, [_upserts("/a", "/b", "/c")])
    assert [r["path"] for r in deleted.to_clear(back)] == ["/a", "/c"]


def test_paths_past_the_exact_limit_are_still_cleared_once_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """60,000 files deleted one by one, then restored with their old mtimes: the 10,000
    oldest deletes had been forgotten and stayed hidden behind Fusion's tombstones (helper
    32). Past ``limit`` they go into Bloom filters; a path cleared through them is cleared
    once, not at every later change, until it is deleted again. Keys are fixed here: with
    the per-process salt of ``hash`` a false positive of the filters cleared one of the
    dropped generation in about one run of twenty."""
    monkeypatch.setattr(tombstones, "_key", lambda path: zlib.crc32(path.encode()))
    deleted = DeletedPaths(limit=5, evicted_capacity=4)
    paths = [f"/d/f{i}" for i in range(14)]
    for path in paths:
        deleted.commit(Batch(RT, [_deletes(path)]), [])
    assert len(deleted) == 5
    # 9 forgotten: f0-f3 filled a first filter, f4-f7 a second, f8 started a third, so the
    # first was dropped (two generations are kept).
    back = Batch(RT, [_upserts(*paths)])
    cleared = deleted.to_clear(back)
    assert [r["path"] for r in cleared] == paths[4:]
    deleted.commit(back, cleared)
    assert deleted.to_clear(Batch(RT, [_upserts(*paths)])) == []  # changed again: no pair
    deleted.commit(Batch(RT, [_deletes("/d/f4")]), [])  # deleted again: cleared again
    assert [r["path"] for r in deleted.to_clear(Batch(RT, [_upserts("/d/f4")]))] == ["/d/f4"]


DAY = 86400.0


def _clearing_mtime(body: dict[str, Any]) -> float:
    ahead, _ = body["events"]
    assert ahead["message_source"] == "snapshot"
    return float(ahead["rows"][0]["modified_time"])


@pytest.mark.parametrize("where", ["earlier batch", "same batch", "before a restart"])
def test_the_clearing_row_passes_a_watermark_pulled_ahead_by_dated_rows(
    tmp_path: Path, where: str
) -> None:
    """A realtime row dated 30 days ahead pulls Fusion's watermark (and the tombstones it
    stamps) 30 days ahead (protocol §5.8): the clearing row is a day past that, whether the
    dated row went in an earlier batch, before the delete in the same batch, or through an
    earlier sender on the same state directory (Fusion keeps its clock's samples)."""
    dated = Event(EventType.UPDATE, [_row("/dated", time.time() + 30 * DAY)], RT)
    fusion = FakeReceiver()
    if where == "before a restart":
        _send_all(tmp_path, fusion, Batch(RT, [dated]))
        fusion = FakeReceiver()
        batches = [Batch(RT, [_deletes("/g")]), Batch(RT, [_upserts("/g")])]
    elif where == "same batch":
        batches = [Batch(RT, [dated, _deletes("/g"), _upserts("/g")])]
    else:
        batches = [Batch(RT, [dated]), Batch(RT, [_deletes("/g")]), Batch(RT, [_upserts("/g")])]
    before = time.time()
    bodies = _send_all(tmp_path, fusion, *batches)
    assert _clearing_mtime(bodies[-1]) >= before + 31 * DAY - 5


def test_snapshot_rows_do_not_move_the_clearing_row_but_dated_realtime_deletes_do(
    tmp_path: Path,
) -> None:
    """Fusion's clock samples realtime rows only, deletes with a ``modified_time`` included
    (its arbitrator updates the clock before it tells deletes from upserts): a dated
    snapshot row leaves the clearing row a day ahead, a dated realtime delete moves it."""
    ahead = time.time() + 30 * DAY
    snapshot = Batch(
        MessageSource.SNAPSHOT,
        [Event(EventType.UPDATE, [_row("/s", ahead)], MessageSource.SNAPSHOT)],
    )
    before = time.time()
    bodies = _send_all(
        tmp_path / "snapshot",
        FakeReceiver(),
        snapshot,
        Batch(RT, [_deletes("/g")]),
        Batch(RT, [_upserts("/g")]),
    )
    assert before + DAY <= _clearing_mtime(bodies[-1]) < time.time() + DAY + 5
    dated_delete = Event(EventType.DELETE, [{"path": "/x", "modified_time": ahead}], RT)
    bodies = _send_all(
        tmp_path / "delete",
        FakeReceiver(),
        Batch(RT, [dated_delete, _deletes("/g")]),
        Batch(RT, [_upserts("/g")]),
    )
    assert _clearing_mtime(bodies[-1]) >= before + 31 * DAY - 5


def test_odd_modified_times_neither_fail_a_send_nor_move_the_lead() -> None:
    lead = WatermarkLead()
    ahead = time.time() + 2 * DAY
    odd = [{"path": "/a", "modified_time": value} for value in ("x", None, True, math.nan)]
    lead.note(Batch(RT, [Event(EventType.UPDATE, [*odd, _row("/b", ahead)], RT)]))
    assert 2 * DAY - 5 < lead.seconds <= 2 * DAY
    lead.note(Batch(RT, [Event(EventType.UPDATE, [{"path": "/c", "modified_time": math.inf}], RT)]))
    assert lead.seconds <= 2 * DAY


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"lead_sec": -3}', '{"lead_sec": "1e9"}', '{"lead_sec": Infinity}', "[]"],
)
def test_a_damaged_watermark_file_is_no_lead_with_a_warning(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "lead.json"
    path.write_text(content)
    assert WatermarkLead(path).seconds == 0.0
    assert f"ignoring {path}" in caplog.text


def test_the_watermark_lead_only_grows_and_is_written_when_it_does(tmp_path: Path) -> None:
    path = tmp_path / "state" / "lead.json"
    lead = WatermarkLead(path)
    lead.note(Batch(RT, [Event(EventType.UPDATE, [_row("/a", time.time() + 2 * DAY)], RT)]))
    assert 2 * DAY - 5 < lead.seconds <= 2 * DAY
    lead.note(Batch(RT, [Event(EventType.UPDATE, [_row("/b", time.time() + DAY)], RT)]))
    assert lead.seconds > 2 * DAY - 5
    assert WatermarkLead(path).seconds == lead.seconds
