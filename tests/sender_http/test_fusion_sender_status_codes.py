"""Every status code of protocol §4, through the fusion sender, with httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from fake_fusion_receiver import KEY, FakeReceiver, make_sender

from fustor_core import (
    Batch,
    DriverError,
    EventType,
    MessageSource,
    PhaseSignal,
    Role,
    ScanCommand,
    SendStatus,
    SessionLostError,
)


def _batch(source: MessageSource = MessageSource.REALTIME, n: int = 1) -> Batch:
    rows = [
        {
            "path": f"/f{i}",
            "size": 1,
            "modified_time": 1.0,
            "created_time": 1.0,
            "is_directory": False,
        }
        for i in range(n)
    ]
    return Batch.of(source, EventType.UPDATE, rows)


def _reply(code: int, detail: object = "x") -> httpx.Response:
    return httpx.Response(code, json={"detail": detail})


# -- session create -------------------------------------------------------------------------


def test_create_sends_task_id_source_uri_key_and_trailing_slash(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    sender = make_sender(tmp_path, fusion, session_timeout_sec=12)

    async def run() -> None:
        info = await sender.open_session()
        assert info.role is Role.LEADER
        assert info.timeout_sec == 30.0
        assert info.audit_interval_sec == 600.0 and info.sentinel_interval_sec == 120.0
        await sender.close()

    asyncio.run(run())
    [request] = fusion.of("POST create")
    assert request.url.path == "/api/v1/pipe/session/"
    assert request.headers["x-api-key"] == KEY
    assert json.loads(request.content) == {
        "task_id": "agent-7:research",
        "client_info": {"source_uri": "/data/research"},
        "session_timeout_seconds": 12,
    }
    stored = tmp_path / "state" / "fusion-session.json"
    assert json.loads(stored.read_text())["session_id"] == fusion.issued[0]
    assert stored.stat().st_mode & 0o777 == 0o600


def test_zero_intervals_mean_disabled(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    fusion.script(
        "POST create",
        httpx.Response(
            200,
            json={
                "session_id": "0b8e2a6c-1111-4222-8333-444455556666",
                "role": "follower",
                "session_timeout_seconds": 9,
                "audit_interval_sec": 0,
                "sentinel_interval_sec": None,
                "is_leader": False,
            },
        ),
    )
    sender = make_sender(tmp_path, fusion)
    info = asyncio.run(sender.open_session())
    assert (info.role, info.timeout_sec) == (Role.FOLLOWER, 9.0)
    assert info.audit_interval_sec is None and info.sentinel_interval_sec is None


@pytest.mark.parametrize(
    ("code", "retriable", "words"),
    [
        (401, False, "refused the API key"),
        (400, False, "no running pipe"),
        (409, True, "refused to open a session (409 boom)"),
        (307, False, "receiver URL"),
        (404, False, "receiver URL"),
        (422, False, "HTTP 422"),
        (500, True, "HTTP 500"),
        (503, True, "HTTP 503"),
    ],
)
def test_create_errors(tmp_path: Path, code: int, retriable: bool, words: str) -> None:
    fusion = FakeReceiver()
    fusion.script("POST create", _reply(code, "Invalid API key" if code == 401 else "boom"))
    sender = make_sender(tmp_path, fusion)
    with pytest.raises(DriverError) as caught:
        asyncio.run(sender.open_session())
    assert caught.value.retriable is retriable
    assert words in str(caught.value)
    assert KEY not in str(caught.value)
    assert sender.session_id is None


def test_create_409_of_the_lock_says_locked(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    lock = "View research is currently locked by session 1234. Concurrent push is disabled."
    fusion.script("POST create", _reply(409, lock))
    sender = make_sender(tmp_path, fusion)
    with pytest.raises(DriverError) as caught:
        asyncio.run(sender.open_session())
    assert caught.value.retriable is True
    assert "has the view locked by another session" in str(caught.value)
    assert not fusion.of("GET /api/v1/management/views")  # a lock needs no probe


@pytest.mark.parametrize("code", [409, 401, 404])
def test_create_on_the_management_port_is_diagnosed_as_such(tmp_path: Path, code: int) -> None:
    fusion = FakeReceiver()
    fusion.script("POST create", _reply(code, "Pipe v1 not found"))
    fusion.script("GET /api/v1/management/views", httpx.Response(200, json={"running_views": {}}))
    sender = make_sender(tmp_path, fusion)
    with pytest.raises(DriverError) as caught:
        asyncio.run(sender.open_session())
    message = str(caught.value)
    assert "is Fusion's management port" in message and "receivers.<id>.port" in message
    assert "locked" not in message
    assert caught.value.retriable is False


def test_heartbeat_errors_do_not_repeat_the_operation(tmp_path: Path) -> None:
    # The host prefixes "heartbeat failed:" / "heartbeat:"; the sender's message must not.
    fusion = FakeReceiver()
    fusion.script("POST heartbeat", httpx.ConnectError("refused"), _reply(500))
    sender = make_sender(tmp_path, fusion)

    async def run() -> list[str]:
        await sender.open_session()
        messages = []
        for _ in range(2):
            with pytest.raises(DriverError) as caught:
                await sender.heartbeat(can_realtime=True)
            messages.append(str(caught.value))
        return messages

    messages = asyncio.run(run())
    assert messages[0].startswith("cannot reach Fusion at ")
    assert messages[1].startswith("Fusion answered HTTP 500")
    assert not any("heartbeat" in m for m in messages), messages


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
def test_create_network_failures_are_retriable(tmp_path: Path, failure: Exception) -> None:
    fusion = FakeReceiver()
    fusion.script("POST create", failure)
    with pytest.raises(DriverError) as caught:
        asyncio.run(make_sender(tmp_path, fusion).open_session())
    assert caught.value.retriable is True
    assert "cannot reach Fusion" in str(caught.value)


# -- heartbeat --------------------------------------------------------------------------------


def test_heartbeat_reports_role_and_scan_commands(tmp_path: Path) -> None:
    fusion = FakeReceiver(role="follower")
    fusion.script(
        "POST heartbeat",
        httpx.Response(
            200,
            json={
                "status": "ok",
                "role": "leader",
                "message": None,
                "can_realtime": None,
                "commands": [
                    {
                        "type": "scan",
                        "path": "/projects/q3",
                        "recursive": True,
                        "job_id": "a41c07f2",
                        "created_at": 1.0,
                    },
                    {"type": "reboot"},
                ],
            },
        ),
    )
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        beat = await sender.heartbeat(can_realtime=True)
        assert beat.role is Role.LEADER
        assert beat.commands == [ScanCommand("/projects/q3", True, "a41c07f2")]
        assert sender.status()["role"] == "leader"

    asyncio.run(run())
    assert fusion.bodies("POST heartbeat") == [{"can_realtime": True}]


@pytest.mark.parametrize(
    "reply",
    [
        _reply(419, "Session obsoleted"),
        _reply(419, "Session 0b8e2a6c-1111-4222-8333-444455556666 expired in SessionManager"),
        _reply(404, "Session not found"),
        httpx.Response(200, json={"status": "error", "role": "leader", "message": "boom"}),
    ],
)
def test_heartbeat_session_lost(tmp_path: Path, reply: httpx.Response) -> None:
    fusion = FakeReceiver()
    fusion.script("POST heartbeat", reply)
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        with pytest.raises(SessionLostError):
            await sender.heartbeat(can_realtime=True)
        # Everything session-bound now says so, until a new session is opened.
        assert (await sender.send(_batch())).status is SendStatus.SESSION_LOST
        with pytest.raises(SessionLostError):
            await sender.heartbeat(can_realtime=True)
        assert sender.status()["session"] is None

    asyncio.run(run())


@pytest.mark.parametrize(
    ("reply", "retriable"),
    [
        (_reply(500), True),
        (_reply(503), True),
        (_reply(422), False),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (httpx.Response(200, text="<html>"), True),
    ],
)
def test_heartbeat_failures_keep_the_session(
    tmp_path: Path, reply: object, retriable: bool
) -> None:
    fusion = FakeReceiver()
    fusion.script("POST heartbeat", reply)  # type: ignore[arg-type]
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        with pytest.raises(DriverError) as caught:
            await sender.heartbeat(can_realtime=False)
        assert not isinstance(caught.value, SessionLostError)
        assert caught.value.retriable is retriable
        assert (await sender.heartbeat(can_realtime=False)).role is Role.LEADER

    asyncio.run(run())


# -- ingest -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (httpx.Response(200, json={"status": "ok", "count": 1}), SendStatus.OK),
        (_reply(404, "Session abc not found or expired"), SendStatus.SESSION_LOST),
        (_reply(422, [{"loc": ["body", "events", 0], "msg": "bad"}]), SendStatus.REJECTED),
        (_reply(400, "There was an error parsing the body"), SendStatus.REJECTED),
        (_reply(500, "Failed to process events"), SendStatus.RETRY),
        (httpx.Response(503, text="Event handler not configured"), SendStatus.RETRY),
        (httpx.ConnectError("refused"), SendStatus.RETRY),
        (httpx.ReadTimeout("slow"), SendStatus.RETRY),
        (httpx.RemoteProtocolError("closed"), SendStatus.RETRY),
    ],
)
def test_ingest_status_codes(tmp_path: Path, reply: object, status: SendStatus) -> None:
    fusion = FakeReceiver()
    fusion.script("POST ingest", reply)  # type: ignore[arg-type]
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        result = await sender.send(_batch())
        assert result.status is status
        assert (result.detail == "") is (status is SendStatus.OK)
        assert (sender.session_id is None) is (status is SendStatus.SESSION_LOST)

    asyncio.run(run())
    assert len(fusion.of("POST ingest")) == 1


def test_send_without_session_is_session_lost_and_sends_nothing(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    result = asyncio.run(make_sender(tmp_path, fusion).send(_batch()))
    assert result.status is SendStatus.SESSION_LOST
    assert fusion.requests == []


def test_retry_of_a_split_batch_resends_only_the_unacknowledged_part(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    ok = httpx.Response(200, json={"status": "ok", "count": 1})
    fusion.script("POST ingest", ok, _reply(500))
    sender = make_sender(tmp_path, fusion, max_batch_size=10, max_rows_per_event=10)
    batch = _batch(MessageSource.SNAPSHOT, n=25)

    async def run() -> None:
        await sender.open_session()
        assert (await sender.send(batch)).status is SendStatus.RETRY
        assert (await sender.send(batch)).ok

    asyncio.run(run())
    sent = [r["path"] for b in fusion.bodies("POST ingest") for e in b["events"] for r in e["rows"]]
    # first body, failed second body, then the second and third again: nothing twice after an ack
    assert sent == [f"/f{i}" for i in range(10)] + [f"/f{i}" for i in range(10, 20)] * 2 + [
        f"/f{i}" for i in range(20, 25)
    ]
    assert sender.status()["rows_sent"] == 25


def test_split_batches_given_up_on_are_not_held_for_ever(tmp_path: Path) -> None:
    """A batch whose first request was acknowledged and whose second failed is remembered
    for its retry; one the host never retries must not stay in memory: past 64 such
    batches the oldest is forgotten and, if it comes back after all, goes again whole."""
    fusion = FakeReceiver()
    ok = httpx.Response(200, json={"status": "ok", "count": 1})
    for _ in range(70):
        fusion.script("POST ingest", ok, _reply(500))
    sender = make_sender(tmp_path, fusion, max_batch_size=10, max_rows_per_event=10)
    batches = [_batch(MessageSource.SNAPSHOT, n=20) for _ in range(70)]

    async def run() -> None:
        await sender.open_session()
        for batch in batches:
            assert (await sender.send(batch)).status is SendStatus.RETRY
        before = len(fusion.of("POST ingest"))
        assert (await sender.send(batches[-1])).ok  # remembered: its second request only
        assert len(fusion.of("POST ingest")) == before + 1
        assert (await sender.send(batches[0])).ok  # forgotten: both requests again
        assert len(fusion.of("POST ingest")) == before + 3

    asyncio.run(run())


@pytest.mark.parametrize(
    ("source", "status"),
    [(MessageSource.AUDIT, SendStatus.REJECTED), (MessageSource.SNAPSHOT, SendStatus.OK)],
)
def test_audit_rows_left_out_make_the_batch_count_as_rejected(
    tmp_path: Path, source: MessageSource, status: SendStatus
) -> None:
    """A row Fusion cannot apply (no modified_time) is left out; in an audit Fusion would
    then delete that path at the end, so the batch reports a rejection (the host holds the
    audit end back). The rows that can be sent are sent either way."""
    fusion = FakeReceiver()
    sender = make_sender(tmp_path, fusion)
    batch = _batch(source, n=3)
    del batch.events[0].rows[1]["modified_time"]

    async def run() -> None:
        await sender.open_session()
        result = await sender.send(batch)
        assert result.status is status
        if status is SendStatus.REJECTED:
            assert "1 audit row(s) without path or modified_time left out" in result.detail

    asyncio.run(run())
    sent = [r["path"] for b in fusion.bodies("POST ingest") for e in b["events"] for r in e["rows"]]
    assert sent == ["/f0", "/f2"]


# -- signals ----------------------------------------------------------------------------------


def test_snapshot_end_and_job_complete_bodies(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        assert (await sender.signal(PhaseSignal.SNAPSHOT_END)).ok
        assert (
            await sender.signal(PhaseSignal.SCAN_END, scan_path="q3/../x", job_id="a41c07f2")
        ).ok

    asyncio.run(run())
    assert fusion.bodies("POST ingest") == [
        {"source_type": "snapshot", "is_end": True, "events": []},
        {
            "source_type": "job_complete",
            "is_end": False,
            "events": [],
            "metadata": {"scan_path": "q3/../x", "job_id": "a41c07f2"},
        },
    ]


def test_audit_end_is_its_own_long_request_and_no_audit_end_call(tmp_path: Path) -> None:
    """After a drain that timed out (30 s), Fusion finalises the audit while audit rows are
    still queued; they start a new audit, and an ``audit/end`` call then finalised that
    half-seen one, deleting the unseen children of its directories (helper 18: 63,000
    files against the real Fusion). The end batch alone finalises a complete audit."""
    fusion = FakeReceiver()
    sender = make_sender(tmp_path, fusion, audit_end_timeout_sec=61, read_timeout_sec=7)

    async def run() -> None:
        await sender.open_session()
        assert (await sender.signal(PhaseSignal.AUDIT_START)).ok
        assert (await sender.signal(PhaseSignal.AUDIT_END)).ok

    asyncio.run(run())
    routes = [f"{r.method} {r.url.path}" for r in fusion.requests[1:]]
    assert routes == [
        "POST /api/v1/pipe/consistency/audit/start",
        f"POST /api/v1/pipe/ingest/{fusion.issued[0]}/events",
    ]
    end_batch = fusion.requests[2]
    assert json.loads(end_batch.content) == {"source_type": "audit", "is_end": True, "events": []}
    assert end_batch.extensions["timeout"]["read"] == 61
    assert fusion.requests[1].extensions["timeout"]["read"] == 7
    assert sender.status()["misconfiguration"] is None


def test_audit_end_batch_failure_skips_the_end_call(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    fusion.script("POST ingest", httpx.ReadTimeout("drain took too long"))
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        assert (await sender.signal(PhaseSignal.AUDIT_END)).status is SendStatus.RETRY

    asyncio.run(run())
    assert fusion.of("POST audit/end") == []


def test_b2_misconfiguration_is_reported_with_the_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fusion = FakeReceiver(drivers_handled=0)
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        assert (await sender.signal(PhaseSignal.AUDIT_START)).ok
        problem = sender.status()["misconfiguration"]
        assert "drivers_handled: 0" in problem and "views.<view>.api_keys" in problem
        assert sender.health() == problem  # the host turns it into "not ready"
        fusion.drivers_handled = 1
        assert (await sender.signal(PhaseSignal.AUDIT_START)).ok
        assert sender.status()["misconfiguration"] is None
        assert sender.health() is None

    with caplog.at_level("INFO"):
        asyncio.run(run())
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "pipe id equal to its (first) view id" in errors[0]


@pytest.mark.parametrize(("code", "status"), [(401, SendStatus.REJECTED), (500, SendStatus.RETRY)])
def test_audit_start_errors(tmp_path: Path, code: int, status: SendStatus) -> None:
    fusion = FakeReceiver()
    fusion.script("POST audit/start", _reply(code))
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        assert (await sender.signal(PhaseSignal.AUDIT_START)).status is status

    asyncio.run(run())


@pytest.mark.parametrize("signal", list(PhaseSignal))
def test_signals_without_session(tmp_path: Path, signal: PhaseSignal) -> None:
    fusion = FakeReceiver()
    result = asyncio.run(make_sender(tmp_path, fusion).signal(signal, scan_path="/", job_id="j"))
    assert result.status is SendStatus.SESSION_LOST
    assert fusion.requests == []


# -- sentinel ---------------------------------------------------------------------------------


def test_sentinel_tasks_and_feedback(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    fusion.script(
        "GET sentinel/tasks",
        httpx.Response(
            200, json={"type": "suspect_check", "paths": ["/a", "/b"], "view_id": "research"}
        ),
    )
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        assert await sender.sentinel_tasks() == ["/a", "/b"]
        assert await sender.sentinel_tasks() == []  # `{}`: nothing to check
        assert (await sender.sentinel_feedback([])).ok
        updates = [{"path": "/a", "mtime": 5.5, "size": 7}, {"path": "/b", "mtime": None}]
        assert (await sender.sentinel_feedback(updates)).ok

    asyncio.run(run())
    assert fusion.bodies("POST sentinel/feedback") == [
        {
            "type": "suspect_update",
            "updates": [{"path": "/a", "mtime": 5.5, "size": 7, "status": "exists"}],
        }
    ]


def test_sentinel_tasks_errors(tmp_path: Path) -> None:
    fusion = FakeReceiver()
    fusion.script("GET sentinel/tasks", _reply(401), _reply(503))
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        with pytest.raises(DriverError) as unauthorised:
            await sender.sentinel_tasks()
        assert unauthorised.value.retriable is False
        with pytest.raises(DriverError) as unavailable:
            await sender.sentinel_tasks()
        assert unavailable.value.retriable is True

    asyncio.run(run())


def test_oversized_answers_are_not_read_and_the_batch_is_retried(tmp_path: Path) -> None:
    """A broken server answering megabytes must not make the agent hold them (memory)."""
    fusion = FakeReceiver()
    huge = b'{"status": "ok", "pad": "' + b"x" * (2 << 20) + b'"}'
    fusion.script("POST ingest", httpx.Response(200, content=huge))
    fusion.script(
        "GET sentinel/tasks", httpx.Response(200, content=b"[" + b" " * (65 << 20) + b"]")
    )
    sender = make_sender(tmp_path, fusion)

    async def run() -> None:
        await sender.open_session()
        first = await sender.send(_batch())
        assert first.status is SendStatus.RETRY and "larger than" in first.detail
        assert (await sender.send(_batch())).ok  # the same batch, once Fusion behaves
        with pytest.raises(DriverError, match="larger than") as caught:
            await sender.sentinel_tasks()
        assert caught.value.retriable

    asyncio.run(run())
    assert len(fusion.of("POST ingest")) == 2
