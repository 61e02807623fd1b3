"""Property: after blind changes (no realtime), an audit using its cache repairs Fusion's tree.

The tree is aged (every directory's mtime far in the past, as after ``tar x``), audited once
(full, filling the cache), changed by random operations nobody watches, and audited again
with the cache. Both audits are applied the way Fusion applies them (§5.5: upserts add
nodes; at the audit end, under every directory sent with ``audit_skipped: false``, children
not reported are deleted). The result must equal the disk.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile

from fs_helpers import make_source, rows_of, write
from hypothesis import HealthCheck, example, given, settings
from test_realtime_model import OPS, _apply, _disk, _run

OLD = 1_500_000_000.0


def _age_dirs(root: str) -> None:
    for dirpath, _dirs, _files in os.walk(root):
        os.utime(dirpath, (OLD, OLD))


def _apply_audit(model: dict[str, bool], rows: list[dict]) -> None:
    seen = set()
    listed = []
    for row in rows:
        _apply(model, "update", row)
        seen.add(row["path"])
        if row["is_directory"] and row.get("audit_skipped") is False:
            listed.append(row["path"])
    for directory in listed:
        if not model.get(directory):
            continue
        prefix = "/" if directory == "/" else directory + "/"
        for path in [p for p in model if p.startswith(prefix) and "/" not in p[len(prefix) :]]:
            if path not in seen and path in model:
                _apply(model, "delete", {"path": path})


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
# Another directory with the same (old) mtime moved to a cached path: path + mtime alone
# would call it unchanged and skip it; the cache also keys on the inode.
@example(ops=[("move_out", "/a/a", "/a"), ("rename", "/b/a", "/a/a")])
def test_cached_audit_repairs_blind_changes(ops: list[tuple[str, str, str]]) -> None:
    base = tempfile.mkdtemp(prefix="fs-audit-model-")
    try:
        root, outside = os.path.join(base, "root"), os.path.join(base, "outside")
        os.makedirs(outside)
        for path in ("/a/a/seed.txt", "/a/b/s.txt", "/b/seed.txt", "/b/a/t.txt", "/c/c/u.txt"):
            write(root + path)
        _age_dirs(root)
        model = _disk(root)
        source = make_source(root)

        async def audit() -> list[dict]:
            return rows_of([b async for b in source.audit()])

        async def main() -> None:
            await source.start()
            try:
                _apply_audit(model, await audit())
                assert model == _disk(root)
                for n, (op, src, dst) in enumerate(ops):
                    _run(root, outside, op, src, dst, n)
                rows = await audit()
                _apply_audit(model, rows)
                assert model == _disk(root), (ops, rows)
            finally:
                await source.stop()

        asyncio.run(main())
    finally:
        shutil.rmtree(base)
