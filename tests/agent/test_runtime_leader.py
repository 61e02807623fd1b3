"""The leader sequence: snapshot, its end, audits and sentinel rounds, driven by the session."""

from __future__ import annotations

import asyncio
from collections import deque

from agent_fakes import World, running, wait_until

from fustor_agent.agent import Agent
from fustor_agent.status import PipeActivity
from fustor_core import DriverError, Role, SendResult, SendStatus, SessionLostError


def test_snapshot_then_end_then_audits_in_order(home):
    world = World()
    world.audit_interval = 0.2
    world.snapshot_rows = [{"path": f"/s{i}", "modified_time": 1.0} for i in range(5)]

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: world.signals().count("audit_end") >= 2)
            # The cycle is counted once the end is acknowledged: a moment after the signal.
            await wait_until(
                lambda: agent.status().to_json()["pipes"][0]["progress"]["audit"]["cycles"] >= 2
            )
            status = agent.status().to_json()["pipes"][0]
        assert status["progress"]["snapshot"] == {"rows": 5, "done": True}
        assert status["progress"]["audit"]["cycles"] >= 2
        assert status["rows_sent"]["snapshot"] == 5
        assert status["role"] == "leader" and status["ready"] is True

    asyncio.run(main())
    signals = world.signals()
    assert signals[:3] == ["snapshot_end", "audit_start", "audit_end"]
    # Snapshot batches come first, all before their end; audit rows between start and end.
    kinds = [e[1] for e in world.log if e[0] in ("send", "signal")]
    assert kinds[:4] == ["snapshot", "snapshot", "snapshot", "snapshot_end"]
    assert kinds[4:7] == ["audit_start", "audit", "audit_end"]
    assert world.sent_paths("snapshot") == [f"/s{i}" for i in range(5)]
    assert ("full_audit", "src") in world.log
    assert world.log[-1] == ("close_session", "p")


def test_the_first_audit_of_a_term_runs_right_after_the_snapshot(home):
    world = World()  # the session suggests no audit interval

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: "audit_end" in world.signals(), 5)

    asyncio.run(main())
    signals = world.signals()
    assert signals.index("snapshot_end") < signals.index("audit_start")
    assert signals.count("audit_start") == 1


def test_a_tree_that_starts_empty_is_first_audited_at_the_interval(home):
    """Nothing is stale in a tree the server starts empty: no audit right after the
    snapshot, and the first one, at the interval, is a full one."""
    world = World()
    world.starts_empty = True
    world.audit_interval = 0.6

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: "snapshot_end" in world.signals())
            ended = asyncio.get_running_loop().time()
            await asyncio.sleep(0.3)
            assert "audit_start" not in world.signals()
            await wait_until(lambda: "audit_end" in world.signals(), 5)
            assert asyncio.get_running_loop().time() - ended >= 0.5

    asyncio.run(main())
    assert ("full_audit", "src") in world.log
    assert world.signals().count("audit_start") == 1


def test_a_tree_that_starts_empty_without_an_interval_is_not_audited(home):
    world = World()  # the session suggests no audit interval
    world.starts_empty = True

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: "snapshot_end" in world.signals())
            await asyncio.sleep(0.3)

    asyncio.run(main())
    assert "audit_start" not in world.signals()


def test_a_promoted_leader_audits_right_after_its_snapshot(home):
    """The view a follower is promoted on holds the last leader's rows: what went away
    meanwhile only goes through an audit, whatever the session said when it opened."""
    world = World()
    world.starts_empty = True
    world.open_role = Role.FOLLOWER

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: any(e[0] == "heartbeat" for e in world.log))
            world.role = Role.LEADER
            await wait_until(lambda: "audit_end" in world.signals(), 5)

    asyncio.run(main())
    signals = world.signals()
    assert signals.index("snapshot_end") < signals.index("audit_start")


def test_pipe_interval_overrides_the_session(home):
    world = World()
    world.audit_interval = 0.05  # suggested by the session; the pipe says "never"

    async def main() -> None:
        async with running(Agent(world.config({"id": "p", "audit_interval_sec": 0}), home)):
            await wait_until(lambda: "snapshot_end" in world.signals())
            await asyncio.sleep(0.3)

    asyncio.run(main())
    assert "audit_start" not in world.signals()


def test_no_audit_end_after_an_audit_error_and_the_next_audit_is_full(home):
    """A walk cut short by an error may have sent a directory's row before all its
    children (a third-party source): an audit end would make Fusion delete those."""
    world = World()
    world.audit_interval = 0.1
    world.audit_error = DriverError("disk hiccup", retriable=True)

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: world.signals().count("audit_start") >= 2)
            assert "audit_end" not in world.signals()
            assert "disk hiccup" in agent.status().to_json()["pipes"][0]["last_error"]["message"]
            world.audit_error = None
            await wait_until(lambda: "audit_end" in world.signals())

    asyncio.run(main())
    signals = world.signals()
    end = signals.index("audit_end")
    assert signals[end - 1] == "audit_start"
    assert ("full_audit", "src") in world.log  # the audit after a failed one is full


def test_without_periodic_audits_a_rejected_audit_is_tried_again(home, monkeypatch):
    """Rows of a rejected audit batch are missing from Fusion until an audit ends well:
    with no audit interval, the audit is tried again later instead of never."""
    from fustor_agent.runtime import leader

    monkeypatch.setattr(leader, "AUDIT_RETRY_SEC", 0.2)
    world = World()
    world.snapshot_rows = []
    world.send_results.append(SendResult(SendStatus.REJECTED, "422: bad row"))

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: "audit_end" in world.signals(), within=5)

    asyncio.run(main())
    assert world.signals().count("audit_start") == 2
    assert [e for e in world.log if e[0] == "full_audit"] == [("full_audit", "src")] * 2


def test_a_snapshot_batch_that_breaks_the_source_contract_is_not_sent(home, caplog):
    """Helper 19: a realtime delete yielded by snapshot() reached the sender as a delete of
    that path; empty batches reached it too. Neither is sent now; the breach is named."""
    from fustor_core import Batch, Event, EventType, MessageSource

    world = World()
    world.snapshot_extra = [
        Batch.of(MessageSource.REALTIME, EventType.DELETE, [{"path": "/s0"}]),
        Batch.of(MessageSource.SNAPSHOT, EventType.DELETE, [{"path": "/s1"}]),
        Batch(MessageSource.SNAPSHOT),
        Batch(MessageSource.SNAPSHOT, [Event(EventType.UPDATE, [], MessageSource.SNAPSHOT)]),
    ]

    async def main() -> dict:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: "audit_end" in world.signals())
            return agent.status().to_json()["pipes"][0]

    status = asyncio.run(main())
    sends = [e for e in world.log if e[0] == "send"]
    assert [e[1] for e in sends][:3] == ["snapshot", "snapshot", "audit"]
    assert world.sent_paths("snapshot") == ["/s0", "/s1", "/s2"]  # the real rows only
    assert not world.sent_paths("realtime")
    assert "source src yielded a snapshot batch that is marked realtime; dropped" in caplog.text
    assert "source src yielded a snapshot batch that has a delete event; dropped" in caplog.text
    assert status["last_error"]["message"] == "snapshot batch dropped: has a delete event"


def test_sentinel_round_feeds_back_source_stats(home):
    world = World()
    world.sentinel_interval = 0.1
    world.sentinel_paths = ["/hot"]

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: any(e[0] == "sentinel_feedback" for e in world.log))

    asyncio.run(main())
    assert ("sentinel_feedback", ["/hot"]) in world.log


def test_follower_runs_no_leader_work_until_promoted(home):
    world = World()
    world.open_role = Role.FOLLOWER

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: any(e[0] == "heartbeat" for e in world.log))
            await asyncio.sleep(0.2)
            assert world.signals() == []
            assert agent.status().to_json()["pipes"][0]["role"] == "follower"
            world.role = Role.LEADER  # the next heartbeat reports a promotion
            await wait_until(lambda: "snapshot_end" in world.signals())
            assert agent.status().to_json()["pipes"][0]["role"] == "leader"

    asyncio.run(main())
    assert world.sent_paths("snapshot") == ["/s0", "/s1", "/s2"]


def test_demotion_cancels_a_running_snapshot_at_once(home):
    world = World()
    world.snapshot_rows = [{"path": f"/s{i}"} for i in range(200)]
    world.snapshot_batch = 1
    world.walk_delay = 0.01

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: len(world.sent_paths("snapshot")) >= 3)
            world.role = Role.FOLLOWER
            await wait_until(lambda: agent.status().to_json()["pipes"][0]["role"] == "follower")
            sent = len(world.sent_paths("snapshot"))
            await asyncio.sleep(0.2)
            assert len(world.sent_paths("snapshot")) <= sent + 1
            assert agent.status().pipes[0].activity is PipeActivity.REALTIME

    asyncio.run(main())
    assert "snapshot_end" not in world.signals()


def test_unhealthy_source_runs_no_snapshot_and_is_not_ready(home):
    world = World()
    world.health = "root unavailable: /src is not mounted"

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await asyncio.sleep(0.3)
            status = agent.status().to_json()["pipes"][0]
            assert status["ready"] is False
            assert status["not_ready_reason"] == "root unavailable: /src is not mounted"
            assert world.sent_paths() == []
            world.push("/live")  # realtime still flows
            await wait_until(lambda: world.sent_paths("realtime") == ["/live"])
            world.health = None
            await wait_until(lambda: "snapshot_end" in world.signals(), within=5)
            await wait_until(lambda: agent.status().to_json()["pipes"][0]["ready"])

    asyncio.run(main())


def test_a_source_health_check_that_raises_is_that_pipe_unhealthy_only(home):
    """A third-party source whose ``health()`` raises: its pipe waits, not ready, with the
    error as the reason; the agent's status (every pipe's) is still answered."""
    world = World()
    world.health = RuntimeError("boom in health")

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await asyncio.sleep(0.3)
            status = agent.status().to_json()["pipes"][0]
            assert status["ready"] is False
            assert status["not_ready_reason"] == (
                "source health check failed: RuntimeError: boom in health"
            )
            assert world.sent_paths() == []  # no snapshot of an unhealthy source
            world.health = None
            await wait_until(lambda: "snapshot_end" in world.signals(), within=5)
            await wait_until(lambda: agent.status().to_json()["pipes"][0]["ready"])

    asyncio.run(main())


def test_a_misconfigured_peer_makes_the_pipe_not_ready_with_the_fix(home):
    world = World()
    world.sender_health = "audit calls do nothing (B2). Fix: make the pipe id equal the view id"

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: "snapshot_end" in world.signals())
            status = agent.status().to_json()["pipes"][0]
            assert status["ready"] is False
            assert status["not_ready_reason"] == world.sender_health
            world.sender_health = None
            await wait_until(lambda: agent.status().to_json()["pipes"][0]["ready"])

    asyncio.run(main())


def test_a_rejected_snapshot_end_is_sent_again_until_accepted(home):
    # Without the end Fusion's view answers 503 for the whole term (protocol §5.2): a 4xx to
    # it (a misbehaving server or proxy) is retried, not dropped like a rejected batch.
    world = World()
    world.signal_results["snapshot_end"] = deque(
        [
            SendResult(SendStatus.REJECTED, "HTTP 400: fake failure"),
            DriverError("HTTP 422: fake failure", retriable=False),
        ]
    )

    async def main() -> dict:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: "snapshot_end" in world.signals())
            await wait_until(lambda: agent.status().to_json()["pipes"][0]["ready"])
            return agent.status().to_json()["pipes"][0]

    status = asyncio.run(main())
    refused = [e[1] for e in world.log if e[0] == "signal refused"]
    assert refused == ["snapshot_end", "snapshot_end"]
    assert world.signals().count("snapshot_end") == 1
    assert status["progress"]["snapshot"]["done"] is True
    assert status["rejected_batches"] == 0 and status["retries"] == 2


def test_a_rejected_audit_end_is_dropped_and_the_next_audit_runs(home):
    world = World()
    world.audit_interval = 0.1
    world.signal_results["audit_end"] = deque([SendResult(SendStatus.REJECTED, "HTTP 400")])

    async def main() -> dict:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: "audit_end" in world.signals())
            return agent.status().to_json()["pipes"][0]

    status = asyncio.run(main())
    assert [e[1] for e in world.log if e[0] == "signal refused"] == ["audit_end"]
    assert world.signals()[:4] == ["snapshot_end", "audit_start", "audit_start", "audit_end"]
    assert status["rejected_batches"] == 1


def test_the_source_hears_of_each_accepted_audit_end_only(home, caplog):
    """``audit_ended`` follows each audit end Fusion took, before the next audit starts,
    and never a refused one; the source's error there is logged and the audits go on."""
    world = World()
    world.audit_interval = 0.1
    world.signal_results["audit_end"] = deque([SendResult(SendStatus.REJECTED, "HTTP 400")])
    world.audit_ended_error = RuntimeError("driver bug")

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: world.log.count(("audit_ended", "src")) >= 2)

    asyncio.run(main())
    steps = [
        e[1] if e[0] in ("signal", "signal refused") else e[0]
        for e in world.log
        if e[0] in ("signal", "signal refused", "audit_ended")
    ]
    assert steps[:7] == [
        "snapshot_end",
        "audit_start",
        "audit_end",  # refused
        "audit_start",
        "audit_end",
        "audit_ended",
        "audit_start",
    ]
    assert [e[0] for e in world.log if e[1:2] == ("audit_end",)][:2] == ["signal refused", "signal"]
    assert "failed after the audit end: driver bug" in caplog.text


def test_an_audit_with_a_rejected_batch_sends_no_end_and_the_next_is_full(home):
    # At the end Fusion deletes the children of listed directories it did not see (protocol
    # §5.5): after a rejected batch it must infer nothing from that audit.
    world = World()
    world.audit_interval = 0.1
    world.audit_rows = [{"path": f"/a{i}", "modified_time": 1.0} for i in range(3)]

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: "audit_end" in world.signals())  # the term's first audit
            world.send_results.append(SendResult(SendStatus.REJECTED, "HTTP 400: fake failure"))
            await wait_until(lambda: any(e[0] == "refused" for e in world.log))
            await wait_until(lambda: world.signals().count("audit_end") >= 2)

    asyncio.run(main())
    signals = world.signals()
    first_end = signals.index("audit_end")
    rest = signals[first_end + 1 :]
    # The audit that lost a batch started and never ended; the next one did both.
    assert rest[:3] == ["audit_start", "audit_start", "audit_end"], signals
    fulls = [i for i, e in enumerate(world.log) if e == ("full_audit", "src")]
    refused = next(i for i, e in enumerate(world.log) if e[0] == "refused")
    assert len(fulls) == 2 and fulls[1] > refused  # the term's first, and the one after


def test_a_rejected_snapshot_batch_brings_the_first_audit_forward(home):
    # A fresh view (starts_empty) is first audited at the interval; a snapshot batch that
    # Fusion rejected is missing there until an audit sends its rows again: at once.
    world = World()
    world.starts_empty = True
    world.audit_interval = 3600
    world.send_results.append(SendResult(SendStatus.REJECTED, "HTTP 400: fake failure"))

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)):
            await wait_until(lambda: "audit_end" in world.signals())

    asyncio.run(main())
    assert world.signals()[:3] == ["snapshot_end", "audit_start", "audit_end"]
    assert [e[1] for e in world.log if e[0] == "refused"] == ["rejected"]


def test_a_rejected_snapshot_batch_is_audited_again_also_with_audits_off(home):
    # audit_interval_sec: 0 turns periodic audits off, not the repair of lost rows.
    world = World()
    world.starts_empty = True
    world.send_results.append(SendResult(SendStatus.REJECTED, "HTTP 400: fake failure"))

    async def main() -> None:
        async with running(Agent(world.config({"id": "p", "audit_interval_sec": 0}), home)):
            await wait_until(lambda: "audit_end" in world.signals())

    asyncio.run(main())
    assert world.signals()[:3] == ["snapshot_end", "audit_start", "audit_end"]


def test_a_source_health_that_returns_no_string_is_that_pipe_unhealthy_only(home):
    world = World()
    world.health = 42  # type: ignore[assignment]

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await asyncio.sleep(0.3)
            status = agent.status().to_json()["pipes"][0]
            assert status["not_ready_reason"] == (
                "source health check returned int, not a string or None"
            )

    asyncio.run(main())


def test_a_session_lost_during_an_audit_ends_the_session_not_the_leader_work(home, caplog):
    """The audit runs in a task group: the loss came out wrapped in an exception group, was
    taken for a crash of the leader work (an ERROR with a traceback) and retried on the dead
    session. It must end the session like any other loss (helper 22, Fusion restarted)."""
    from agent_fakes import SEND_OK

    world = World()
    world.snapshot_rows = world.snapshot_rows[:1]  # one send; the audit's is the second
    world.send_results.extend([SEND_OK, SessionLostError("HTTP 404: session not found")])

    async def main() -> None:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: world.sessions == 2)
            await wait_until(lambda: world.signals().count("snapshot_end") == 2)
            # The new term's first audit follows its snapshot at once: wait for its send
            # before stopping the agent.
            await wait_until(lambda: sum(e[0] == "send" for e in world.log) == 3)
            error = agent.status().to_json()["pipes"][0]["last_error"]["message"]
            assert error == "session lost: HTTP 404: session not found"

    asyncio.run(main())
    assert [e[1] for e in world.log if e[0] == "send"] == ["snapshot", "snapshot", "audit"]
    assert not [r for r in caplog.records if "leader work failed" in r.getMessage()]
