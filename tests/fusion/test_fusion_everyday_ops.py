"""Everyday file operations against the real Fusion 0.8.17: a path on disk is in Fusion.

Each scenario of issue 11 runs our agent (fs → fusion) as a process with default settings and
ends with Fusion's tree equal to the disk (and, checked by the ``fusion`` fixture, no handler
errors). Fusion runs with its default ``tombstone_ttl_seconds`` (3600 s) unless a scenario
says otherwise, so a tombstone left on an existing path would show as a missing file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentProcess
from fusion_harness import FusionServer, disk_tree, wait_until
from inotify_simple import INotify
from inotify_simple import flags as iflags

from deep_paths import deep_dir, touch_at

pytestmark = pytest.mark.fusion

MakeAgent = Callable[..., AgentProcess]
SETTLE = 6.0
"""Seconds within which a quiet tree must be in Fusion (delete settle, realtime, margin)."""


@pytest.fixture
def fusion_options() -> dict:
    # Fusion's defaults: tombstones last an hour, its audits every 30 s do not matter here.
    return {"tombstone_ttl": 3600.0, "audit_interval": 3600.0}


def synced(fusion: FusionServer, make_agent: MakeAgent, root: Path, **options: Any) -> AgentProcess:
    agent = make_agent(root, **options)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    return agent


def sh(script: str, cwd: Path) -> None:
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, check=True)


def test_safe_saves_by_rename_keep_every_file(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    root = tmp_path / "w"
    (root / "s").mkdir(parents=True)
    for i in range(8):
        (root / "s" / f"cfg{i}.ini").write_text("old\n")
    synced(fusion, make_agent, root)
    for i in range(8):
        sh(
            f"echo new{i} > s/cfg{i}.ini.tmp; mv s/cfg{i}.ini s/cfg{i}.ini.old; "
            f"mv s/cfg{i}.ini.tmp s/cfg{i}.ini; rm s/cfg{i}.ini.old",
            root,
        )
        time.sleep(0.15)
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)


def test_git_checkout_like_rewrites_keep_every_file(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """unlink + create of many files at once (``git checkout``, ``tar x`` over a tree),
    the new files' mtimes set back (``tar`` restores them)."""
    root = tmp_path / "w"
    (root / "src").mkdir(parents=True)
    for i in range(50):
        (root / "src" / f"m{i}.py").write_text("v1\n")
    synced(fusion, make_agent, root)
    old = time.time() - 86400
    for i in range(50):
        path = root / "src" / f"m{i}.py"
        path.unlink()
        path.write_text("v2 longer\n")
        os.utime(path, (old, old))
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)


def test_type_changes_reach_fusion_as_the_new_node(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    root = tmp_path / "w"
    for d in ("r/d1/sub", "r/d2", "r/d3/old"):
        (root / d).mkdir(parents=True)
    for f in ("r/d1/a.txt", "r/d1/sub/b.txt", "r/f1", "r/f2", "r/d2/x", "r/d3/old/y"):
        (root / f).write_text("x\n")
    synced(fusion, make_agent, root)
    outside = tmp_path / "outside"
    outside.mkdir()
    sh("rm -r r/d1 && echo x > r/d1", root)  # directory -> file
    sh("rm r/f1 && mkdir r/f1 && echo y > r/f1/inner", root)  # file -> directory
    sh("rm r/f2 && ln -s d2 r/f2", root)  # file -> symlink
    # directory -> another directory (the old one moved away, so no per-file deletes)
    sh(f"mv r/d3 {outside}/d3 && mkdir r/d3 && echo z > r/d3/new", root)
    sh("mv r/d2 r/d2.bak && mkdir r/d2", root)  # directory -> empty directory
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)


def test_root_replaced_is_followed_and_the_old_tree_forgotten(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    root = tmp_path / "w"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "old.txt").write_text("o\n")
    (root / "keep.txt").write_text("k\n")
    synced(fusion, make_agent, root, pipe={"audit_interval_sec": 3600})
    old_root = tmp_path / "w.old"
    root.rename(old_root)
    root.mkdir()
    (root / "new.txt").write_text("n\n")
    time.sleep(3)
    (root / "later.txt").write_text("l\n")
    shutil.rmtree(old_root / "sub")  # outside the root now: must not be sent as /sub
    (old_root / "ghost.txt").write_text("g\n")  # nor this as /ghost.txt
    fusion.wait_tree(disk_tree(root), timeout=SETTLE + 4)
    time.sleep(1.0)
    fusion.wait_tree(disk_tree(root), timeout=1)


def test_root_deleted_and_made_again_with_its_inode_is_watched_again(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """``rm -rf root && mkdir root``: ext4 gives the new directory the old one's inode, so
    the root looks unchanged, but inotify dropped every watch with the old one. Realtime
    stopped for good (helper 28), and status still said it ran; only audits brought
    changes in. Audits are off here: realtime alone must bring the new files."""
    root = tmp_path / "w"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "old.txt").write_text("o\n")
    synced(fusion, make_agent, root, pipe={"audit_interval_sec": 3600})
    # ext4 gives the freed inode to the next directory made, unless a file made elsewhere
    # at that moment takes it first (tests run side by side): try again then.
    for _ in range(20):
        inode = root.stat().st_ino
        shutil.rmtree(root)
        root.mkdir()
        if root.stat().st_ino == inode:
            break
    else:
        pytest.fail("the re-made root never got its old inode in 20 tries: nothing was tested")
    (root / "new.txt").write_text("n\n")
    time.sleep(3)
    (root / "later").mkdir()
    (root / "later" / "f.txt").write_text("l\n")
    fusion.wait_tree(disk_tree(root), timeout=SETTLE + 4)


def test_a_directory_beyond_path_max_does_not_stop_realtime(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    root = tmp_path / "w"
    (root / "a").mkdir(parents=True)
    names = [f"{i:02d}" + "d" * 188 for i in range(25)]
    with deep_dir(root / "a", names, create=True) as fd:
        touch_at(fd, "deep.txt")
    deep_rel = "/a/" + "/".join(names)
    assert len(os.fsencode(str(root) + deep_rel)) > 4096
    agent = make_agent(root, pipe={"audit_interval_sec": 3600})
    agent.start()

    def held() -> dict[str, tuple[str, int, float]]:
        return fusion.files() or {}

    wait_until(lambda: deep_rel + "/deep.txt" in held(), 20, 0.2, "the deep file in Fusion")
    (root / "top.txt").write_text("t\n")
    wait_until(lambda: "/top.txt" in held(), SETTLE, 0.1, "realtime for the rest of the tree")
    with deep_dir(root / "a", names) as fd:
        touch_at(fd, "later.txt")
    wait_until(lambda: deep_rel + "/later.txt" in held(), SETTLE, 0.1, "realtime in the deep dir")
    assert "restarting realtime" not in agent.log_tail(400)


def test_directory_made_readable_is_watched_and_listed_at_once(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """The agent runs as root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH, so a mode-700
    directory of another owner is closed to it, as to any unprivileged agent."""
    root = tmp_path / "w"
    locked = root / "locked"
    locked.mkdir(parents=True)
    (locked / "early.txt").write_text("e\n")
    os.chown(locked, 65534, 65534)
    os.chmod(locked, 0o700)
    agent = make_agent(
        root,
        pipe={"audit_interval_sec": 3600},
        command_prefix=["setpriv", "--bounding-set", "-dac_override,-dac_read_search"],
    )
    agent.start()
    wait_until(lambda: "/locked" in (fusion.files() or {}), 20, 0.2, "the locked dir's row")
    os.chmod(locked, 0o755)
    (locked / "inside.txt").write_text("i\n")
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)
    assert "cannot watch /locked" in agent.log_tail(400)


def test_a_write_through_one_hard_link_updates_the_other_name(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    root = tmp_path / "w"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "a" / "x.dat").write_text("one\n")
    os.link(root / "a" / "x.dat", root / "b" / "y.dat")
    synced(fusion, make_agent, root, pipe={"audit_interval_sec": 3600})
    with open(root / "a" / "x.dat", "a") as f:
        f.write("two\n")
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)
    os.link(root / "b" / "y.dat", root / "z.dat")  # a third name, made while running
    with open(root / "z.dat", "a") as f:
        f.write("three\n")
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)
    # A file with one name, then a second one made while running: link() raises no event on
    # the first name, and no audit comes within the test (audit_interval_sec above).
    (root / "a" / "solo.dat").write_text("one\n")
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)
    os.link(root / "a" / "solo.dat", root / "a" / "solo.link")
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)
    with open(root / "a" / "solo.link", "a") as f:
        f.write("two\n")
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)


@pytest.mark.parametrize("truncate", [False, True], ids=["append", "append-truncate-append"])
def test_a_log_held_open_gets_its_final_size_within_the_throttle_window(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, truncate: bool
) -> None:
    root = tmp_path / "w"
    root.mkdir()
    synced(fusion, make_agent, root, pipe={"audit_interval_sec": 3600})
    log = open(root / "app.log", "w")  # held open across the test on purpose
    try:
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            log.write("line\n" * 20)
            log.flush()
            if truncate and 0.45 < time.monotonic() - started < 0.55:
                log.truncate(0)
                log.seek(0)
            time.sleep(0.05)
        last_write = time.monotonic()
        # Default throttle 5 s: the trailing edge sends the size within that window.
        fusion.wait_tree(disk_tree(root), timeout=5.0 + 1.5)
        assert time.monotonic() - last_write <= 6.5
    finally:
        log.close()


TTL = 5.0
AUDIT = 3.0


# Each puts an older mtime at a path whose delete already reached Fusion (its tombstone).
_PUT_BACK = {
    "cp-p": "cp -p ../saved/g d/g",
    "mv-back": "mv ../saved/f d/f",
    "tar-x": "tar xf ../saved/g.tar",
    "dir-back": "mv ../saved/proj proj",
    "dir-for-file": "cp -a ../saved/proj d/g",
}


@pytest.mark.parametrize("put_back", sorted(_PUT_BACK))
def test_recreated_with_an_old_mtime_after_the_delete_went_out_is_in_fusion_at_once(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, put_back: str
) -> None:
    """The delete reached Fusion (the path stayed away past the settle window), then the path
    came back with an older mtime. Fusion's tombstone (an hour here, audits off) dropped
    the re-creation until an audit end past its TTL; the sender now clears it in the same
    send (docs/CONSISTENCY_DESIGN.md section 8). Files and directories, mtimes included."""
    root, saved = tmp_path / "w", tmp_path / "saved"
    (root / "d").mkdir(parents=True)
    (root / "proj" / "sub").mkdir(parents=True)
    saved.mkdir()
    for name in ("d/f", "d/g", "proj/a", "proj/sub/b"):
        (root / name).write_text(name + "\n")
    old = 1_500_000_000.0
    for name in ("d/f", "d/g", "proj/a", "proj/sub/b", "proj/sub", "proj"):
        os.utime(root / name, (old, old))  # old files are not suspect in Fusion
    sh("cp -p d/g ../saved/g && tar cf ../saved/g.tar d/g", root)
    synced(fusion, make_agent, root, pipe={"audit_interval_sec": 3600})
    gone = {
        "cp-p": "rm d/g",
        "mv-back": "mv d/f ../saved/f",
        "tar-x": "rm d/g",
        "dir-back": "mv proj ../saved/proj",
        "dir-for-file": "rm d/g && cp -a proj ../saved/proj",
    }[put_back]
    sh(gone, root)
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)  # the delete went out: a tombstone
    sh(_PUT_BACK[put_back], root)
    fusion.wait_tree(disk_tree(root), timeout=SETTLE, dir_mtimes=True)
    # The clearing row (a day ahead) leaves no trace: Fusion's clock was not moved ahead
    # (realtime rows of old files may pull it back), nothing is left suspect, and no blind
    # spot was reported.
    stats = fusion.get(f"/api/v1/views/{fusion.view_id}/stats").json()
    assert stats["logical_now"] < time.time() + 2, stats
    assert stats["suspect_file_count"] == 0, stats
    spots = fusion.blind_spots()
    assert not spots.get("additions") and not spots.get("deletions"), spots


def _d_with_saved_g(tmp_path: Path, other: str) -> tuple[Path, Path]:
    """(root, saved): ``root/d/g`` and ``root/d/<other>``, and a copy of ``g`` with its mtime
    outside the tree (what a restore puts back)."""
    root = tmp_path / "w"
    (root / "d").mkdir(parents=True)
    for name in ("g", other):
        (root / "d" / name).write_text(f"{name}\n")
    saved = tmp_path / "saved-g"
    shutil.copy2(root / "d" / "g", saved)
    return root, saved


@pytest.mark.parametrize("fusion_options", [{"tombstone_ttl": TTL, "audit_interval": 3600.0}])
def test_restored_while_the_agent_was_killed_comes_back(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """The delete reached Fusion, then the agent was killed and the path came back with its
    old mtime (and its directory's mtime put back) before the agent started again: the new
    process never saw the delete, and its new session keeps Fusion's tree (and tombstone)
    alive while it ends the dead one. Its audits list everything once, after an audit end
    past the TTL of its start."""
    root, saved = _d_with_saved_g(tmp_path, "h")
    options: dict[str, Any] = {
        "pipe": {"audit_interval_sec": AUDIT},
        "source_params": {"tombstone_ttl_sec": TTL},
    }
    agent = synced(fusion, make_agent, root, **options)
    (root / "d" / "g").unlink()
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)  # the delete went out: a tombstone
    agent.stop(signal.SIGKILL)  # its session lingers until Fusion's 10 s timeout
    shutil.copy2(saved, root / "d" / "g")
    old = time.time() - 3600
    os.utime(root / "d", (old, old))  # as rsync -a or tar x leave it: audits may skip d at once
    agent.start()
    back = time.monotonic()
    bound = TTL + 5.0 + 2 * AUDIT + 10.0 + 8.0  # + the old session's 10 s timeout, restart
    fusion.wait_tree(disk_tree(root), timeout=bound)
    assert time.monotonic() - back > 1.0, "back at once: no tombstone was exercised"


@pytest.mark.parametrize("kept", ["as written", "damaged"])
def test_files_set_back_while_the_agent_was_down_are_corrected(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, kept: str
) -> None:
    """Killed, then a file and a directory put back to older versions (other size, older
    mtime) before the agent starts again: its new session keeps Fusion's view, whose newer
    mtimes win over every snapshot or audit row (protocol §5.4). The agent kept the time up
    to which it watched, and realtime sends again what changed after it (catchup.py). A
    damaged file (here a NaN time) means everything goes again (helper 33)."""
    root = tmp_path / "w"
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "f").write_text("version 2, longer\n")
    (root / "d" / "g").write_text("unchanged\n")
    saved = tmp_path / "saved-f"
    saved.write_text("v1\n")
    old = time.time() - 86400
    os.utime(saved, (old, old))
    agent = synced(fusion, make_agent, root, pipe={"audit_interval_sec": 3600})
    time.sleep(6.0)  # realtime notes every 5 s until when it watched
    agent.stop(signal.SIGKILL)
    shutil.copy2(saved, root / "d" / "f")
    os.utime(root / "d" / "sub", (old, old))
    assert fusion.files()["/d/f"][1:] != disk_tree(root)["/d/f"][1:]
    if kept == "damaged":
        (noted,) = (agent.home / "state").rglob("watched-until.json")
        noted.write_text(f'{{"root": "{root}", "until": NaN}}')
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=25, dir_mtimes=True)


def test_a_directory_moved_in_while_the_agent_was_down_is_corrected_whole(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """Killed, then ``mv d d.new && mv bak/d d``: the backup's older, shorter files. A rename
    changes the ctime of the moved directory only, so its subtree is sent again whole
    (helper 31)."""
    root, bak = tmp_path / "w", tmp_path / "bak"
    (bak / "d" / "sub").mkdir(parents=True)
    (bak / "d" / "f").write_text("v1\n")
    (bak / "d" / "sub" / "h").write_text("h1\n")
    old = time.time() - 86400
    for path in (bak / "d" / "f", bak / "d" / "sub" / "h", bak / "d" / "sub", bak / "d"):
        os.utime(path, (old, old))
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "f").write_text("version 2, longer\n")
    (root / "d" / "sub" / "h").write_text("h version 2, longer\n")
    # A 1 s slack: the backup's ctimes (made just now) are older than the noted time.
    options: dict[str, Any] = {
        "pipe": {"audit_interval_sec": 3600},
        "source_params": {"recovery_ctime_slack_sec": 1.0},
    }
    agent = synced(fusion, make_agent, root, **options)
    time.sleep(6.0)  # realtime notes every 5 s until when it watched
    agent.stop(signal.SIGKILL)
    os.rename(root / "d", tmp_path / "d.new")
    os.rename(bak / "d", root / "d")
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=25, dir_mtimes=True)


def test_a_put_back_still_queued_for_a_stalled_fusion_at_a_crash_is_caught_up(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """Fusion stalls (SIGSTOP); a file is put back to an older version; the agent, its row
    still queued, is killed later than the catch-up's slack. The time up to which realtime
    "saw everything" must not pass rows no peer acknowledged (helper 31)."""
    root = tmp_path / "w"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_text("version 2, longer\n")
    saved = tmp_path / "saved-f"
    saved.write_text("v1\n")
    old = time.time() - 86400
    os.utime(saved, (old, old))
    options: dict[str, Any] = {
        "pipe": {"audit_interval_sec": 3600},
        "source_params": {"recovery_ctime_slack_sec": 1.0},
    }
    agent = synced(fusion, make_agent, root, **options)
    time.sleep(1.0)  # realtime has noted until when it saw everything
    assert fusion.process is not None
    fusion.process.send_signal(signal.SIGSTOP)
    try:
        shutil.copy2(saved, root / "d" / "f")
        time.sleep(8.0)  # past the slack, and a note's 5 s period
        agent.stop(signal.SIGKILL)
    finally:
        fusion.process.send_signal(signal.SIGCONT)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=30, dir_mtimes=True)


def test_deleted_then_killed_then_restored_comes_back_at_the_restart(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """``rm`` reached Fusion (a tombstone), the agent was killed (Fusion keeps its view), the
    file restored from a backup with its old mtime, the agent started again: the sender's
    deletes are kept in the pipe's state dir, so the restored file's tombstone is cleared,
    with audits off and Fusion's one-hour TTL (helper 31)."""
    root, saved = _d_with_saved_g(tmp_path, "f")
    agent = synced(fusion, make_agent, root, pipe={"audit_interval_sec": 3600})
    (root / "d" / "g").unlink()
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)  # the delete went out: a tombstone
    time.sleep(6.0)  # realtime notes until when it saw everything
    agent.stop(signal.SIGKILL)
    shutil.copy2(saved, root / "d" / "g")
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=25, dir_mtimes=True)


def _backed_up_tree(tmp_path: Path, dirs: int, files: int) -> tuple[Path, Path]:
    """(root, backup): ``root/big/d<i>/f<jj>``, ``dirs`` directories of ``files`` files,
    and a copy of ``big`` with the same mtimes (what ``cp -a`` restores)."""
    root = tmp_path / "w"
    for i in range(dirs):
        for j in range(files):
            path = root / "big" / f"d{i}" / f"f{j:02}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{i}-{j}\n")
    backup = tmp_path / "backup"
    shutil.copytree(root / "big", backup, copy_function=shutil.copy2)
    return root, backup


@pytest.mark.parametrize("pause", [0.0, 1.0], ids=["at-once", "after-1s"])
def test_a_tree_removed_and_restored_from_a_backup_is_all_there(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, pause: float
) -> None:
    """``rm -rf d`` then ``cp -a backup d`` (old mtimes): the removal goes out as one delete
    of ``d``, so no file of the restored tree is hidden by a tombstone of its own."""
    root, backup = _backed_up_tree(tmp_path, dirs=10, files=50)
    synced(fusion, make_agent, root, pipe={"audit_interval_sec": 3600})
    sh(f"rm -rf big && sleep {pause} && cp -a {backup} big", root)
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)


def test_a_tree_removed_slowly_then_restored_from_a_backup_is_all_there(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """An ``rm -rf`` slower than the settle window (files 10 ms apart), then, once its
    deletes went out, ``cp -a`` of a backup (old mtimes). Each file's delete used to go out
    on its own, leaving a tombstone that hid the restored file for the tombstone's lifetime,
    an hour by default (helper 28: 71 of 100 files). Audits are off: realtime alone."""
    # 60 files 10 ms apart: 0.6 s for each directory, twice the settle window.
    root, backup = _backed_up_tree(tmp_path, dirs=2, files=60)
    synced(fusion, make_agent, root, pipe={"audit_interval_sec": 3600})
    for directory in sorted((root / "big").iterdir()):
        for path in sorted(directory.iterdir()):
            path.unlink()
            time.sleep(0.01)
        directory.rmdir()
    (root / "big").rmdir()
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)  # the deletes went out
    sh(f"cp -a {backup} big", root)
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)


def test_a_directory_moved_out_and_back_keeps_its_files_through_audits(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """A directory moved out (its delete goes out, with a tombstone) and back with its old
    mtime and inode: each audit found it unchanged and sent it skipped; Fusion dropped that
    row for the tombstone, kept its placeholder's "listed" flag, and at the audit end
    deleted the files the audit did not send (helper 15, F2). Audits now list it."""
    root = tmp_path / "w"
    proj = root / "proj"
    (proj / "sub").mkdir(parents=True)
    for name in ("f1", "f2", "f3", "sub/g"):
        (proj / name).write_text(name)
    old = 1_500_000_000.0
    for path in (proj / "f1", proj / "f2", proj / "f3", proj / "sub" / "g", proj / "sub", proj):
        os.utime(path, (old, old))
    synced(fusion, make_agent, root, pipe={"audit_interval_sec": 1})
    time.sleep(3.0)  # audits cache proj as unchanged
    outside = tmp_path / "outside"
    proj.rename(outside)
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)  # its delete went out
    outside.rename(proj)
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)
    time.sleep(4.0)  # several audits end
    fusion.wait_tree(disk_tree(root), timeout=2.0)


@pytest.mark.parametrize("backend", ["inotify", "fanotify"])
def test_files_replaced_by_directories_keep_their_children(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, backend: str
) -> None:
    """``rm f; mkdir f; echo > f/inner`` (``git checkout``, ``tar x``): the child went out
    while the file's replacement was held, before the directory. Fusion 0.8.17 then keeps
    the stale file beside a placeholder directory, and every later row of that directory
    (each audit) deletes the child again, for good (helper 15, F1: up to 40 of 40 on
    fanotify). A directory now goes out before anything under it."""
    root = tmp_path / "w"
    root.mkdir()
    synced(
        fusion,
        make_agent,
        root,
        source_params={"watch_backend": backend},
        pipe={"audit_interval_sec": 2},
    )
    work = root / "new"
    work.mkdir()
    sh("for i in $(seq 40); do echo x > f$i; done", work)
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)
    sh("for i in $(seq 40); do rm f$i; mkdir f$i; echo i > f$i/inner; done", work)
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)
    time.sleep(8.0)  # audits send each directory's row again
    fusion.wait_tree(disk_tree(root), timeout=2.0)


def test_directories_moved_while_an_audit_lists_them_leave_no_old_names(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """``mv d/s d/sr`` or ``rm -rf d/s`` just after the audit listed ``d/s``: the audit's
    rows under it, still queued behind rows read before them, reached Fusion after
    realtime's delete. The tombstone covers ``d/s``, not its children, so they made it again
    as a placeholder that the same tombstone kept from every later audit: the old name and
    its files stayed for good (helper 18: 13-21 directories, thousands of rows, old build,
    every run). Each path realtime deleted during a walk is now deleted again when it ends.

    Fusion is held (SIGSTOP) from the listing until realtime's delete is on its way, so the
    delete reaches it before the queued rows, as on a busy server."""
    assert fusion.process is not None
    root = tmp_path / "w"
    subdirs = []
    for i in range(12):
        sub = root / f"d{i:02d}" / "s"
        sub.mkdir(parents=True)
        subdirs.append(sub)
        for j in range(250):
            (sub / f"f{j:03d}").write_bytes(b"x")
            (sub.parent / f"g{j:03d}").write_bytes(b"y")
    agent = make_agent(
        root,
        source_params={"batch_size": 100, "queue_batches": 256, "delete_settle_sec": 0},
        sender_params={"max_batch_size": 100},
        pipe={"audit_interval_sec": 3},
    )
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=30)
    moved = 0
    with INotify() as opened:
        watched = {
            opened.add_watch(sub, iflags.OPEN | iflags.ONLYDIR | iflags.ONESHOT): sub
            for sub in subdirs
        }
        deadline = time.monotonic() + 30
        while watched and time.monotonic() < deadline:
            for event in opened.read(timeout=100):
                sub = watched.pop(event.wd, None)
                if sub is None or moved == 4:
                    continue
                fusion.process.send_signal(signal.SIGSTOP)
                try:
                    if moved % 2:
                        shutil.rmtree(sub)
                    else:
                        sub.rename(sub.with_name("sr"))
                    moved += 1
                    time.sleep(0.3)  # realtime's delete is sent
                finally:
                    fusion.process.send_signal(signal.SIGCONT)
    assert moved == 4, f"the audit listed {moved} of the directories"
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)
    time.sleep(7.0)  # audits end; the parents are cached as unchanged
    fusion.wait_tree(disk_tree(root), timeout=2.0)


@pytest.mark.parametrize("restart", [False, True], ids=["same-agent", "after-a-restart"])
@pytest.mark.parametrize("days", [2, 30])
def test_files_dated_ahead_do_not_hide_a_later_re_creation(
    fusion: FusionServer, make_agent: MakeAgent, tmp_path: Path, days: int, restart: bool
) -> None:
    """Files dated ``days`` ahead (``touch -d``, ``tar x`` from a host whose clock runs ahead)
    as a fresh view's first realtime rows move Fusion's watermark that far ahead (protocol
    §5.8: the most common skew, ties to the future), and a delete then stamps its tombstone
    there. ``rm f; echo > f`` a second later left ``f`` out of Fusion until that date
    (helper 37): the clearing row was only a day ahead. The sender now clears past the most
    any realtime mtime it sent ran ahead, also after a restart: the lead is kept in the
    pipe's state directory, as Fusion keeps its clock's samples (no slack for the restart's
    catch-up, so that it does not send the dated files again)."""
    root = tmp_path / "w"
    (root / "d").mkdir(parents=True)
    (root / "d" / "victim").write_text("v\n")
    (root / "dated").mkdir()
    for i in range(5):
        (root / "dated" / f"f{i}").write_text("o\n")
    agent = synced(
        fusion,
        make_agent,
        root,
        pipe={"audit_interval_sec": 3600},
        source_params={"recovery_ctime_slack_sec": 0},
    )
    ahead = time.time() + days * 86400
    for i in range(5):
        os.utime(root / "dated" / f"f{i}", (ahead, ahead))

    def stats() -> dict[str, Any]:
        """The view's stats; empty while Fusion answers 503 (a new session's snapshot)."""
        response = fusion.get(f"/api/v1/views/{fusion.view_id}/stats")
        return response.json() if response.status_code == 200 else {}

    def watermark_ahead() -> bool:
        return stats().get("logical_now", 0) > time.time() + days * 86400 - 60

    wait_until(watermark_ahead, timeout=SETTLE, what="Fusion's watermark moved ahead")
    if restart:
        time.sleep(6.0)  # realtime notes until when it saw everything
        audits = stats()["audit_cycle_count"]
        agent.stop(signal.SIGKILL)
        agent.start()
        # The audit after the new snapshot ended: it would delete a missing file itself.
        wait_until(
            lambda: stats().get("audit_cycle_count", -1) > audits,
            timeout=20,
            what="the restarted agent's first audit",
        )
        assert watermark_ahead()
    (root / "d" / "victim").unlink()
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)  # the delete went out: a tombstone
    (root / "d" / "victim").write_text("back\n")
    fusion.wait_tree(disk_tree(root), timeout=SETTLE)
    assert fusion.files()["/d/victim"][:2] == ("file", 5)
