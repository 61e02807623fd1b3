"""Our agent as a process (fs → fusion) against the real Fusion 0.8.17: issue 4's scenarios."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from agent_harness import AgentProcess, agent_executable
from fusion_harness import FusionServer, disk_tree, wait_until

pytestmark = pytest.mark.fusion

MakeAgent = Callable[..., AgentProcess]


def make_tree(root: Path) -> None:
    for d in ("a", "b/b1", "c/c1/c2", "shallow/deep"):
        (root / d).mkdir(parents=True)
    for f in (
        "top.txt",
        "a/f.txt",
        "a/g.txt",
        "b/b1/x.bin",
        "c/c1/c2/y.txt",
        "shallow/s.txt",
        "shallow/deep/x.txt",
        "shallow/deep/y.txt",
    ):
        (root / f).write_text(f"content of {f}\n")


def leaders(fusion: FusionServer) -> list[str]:
    return [s["agent_id"] for s in fusion.sessions() if s["role"] == "leader"]


def two_agents_first_leads(
    fusion: FusionServer, make_agent: MakeAgent, root: Path
) -> tuple[AgentProcess, AgentProcess]:
    """Two agents on one new tree; the first leads and has synced it before the second joins."""
    make_tree(root)
    first, second = make_agent(root, "one"), make_agent(root, "two")
    first.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    second.start()
    wait_until(lambda: len(fusion.sessions()) == 2, 10, 0.1, "two sessions")
    assert leaders(fusion) == [first.agent_id]
    return first, second


def start_with_one_unwatched_dir(
    fusion: FusionServer, make_agent: MakeAgent, root: Path, audit_interval_sec: float
) -> Path:
    """An agent with ``max_watches: 2`` on :func:`make_tree` with the root otherwise flat:
    taken breadth first, the watches cover "/" and ``shallow``, so ``shallow/deep``
    (returned) is the one unwatched directory. Returns once Fusion holds the tree."""
    make_tree(root)
    for d in ("a", "b", "c"):
        shutil.rmtree(root / d)
    agent = make_agent(
        root, source_params={"max_watches": 2}, pipe={"audit_interval_sec": audit_interval_sec}
    )
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    return root / "shallow" / "deep"


def test_snapshot_then_changes_to_files_and_dirs(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    make_tree(root)
    (root / "a" / os.fsdecode(b"caf\xe9-\xff.txt")).write_text("sent as a/caf%E9-%FF.txt")
    agent = make_agent(root)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    assert "/a/caf%E9-%FF.txt" in (fusion.files() or {})

    (root / "new.txt").write_text("created")
    (root / "a" / "f.txt").write_text("modified, and longer than before")
    (root / "top.txt").unlink()
    (root / "a" / "g.txt").rename(root / "a" / "g-renamed.txt")
    (root / "newdir" / "sub").mkdir(parents=True)
    (root / "newdir" / "sub" / "n.txt").write_text("in a new dir")
    (root / os.fsdecode(b"new-caf\xe9.bin")).write_bytes(b"a name that is not UTF-8")
    (root / "b").rename(root / "b-renamed")
    shutil.rmtree(root / "c")
    fusion.wait_tree(disk_tree(root), timeout=10)
    assert agent.stop() == 0
    # A graceful stop closes the session: the last one gone, Fusion wipes the view (§3.4).
    assert fusion.sessions() == []


def test_two_agents_one_leader_sigterm_promotes_the_follower(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    first, second = two_agents_first_leads(fusion, make_agent, root)

    assert first.stop(signal.SIGTERM) == 0
    # Closed by the stopping agent itself (DELETE), not by expiry seconds later.
    assert [s["agent_id"] for s in fusion.sessions()] == [second.agent_id]
    (root / "after-failover.txt").write_text("x")
    (root / "a" / "f.txt").unlink()
    wait_until(lambda: leaders(fusion) == [second.agent_id], 10, 0.1, "promotion")
    fusion.wait_tree(disk_tree(root), timeout=15)
    assert len(fusion.sessions()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("fusion_options", [{"session_timeout": 3}])
def test_two_agents_sigkill_of_the_leader_promotes_the_follower(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    first, second = two_agents_first_leads(fusion, make_agent, root)

    first.stop(signal.SIGKILL)
    (root / "b" / "after-kill.txt").write_text("y")
    # The dead leader's session expires (3 s + reaping); the follower's next heartbeat sees
    # the promotion and it snapshots.
    wait_until(lambda: leaders(fusion) == [second.agent_id], 15, 0.1, "promotion")
    fusion.wait_tree(disk_tree(root), timeout=15)
    assert len(fusion.sessions()) == 1


@pytest.mark.slow
def test_fusion_down_for_10s_then_back(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    make_tree(root)
    agent = make_agent(root)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)

    fusion.stop()
    down_at = time.monotonic()
    (root / "while-down.txt").write_text("written while Fusion was down")
    (root / "a" / "f.txt").unlink()
    time.sleep(3)
    (root / "down-dir").mkdir()
    (root / "down-dir" / "inner.txt").write_text("z")
    (root / "b").rename(root / "b-moved")
    time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
    fusion.start()

    fusion.wait_tree(disk_tree(root), timeout=45)
    sessions = fusion.sessions()
    assert [s["agent_id"] for s in sessions] == [agent.agent_id]  # no duplicate sessions
    assert sessions[0]["role"] == "leader"


def test_unwatched_change_found_by_audit_as_blind_spot(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    deep = start_with_one_unwatched_dir(fusion, make_agent, root, audit_interval_sec=2)

    (deep / "unseen.txt").write_text("inotify cannot see this")
    (deep / "x.txt").unlink()
    fusion.wait_tree(disk_tree(root), timeout=15)
    spots = fusion.blind_spots()
    assert "/shallow/deep/unseen.txt" in [n["path"] for n in spots["additions"]]
    assert "/shallow/deep/x.txt" in spots["deletions"]


def test_an_unwatched_file_replaced_by_a_directory_keeps_its_children(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """Only an audit sees it (another NFS client): it lists the new directory's children
    before the directory's own row. Fusion 0.8.17 put them under a placeholder beside the
    stale file, and the directory's row then deleted them, at every audit."""
    root = tmp_path / "data"
    deep = start_with_one_unwatched_dir(fusion, make_agent, root, audit_interval_sec=1)
    for i in range(5):
        (deep / f"p{i}").write_text("a file")
    fusion.wait_tree(disk_tree(root), timeout=15)
    time.sleep(4.0)  # an audit lists and caches deep (its mtime older than the tick)
    for i in range(5):
        (deep / f"p{i}").unlink()
        (deep / f"p{i}").mkdir()
        (deep / f"p{i}" / "inner").write_text("in a directory now")
    fusion.wait_tree(disk_tree(root), timeout=15)
    time.sleep(4.0)  # more audits: each sends the directories' rows again
    fusion.wait_tree(disk_tree(root), timeout=2.0)


def test_on_demand_scan_job_completes(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    deep = start_with_one_unwatched_dir(fusion, make_agent, root, audit_interval_sec=0)

    (deep / "scanned.txt").write_text("only a scan finds me")
    asked = fusion.get(
        f"/api/v1/views/{fusion.view_id}/tree",
        path="/shallow/deep",
        recursive="true",
        on_demand_scan="true",
    )
    job_id = asked.json()["job_id"]
    wait_until(lambda: fusion.job(job_id)["status"] == "COMPLETED", 15, 0.1, "job completion")
    fusion.wait_tree(disk_tree(root), timeout=5)


@pytest.mark.parametrize("fusion_options", [{"session_timeout": 30}])
def test_crashed_agent_restarts_as_leader_and_closes_its_dead_session(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    make_tree(root)
    agent = make_agent(root)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    [dead] = fusion.sessions()

    agent.stop(signal.SIGKILL)
    (root / "after-crash.txt").write_text("x")
    agent.start()
    wait_until(
        lambda: (
            [(s["session_id"] != dead["session_id"], s["role"]) for s in fusion.sessions()]
            == [(True, "leader")]
        ),
        8,  # the dead session would expire only 20-30 s after the kill: the DELETE did it
        0.1,
        "the restarted agent to be the only session, as leader",
    )
    fusion.wait_tree(disk_tree(root), timeout=10)


def change_while_no_agent_leads(root: Path) -> None:
    """On :func:`make_tree`: a file and a directory go away, a file comes."""
    (root / "a" / "f.txt").unlink()
    shutil.rmtree(root / "c")
    (root / "b" / "new.txt").write_text("made while no agent led")


def audit_cycles(fusion: FusionServer) -> int:
    response = fusion.get(f"/api/v1/views/{fusion.view_id}/stats")
    return int(response.json().get("audit_cycle_count", 0)) if response.is_success else 0


@pytest.mark.parametrize("how", ["stopped", "expired"])
def test_a_view_no_session_held_is_right_after_the_snapshot_alone(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, how: str
) -> None:
    """Fusion wipes a view when its last session ends (closed, or expired after a crash),
    so the next agent leads an empty view: its snapshot alone makes it right, what went
    away meanwhile included, and it runs no audit before its interval (issue 14)."""
    root = tmp_path / "data"
    make_tree(root)
    agent = make_agent(
        root, pipe={"audit_interval_sec": 3600}, sender_params={"session_timeout_sec": 3}
    )
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    if how == "stopped":
        agent.stop(signal.SIGTERM)
    else:
        agent.stop(signal.SIGKILL)
        wait_until(lambda: not fusion.sessions(), 20, 0.2, "the killed agent's session to expire")
    change_while_no_agent_leads(root)
    before = audit_cycles(fusion)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=30)
    time.sleep(2)
    fusion.wait_tree(disk_tree(root), timeout=1)
    assert audit_cycles(fusion) == before
    assert fusion.blind_spots()["additions"] == []
    assert fusion.errors() == 0


def test_the_first_audit_of_a_term_removes_what_went_away_and_adds_no_blind_spot(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """What went away while no agent led is removed by the first audit of the new term
    (issue 11), and every node still comes from the snapshot tier: a node Fusion first took
    from an audit row would be listed as a blind-spot addition (issue 14 kept that order)."""
    root = tmp_path / "data"
    make_tree(root)
    agent = make_agent(root, pipe={"audit_interval_sec": 3600})
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    agent.stop(signal.SIGKILL)
    change_while_no_agent_leads(root)
    before = audit_cycles(fusion)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=30)
    wait_until(lambda: audit_cycles(fusion) > before, 30, 0.1, "the first audit of the new term")
    spots = fusion.blind_spots()
    assert spots["additions"] == []
    assert {"/a/f.txt", "/c"} <= set(spots["deletions"])
    assert fusion.errors() == 0


def test_a_reload_of_the_audit_interval_keeps_the_session_and_the_view(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """Only ``audit_interval_sec`` changed: the reload updates the pipe in place. The view
    stays readable all along (a restart closed the view's only session, and Fusion emptied
    it and answered 503 until the new snapshot ended), and audits follow the new interval
    in the same session."""
    root = tmp_path / "data"
    make_tree(root)
    agent = make_agent(root, pipe={"audit_interval_sec": 3600})
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    sessions = [s["session_id"] for s in fusion.sessions()]
    before = audit_cycles(fusion)
    agent.pipe["audit_interval_sec"] = 0.5
    agent.write_config()
    reload = subprocess.run(
        [str(agent_executable()), "reload"],
        env={**os.environ, "FUSTOR_HOME": str(agent.home)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert reload.returncode == 0, reload.stderr
    assert "restarted [], updated ['research']" in reload.stdout, reload.stdout
    fusion.wait_tree(disk_tree(root), timeout=1)  # no 503, nothing emptied
    wait_until(lambda: audit_cycles(fusion) >= before + 2, 20, 0.2, "audits every 0.5 s")
    assert [s["session_id"] for s in fusion.sessions()] == sessions
    fusion.wait_tree(disk_tree(root), timeout=1)
    assert fusion.errors() == 0
