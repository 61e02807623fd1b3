"""Realtime lane, retries, session loss, buffering, rescans and on-demand scans."""

from __future__ import annotations

import asyncio
import time

import pytest
from agent_fakes import World, running, wait_until

from fustor_agent.agent import Agent
from fustor_agent.status import PipeRunState
from fustor_core import DriverError, ScanCommand, SendResult, SendStatus, SessionLostError


def test_realtime_row_reaches_sender_at_once_when_idle(home):
    world = World()
    world.snapshot_rows = []

    async def main() -> list[float]:
        delays = []
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: "snapshot_end" in world.signals())
            for i in range(20):
                start = time.perf_counter()
                world.push(f"/new{i}")
                await wait_until(lambda i=i: f"/new{i}" in world.sent_paths("realtime"))
                delays.append(time.perf_counter() - start)
                await asyncio.sleep(0.02)
        return delays

    delays = sorted(asyncio.run(main()))
    assert delays[len(delays) // 2] < 0.01, delays  # median well under the 10 ms target


def test_queued_batches_merge_up_to_max_batch_size_in_order(home):
    world = World()
    world.snapshot_rows = []
    world.max_batch_size = 4
    world.send_delay = 0.05

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: world.realtime is not None)
            for i in range(10):
                world.push(f"/r{i}")
            await wait_until(lambda: len(world.sent_paths("realtime")) == 10)

    asyncio.run(main())
    assert world.sent_paths("realtime") == [f"/r{i}" for i in range(10)]
    sizes = [len(e[2]) for e in world.log if e[0] == "send"]
    assert max(sizes) == 4 and len(sizes) < 10


def test_retry_resends_the_same_batch_and_rejected_drops_only_it(home):
    world = World()
    world.snapshot_rows = []

    async def main() -> dict:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            # After the term's first audit: its batches would take the results below.
            await wait_until(lambda: "audit_end" in world.signals())
            world.send_results.extend(
                [
                    SendResult(SendStatus.RETRY, "busy"),
                    DriverError("connection refused", retriable=True),
                    SendResult(SendStatus.OK),
                    SendResult(SendStatus.REJECTED, "bad row"),
                ]
            )
            world.push("/one")
            await wait_until(lambda: world.sent_paths("realtime") == ["/one"])
            world.push("/bad")
            await wait_until(lambda: any(e[:2] == ("refused", "rejected") for e in world.log))
            world.push("/two")
            await wait_until(lambda: world.sent_paths("realtime") == ["/one", "/two"])
            return agent.status().to_json()["pipes"][0]

    status = asyncio.run(main())
    assert [e[2] for e in world.log if e[0] == "refused"] == [["/one"], ["/bad"]]
    assert status["retries"] == 2
    assert status["rejected_batches"] == 1
    assert "bad row" in status["last_error"]["message"]


def test_a_pipe_is_not_ready_while_its_sends_or_heartbeats_fail(home):
    """Receiver down, session not yet given up: sends and heartbeats fail and are retried.
    The pipe is not ready meanwhile (status said ready, and "recovered since", for up to a
    session timeout); the next success makes it ready again."""
    world = World()
    world.snapshot_rows = []
    world.timeout_sec = 3.0  # heartbeats every 1 s; one failure does not give the session up

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:

            def pipe() -> dict:
                return agent.status().to_json()["pipes"][0]

            await wait_until(lambda: "audit_end" in world.signals())
            await wait_until(lambda: pipe()["ready"])
            down = DriverError("ConnectError: All connection attempts failed", retriable=True)
            world.send_results.extend([down, down, down])
            world.push("/one")
            await wait_until(lambda: pipe()["not_ready_reason"] is not None)
            assert pipe()["not_ready_reason"] == (
                "realtime batch of 1 rows failing, retrying: "
                "ConnectError: All connection attempts failed"
            )
            await wait_until(lambda: world.sent_paths("realtime") == ["/one"], within=5)
            # The fake sender logs the send before the delivery loop resumes to take its OK.
            await wait_until(lambda: pipe()["ready"], within=1)
            assert pipe()["not_ready_reason"] is None
            world.heartbeat_errors.append(down)
            await wait_until(lambda: pipe()["not_ready_reason"] is not None, within=5)
            assert pipe()["not_ready_reason"] == (
                "heartbeat failing: ConnectError: All connection attempts failed"
            )
            await wait_until(lambda: pipe()["ready"], within=5)

    asyncio.run(main())


def test_a_send_that_hangs_is_said_while_it_lasts(home, monkeypatch, caplog):
    """A sender whose ``send()`` does not return: the pipe says so (log, not-ready reason)
    instead of stalling silently, and is ready again once it returns."""
    from fustor_agent.runtime import delivery

    monkeypatch.setattr(delivery, "STALL_WARN_SEC", 1.0)
    world = World()
    world.snapshot_rows = []

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:

            def reason() -> str | None:
                return agent.status().to_json()["pipes"][0]["not_ready_reason"]

            await wait_until(lambda: "audit_end" in world.signals())
            await wait_until(lambda: reason() is None)
            world.send_delay = 2.5
            world.push("/slow")
            await wait_until(lambda: reason() is not None, within=5)
            assert reason() == "realtime batch of 1 rows: sender out has not answered for 1s"
            await wait_until(lambda: world.sent_paths("realtime") == ["/slow"], within=5)
            world.send_delay = 0.0
            await wait_until(lambda: reason() is None)

    asyncio.run(main())
    assert "pipe p: realtime batch of 1 rows: sender out has not answered for 2s" in caplog.text


def test_a_heartbeat_that_hangs_ends_the_session_after_its_timeout(home):
    world = World()
    world.timeout_sec = 0.6

    async def main() -> dict:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: "snapshot_end" in world.signals())
            world.heartbeat_hangs = True
            await wait_until(lambda: world.sessions >= 2, within=10)
            world.heartbeat_hangs = False
            return agent.status().to_json()["pipes"][0]

    status = asyncio.run(main())
    assert status["last_error"]["message"] == (
        "session lost: heartbeat failed: no answer within 1s"
    )


def test_a_send_returning_no_send_result_is_a_rejection_naming_the_sender(home):
    world = World()
    world.snapshot_rows = []

    async def main() -> dict:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: "audit_end" in world.signals())
            world.send_results.append(None)  # type: ignore[arg-type]
            world.push("/lost")
            await wait_until(lambda: agent.status().to_json()["pipes"][0]["rejected_batches"])
            world.push("/next")
            await wait_until(lambda: world.sent_paths("realtime") == ["/next"])
            return agent.status().to_json()["pipes"][0]

    status = asyncio.run(main())
    assert status["last_error"]["message"] == (
        "realtime batch of 1 rows rejected: sender out returned NoneType, not a SendResult "
        "(a bug in the sender driver)"
    )


def test_session_lost_on_send_reopens_resends_and_restarts_leader_work(home):
    world = World()
    world.snapshot_rows = [{"path": "/s"}]

    def second_term_audited_in_full() -> bool:
        opens = [i for i, e in enumerate(world.log) if e[0] == "open"]
        return len(opens) == 2 and ("full_audit", "src") in world.log[opens[1] :]

    async def main() -> dict:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: "snapshot_end" in world.signals())
            world.send_results.append(
                SendResult(SendStatus.SESSION_LOST, "HTTP 419: Session expired")
            )
            world.push("/kept")
            await wait_until(lambda: world.sent_paths("realtime") == ["/kept"])
            await wait_until(lambda: world.signals().count("snapshot_end") == 2)
            await wait_until(second_term_audited_in_full)
            return agent.status().to_json()["pipes"][0]

    status = asyncio.run(main())
    # Status tells what happened (it showed no error, or an older one).
    assert status["last_error"]["message"] == "session lost: HTTP 419: Session expired"
    assert world.sessions == 2
    opens = [i for i, e in enumerate(world.log) if e[0] == "open"]
    sent = next(i for i, e in enumerate(world.log) if e[0] == "send" and e[1] == "realtime")
    assert opens[0] < opens[1] < sent  # resent in the new session
    assert second_term_audited_in_full()


def test_heartbeat_session_loss_opens_a_new_session(home):
    world = World()

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: "snapshot_end" in world.signals())
            world.heartbeat_errors.append(SessionLostError("419 Session obsoleted"))
            await wait_until(lambda: world.sessions == 2)
            await wait_until(lambda: world.signals().count("snapshot_end") == 2)

    asyncio.run(main())


def test_open_failures_back_off_then_recover(home):
    world = World()
    world.open_errors.extend([DriverError("connection refused", retriable=True)] * 2)

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: agent.status().pipes[0].state is PipeRunState.BACKING_OFF)
            error = agent.status().pipes[0].last_error
            assert error is not None and "connection refused" in error.message
            # Readiness probes see only the reason: it says why (helper 29: "no session").
            assert agent.status().pipes[0].not_ready_reason == "no session: connection refused"
            await wait_until(lambda: agent.status().pipes[0].state is PipeRunState.RUNNING, 5)

    asyncio.run(main())


def test_buffer_bound_while_disconnected_drops_counts_and_resyncs(home):
    world = World()
    world.open_errors.extend([DriverError("down", retriable=True)] * 3)

    async def main() -> dict:
        async with running(Agent(world.config({"id": "p", "max_buffered_rows": 5}), home)) as a:
            await wait_until(lambda: world.realtime is not None)
            for i in range(4):
                world.push(f"/kept{i}")
            await asyncio.sleep(0.01)
            assert a.status().to_json()["pipes"][0]["queue_depth"]["realtime"] == 4
            world.push("/x", "/y")  # 6 > 5: the buffer is dropped
            await wait_until(lambda: a.status().to_json()["pipes"][0]["dropped_rows"] == 6)
            world.push("/after")
            await wait_until(lambda: "/after" in world.sent_paths("realtime"), 5)
            await wait_until(lambda: "snapshot_end" in world.signals())
            # No audit interval is set: only the resync can start this audit, and it must,
            # because deletions hidden in the dropped rows show only through an audit.
            await wait_until(lambda: "audit_end" in world.signals(), 5)
            return a.status().to_json()["pipes"][0]

    status = asyncio.run(main())
    assert world.sent_paths("realtime") == ["/after"]
    assert status["dropped_rows"] == 6
    signals = world.signals()
    assert signals.index("snapshot_end") < signals.index("audit_start")


def test_rescan_makes_the_leader_run_a_full_audit_at_once(home):
    world = World()  # no audit interval: only the rescan can trigger an audit

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            # The first audit of the term runs right after the snapshot.
            await wait_until(lambda: world.signals().count("audit_end") == 1)
            fulls = [e[0] for e in world.log].count("full_audit")
            world.push(rescan=["/"])
            await wait_until(lambda: world.signals().count("audit_end") == 2)
            assert [e[0] for e in world.log].count("full_audit") == fulls + 1

    asyncio.run(main())


def test_scan_commands_send_rows_and_complete_even_when_refused(home):
    world = World()

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: "snapshot_end" in world.signals())
            world.commands = [
                ScanCommand("/projects//q3/", True, "job1"),
                ScanCommand("/../etc", False, "job2"),
            ]
            await wait_until(lambda: world.signals().count("job_complete") == 2)

    asyncio.run(main())
    assert world.sent_paths("on_demand_job") == ["/projects/q3"]
    completions = [e[2] for e in world.log if e[:2] == ("signal", "job_complete")]
    assert {"scan_path": "/projects//q3/", "job_id": "job1"} in completions
    assert {"scan_path": "/../etc", "job_id": "job2"} in completions


def test_a_slow_snapshot_never_holds_realtime_up(home):
    world = World()
    world.snapshot_rows = [{"path": f"/s{i}"} for i in range(100)]
    world.snapshot_batch = 1
    world.send_delay = 0.02

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: len(world.sent_paths("snapshot")) >= 2)
            world.push("/urgent")
            await wait_until(lambda: "/urgent" in world.sent_paths("realtime"), 0.5)
            assert "snapshot_end" not in world.signals()

    asyncio.run(main())


def test_shutdown_flushes_every_queued_realtime_row_before_closing(home):
    world = World()
    world.snapshot_rows = []
    world.send_delay = 0.02
    world.max_batch_size = 2

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: "snapshot_end" in world.signals())
            for i in range(30):
                world.push(f"/q{i}")
            await asyncio.sleep(0)  # queued, mostly not yet sent

    asyncio.run(main())
    assert world.sent_paths("realtime") == [f"/q{i}" for i in range(30)]
    assert world.log[-1] == ("close_session", "p")
    assert world.senders["p"].closed and world.sources["src"].stopped


def test_a_sender_whose_close_hangs_does_not_keep_the_agent_from_stopping(home, caplog):
    """A third-party sender's ``close()`` that never returns is abandoned once the pipe's
    grace period (at least MIN_CLOSE_SEC) is over, and named in the log."""
    from fustor_agent.runtime.pipe import MIN_CLOSE_SEC

    world = World()
    world.close_hangs = True

    async def main() -> float:
        agent = Agent(world.config({"id": "p"}), home, shutdown_timeout=0.5)
        async with running(agent):
            await wait_until(lambda: "snapshot_end" in world.signals())
            started = time.monotonic()
        return time.monotonic() - started

    took = asyncio.run(main())
    assert took < MIN_CLOSE_SEC + 1.5, took
    assert world.log[-1] == ("close_session", "p")  # the session itself was closed
    assert f"pipe p: sender out did not close within {MIN_CLOSE_SEC:.0f}s; left open" in caplog.text


def test_a_batch_retried_across_a_session_loss_goes_to_the_new_session_only_once(home):
    world = World()
    world.snapshot_rows = []

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: "snapshot_end" in world.signals())
            world.send_results.extend([SendResult(SendStatus.RETRY, "503")] * 2)
            world.push("/x")
            world.heartbeat_errors.append(SessionLostError("419"))
            await wait_until(lambda: world.sent_paths("realtime") == ["/x"])
            await asyncio.sleep(0.3)  # nothing else may happen: no third session

    asyncio.run(main())
    assert world.sessions == 2
    second_open = [i for i, e in enumerate(world.log) if e[0] == "open"][1]
    sent = next(i for i, e in enumerate(world.log) if e[0] == "send" and e[1] == "realtime")
    assert sent > second_open


def test_validate_connect_reports_a_buggy_sender_and_checks_the_next_pipe(home, monkeypatch):
    """``validate --connect``: a sender raising a non-driver error, or hanging in
    ``close()``, is a problem line of its pipe; the other pipes are still checked."""
    from fustor_agent import sender_check
    from fustor_core import FustorError

    monkeypatch.setattr(sender_check, "CLOSE_TIMEOUT_SEC", 0.2)
    world = World()
    world.open_errors.append(RuntimeError("boom"))
    world.close_hangs = True
    lines: list[str] = []
    config = world.config({"id": "p"}, {"id": "q"})
    try:
        sender_check.check_connections(config, home, lines.append)
    except FustorError as exc:
        problems = str(exc).splitlines()
    else:
        raise AssertionError("no problem reported")
    assert problems == [
        "pipe p (sender out): RuntimeError: boom",
        "pipe p (sender out): sender out did not close within 0s; left open",
        "pipe q (sender out): sender out did not close within 0s; left open",
    ]
    assert lines == []


def test_validate_connect_names_an_open_session_that_returns_no_session(home, monkeypatch):
    from fustor_agent import sender_check
    from fustor_core import FustorError

    world = World()

    async def no_session(self):  # type: ignore[no-untyped-def]
        return None

    monkeypatch.setattr(world.Sender, "open_session", no_session)
    try:
        sender_check.check_connections(world.config({"id": "p"}), home, lambda line: None)
    except FustorError as exc:
        assert str(exc) == (
            "pipe p (sender out): open_session() returned NoneType, not a SessionInfo"
        )
    else:
        raise AssertionError("'connected, no problem found' for a sender without a session")


def test_an_open_session_that_returns_no_session_is_retried_and_named(home):
    """Helper 21: open_session() returning None once ended the pipe's session loop for good,
    silently (no session ever again, the realtime queue growing)."""
    world = World()
    original = world.Sender.open_session
    calls: list[int] = []

    async def first_none(self):  # type: ignore[no-untyped-def]
        calls.append(1)
        return None if len(calls) == 1 else await original(self)

    world.Sender.open_session = first_none  # type: ignore[method-assign]

    async def main() -> dict:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: "snapshot_end" in world.signals(), within=10)
            return agent.status().to_json()["pipes"][0]

    status = asyncio.run(main())
    assert len(calls) == 2
    assert status["last_error"]["message"] == (
        "open session: sender out: open_session() returned NoneType, not a SessionInfo"
    )


def test_a_realtime_batch_of_another_tier_is_dropped_and_resynced(home):
    from fustor_core import Batch, EventType, MessageSource

    world = World()
    world.snapshot_rows = []

    async def main() -> dict:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: "audit_end" in world.signals())
            assert world.realtime is not None
            world.realtime.put_nowait(
                Batch.of(MessageSource.SNAPSHOT, EventType.UPDATE, [{"path": "/tier"}])
            )
            world.push("/fine")
            await wait_until(lambda: world.sent_paths("realtime") == ["/fine"])
            await wait_until(lambda: world.signals().count("audit_end") == 2)  # resync
            return agent.status().to_json()["pipes"][0]

    status = asyncio.run(main())
    assert "/tier" not in world.sent_paths("snapshot")
    assert status["last_error"]["message"] == (
        "a realtime batch of another tier was dropped (a source bug)"
    )


def test_a_signal_that_hangs_stays_the_reason_while_realtime_flows(home, monkeypatch):
    """Helper 21: each realtime success cleared the stall reason of a hung signal."""
    from fustor_agent.runtime import delivery

    monkeypatch.setattr(delivery, "STALL_WARN_SEC", 0.5)
    world = World()
    world.snapshot_rows = []
    original = world.Sender.signal

    async def slow_end(self, signal, **details):  # type: ignore[no-untyped-def]
        if signal.value == "snapshot_end":
            await asyncio.sleep(3.0)
        return await original(self, signal, **details)

    world.Sender.signal = slow_end  # type: ignore[method-assign]

    async def main() -> list:
        reasons = []
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: world.realtime is not None)
            for i in range(10):
                world.push(f"/rt{i}")
                await asyncio.sleep(0.2)
                reasons.append(agent.status().to_json()["pipes"][0]["not_ready_reason"])
            await wait_until(lambda: "snapshot_end" in world.signals(), within=5)
        return reasons

    reasons = asyncio.run(main())
    assert world.sent_paths("realtime") == [f"/rt{i}" for i in range(10)]
    stalled = "signal snapshot_end: sender out has not answered for "
    assert all(r is not None and r.startswith(stalled) for r in reasons[-3:]), reasons


@pytest.mark.parametrize("size", [0, -5, 2.5, None, True])
def test_a_sender_without_a_positive_batch_size_fails_its_pipe_and_validate(home, size):
    """A ``max_batch_size`` that is not a positive int (a driver's bug) is named when the
    pipe is created, and by ``validate --connect``; before, it was taken as 1 silently
    (every batch split into single-row sends)."""
    from fustor_agent import sender_check
    from fustor_core import FustorError

    world = World()
    world.max_batch_size = size  # type: ignore[assignment]
    config = world.config({"id": "p"})
    expected = (
        f"sender out (fake): max_batch_size is {size!r}, not a positive number of rows per "
        "send (a bug in the sender driver)"
    )

    async def main() -> None:
        agent = Agent(config, home)
        async with running(agent):
            await wait_until(lambda: agent.status().to_json()["pipes"][0]["state"] == "error")
            error = agent.status().to_json()["pipes"][0]["last_error"]["message"]
            assert error == "cannot create the pipe: " + expected
        assert world.log == []  # nothing was sent

    asyncio.run(main())
    with pytest.raises(FustorError) as raised:
        sender_check.check_connections(config, home, lambda line: None)
    assert (
        str(raised.value)
        == f"pipe p (sender out): cannot create the sender: DriverError: {expected}"
    )


def test_a_stop_that_meets_a_returning_heartbeat_ends_the_heartbeats(home):
    """On Python 3.11 ``asyncio.wait_for`` swallowed a cancellation that arrived as the
    heartbeat returned: the heartbeat loop ran on, and a stop after a long freeze (when
    heartbeats come back to back) waited out the pipe's grace (helper 29: 15 s and an
    error). Here the stop's cancel meets the heartbeat as it returns, every time."""
    world = World()  # heartbeats every 0.1 s
    cancelled: list[asyncio.Task] = []

    def cancel_the_heartbeats() -> None:
        if not cancelled:
            task = next(t for t in asyncio.all_tasks() if t.get_name() == "fustor-heartbeat-p")
            task.cancel()
            cancelled.append(task)

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            world.heartbeat_hook = cancel_the_heartbeats
            await wait_until(lambda: bool(cancelled), 5)
            await asyncio.sleep(0.5)  # five intervals
            assert cancelled[0].done(), "the heartbeat loop ran on after its cancel"

    asyncio.run(main())
