"""The fusion sender driven directly against the real Fusion 0.8.17 server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
from fusion_harness import AGENT_KEY, FusionServer, disk_tree, wait_until

from fustor_agent_sdk import PipeContext
from fustor_core import (
    Batch,
    Event,
    EventType,
    MessageSource,
    PhaseSignal,
    Role,
    SendStatus,
    SessionLostError,
)
from fustor_sender_http import FusionSender, FusionSenderConfig

pytestmark = pytest.mark.fusion


def make_sender(
    server: FusionServer, state: Path, agent: str = "agent-a", **params: Any
) -> FusionSender:
    config = FusionSenderConfig.model_validate(
        {
            "endpoint": server.endpoint,
            "credential": AGENT_KEY,
            "driver_params": {"trust_env": False, **params},
        }
    )
    context = PipeContext(agent_id=agent, pipe_id="files", source_uri=str(state), state_dir=state)
    return FusionSender("to-fusion", config, context)


def _stat_row(root: Path, full: bytes, **extra: Any) -> dict[str, Any]:
    st = os.lstat(full)
    rel = os.fsdecode(full[len(os.fsencode(root)) :]) or "/"
    return {
        "path": rel,
        "size": st.st_size,
        "modified_time": st.st_mtime,
        "created_time": st.st_ctime,
        "is_directory": os.path.isdir(full),
        **extra,
    }


def snapshot_rows(root: Path) -> list[dict[str, Any]]:
    rows = []
    for dirpath, _dirnames, filenames in os.walk(os.fsencode(root)):
        rows.append(_stat_row(root, dirpath))
        rows.extend(_stat_row(root, os.path.join(dirpath, n)) for n in filenames)
    return rows


def audit_rows(root: Path) -> list[dict[str, Any]]:
    """§7.4 full audit: each directory's files (with parent), then the directory row itself."""
    rows = []
    for dirpath, _dirs, filenames in os.walk(os.fsencode(root), topdown=False):
        dir_row = _stat_row(root, dirpath, audit_skipped=False)
        rows.extend(
            _stat_row(
                root,
                os.path.join(dirpath, n),
                parent_path=dir_row["path"],
                parent_mtime=dir_row["modified_time"],
            )
            for n in filenames
        )
        rows.append(dir_row)
    return rows


def make_tree(root: Path) -> None:
    (root / "projects" / "q3").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "projects" / "plan.md").write_text("plan")
    (root / "projects" / "q3" / "report.csv").write_text("a,b\n1,2\n")
    (root / "top.txt").write_text("top")
    (root / os.fsdecode(b"caf\xe9.bin")).write_bytes(b"raw name")  # not UTF-8


async def closing(body: Coroutine[Any, Any, None], *senders: FusionSender) -> None:
    """Run a scenario, then close every sender's session and client whatever happened."""
    try:
        await body
    finally:
        for sender in senders:
            await sender.close_session()
            await sender.close()


async def lead_snapshot(sender: FusionSender, root: Path) -> None:
    rows = snapshot_rows(root)
    result = await sender.send(Batch.of(MessageSource.SNAPSHOT, EventType.UPDATE, rows))
    assert result.ok, result
    assert (await sender.signal(PhaseSignal.SNAPSHOT_END)).ok


async def lead_synced(fusion: FusionServer, sender: FusionSender, root: Path) -> None:
    """Open a session, send the snapshot of ``root`` as its leader, wait until Fusion holds it."""
    await sender.open_session()
    await lead_snapshot(sender, root)
    fusion.wait_tree(disk_tree(root))


def _tree_d(tmp_path: Path, **params: Any) -> tuple[Path, Any]:
    """``data/d/f1..f3`` and the real fs source on it (``params`` added to its driver's)."""
    from fustor_source_fs import FsSource, FsSourceConfig

    root = tmp_path / "data"
    (root / "d").mkdir(parents=True)
    for name in ("f1", "f2", "f3"):
        (root / "d" / name).write_text(name)
    params = {"audit_mtime_tick_sec": 0, "full_sweep_interval_sec": 0, **params}
    return root, FsSource("files", FsSourceConfig(uri=str(root), driver_params=params))


@contextlib.asynccontextmanager
async def _realtime_into(
    source: Any, take: Callable[[Batch], Awaitable[Any]]
) -> AsyncIterator[None]:
    """The fs source started, each realtime batch handed to ``take`` as it comes, its
    watches in place; the source stopped on exit."""
    await source.start()

    async def pump() -> None:
        async for batch in source.realtime():
            await take(batch)

    pumping = asyncio.create_task(pump())
    try:
        await asyncio.to_thread(
            wait_until,
            lambda: source._realtime is not None and source._realtime.ready.is_set(),
            10,
        )
        yield
    finally:
        pumping.cancel()
        await source.stop()


async def _audit_round(
    source: Any, sender: FusionSender, full: bool, *, meanwhile: Any = None, end: bool = True
) -> list[dict[str, Any]]:
    """One audit of ``source`` through ``sender``: its start, every batch, then (``end``)
    its end, answered once Fusion applied it. ``meanwhile()`` is awaited once, right after
    the batch holding ``/d``'s first row went out. Returns every row sent."""
    assert (await sender.signal(PhaseSignal.AUDIT_START)).ok
    rows: list[dict[str, Any]] = []
    async for batch in source.audit(full):
        assert (await sender.send(batch)).ok
        rows += [r for e in batch.events for r in e.rows]
        if meanwhile is not None and any(r["path"] == "/d" for r in rows):
            await meanwhile()
            meanwhile = None
    if end:
        assert (await sender.signal(PhaseSignal.AUDIT_END)).ok
    return rows


def test_session_create_heartbeat_close(fusion: FusionServer, tmp_path: Path) -> None:
    sender = make_sender(fusion, tmp_path / "state")

    async def run() -> None:
        info = await sender.open_session()
        assert info.role is Role.LEADER
        assert info.timeout_sec == 10 and info.audit_interval_sec == 30.0
        beat = await sender.heartbeat(can_realtime=True)
        assert beat.role is Role.LEADER and beat.commands == []
        [listed] = fusion.sessions()
        assert listed["session_id"] == info.session_id
        assert listed["task_id"] == "agent-a:files"
        assert listed["source_uri"] == str(tmp_path / "state")
        assert listed["role"] == "leader"
        await sender.close_session()
        assert fusion.sessions() == []

    asyncio.run(closing(run(), sender))


def test_snapshot_then_end_makes_the_tree_equal_the_disk(
    fusion: FusionServer, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    make_tree(root)
    sender = make_sender(fusion, tmp_path / "state", max_batch_size=3, max_rows_per_event=2)

    async def run() -> None:
        await sender.open_session()
        assert fusion.files() is None  # a new leader's view answers 503 until snapshot end
        await lead_snapshot(sender, root)
        fusion.wait_tree(disk_tree(root))
        assert "/caf%E9.bin" in fusion.files()  # type: ignore[operator]
        await sender.close_session()

    asyncio.run(closing(run(), sender))


def test_realtime_changes_apply_in_order(fusion: FusionServer, tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_tree(root)
    sender = make_sender(fusion, tmp_path / "state")

    async def run() -> None:
        await lead_synced(fusion, sender, root)
        (root / "top.txt").unlink()
        (root / "new.txt").write_text("new file")
        rt = MessageSource.REALTIME
        batch = Batch(
            rt,
            [
                Event(EventType.DELETE, [{"path": "/top.txt"}], rt),
                Event(
                    EventType.INSERT,
                    [_stat_row(root, os.fsencode(root / "new.txt"), is_atomic_write=True)],
                    rt,
                ),
            ],
        )
        assert (await sender.send(batch)).ok
        fusion.wait_tree(disk_tree(root))
        await sender.close_session()

    asyncio.run(closing(run(), sender))


def test_two_sessions_one_leader_promotion_on_delete(fusion: FusionServer, tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_tree(root)
    leader = make_sender(fusion, tmp_path / "a", agent="agent-a")
    follower = make_sender(fusion, tmp_path / "b", agent="agent-b")

    async def run() -> None:
        assert (await leader.open_session()).role is Role.LEADER
        assert (await follower.open_session()).role is Role.FOLLOWER
        await lead_snapshot(leader, root)
        assert sorted(s["role"] for s in fusion.sessions()) == ["follower", "leader"]
        # A snapshot end from a follower is ignored by Fusion; ours just reaches it.
        await leader.close_session()
        beat = await follower.heartbeat(can_realtime=True)
        assert beat.role is Role.LEADER
        await lead_snapshot(follower, root)
        fusion.wait_tree(disk_tree(root))
        await follower.close_session()

    asyncio.run(closing(run(), leader, follower))


def test_fusion_restart_means_session_lost_then_a_new_session_works(
    fusion: FusionServer, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    make_tree(root)
    sender = make_sender(fusion, tmp_path / "state")

    async def run() -> None:
        await sender.open_session()
        await lead_snapshot(sender, root)
        await asyncio.to_thread(fusion.restart)
        with pytest.raises(SessionLostError):
            await sender.heartbeat(can_realtime=True)
        assert (await sender.open_session()).role is Role.LEADER
        await lead_snapshot(sender, root)
        fusion.wait_tree(disk_tree(root))
        assert len(fusion.sessions()) == 1
        await sender.close_session()

    asyncio.run(closing(run(), sender))


def test_ingest_after_fusion_restart_is_session_lost(fusion: FusionServer, tmp_path: Path) -> None:
    sender = make_sender(fusion, tmp_path / "state")

    async def run() -> None:
        await sender.open_session()
        await asyncio.to_thread(fusion.restart)
        batch = Batch.of(MessageSource.REALTIME, EventType.DELETE, [{"path": "/x"}])
        assert (await sender.send(batch)).status is SendStatus.SESSION_LOST

    asyncio.run(closing(run(), sender))


def test_expired_session_gets_419(fusion: FusionServer, tmp_path: Path) -> None:
    sender = make_sender(fusion, tmp_path / "state", session_timeout_sec=1)

    async def run() -> None:
        info = await sender.open_session()
        assert info.timeout_sec == 1
        await asyncio.to_thread(wait_until, lambda: fusion.sessions() == [], 6.0, 0.1, "expiry")
        with pytest.raises(SessionLostError, match="419"):
            await sender.heartbeat(can_realtime=True)

    asyncio.run(closing(run(), sender))


def test_restart_after_crash_closes_the_old_session(fusion: FusionServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    crashed = make_sender(fusion, state)
    restarted = make_sender(fusion, state)

    async def run() -> None:
        old = await crashed.open_session()
        await crashed.close()  # the process dies: no DELETE
        new = await restarted.open_session()
        assert new.role is Role.LEADER  # not waiting ~timeout behind its own dead session
        assert [s["session_id"] for s in fusion.sessions()] == [new.session_id]
        assert old.session_id != new.session_id
        await restarted.close_session()

    asyncio.run(closing(run(), crashed, restarted))


def test_audit_cycle_deletes_what_vanished_unseen(fusion: FusionServer, tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_tree(root)
    sender = make_sender(fusion, tmp_path / "state")

    async def run() -> None:
        await lead_synced(fusion, sender, root)
        (root / "projects" / "plan.md").unlink()  # nobody watching
        assert (await sender.signal(PhaseSignal.AUDIT_START)).ok
        rows = audit_rows(root)
        assert (await sender.send(Batch.of(MessageSource.AUDIT, EventType.UPDATE, rows))).ok
        assert (await sender.signal(PhaseSignal.AUDIT_END)).ok
        fusion.wait_tree(disk_tree(root))
        assert "/projects/plan.md" in fusion.blind_spots()["deletions"]
        stats = fusion.get(f"/api/v1/views/{fusion.view_id}/stats").json()
        assert stats["audit_cycle_count"] == 1
        assert sender.status()["misconfiguration"] is None
        await sender.close_session()

    asyncio.run(closing(run(), sender))


def test_on_demand_scan_job_completes(fusion: FusionServer, tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_tree(root)
    sender = make_sender(fusion, tmp_path / "state")

    async def run() -> None:
        await lead_synced(fusion, sender, root)
        (root / "projects" / "q3" / "late.bin").write_bytes(b"0123456789")
        asked = await asyncio.to_thread(
            fusion.get,
            f"/api/v1/views/{fusion.view_id}/tree",
            path="/projects/q3",
            recursive="true",
            on_demand_scan="true",
        )
        job_id = asked.json()["job_id"]
        [command] = (await sender.heartbeat(can_realtime=True)).commands
        assert (command.path, command.job_id, command.recursive) == ("/projects/q3", job_id, True)
        rows = [
            _stat_row(root, os.fsencode(root / "projects" / "q3" / n))
            for n in sorted(os.listdir(root / "projects" / "q3"))
        ]
        scan = Batch.of(MessageSource.SCAN, EventType.UPDATE, rows)
        assert (await sender.send(scan)).ok
        done = await sender.signal(PhaseSignal.SCAN_END, scan_path=command.path, job_id=job_id)
        assert done.ok
        job = await asyncio.to_thread(
            wait_until, lambda: (j := fusion.job(job_id))["status"] == "COMPLETED" and j, 5.0
        )
        assert job["progress"]["percentage"] == 100
        fusion.wait_tree(disk_tree(root))  # the scan's rows were applied (no metadata, B10)
        await sender.close_session()

    asyncio.run(closing(run(), sender))


@pytest.mark.parametrize("fusion_options", [{"pipe_id": "ingest", "view_id": "research"}])
def test_b2_pipe_id_not_view_id_is_reported(fusion: FusionServer, tmp_path: Path) -> None:
    sender = make_sender(fusion, tmp_path / "state")

    async def run() -> None:
        await sender.open_session()
        assert (await sender.signal(PhaseSignal.AUDIT_START)).ok
        problem = sender.status()["misconfiguration"]
        assert problem is not None and "drivers_handled: 0" in problem
        assert "add the agent key to views.<view>.api_keys" in problem
        await sender.close_session()

    asyncio.run(closing(run(), sender))


@pytest.mark.parametrize("fusion_options", [{"allow_concurrent_push": False}])
def test_locked_view_refuses_a_second_session_retriably(
    fusion: FusionServer, tmp_path: Path
) -> None:
    first = make_sender(fusion, tmp_path / "a", agent="agent-a")
    second = make_sender(fusion, tmp_path / "b", agent="agent-b")

    async def run() -> None:
        await first.open_session()
        with pytest.raises(Exception) as caught:
            await second.open_session()
        assert getattr(caught.value, "retriable", None) is True
        assert "409" in str(caught.value)
        await first.close_session()
        assert (await second.open_session()).role is Role.LEADER
        await second.close_session()

    asyncio.run(closing(run(), first, second))


def test_wrong_key_is_a_clear_non_retriable_error(fusion: FusionServer, tmp_path: Path) -> None:
    config = FusionSenderConfig.model_validate(
        {
            "endpoint": fusion.endpoint,
            "credential": "query-key-1",
            "driver_params": {"trust_env": False},
        }
    )
    context = PipeContext("a", "files", "/x", tmp_path)
    sender = FusionSender("to-fusion", config, context)
    with pytest.raises(Exception) as caught:
        asyncio.run(closing(sender.open_session(), sender))  # type: ignore[arg-type]
    assert getattr(caught.value, "retriable", None) is False
    assert "refused the API key" in str(caught.value)
    assert httpx.get(f"{fusion.endpoint}/api/v1/pipe/session/").status_code == 401


def test_a_file_turned_directory_keeps_its_children_through_skipped_audits(
    fusion: FusionServer, tmp_path: Path
) -> None:
    """Fusion holds ``/d/n3`` as a file; on disk it became a directory with a file in it,
    unseen (no realtime here, as in a rename storm whose rows lag). The audit lists ``/d``
    without a cached listing: if ``inner`` reached Fusion before ``n3`` as a directory,
    Fusion 0.8.17 kept a stale file entry for ``n3``, and the next audits, sending ``n3`` as
    ``audit_skipped``, emptied it for good (helper 24). The real fs source's audit, through
    the real sender, into the real server."""
    from fustor_source_fs import FsSource, FsSourceConfig

    root = tmp_path / "data"
    (root / "d").mkdir(parents=True)
    (root / "d" / "n3").write_text("a file first\n")
    sender = make_sender(fusion, tmp_path / "state")
    params = {"audit_mtime_tick_sec": 0, "full_sweep_interval_sec": 0}
    source = FsSource("files", FsSourceConfig(uri=str(root), driver_params=params))

    async def run() -> None:
        await lead_synced(fusion, sender, root)
        assert fusion.files()["/d/n3"][0] == "file"  # type: ignore[index]
        (root / "d" / "n3").unlink()
        (root / "d" / "n3").mkdir()
        (root / "d" / "n3" / "inner").write_text("x\n")
        await _audit_round(source, sender, True)
        fusion.wait_tree(disk_tree(root))
        for _ in range(2):  # /d and /d/n3 are cached now: sent as audit_skipped
            await _audit_round(source, sender, False)
            assert fusion.files() == disk_tree(root)
        await sender.close_session()

    asyncio.run(closing(run(), sender))


def test_a_followers_directory_row_during_an_audit_deletes_nothing(
    fusion: FusionServer, tmp_path: Path
) -> None:
    """A follower's realtime row of ``/d`` (a file created there on its host) lands while
    the leader's audit, which sent ``/d`` as ``audit_skipped``, is still running. Fusion
    0.8.17 takes a directory's flag from its last accepted row, and a follower's row has
    none (it cannot know what its leader's audit skipped): the audit end deleted every file
    of ``/d`` but the new one, until the next audit listed ``/d``. The leader's audit now
    sends such a directory again, flagged, before its end. The real fs source's audits, two
    real senders (leader, follower) and the real server."""
    root, source = _tree_d(tmp_path)
    leader = make_sender(fusion, tmp_path / "state")
    follower = make_sender(fusion, tmp_path / "state-b", agent="agent-b")

    async def follower_writes() -> None:
        (root / "d" / "new").write_text("new")
        rows = [_stat_row(root, os.fsencode(root / p)) for p in ("d/new", "d")]
        assert (await follower.send(Batch.of(MessageSource.REALTIME, EventType.UPDATE, rows))).ok

    async def run() -> None:
        await source.start()
        try:
            await lead_synced(fusion, leader, root)
            assert (await follower.open_session()).role is Role.FOLLOWER
            for full in (True, False):  # the audit after a full one lists in full too
                await _audit_round(source, leader, full)
            # /d is cached now
            rows = await _audit_round(source, leader, False, meanwhile=follower_writes)
            assert any(r["path"] == "/d" and r.get("audit_skipped") for r in rows), rows
            fusion.wait_tree(disk_tree(root), timeout=2)
        finally:
            await source.stop()

    asyncio.run(closing(run(), follower, leader))


def test_a_followers_directory_row_after_the_audit_check_costs_its_files_a_moment_only(
    fusion: FusionServer, tmp_path: Path
) -> None:
    """A follower's realtime row of ``/d``, which the leader's audit skipped, lands after
    that audit's end check, while Fusion still applies the audit: the end deletes ``/d``'s
    other files (B23), and nothing on Fusion's receiver port lets the leader wait that
    window out. Once the end is taken, the leader's source sends ``/d``'s files again as
    realtime rows (``audit_ended``), so they are back at once, not at the next audit. The
    leader watches only the root, as on NFS where the follower's change is another
    client's. The real fs source's audits and realtime, two real senders, the real server."""
    root, source = _tree_d(tmp_path, max_watches=1)
    leader = make_sender(fusion, tmp_path / "state")
    follower = make_sender(fusion, tmp_path / "state-b", agent="agent-b")

    async def send(batch: Batch) -> None:
        assert (await leader.send(batch)).ok

    async def run() -> None:
        async with _realtime_into(source, send):
            await lead_synced(fusion, leader, root)
            assert (await follower.open_session()).role is Role.FOLLOWER
            for full in (True, False):  # the audit after a full one lists in full too
                await _audit_round(source, leader, full)
            rows = await _audit_round(source, leader, False, end=False)  # walk and check
            assert [r["audit_skipped"] for r in rows if r["path"] == "/d"] == [True]
            (root / "d" / "new").write_text("new")
            rows = [_stat_row(root, os.fsencode(root / p)) for p in ("d/new", "d")]
            batch = Batch.of(MessageSource.REALTIME, EventType.UPDATE, rows)
            assert (await follower.send(batch)).ok
            assert (await leader.signal(PhaseSignal.AUDIT_END)).ok  # answered once applied
            assert "/d/f1" not in fusion.files()  # the window: that end deleted them
            await source.audit_ended()
            await asyncio.to_thread(fusion.wait_tree, disk_tree(root), 3)

    asyncio.run(closing(run(), follower, leader))


def test_a_file_deleted_unseen_after_its_directory_was_skipped_goes_at_the_next_audit(
    fusion: FusionServer, tmp_path: Path
) -> None:
    """``/d/f1`` is deleted behind every watcher's back while an audit runs, after it sent
    ``/d`` as ``audit_skipped``. That audit's end check sends ``/d`` again, flagged (its
    mtime changed); the next audit lists ``/d`` and its end must delete ``/d/f1``. With the
    check's row carrying the disk's mtime, Fusion dropped the next listing of ``/d`` (an
    audit row needs a newer mtime), kept the flag, and ``/d/f1`` stayed for good (helper
    27). The real fs source's audits, the real sender and server."""
    root, source = _tree_d(tmp_path)
    sender = make_sender(fusion, tmp_path / "state")

    async def delete_unseen() -> None:
        (root / "d" / "f1").unlink()

    async def rows_of_d(**options: Any) -> list[dict[str, Any]]:
        return [
            r for r in await _audit_round(source, sender, False, **options) if r["path"] == "/d"
        ]

    async def run() -> None:
        await source.start()
        try:
            await lead_synced(fusion, sender, root)
            for full in (True, False):  # the audit after a full one lists in full too
                await _audit_round(source, sender, full)
            rows = await rows_of_d(meanwhile=delete_unseen)
            assert [r["audit_skipped"] for r in rows] == [True, True], rows  # walk, check
            assert "/d/f1" in fusion.files()  # this end judged /d by the check's row
            rows = await rows_of_d()
            assert [r["audit_skipped"] for r in rows] == [False], rows  # listed
            fusion.wait_tree(disk_tree(root), timeout=2)
        finally:
            await source.stop()

    asyncio.run(closing(run(), sender))


def test_a_realtime_directory_row_during_an_audit_deletes_nothing(
    fusion: FusionServer, tmp_path: Path
) -> None:
    """An audit sends ``/d`` as ``audit_skipped`` (unchanged, files not listed); while it
    runs, a file is created in ``/d`` and realtime sends ``/d``'s new row. Fusion 0.8.17
    takes a directory's flag from its last accepted row, so a realtime row without the flag
    made the audit end delete every file of ``/d`` realtime had not touched (helper 26: up
    to 3,964 files an audit, back only at the next audit). The real fs source's audits and
    realtime, the real sender and server. (That a realtime row of a directory the audit
    listed goes without the flag, so deletions there are still found, is checked by
    tests/faults/test_faults_inotify.py's overflow recovery.)"""
    root, source = _tree_d(tmp_path, delete_settle_sec=0)
    sender = make_sender(fusion, tmp_path / "state")

    batches: asyncio.Queue[Batch] = asyncio.Queue()
    forwarded: list[dict] = []

    async def realtime_rows_until(done: Callable[[list[dict]], bool]) -> None:
        """Send realtime's batches to Fusion until the rows sent so far satisfy ``done``."""
        while not done(forwarded):
            batch = await asyncio.wait_for(batches.get(), 10)
            assert (await sender.send(batch)).ok
            forwarded.extend(r for e in batch.events for r in e.rows)

    async def run() -> None:
        async with _realtime_into(source, batches.put):
            await lead_synced(fusion, sender, root)
            for full in (True, False):  # the audit after a full one lists in full too
                await _audit_round(source, sender, full)
            # /d is cached now: sent as audit_skipped; the end comes after realtime's row
            rows = await _audit_round(source, sender, False, end=False)
            assert any(r["path"] == "/d" and r.get("audit_skipped") for r in rows), rows
            (root / "d" / "new").write_text("new")
            # /d's row, and /d/new's once written (its create may go alone, with size 0).
            await realtime_rows_until(
                lambda rows: (
                    any(r["path"] == "/d" for r in rows)
                    and any(r["path"] == "/d/new" and r["size"] == 3 for r in rows)
                )
            )
            assert (await sender.signal(PhaseSignal.AUDIT_END)).ok  # answered once applied
            assert fusion.files() == disk_tree(root)

    asyncio.run(closing(run(), sender))


@pytest.mark.parametrize("then", ["rm -rf d", "d becomes a file", "mv d e"])
def test_a_put_back_path_stays_gone_when_its_directory_goes_later_in_the_batch(
    fusion: FusionServer, tmp_path: Path, then: str
) -> None:
    """``/d/f`` deleted (a tombstone), put back with its old mtime, then ``d`` removed,
    replaced by a file or moved, all in one realtime batch (a request slower than the delete
    settle window). The tombstone-clearing pair goes after the batch: it used to bring
    ``/d`` and ``/d/f`` back in Fusion, for good (helper 30)."""
    root = tmp_path / "data"
    (root / "d").mkdir(parents=True)
    for name in ("f", "g"):
        (root / "d" / name).write_text(name)
    saved = tmp_path / "saved-f"
    os.rename(root / "d" / "f", saved)
    os.rename(saved, root / "d" / "f")  # the snapshot holds f
    sender = make_sender(fusion, tmp_path / "state")
    rt = MessageSource.REALTIME

    async def run() -> None:
        await lead_synced(fusion, sender, root)
        os.rename(root / "d" / "f", saved)
        assert (await sender.send(Batch(rt, [Event(EventType.DELETE, [{"path": "/d/f"}], rt)]))).ok
        fusion.wait_tree(disk_tree(root))
        os.rename(saved, root / "d" / "f")
        events = [Event(EventType.UPDATE, [_stat_row(root, os.fsencode(root / "d" / "f"))], rt)]
        if then == "rm -rf d":
            shutil.rmtree(root / "d")
            events.append(Event(EventType.DELETE, [{"path": "/d"}], rt))
        elif then == "d becomes a file":
            shutil.rmtree(root / "d")
            (root / "d").write_text("now a file")
            events.append(Event(EventType.UPDATE, [_stat_row(root, os.fsencode(root / "d"))], rt))
        else:
            os.rename(root / "d", root / "e")
            events.append(Event(EventType.DELETE, [{"path": "/d"}], rt))
            rows = [_stat_row(root, os.fsencode(p)) for p in (root / "e", *(root / "e").iterdir())]
            events.append(Event(EventType.UPDATE, rows, rt))
        assert (await sender.send(Batch(rt, events))).ok
        await asyncio.sleep(1.0)  # let Fusion apply the pair, if one went out
        fusion.wait_tree(disk_tree(root), timeout=3)
        await sender.close_session()

    asyncio.run(closing(run(), sender))
