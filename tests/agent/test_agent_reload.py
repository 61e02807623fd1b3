"""Agent.reload applies added, removed and changed pipes and leaves the others alone; one
failing pipe never stops the others."""

from __future__ import annotations

import asyncio
import logging

import pytest
from agent_fakes import World, running, wait_until

from fustor_agent.agent import Agent
from fustor_core import ConfigError, DriverError


def test_reload_touches_only_added_removed_and_changed_pipes(home):
    world = World()
    first = world.config(
        {"id": "keep"}, {"id": "change"}, {"id": "tune"}, {"id": "drop"}, senders=("out", "alt")
    )
    second = world.config(
        {"id": "keep"},
        {"id": "change", "sender_id": "alt"},
        {"id": "tune", "audit_interval_sec": 5, "max_buffered_rows": 7},
        {"id": "new"},
        {"id": "off", "enabled": False},
        senders=("out", "alt"),
    )

    async def main() -> None:
        agent = Agent(first, home)
        async with running(agent):
            await wait_until(lambda: world.signals().count("snapshot_end") == 4)
            keep, change, tune = (agent._pipes[p] for p in ("keep", "change", "tune"))
            source = agent._sources["src"]
            summary = await agent.reload(second)
            assert summary == {
                "added": ["new"],
                "removed": ["drop"],
                "restarted": ["change"],
                "updated": ["tune"],
                "added_disabled": ["off"],
                "removed_disabled": [],
            }
            assert agent._pipes["keep"] is keep  # untouched: same pipe, same session
            assert agent._pipes["change"] is not change
            assert agent._pipes["tune"] is tune  # in place: same pipe, same session
            assert tune.entry.audit_interval_sec == 5 and tune.runner.lane.max_rows == 7
            assert agent._sources["src"] is source  # the shared source keeps watching
            await wait_until(lambda: world.signals().count("snapshot_end") == 6)
            status = {p["id"]: p for p in agent.status().to_json()["pipes"]}
            assert list(status) == ["keep", "change", "tune", "new", "off"]
            assert status["off"]["enabled"] is False and status["off"]["state"] == "stopped"
            assert agent.status().to_json()["config_generation"] == 2
            # Realtime still reaches every running pipe through the one watch.
            world.push("/rt")
            await wait_until(
                lambda: (
                    sorted(e[3] for e in world.log if e[0] == "send" and e[1] == "realtime")
                    == ["change", "keep", "new", "tune"]
                )
            )

    asyncio.run(main())
    closed = [e[1] for e in world.log if e[0] == "close_session"]
    assert sorted(closed[:2]) == ["change", "drop"]  # stopped by the reload
    assert sorted(closed[2:]) == ["change", "keep", "new", "tune"]


def test_a_reload_of_intervals_applies_them_to_the_running_session(home):
    """Audits and sentinel rounds off, then on by a reload: they run in the same session
    (no second snapshot), and off again stops them."""
    world = World()
    world.sentinel_paths = ["/s"]
    off = world.config({"id": "p", "audit_interval_sec": 0, "sentinel_interval_sec": 0})
    on = world.config({"id": "p", "audit_interval_sec": 0.05, "sentinel_interval_sec": 0.05})

    def audits() -> int:
        return world.signals().count("audit_end")

    def rounds() -> int:
        return sum(1 for e in world.log if e[0] == "sentinel_feedback")

    async def main() -> None:
        agent = Agent(off, home)
        async with running(agent):
            await wait_until(lambda: "snapshot_end" in world.signals())
            await asyncio.sleep(0.3)
            assert (audits(), rounds()) == (0, 0)
            assert (await agent.reload(on))["updated"] == ["p"]
            await wait_until(lambda: audits() >= 2 and rounds() >= 2)
            assert (await agent.reload(off))["updated"] == ["p"]
            await asyncio.sleep(0.2)  # an audit or round under way may still end
            settled = (audits(), rounds())
            await asyncio.sleep(0.3)
            assert (audits(), rounds()) == settled
            assert world.sessions == 1 and world.signals().count("snapshot_end") == 1

    asyncio.run(main())


def test_changed_source_config_restarts_its_pipes_and_the_source(home):
    world = World()
    first = world.config({"id": "a"}, sources=("src",))
    second = world.config({"id": "a"}, sources=("src",))
    second.sources["src"] = second.sources["src"].__class__(
        "src",
        "fake",
        world.Source,
        second.sources["src"].config.model_copy(update={"uri": "/elsewhere"}),
    )

    async def main() -> None:
        agent = Agent(first, home)
        async with running(agent):
            await wait_until(lambda: "snapshot_end" in world.signals())
            old_source = agent._sources["src"]
            summary = await agent.reload(second)
            assert summary["restarted"] == ["a"]
            assert agent._sources["src"] is not old_source
            assert old_source.driver.stopped

    asyncio.run(main())


def test_one_failing_pipe_never_stops_the_others(home, caplog):
    world = World()
    world.snapshot_rows = []
    config = world.config(
        {"id": "bad", "sender_id": "broken"}, {"id": "good"}, senders=("out", "broken")
    )

    original_open = world.Sender.open_session

    async def open_session(self):
        if self.context.pipe_id == "bad":
            raise DriverError("401 invalid API key", retriable=False)
        return await original_open(self)

    world.Sender.open_session = open_session  # type: ignore[method-assign]

    async def main() -> None:
        async with running(Agent(config, home)) as agent:
            await wait_until(lambda: world.realtime is not None)
            world.push("/x")
            await wait_until(lambda: world.sent_paths("realtime") == ["/x"])
            status = {p["id"]: p for p in agent.status().to_json()["pipes"]}
            assert status["good"]["state"] == "running"
            assert status["bad"]["state"] == "error"
            assert "401 invalid API key" in status["bad"]["last_error"]["message"]
            assert status["bad"]["ready"] is False

    asyncio.run(main())
    # Needs an operator: an error in the log too (journalctl -p err), not a warning.
    refused = [r for r in caplog.records if "cannot open a session (401" in r.getMessage()]
    assert refused and all(r.levelname == "ERROR" for r in refused)


def test_a_sender_that_cannot_be_created_fails_only_its_pipe_until_reloaded(home):
    world = World()
    world.snapshot_rows = []

    class Unbuildable(world.Sender):  # type: ignore[name-defined, misc]
        def __init__(self, *args, **kwargs):
            raise OSError("cannot open /dev/full-of-bugs")

    config = world.config(
        {"id": "bad", "sender_id": "broken"}, {"id": "good"}, senders=("out", "broken")
    )
    spec = config.senders["broken"]
    config.senders["broken"] = type(spec)(spec.id, spec.type, Unbuildable, spec.config)
    fixed = world.config({"id": "bad", "sender_id": "out"}, {"id": "good"})

    async def main() -> None:
        agent = Agent(config, home)
        async with running(agent):
            await wait_until(lambda: world.realtime is not None)

            def states() -> dict[str, dict]:
                return {p["id"]: p for p in agent.status().to_json()["pipes"]}

            await wait_until(lambda: states()["good"]["state"] == "running")
            status = states()
            assert status["bad"]["state"] == "error" and status["bad"]["enabled"] is True
            assert "cannot open /dev/full-of-bugs" in status["bad"]["last_error"]["message"]
            summary = await agent.reload(fixed)
            assert summary["restarted"] == ["bad"]
            await wait_until(lambda: agent.status().to_json()["pipes"][0]["state"] == "running")

    asyncio.run(main())


def test_no_pipe_to_run_names_the_pipes_that_could_not_be_created(home, caplog):
    """It said 'none enabled in the configuration' when the only pipe was enabled but
    could not be created (helper 23)."""
    world = World()

    class Unbuildable(world.Sender):  # type: ignore[name-defined, misc]
        def __init__(self, *args, **kwargs):
            raise OSError("no such device")

    config = world.config({"id": "only"})
    spec = config.senders["out"]
    config.senders["out"] = type(spec)(spec.id, spec.type, Unbuildable, spec.config)

    async def main() -> None:
        async with running(Agent(config, home)):
            pass

    asyncio.run(main())
    assert "no pipe to run (none could be created: only); the agent idles" in caplog.messages


def test_a_reload_to_no_pipes_at_all_is_refused_and_changes_nothing(home):
    """A file emptied or cut short by mistake: stopping every pipe would close every
    session, and Fusion empties a view left without one. Switching each pipe off
    (``enabled: false``) is taken: it says so on purpose."""
    world = World()
    first = world.config({"id": "a"}, {"id": "b"})

    async def main() -> None:
        agent = Agent(first, home)
        async with running(agent):
            await wait_until(lambda: world.signals().count("snapshot_end") == 2)
            pipes = dict(agent._pipes)
            with pytest.raises(ConfigError, match=r"no pipes defined: reload refused, 2 pipe"):
                await agent.reload(world.config())
            assert agent._pipes == pipes and agent.config is first
            assert not [e for e in world.log if e[0] == "close_session"]
            off = world.config({"id": "a", "enabled": False}, {"id": "b", "enabled": False})
            summary = await agent.reload(off)
            assert summary["removed"] == ["a", "b"] and not agent._pipes

    asyncio.run(main())


def test_a_state_directory_that_cannot_be_made_is_one_line_naming_it(home, caplog):
    """``state`` left as a regular file: each pipe's state directory cannot be made. One
    error line names the path and why (it was a traceback), and status carries it."""
    home.root.mkdir(parents=True, exist_ok=True)
    (home.root / "state").write_text("not a directory")
    world = World()

    async def main() -> dict:
        async with running(Agent(world.config({"id": "p"}), home)) as agent:
            await wait_until(lambda: agent.status().to_json()["pipes"][0]["state"] == "error")
            return agent.status().to_json()["pipes"][0]

    with caplog.at_level(logging.ERROR, logger="fustor_agent"):
        status = asyncio.run(main())
    where = f"{home.root / 'state' / 'p'}: Not a directory"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [f"pipe p cannot be created: {where}"]
    assert errors[0].exc_info is None
    assert where in status["last_error"]["message"]
