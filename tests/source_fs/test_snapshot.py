"""Snapshot and on-demand scan: every directory and file, links as links, odd names intact."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable

import pytest
from fs_helpers import make_source, rows_of, run_phase, write

from fustor_core import MessageSource, PathEscapeError
from fustor_core.paths import wire_path


def _by_path(rows: list[dict]) -> dict[str, dict]:
    return {r["path"]: r for r in rows}


def test_snapshot_reports_every_dir_and_file(root: str) -> None:
    write(f"{root}/a.txt", b"hello")
    write(f"{root}/d1/d2/c.txt")
    os.mkdir(f"{root}/empty")
    batches = run_phase(make_source(root), "snapshot")
    assert {b.message_source for b in batches} == {MessageSource.SNAPSHOT}
    rows = _by_path(rows_of(batches))
    assert set(rows) == {"/", "/a.txt", "/d1", "/d1/d2", "/d1/d2/c.txt", "/empty"}
    assert rows["/a.txt"]["size"] == 5
    assert rows["/a.txt"]["modified_time"] == os.stat(f"{root}/a.txt").st_mtime
    assert rows["/a.txt"]["created_time"] == os.stat(f"{root}/a.txt").st_ctime
    assert rows["/"]["is_directory"] and rows["/d1/d2"]["is_directory"]
    assert not rows["/a.txt"]["is_directory"]


def test_snapshot_rows_are_the_row_builders_rows(root: str) -> None:
    """The snapshot's visitor builds its rows in place (hot loop): every kind of entry gets
    exactly the row :func:`row_of` makes from its lstat, nothing more or less."""
    from fustor_source_fs.rows import row_of

    write(f"{root}/d/f.txt", b"abc")
    os.link(f"{root}/d/f.txt", f"{root}/d/hard")
    os.symlink("f.txt", f"{root}/d/link")
    os.mkfifo(f"{root}/d/fifo")
    for filtered in ({}, {"exclude": ["skip*"], "file_pattern": "*"}):
        rows = _by_path(rows_of(run_phase(make_source(root, **filtered), "snapshot")))
        expected = {
            rel: row_of(rel, os.lstat(root + rel if rel != "/" else root))
            for rel in ("/", "/d", "/d/f.txt", "/d/hard", "/d/link", "/d/fifo")
        }
        assert rows == expected


def test_symlinks_are_links_and_never_followed(root: str, tmp_path: os.PathLike[str]) -> None:
    outside = os.path.join(tmp_path, "outside")
    write(f"{outside}/secret.txt")
    os.symlink(outside, f"{root}/link")
    os.symlink("/nonexistent", f"{root}/dangling")
    rows = _by_path(rows_of(run_phase(make_source(root), "snapshot")))
    assert set(rows) == {"/", "/link", "/dangling"}
    assert rows["/link"]["is_directory"] is False
    assert rows["/link"]["modified_time"] == os.lstat(f"{root}/link").st_mtime


def test_odd_names_round_trip(root: str) -> None:
    raw = os.fsencode(root) + b"/caf\xe9-latin1.txt"
    with open(raw, "wb"):
        pass
    for name in ("with\nnewline", "with space", "ünïcødé-名前", "%41"):
        write(f"{root}/{name}")
    rows = _by_path(rows_of(run_phase(make_source(root), "snapshot")))
    latin1 = "/" + os.fsdecode(b"caf\xe9-latin1.txt")
    assert latin1 in rows
    # Kept exact inside the agent (it round-trips to the file system) ...
    assert os.path.exists(os.fsencode(root) + os.fsencode(latin1))
    # ... and the sender turns the undecodable byte into %E9 rather than U+FFFD.
    assert wire_path(latin1) == "/caf%E9-latin1.txt"
    for name in ("with\nnewline", "with space", "ünïcødé-名前", "%41"):
        assert "/" + name in rows


def test_permission_denied_directory_is_reported_but_not_listed() -> None:
    base = tempfile.mkdtemp(prefix="fs-perm-")
    try:
        os.chmod(base, 0o755)
        root = os.path.join(base, "root")
        write(f"{root}/locked/inner.txt")
        write(f"{root}/open/ok.txt")
        for dirpath, _dirs, _files in os.walk(base):
            os.chmod(dirpath, 0o755)
        os.chmod(f"{root}/locked", 0)
        rows = _as_nobody(
            lambda: [r["path"] for r in rows_of(run_phase(make_source(root), "snapshot"))]
        )
        assert "/locked" in rows and "/open/ok.txt" in rows
        assert "/locked/inner.txt" not in rows
        audit = _as_nobody(
            lambda: [
                (r["path"], r.get("audit_skipped"))
                for r in rows_of(run_phase(make_source(root), "audit"))
            ]
        )
        assert ["/locked", True] in audit and ["/open", False] in audit
    finally:
        os.chmod(f"{base}/root/locked", 0o755)
        shutil.rmtree(base)


def _as_nobody(work: Callable[[], object]) -> object:
    """Run ``work`` in a forked child without root's right to read any directory."""
    if os.geteuid() != 0:
        return json.loads(json.dumps(work()))
    # The child may not read the interpreter's own files (under a 0700 /root): what the
    # snapshot imports lazily (asyncio.to_thread's executor) is imported here first.
    import concurrent.futures.thread  # noqa: F401

    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        # 3.12+ warns about fork() in a threaded process; the child only walks and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(read_fd)
            os.setgid(65534)
            os.setuid(65534)
            data = json.dumps(work()).encode()
            os.write(write_fd, data)
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def test_exclude_and_file_pattern(root: str) -> None:
    write(f"{root}/keep/a.dat")
    write(f"{root}/keep/b.txt")
    write(f"{root}/.snapshot/old/a.dat")
    write(f"{root}/keep/c.tmp")
    source = make_source(root, file_pattern="*.dat", exclude=[".snapshot", "*.tmp"])
    rows = {r["path"] for r in rows_of(run_phase(source, "snapshot"))}
    assert rows == {"/", "/keep", "/keep/a.dat"}


def test_batches_are_bounded_and_stream(root: str) -> None:
    for i in range(30):
        write(f"{root}/d{i % 3}/f{i:03d}")
    batches = run_phase(make_source(root, batch_size=7), "snapshot")
    assert all(0 < b.row_count <= 7 for b in batches)
    assert sum(b.row_count for b in batches) == 34


def test_cancel_stops_a_long_walk_within_a_second(root: str) -> None:
    for i in range(3000):
        write(f"{root}/d{i % 300:03d}/f{i:05d}")
    source = make_source(root, batch_size=10, queue_batches=2)

    async def main() -> float:
        await source.start()
        it = source.snapshot()
        await it.__anext__()
        started = time.monotonic()
        await it.aclose()
        # The walk thread notices within its polling interval; nothing keeps running.
        await asyncio.sleep(0.3)
        import threading

        alive = [t.name for t in threading.enumerate() if t.name.startswith(("fs-snap", "fs-walk"))]
        assert alive == [], alive
        await source.stop()
        return time.monotonic() - started

    assert asyncio.run(main()) < 1.0


def test_scan_recursive_and_single_node(root: str) -> None:
    write(f"{root}/d/e/f.txt")
    write(f"{root}/d/g.txt")
    source = make_source(root)
    rows = rows_of(run_phase(source, "scan", "/d", True))
    assert {r["path"] for r in rows} == {"/d", "/d/e", "/d/e/f.txt", "/d/g.txt"}
    rows = rows_of(run_phase(source, "scan", "d/../d/g.txt", False))
    assert [r["path"] for r in rows] == ["/d/g.txt"]
    rows = rows_of(run_phase(source, "scan", "/d", False))
    assert {r["path"] for r in rows} == {"/d", "/d/e", "/d/g.txt"}
    batches = run_phase(source, "scan", "/missing", True)
    assert batches == []


def test_scan_refuses_escapes(root: str, tmp_path: os.PathLike[str]) -> None:
    write(os.path.join(tmp_path, "outside", "secret.txt"))
    os.symlink(os.path.join(tmp_path, "outside"), f"{root}/link")
    source = make_source(root)
    for path in ("../outside", "/a/../../outside", "/link/secret.txt"):
        with pytest.raises(PathEscapeError):
            run_phase(source, "scan", path, True)
    # The link itself is reported as a link, not followed.
    rows = rows_of(run_phase(source, "scan", "/link", True))
    assert [(r["path"], r["is_directory"]) for r in rows] == [("/link", False)]


def test_sentinel_stats_paths_and_leaves_out_missing(root: str) -> None:
    write(f"{root}/a.txt", b"abc")
    source = make_source(root)

    async def main() -> list[dict]:
        await source.start()
        try:
            return await source.sentinel_check(["/a.txt", "/gone.txt", "../../etc/passwd"])
        finally:
            await source.stop()

    rows = asyncio.run(main())
    st = os.stat(f"{root}/a.txt")
    assert rows == [{"path": "/a.txt", "mtime": st.st_mtime, "size": 3}]


def test_scan_applies_file_pattern_and_exclude(root: str) -> None:
    write(f"{root}/d/a.dat")
    write(f"{root}/d/b.txt")
    write(f"{root}/d/.snapshot/c.dat")
    source = make_source(root, file_pattern="*.dat", exclude=[".snapshot"])
    rows = rows_of(run_phase(source, "scan", "/d", True))
    assert {r["path"] for r in rows} == {"/d", "/d/a.dat"}
    assert rows_of(run_phase(source, "scan", "/d/b.txt", False)) == []
    assert rows_of(run_phase(source, "scan", "/d/.snapshot", True)) == []


def test_walks_never_block_the_event_loop(root: str) -> None:
    for i in range(20_000):
        if i % 200 == 0:
            os.makedirs(f"{root}/d{i // 200:03d}")
        os.close(os.open(f"{root}/d{i // 200:03d}/f{i:05d}", os.O_CREAT | os.O_WRONLY))
    source = make_source(root)

    async def main() -> None:
        await source.start()
        ticks = 0
        running = True

        async def ticker() -> None:
            nonlocal ticks
            while running:
                await asyncio.sleep(0.002)
                ticks += 1

        task = asyncio.create_task(ticker())
        for phase in ("snapshot", "audit"):
            paths: set[str] = set()
            between = []
            walk = source.snapshot() if phase == "snapshot" else source.audit(True)
            async for batch in walk:
                between.append(ticks)
                paths.update(r["path"] for e in batch.events for r in e.rows)
            # (The audit also sends a row ahead of each directory changed lately: all here.)
            assert len(paths) == 1 + 100 + 20_000
            # The loop kept running between the batches: the walk is not on the loop.
            assert between[-1] - between[0] >= 3, (phase, between)
        running = False
        await task
        await source.stop()

    asyncio.run(main())


def test_non_utf8_names_requested_in_their_wire_form_are_found(root: str) -> None:
    raw_dir = os.path.join(os.fsencode(root), b"caf\xe9")
    os.mkdir(raw_dir)
    with open(os.path.join(raw_dir, b"r\xe9sum\xe9.txt"), "wb") as f:
        f.write(b"12345")
    write(f"{root}/100%AB.txt", b"x")  # a real name that looks escaped is taken as given
    source = make_source(root)
    wire_dir = wire_path(os.fsdecode(b"/caf\xe9"))
    assert wire_dir == "/caf%E9"

    rows = rows_of(run_phase(source, "scan", wire_dir, True))
    assert sorted(wire_path(r["path"]) for r in rows) == ["/caf%E9", "/caf%E9/r%E9sum%E9.txt"]

    async def main() -> list[dict]:
        await source.start()
        try:
            return await source.sentinel_check(["/caf%E9/r%E9sum%E9.txt", "/100%AB.txt"])
        finally:
            await source.stop()

    assert [(r["path"], r["size"]) for r in asyncio.run(main())] == [
        ("/caf%E9/r%E9sum%E9.txt", 5),
        ("/100%AB.txt", 1),
    ]


def test_a_directory_replaced_by_a_file_during_the_listing_obeys_file_pattern(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing says ``data`` is a directory; before its lstat it becomes a file. The row
    follows the lstat (a file), so ``file_pattern`` applies to it (helper 36 saw it sent)."""
    from fustor_source_fs import rows as rows_module

    os.mkdir(f"{root}/data")
    write(f"{root}/a.txt")
    real_scandir = os.scandir

    class Entry:
        def __init__(self, entry: os.DirEntry[str]) -> None:
            self._entry, self.name = entry, entry.name

        def is_dir(self, follow_symlinks: bool = True) -> bool:
            typed = self._entry.is_dir(follow_symlinks=follow_symlinks)
            if self.name == "data":  # replaced right after the listing read it
                os.rmdir(f"{root}/data")
                write(f"{root}/data")
            return typed

        def stat(self, follow_symlinks: bool = True) -> os.stat_result:
            return self._entry.stat(follow_symlinks=follow_symlinks)

    class Listing:
        def __init__(self, fd: int) -> None:
            self._it = real_scandir(fd)

        def __enter__(self):  # type: ignore[no-untyped-def]
            return (Entry(e) for e in self._it)

        def __exit__(self, *exc: object) -> None:
            self._it.close()

    monkeypatch.setattr(rows_module.os, "scandir", Listing)
    rows = rows_of(run_phase(make_source(root, file_pattern="*.txt"), "snapshot"))
    assert {r["path"] for r in rows} == {"/", "/a.txt"}
