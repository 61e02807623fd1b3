"""Entries that vanish mid-walk, and a share that vanishes mid-audit."""

from __future__ import annotations

import os
import shutil
import threading

import pytest
from fs_helpers import write

from fustor_core import DriverError
from fustor_source_fs.audit import AuditWalk
from fustor_source_fs.filters import PathFilter
from fustor_source_fs.rows import make_lister
from fustor_source_fs.walk import RowSink, walk


def _audit_rows(root: str, on_first_row, check_root) -> tuple[list[dict], BaseException | None]:
    out: list[dict] = []

    def emit(rows: list[dict]) -> None:
        if not out:
            on_first_row(rows[0]["path"])
        out.extend(rows)

    sink = RowSink(emit, 1)
    audit = AuditWalk(
        root, PathFilter(), sink, {}, batch_size=1, mtime_tick=2.0, check_root=check_root
    )
    try:
        walk([audit.root_task()], audit.visit, workers=1, stop=threading.Event())
    except DriverError as exc:
        return out, exc
    sink.flush()
    return out, None


def test_directory_vanishing_mid_audit_is_left_out(root: str) -> None:
    write(f"{root}/a/x.txt")
    write(f"{root}/b/y.txt")
    checks = []

    gone: list[str] = []

    def vanish(first: str) -> None:
        # One top directory is being listed; the other one (queued) goes now.
        gone.append("/b" if first.startswith("/a") else "/a")
        shutil.rmtree(root + gone[0])

    rows, error = _audit_rows(root, vanish, lambda: checks.append(1))
    assert error is None
    paths = [r["path"] for r in rows]
    assert gone[0] not in paths and not any(p.startswith(gone[0] + "/") for p in paths)
    assert paths[-1] == "/" and rows[-1]["audit_skipped"] is False
    assert checks  # the root was checked before trusting that /a really went away


def test_share_vanishing_mid_audit_aborts_before_the_parent_row(root: str) -> None:
    write(f"{root}/a/x.txt")
    write(f"{root}/b/y.txt")

    def gone() -> None:
        raise DriverError("root unavailable: share went away", retriable=True)

    def vanish(first: str) -> None:
        shutil.rmtree(root + ("/b" if first.startswith("/a") else "/a"))

    rows, error = _audit_rows(root, vanish, gone)
    assert isinstance(error, DriverError) and error.retriable
    # "/" was never sent with audit_skipped false, so Fusion deletes nothing under it.
    assert "/" not in [r["path"] for r in rows]


def test_files_vanishing_mid_snapshot_are_skipped(root: str) -> None:
    for i in range(20):
        write(f"{root}/d/f{i:02d}")
    out: list[dict] = []
    removed = []

    def emit(rows: list[dict]) -> None:
        if not removed:
            for i in range(10, 20):
                os.remove(f"{root}/d/f{i:02d}")
            removed.append(True)
        out.extend(rows)

    sink = RowSink(emit, 1)
    visit = make_lister(PathFilter(), sink, 1)
    walk([(root, "/")], visit, workers=1, stop=threading.Event())
    sink.flush()
    paths = {r["path"] for r in out}
    assert {f"/d/f{i:02d}" for i in range(10)} <= paths
    assert len(paths) == len(out)  # no duplicates, no error rows


@pytest.mark.parametrize("workers", [1, 4])
def test_walk_surfaces_visitor_errors(workers: int, root: str) -> None:
    for i in range(8):
        os.makedirs(f"{root}/d{i}")

    def visit(task: str) -> list[str]:
        if task == "/d3":
            raise RuntimeError("boom")
        return [f"/d{i}" for i in range(8)] if task == "/" else []

    with pytest.raises(RuntimeError, match="boom"):
        walk(["/"], visit, workers=workers, stop=threading.Event())
