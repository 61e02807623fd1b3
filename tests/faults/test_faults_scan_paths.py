"""Bad input: on-demand scans of hostile paths never read outside the watched root."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import inotify_simple
import pytest
from fusion_harness import FusionServer, disk_tree, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenario import MakeAgent, converge, record

from fustor_core.paths import confine
from fustor_source_fs.config import FsSourceConfig
from fustor_source_fs.driver import FsSource

CANARY = "outside-canary.txt"

HOSTILE_PATHS = [
    "..",
    "../outside",
    f"/../outside/{CANARY}",
    "/./../..",
    "/inside/../../outside",
    "/link",
    "/link/",
    f"/link/{CANARY}",
    "link/../..",
    f"/sub/up/{CANARY}",
    "/sub/up",
    "/abs",
    "/abs/passwd",
    "//etc/passwd",
    "/etc/passwd",
    "\x00",
    "/sub\x00/../..",
    "/" + "a/" * 3000,
    "/" + "x" * 5000,
    "~",
    "$HOME",
    "%2e%2e/outside",
    "..\\..\\outside",
    "/sub/loop/loop/loop",
]


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A root with symlinks leading out of it, next to an outside directory with a canary."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "inside").mkdir(parents=True)
    (root / "sub").mkdir()
    (root / "inside" / "ok.txt").write_text("inside")
    outside.mkdir()
    (outside / CANARY).write_text("must never be read or listed")
    (outside / "deeper").mkdir()
    os.symlink(outside, root / "link")
    os.symlink("../../outside", root / "sub" / "up")
    os.symlink("/etc", root / "abs")
    os.symlink("loop", root / "sub" / "loop")
    return root, outside


@pytest.fixture
def outside_reads(layout: tuple[Path, Path]) -> Iterator[inotify_simple.INotify]:
    """inotify on the outside tree: any open or listing there is an escape."""
    _, outside = layout
    watcher = inotify_simple.INotify()
    mask = inotify_simple.flags.OPEN | inotify_simple.flags.ACCESS
    for directory in (outside, outside / "deeper"):
        watcher.add_watch(directory, mask)
    # The probe can fail: a listing of the outside tree is seen.
    os.listdir(outside)
    assert watcher.read(timeout=1000), "inotify did not see a listing of the outside tree"
    try:
        yield watcher
    finally:
        watcher.close()


def _scan(source: FsSource, path: str, recursive: bool) -> tuple[list[dict], str | None]:
    async def run() -> list[dict]:
        rows: list[dict] = []
        async for batch in source.scan(path, recursive):
            for event in batch.events:
                rows.extend(event.rows)
        return rows

    try:
        return asyncio.run(run()), None
    except Exception as exc:  # the host catches these and still completes the job
        return [], type(exc).__name__


def _assert_confined(root: Path, rows: list[dict], path: str) -> None:
    real_root = os.path.realpath(root)
    for row in rows:
        rel = row["path"]
        assert confine(rel) == rel, f"scan of {path!r} sent an unnormalised path {rel!r}"
        assert CANARY not in rel, f"scan of {path!r} read outside the root: {rel!r}"
        parent = os.path.realpath(os.path.dirname(os.path.join(real_root, rel.lstrip("/"))))
        assert parent == real_root or parent.startswith(real_root + "/"), (path, rel)


def test_hostile_scan_paths_never_leave_the_root(
    layout: tuple[Path, Path], outside_reads: inotify_simple.INotify, long_mode: bool
) -> None:
    root, _ = layout
    source = FsSource("hostile", FsSourceConfig(uri=str(root)))
    outcomes: Counter[str] = Counter()

    for path in HOSTILE_PATHS:
        for recursive in (False, True):
            rows, error = _scan(source, path, recursive)
            _assert_confined(root, rows, path)
            outcomes[error or f"{len(rows)} rows"] += 1

    segment = st.sampled_from(["..", ".", "", "link", "sub", "up", "abs", "inside", "loop", "\x00"])
    hostile = st.lists(st.one_of(segment, st.text(max_size=8)), max_size=12).map("/".join)

    @settings(
        max_examples=3000 if long_mode else 300,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(path=st.one_of(hostile, hostile.map(lambda p: "/" + p)), recursive=st.booleans())
    def one(path: str, recursive: bool) -> None:
        rows, error = _scan(source, path, recursive)
        _assert_confined(root, rows, path)
        outcomes[error or "rows"] += 1

    one()
    escapes = outside_reads.read(timeout=0)
    assert not escapes, f"the outside tree was opened or listed: {escapes}"
    # Links are reported as links: the root's own content still scans.
    rows, error = _scan(source, "/", True)
    assert error is None and {r["path"] for r in rows} >= {"/link", "/sub/up", "/inside/ok.txt"}
    record("hostile scan paths (driver)", scans=sum(outcomes.values()), outcomes=dict(outcomes))


@pytest.mark.fusion
def test_hostile_scan_commands_through_fusion_complete_without_escaping(
    layout: tuple[Path, Path],
    outside_reads: inotify_simple.INotify,
    fusion: FusionServer,
    make_agent: MakeAgent,
) -> None:
    root, _ = layout
    agent = make_agent(root)
    agent.start()
    fusion.wait_tree(disk_tree(root), timeout=20)
    jobs: list[str] = []
    for path in HOSTILE_PATHS:
        asked = fusion.get(
            f"/api/v1/views/{fusion.view_id}/tree",
            path=path,
            recursive="true",
            on_demand_scan="true",
        )
        job_id = asked.json().get("job_id") if asked.status_code == 200 else None
        if job_id:
            jobs.append(job_id)
    assert len(jobs) >= len(HOSTILE_PATHS) // 2, f"Fusion created only {len(jobs)} jobs"
    for job_id in jobs:
        wait_until(lambda j=job_id: fusion.job(j)["status"] == "COMPLETED", 15, 0.1, job_id)
    converge(fusion, root, [agent], timeout=10)
    assert not outside_reads.read(timeout=0), "the outside tree was opened or listed"
    record("hostile scan paths (Fusion)", jobs_completed=len(jobs), paths=len(HOSTILE_PATHS))
