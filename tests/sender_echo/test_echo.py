"""The echo sender: entry point, line formats and the emulated leader session."""

from __future__ import annotations

import asyncio
import json
import os
import re
from importlib.metadata import entry_points
from pathlib import Path

from fustor_agent_sdk import ENTRY_POINT_GROUP, PipeContext
from fustor_core import Batch, Event, EventType, MessageSource, PhaseSignal, Role
from fustor_sender_echo import EchoConfig, EchoSender


def make_sender(tmp_path: Path, **params: object) -> EchoSender:
    config = EchoConfig.model_validate({"driver_params": params})
    context = PipeContext("agent-1", "pipe-1", "/data", tmp_path / "state")
    return EchoSender("echo-1", config, context)


def test_entry_point_registers_echo() -> None:
    (ep,) = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == "echo"]
    hooks = ep.load()
    assert EchoSender in hooks.fustor_sender_drivers()


def test_json_lines_one_per_row_and_signal(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    sender = make_sender(tmp_path, format="json", output=str(out), audit_interval_sec=5)
    rows = [
        {"path": "/a", "size": 1, "modified_time": 2.0, "is_directory": False},
        {"path": os.fsdecode(b"/caf\xe9"), "size": 3, "modified_time": 4.0},
    ]
    batch = Batch(
        MessageSource.REALTIME,
        [
            Event(EventType.UPDATE, rows, MessageSource.REALTIME),
            Event(EventType.DELETE, [{"path": "/gone"}], MessageSource.REALTIME),
        ],
    )

    async def run() -> None:
        session = await sender.open_session()
        assert session.role is Role.LEADER
        assert session.audit_interval_sec == 5
        assert (await sender.send(batch)).ok
        assert (await sender.signal(PhaseSignal.SCAN_END, scan_path="/x", job_id="j1")).ok
        await sender.close()

    asyncio.run(run())
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {"pipe_id": "pipe-1", "message_source": "realtime", "event_type": "update", "row": rows[0]},
        {
            "pipe_id": "pipe-1",
            "message_source": "realtime",
            "event_type": "update",
            "row": {"path": "/caf%E9", "size": 3, "modified_time": 4.0},
        },
        {
            "pipe_id": "pipe-1",
            "message_source": "realtime",
            "event_type": "delete",
            "row": {"path": "/gone"},
        },
        {"pipe_id": "pipe-1", "signal": "job_complete", "scan_path": "/x", "job_id": "j1"},
    ]
    assert sender.status() == {"rows_written": 3, "signals_written": 1}


def test_json_lines_keep_values_the_fast_encoder_refuses(tmp_path: Path) -> None:
    """A third-party driver's row may hold what orjson cannot encode (an integer beyond
    64 bits, a non-string key): the line is still written, as the standard library does."""
    out = tmp_path / "out.jsonl"
    sender = make_sender(tmp_path, format="json", output=str(out))
    rows = [
        {"path": "/big", "size": 2**70, "modified_time": 1.5},
        {"path": "/keys", "size": 1, "modified_time": 1.5, "xattrs": {7: "seven"}},
        {"path": "/ok", "size": 2, "modified_time": 1.25, "is_directory": False},
    ]

    async def run() -> None:
        batch = Batch.of(MessageSource.SNAPSHOT, EventType.UPDATE, rows)
        assert (await sender.send(batch)).ok
        await sender.close()

    asyncio.run(run())
    lines = [json.loads(line)["row"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines == [rows[0], {**rows[1], "xattrs": {"7": "seven"}}, rows[2]]


def test_text_lines_are_readable(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    sender = make_sender(tmp_path)
    batch = Batch.of(
        MessageSource.SNAPSHOT,
        EventType.UPDATE,
        [{"path": "/dir", "size": 4096, "modified_time": 1.5, "is_directory": True}],
    )
    asyncio.run(sender.send(batch))
    asyncio.run(sender.signal(PhaseSignal.SNAPSHOT_END))
    assert capsys.readouterr().out.splitlines() == [
        '[pipe-1] snapshot      update dir  "/dir" size=4096 mtime=1.500',
        "[pipe-1] signal snapshot_end",
    ]


def test_json_lines_keep_a_row_with_raw_bytes_outside_its_paths(tmp_path: Path) -> None:
    """A name's raw bytes are escaped in ``path`` (protocol §2.1); elsewhere in a row (a
    third-party driver's own field) they are written as a JSON escape, never a failed send,
    and the rows around it keep the fast encoding."""
    out = tmp_path / "out.jsonl"
    sender = make_sender(tmp_path, format="json", output=str(out))
    raw = os.fsdecode(b"caf\xe9")
    rows = [
        {"path": "/a", "size": 1, "modified_time": 1.5},
        {"path": "/b", "size": 2, "modified_time": 1.5, "owner": raw},
        {"path": "/\u00e9t\u00e9", "size": 3, "modified_time": 1.5},
    ]

    async def run() -> None:
        assert (await sender.send(Batch.of(MessageSource.AUDIT, EventType.UPDATE, rows))).ok
        await sender.close()

    asyncio.run(run())
    text = out.read_bytes().decode("utf-8")
    assert [json.loads(line) for line in text.splitlines()] == [
        {"pipe_id": "pipe-1", "message_source": "audit", "event_type": "update", "row": row}
        for row in rows
    ]
    assert sender.status() == {"rows_written": 3, "signals_written": 0}


BREAKING_NAMES = ["/a\u2028b", "/c\u2029d", "/e\x85f", "/g\u2026h\u2028"]
"""Names holding the line breaks JSON leaves raw (U+2028, U+2029, U+0085), and one with
another character whose UTF-8 starts like them (U+2026)."""


def test_json_and_text_lines_stay_one_line_for_any_splitter(tmp_path: Path) -> None:
    rows = [{"path": p, "size": 1, "modified_time": 1.5} for p in BREAKING_NAMES]
    for fmt in ("json", "text"):
        out = tmp_path / f"out.{fmt}"
        sender = make_sender(tmp_path, format=fmt, output=str(out))

        async def run(sender: EchoSender = sender) -> None:
            await sender.send(Batch.of(MessageSource.REALTIME, EventType.UPDATE, rows))
            await sender.signal(PhaseSignal.AUDIT_END, note="x\u2028y")
            await sender.close()

        asyncio.run(run())
        lines = out.read_text("utf-8").splitlines()  # splits on U+2028, U+2029, U+0085 too
        assert len(lines) == len(rows) + 1, lines
        if fmt == "json":
            assert [json.loads(line)["row"]["path"] for line in lines[:-1]] == BREAKING_NAMES
            assert json.loads(lines[-1])["note"] == "x\u2028y"
        else:
            quoted = [re.search(r' (".*") size=', line) for line in lines[:-1]]
            assert [json.loads(q[1]) for q in quoted if q] == BREAKING_NAMES
