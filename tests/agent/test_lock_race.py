"""One agent per home, even when agents start while another one stops (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml

from cli_support import agent_command

# Each worker takes the instance lock, marks "I hold it" with an O_EXCL file, lets go,
# and repeats: a second holder at any moment finds the marker and reports it.
HOLDER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from fustor_agent.lock import AlreadyRunning, InstanceLock
    pid_file, marker, ready, go = (Path(a) for a in sys.argv[1:5])
    ready.touch()  # imports done: the test starts everyone at once, however slow the machine
    deadline = time.time() + 60
    while not go.exists() and time.time() < deadline:
        time.sleep(0.01)
    until = time.time() + float(sys.argv[5])
    held = overlaps = 0
    while time.time() < until:
        try:
            lock = InstanceLock(pid_file).acquire()
        except AlreadyRunning:
            continue
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            overlaps += 1
        else:
            held += 1
            os.close(fd)
            os.unlink(marker)
        lock.release()
    print(held, overlaps)
    """
)


def test_the_lock_excludes_while_holders_come_and_go(tmp_path: Path) -> None:
    """Four processes take and release the lock as fast as they can for 3 s."""
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                HOLDER,
                str(tmp_path / "agent.pid"),
                str(tmp_path / "held"),
                str(tmp_path / f"ready-{n}"),
                str(go),
                "3",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < len(workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    go.touch()
    results = [tuple(map(int, w.communicate(timeout=60)[0].split())) for w in workers]
    assert all(w.returncode == 0 for w in workers)
    held = sum(r[0] for r in results)
    overlaps = sum(r[1] for r in results)
    assert held > 100, f"the workers barely got the lock ({results}): the test proves nothing"
    assert overlaps == 0, f"{overlaps} times two processes held the lock at once ({results})"


def test_agents_started_while_one_stops_never_run_twice(tmp_path: Path) -> None:
    """Start two agents at the moment the running one stops: at most one of them runs."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "agent-config.yaml").write_text(
        yaml.safe_dump({"console": {"enabled": False}, "sources": [], "senders": [], "pipes": []})
    )
    env = {**os.environ, "FUSTOR_HOME": str(home)}
    command = [agent_command(), "start", "--no-stderr-log"]

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def wait_running(proc: subprocess.Popen[bytes]) -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            if (home / "agent.pid").exists() and (home / "agent.pid").read_text().strip() == str(
                proc.pid
            ):
                return True
            time.sleep(0.02)
        return False

    current = spawn()
    assert wait_running(current)
    deadline = time.monotonic() + 60
    rounds = 0
    try:
        while rounds < 6 and time.monotonic() < deadline:
            current.terminate()
            contenders = [spawn(), spawn()]
            current.wait(timeout=20)
            # The loser exits at its lock attempt; with a broken lock both keep running.
            settle = time.monotonic() + 20
            while (alive := [p for p in contenders if p.poll() is None])[1:]:
                if time.monotonic() > settle:
                    for proc in alive[1:]:
                        proc.terminate()
                        proc.wait(timeout=20)
                    raise AssertionError(f"round {rounds}: two agents run on one home")
                time.sleep(0.05)
            if not alive:
                alive = [spawn()]
                assert wait_running(alive[0])
            current = alive[0]
            rounds += 1
    finally:
        for proc in [current]:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
    assert rounds >= 3
