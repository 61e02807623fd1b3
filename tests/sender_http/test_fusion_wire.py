"""Wire shapes of the fusion sender: what every ingest body looks like (protocol §2)."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fustor_core import Batch, Event, EventType, MessageSource
from fustor_sender_http.wire import encode_batch, signal_body


def _row(path: str, mtime: float = 1767000000.5, **extra: object) -> dict:
    return {
        "path": path,
        "size": 3,
        "modified_time": mtime,
        "created_time": mtime,
        "is_directory": False,
        **extra,
    }


def _decode(bodies: list[bytes]) -> list[dict]:
    return [json.loads(b.decode("utf-8")) for b in bodies]


def test_snapshot_batch_shape() -> None:
    batch = Batch.of(MessageSource.SNAPSHOT, EventType.UPDATE, [_row("/a"), _row("/b")])
    [body] = _decode(encode_batch(batch, max_batch_size=1000, max_rows_per_event=100).bodies)
    assert body["source_type"] == "snapshot"
    assert body["is_end"] is False
    assert "metadata" not in body
    [event] = body["events"]
    assert event["event_type"] == "update"
    assert event["event_schema"] == "fs"
    assert event["table"] == "files"
    assert event["message_source"] == "snapshot"
    assert event["fields"] == ["path", "size", "modified_time", "created_time", "is_directory"]
    assert [r["path"] for r in event["rows"]] == ["/a", "/b"]
    assert isinstance(event["index"], int)


def test_realtime_batch_keeps_capture_order_and_types() -> None:
    batch = Batch(
        MessageSource.REALTIME,
        [
            Event(EventType.INSERT, [_row("/new", is_atomic_write=True)], MessageSource.REALTIME),
            Event(EventType.DELETE, [{"path": "/old"}], MessageSource.REALTIME),
            Event(EventType.UPDATE, [_row("/new", is_atomic_write=False)], MessageSource.REALTIME),
        ],
    )
    [body] = _decode(encode_batch(batch, max_batch_size=1000, max_rows_per_event=100).bodies)
    assert body["source_type"] == "message"
    assert [(e["event_type"], e["rows"][0]["path"]) for e in body["events"]] == [
        ("insert", "/new"),
        ("delete", "/old"),
        ("update", "/new"),
    ]
    assert {e["message_source"] for e in body["events"]} == {"realtime"}
    assert body["events"][1]["fields"] == ["path"]


def test_each_tier_gets_its_batch_source_type() -> None:
    expected = {
        MessageSource.REALTIME: "message",
        MessageSource.SNAPSHOT: "snapshot",
        MessageSource.AUDIT: "audit",
        MessageSource.SCAN: "on_demand_job",
    }
    for source, source_type in expected.items():
        batch = Batch.of(source, EventType.UPDATE, [_row("/x")])
        [body] = _decode(encode_batch(batch, max_batch_size=10, max_rows_per_event=10).bodies)
        assert body["source_type"] == source_type
        assert body["events"][0]["message_source"] == source.value
        # B10: metadata on a data batch with a job-ish source type drops its events.
        assert "metadata" not in body


def test_rows_are_split_by_event_and_by_request() -> None:
    rows = [_row(f"/f{i}") for i in range(250)]
    batch = Batch.of(MessageSource.AUDIT, EventType.UPDATE, rows)
    encoded = encode_batch(batch, max_batch_size=120, max_rows_per_event=50)
    bodies = _decode(encoded.bodies)
    assert encoded.rows == 250 and encoded.dropped_rows == 0
    assert all(len(e["rows"]) <= 50 for b in bodies for e in b["events"])
    assert all(sum(len(e["rows"]) for e in b["events"]) <= 120 for b in bodies)
    sent = [r["path"] for b in bodies for e in b["events"] for r in e["rows"]]
    assert sent == [f"/f{i}" for i in range(250)]


def test_a_request_never_exceeds_max_batch_size_even_with_larger_events() -> None:
    batch = Batch.of(MessageSource.SNAPSHOT, EventType.UPDATE, [_row(f"/f{i}") for i in range(7)])
    bodies = _decode(encode_batch(batch, max_batch_size=3, max_rows_per_event=100).bodies)
    assert [sum(len(e["rows"]) for e in b["events"]) for b in bodies] == [3, 3, 1]


def test_never_an_event_with_empty_rows() -> None:
    batch = Batch(
        MessageSource.SNAPSHOT,
        [
            Event(EventType.UPDATE, [], MessageSource.SNAPSHOT),
            Event(EventType.UPDATE, [_row("/kept")], MessageSource.SNAPSHOT),
        ],
    )
    bodies = _decode(encode_batch(batch, max_batch_size=10, max_rows_per_event=10).bodies)
    assert [len(e["rows"]) for b in bodies for e in b["events"]] == [1]
    only_empty = Batch(
        MessageSource.SNAPSHOT, [Event(EventType.UPDATE, [], MessageSource.SNAPSHOT)]
    )
    assert encode_batch(only_empty, max_batch_size=10, max_rows_per_event=10).bodies == []


def test_upserts_without_mtime_are_left_out_deletes_need_only_path() -> None:
    batch = Batch(
        MessageSource.REALTIME,
        [
            Event(
                EventType.UPDATE,
                [{"path": "/no-mtime", "size": 1}, _row("/ok")],
                MessageSource.REALTIME,
            ),
            Event(EventType.DELETE, [{"path": "/gone"}, {"size": 3}], MessageSource.REALTIME),
        ],
    )
    encoded = encode_batch(batch, max_batch_size=10, max_rows_per_event=10)
    [body] = _decode(encoded.bodies)
    assert [r["path"] for e in body["events"] for r in e["rows"]] == ["/ok", "/gone"]
    assert encoded.dropped_rows == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"path": "", "modified_time": 1.0},
        {"path": None, "modified_time": 1.0},
        {"size": 3, "modified_time": 1.0},
        {"path": "/mtime-none", "modified_time": None},
        ["/not-a-dict"],
        None,
    ],
    ids=["empty-path", "null-path", "no-path", "null-mtime", "list-row", "none-row"],
)
@pytest.mark.parametrize("where", [0, 500, 999])
def test_one_bad_row_anywhere_in_a_large_batch_is_left_out_and_the_rest_sent(
    bad: object, where: int
) -> None:
    # The whole-batch check takes the fast path only when every row is fine.
    rows: list = [_row(f"/f{i}") for i in range(999)]
    rows.insert(where, bad)
    batch = Batch.of(MessageSource.SNAPSHOT, EventType.UPDATE, rows)
    encoded = encode_batch(batch, max_batch_size=1000, max_rows_per_event=100)
    sent = [r["path"] for b in _decode(encoded.bodies) for e in b["events"] for r in e["rows"]]
    assert sent == [f"/f{i}" for i in range(999)]
    assert encoded.dropped_rows == 1 and encoded.rows == 999


def test_a_delete_needs_no_mtime_but_a_path() -> None:
    rows = [{"path": "/a"}, {"path": "/b", "modified_time": None}, {"path": ""}]
    batch = Batch.of(MessageSource.REALTIME, EventType.DELETE, rows)
    encoded = encode_batch(batch, max_batch_size=10, max_rows_per_event=10)
    [body] = _decode(encoded.bodies)
    assert [r["path"] for r in body["events"][0]["rows"]] == ["/a", "/b"]
    assert encoded.dropped_rows == 1


def test_non_utf8_names_are_sent_with_wire_path_and_do_not_block_the_batch() -> None:
    raw = os.fsdecode(b"/d\xff/caf\xe9.txt")
    parent = os.fsdecode(b"/d\xff")
    rows = [_row("/plain"), _row(raw, parent_path=parent, parent_mtime=1.0, file_name=raw[4:])]
    batch = Batch.of(MessageSource.AUDIT, EventType.UPDATE, rows)
    [blob] = encode_batch(batch, max_batch_size=10, max_rows_per_event=10).bodies
    blob.decode("utf-8", errors="strict")
    [event] = json.loads(blob)["events"]
    assert [r["path"] for r in event["rows"]] == ["/plain", "/d%FF/caf%E9.txt"]
    assert event["rows"][1]["parent_path"] == "/d%FF"
    assert event["rows"][1]["file_name"] == "caf%E9.txt"
    # Valid UTF-8 names (even odd ones) are sent unchanged.
    batch = Batch.of(MessageSource.SNAPSHOT, EventType.UPDATE, [_row("/ü/new\nline %41")])
    [blob] = encode_batch(batch, max_batch_size=10, max_rows_per_event=10).bodies
    assert json.loads(blob)["events"][0]["rows"][0]["path"] == "/ü/new\nline %41"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\0" not in b),
        min_size=1,
        max_size=8,
    )
)
def test_any_byte_name_encodes_to_valid_utf8(names: list[bytes]) -> None:
    rows = [_row("/" + os.fsdecode(n)) for n in names]
    batch = Batch.of(MessageSource.SNAPSHOT, EventType.UPDATE, rows)
    encoded = encode_batch(batch, max_batch_size=100, max_rows_per_event=100)
    [blob] = encoded.bodies
    assert len(json.loads(blob.decode("utf-8"))["events"][0]["rows"]) == len(names)


def test_signal_bodies() -> None:
    assert json.loads(signal_body("snapshot", is_end=True)) == {
        "source_type": "snapshot",
        "is_end": True,
        "events": [],
    }
    assert json.loads(signal_body("audit", is_end=True)) == {
        "source_type": "audit",
        "is_end": True,
        "events": [],
    }
    assert json.loads(
        signal_body("job_complete", metadata={"scan_path": "/q3", "job_id": "a1"})
    ) == {
        "source_type": "job_complete",
        "is_end": False,
        "events": [],
        "metadata": {"scan_path": "/q3", "job_id": "a1"},
    }


def test_audit_flags_are_stripped_when_asked_and_the_batch_is_left_as_it_was() -> None:
    rt = MessageSource.REALTIME
    directory = _row("/d", is_directory=True, audit_skipped=True)
    rows = [_row("/d/f", is_atomic_write=True), directory]
    batch = Batch(rt, [Event(EventType.UPDATE, rows, rt)])
    kept = encode_batch(batch, max_batch_size=10, max_rows_per_event=10)
    [body] = _decode(kept.bodies)
    assert [r.get("audit_skipped") for r in body["events"][0]["rows"]] == [None, True]
    stripped = encode_batch(batch, max_batch_size=10, max_rows_per_event=10, strip_audit_flags=True)
    [body] = _decode(stripped.bodies)
    assert [r.get("audit_skipped") for r in body["events"][0]["rows"]] == [None, None]
    plain = {k: v for k, v in directory.items() if k != "audit_skipped"}
    assert body["events"][0]["rows"][1] == plain
    assert directory["audit_skipped"] is True  # a tap sees the row as the source made it
