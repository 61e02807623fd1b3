"""Session lifecycle of the fusion sender: restart after a crash, close, redaction of secrets."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest
from fake_fusion_receiver import KEY, FakeReceiver, make_sender

from fustor_core import PhaseSignal, Role, ScanCommand, SessionLostError


def _store(tmp_path: Path) -> Path:
    return tmp_path / "state" / "fusion-session.json"


def test_restart_after_crash_closes_the_dead_session_and_takes_over(tmp_path: Path) -> None:
    fusion = FakeReceiver(role="leader")
    first = make_sender(tmp_path, fusion)
    asyncio.run(first.open_session())  # then the process "crashes": no close_session
    dead = fusion.issued[0]

    # The restarted agent comes back behind its own dead leader session...
    fusion.role = "follower"
    fusion.script(
        "POST heartbeat",
        httpx.Response(
            200,
            json={
                "status": "ok",
                "role": "leader",
                "commands": [{"type": "scan", "path": "/x", "recursive": False, "job_id": "j1"}],
            },
        ),
    )
    second = make_sender(tmp_path, fusion)

    async def run() -> None:
        info = await second.open_session()
        # ...closes it once it has its own, and learns at once that it was promoted.
        assert info.role is Role.LEADER
        # The dead leader's rows are still in the view: promoted is not empty.
        assert info.starts_empty is False
        assert info.session_id == fusion.issued[1]
        beat = await second.heartbeat(can_realtime=True)
        assert beat.commands == [ScanCommand("/x", False, "j1")]  # not lost on the way

    asyncio.run(run())
    routes = [(r.method, r.url.path) for r in fusion.requests[1:]]
    assert routes[:3] == [
        ("POST", "/api/v1/pipe/session/"),
        ("DELETE", f"/api/v1/pipe/session/{dead}"),
        ("POST", f"/api/v1/pipe/session/{fusion.issued[1]}/heartbeat"),
    ]
    assert json.loads(_store(tmp_path).read_text())["session_id"] == fusion.issued[1]


@pytest.mark.parametrize(("role", "empty"), [("leader", True), ("follower", False)])
def test_only_a_session_that_leads_from_its_create_starts_on_an_empty_view(
    tmp_path: Path, role: str, empty: bool
) -> None:
    """Fusion wipes a view when its last session ends and promotes a remaining session
    when a leader goes (protocol §5.1): leading at create means nobody held the view."""
    fusion = FakeReceiver(role=role)
    info = asyncio.run(make_sender(tmp_path, fusion).open_session())
    assert info.role is Role(role)
    assert info.starts_empty is empty


def test_a_new_session_after_a_lost_one_closes_the_old_id(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    fusion.script("POST heartbeat", httpx.Response(200, json={"status": "error", "message": "x"}))
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        with pytest.raises(SessionLostError):
            await sender.heartbeat(can_realtime=True)
        await sender.open_session()

    asyncio.run(run())
    [delete] = fusion.of("DELETE session")
    assert delete.url.path.endswith(fusion.issued[0])


def test_stored_session_of_another_endpoint_is_not_sent_there(tmp_path: Path) -> None:
    _store(tmp_path).parent.mkdir(parents=True)
    _store(tmp_path).write_text(
        json.dumps(
            {
                "endpoint": "http://elsewhere:8102",
                "session_id": "0b8e2a6c-1111-4222-8333-444455556666",
            }
        )
    )
    fusion = FakeReceiver()
    asyncio.run(make_sender(tmp_path, fusion).open_session())
    assert fusion.of("DELETE session") == []


def test_unreadable_state_file_is_ignored(tmp_path: Path) -> None:
    _store(tmp_path).parent.mkdir(parents=True)
    _store(tmp_path).write_text("{not json")
    fusion = FakeReceiver()
    info = asyncio.run(make_sender(tmp_path, fusion).open_session())
    assert info.session_id == fusion.issued[0]


def test_close_session_deletes_and_forgets(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        await sender.close_session()
        await sender.close_session()  # idempotent, nothing more sent
        await sender.close()
        await sender.close()

    asyncio.run(run())
    [delete] = fusion.of("DELETE session")
    assert delete.url.path == f"/api/v1/pipe/session/{fusion.issued[0]}"
    assert not _store(tmp_path).exists()


def test_close_session_failure_keeps_the_id_for_the_next_start(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    fusion.script("DELETE session", httpx.ConnectError("refused"))
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        await sender.close_session()  # never raises

    asyncio.run(run())
    assert json.loads(_store(tmp_path).read_text())["session_id"] == fusion.issued[0]


def test_session_ids_and_key_never_in_logs_or_status(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fusion = FakeReceiver()
    fusion.script("POST heartbeat", httpx.Response(200, json={"status": "ok", "role": "follower"}))
    sender = make_sender(tmp_path, fusion)
    sid_holder: list[str] = []

    async def run() -> None:
        info = await sender.open_session()
        sid_holder.append(info.session_id)
        await sender.heartbeat(can_realtime=True)
        fusion.script(
            "POST ingest",
            httpx.Response(404, json={"detail": f"Session {info.session_id} not found or expired"}),
        )
        result = await sender.signal(PhaseSignal.SNAPSHOT_END)
        assert info.session_id not in result.detail
        assert info.session_id[:8] in result.detail

    with caplog.at_level(logging.DEBUG):
        asyncio.run(run())
    [sid] = sid_holder
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert sid[:8] in text  # the prefix is there, so the redaction is what hides the rest
    assert sid not in text
    assert KEY not in text
    assert any(r.name == "httpx" for r in caplog.records)  # httpx logged URLs, redacted
    status = json.dumps(sender.status())
    assert KEY not in status and sid not in status


def test_status_is_json_and_counts(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    sender = make_sender(tmp_path, fusion)
    asyncio.run(sender.open_session())
    status = sender.status()
    json.dumps(status)
    assert status["session"] == f"{fusion.issued[0][:8]}…"
    assert status["role"] == "leader"
    # The session create, and the one check that the endpoint is a receiver port.
    assert status["sessions_opened"] == 1 and status["requests"] == 2
    assert len(fusion.probes) == 1
    assert status["endpoint"] == "http://fusion.test:8102"


def test_unwritable_state_dir_does_not_fail_the_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "state").write_text("a file where the state directory should be")
    fusion = FakeReceiver()
    info = asyncio.run(make_sender(tmp_path, fusion).open_session())
    assert info.session_id == fusion.issued[0]
    assert any("cannot keep the session id" in r.getMessage() for r in caplog.records)


def test_a_realtime_audit_flag_goes_out_only_while_the_audit_may_be_open(tmp_path: Path) -> None:
    """A source marks the realtime row of a directory its audit skipped ``audit_skipped``;
    the sender keeps the mark from its audit start until Fusion acknowledged the end, and
    drops it otherwise (protocol §5.5, helper 26). The audit's own rows are left alone."""
    from fustor_core import Batch, EventType, MessageSource

    def rows() -> list[dict]:
        return [
            {"path": "/d/f", "size": 1, "modified_time": 2.0, "created_time": 2.0},
            {"path": "/d", "size": 0, "modified_time": 2.0, "created_time": 2.0}
            | {"is_directory": True, "audit_skipped": True},
        ]

    def flags() -> list[object]:
        event = fusion.bodies("POST ingest")[-1]["events"][0]
        return [r.get("audit_skipped") for r in event["rows"]]

    rt, audit = MessageSource.REALTIME, MessageSource.AUDIT
    fusion = FakeReceiver(role="leader")
    sender = make_sender(tmp_path, fusion)
    seen = []

    async def run() -> None:
        await sender.open_session()
        for step in ("before", "start", "audit row", "end failed", "end", "after"):
            if step == "start":
                assert (await sender.signal(PhaseSignal.AUDIT_START)).ok
            if step == "audit row":
                assert (await sender.send(Batch.of(audit, EventType.UPDATE, rows()))).ok
                seen.append((step, flags()))
            if step == "end failed":
                fusion.script("POST ingest", httpx.Response(503, json={"detail": "busy"}))
                assert not (await sender.signal(PhaseSignal.AUDIT_END)).ok
            if step == "end":
                assert (await sender.signal(PhaseSignal.AUDIT_END)).ok
            assert (await sender.send(Batch.of(rt, EventType.UPDATE, rows()))).ok
            seen.append((step, flags()))
        await sender.open_session()  # a new session ends any audit in Fusion (B19)
        assert (await sender.signal(PhaseSignal.AUDIT_START)).ok
        await sender.open_session()
        assert (await sender.send(Batch.of(rt, EventType.UPDATE, rows()))).ok
        seen.append(("new session", flags()))

    asyncio.run(run())
    assert seen == [
        ("before", [None, None]),
        ("start", [None, True]),
        ("audit row", [None, True]),
        ("audit row", [None, True]),
        ("end failed", [None, True]),
        ("end", [None, None]),
        ("after", [None, None]),
        ("new session", [None, None]),
    ]
