"""Property: against Fusion's arbitration, the realtime rows leave no existing path missing,
except paths the tombstone tracker knows are hidden (which an audit restores after the TTL).

Random sequences of everyday steps (``everyday_ops.OPS``: create, write, delete, rename,
rename back, type change, ``os.utime`` to an old time, pauses up to 2 s, longer than the
delete settle window) run against a real tree under the fs source's realtime. Its rows are
replayed through ``everyday_ops.FusionModel``. Once the tree is quiet, nothing is held that is
not on disk, and every path on disk is held with its type and size, or is hidden per the
source's tracker.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from fs_helpers import Live, make_source
from hypothesis import HealthCheck, example, given, settings

from everyday_ops import OPS, FusionModel, apply, disk_nodes, seed


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
# Safe save: the old name goes, a file with an older mtime takes it a moment later.
@example(ops=[("rename", "a/a", "a/b", 0.0), ("rename", "b/a", "a/a", 0.0)])
# Deleted, its delete sent, and back with an old mtime: hidden, not silently missing.
@example(ops=[("rename", "b/a", "b/b", 2.0), ("rename", "b/b", "b/a", 0.0)])
# Directory -> file with an old mtime, and back.
@example(ops=[("to_file", "b", "b", 0.0), ("to_dir", "b", "b", 0.5)])
def test_no_existing_path_is_lost_to_a_tombstone(ops: list[tuple[str, str, str, float]]) -> None:
    base = Path(tempfile.mkdtemp(prefix="fs-tomb-"))
    try:
        root = base / "root"
        seed(root)
        model = FusionModel(disk_nodes(root))
        source = make_source(root)

        async def main() -> None:
            async with Live(source) as rt:
                for n, (op, src, dst, pause) in enumerate(ops):
                    apply(root, op, src, dst, n)
                    await asyncio.sleep(pause)
                await rt.settle(0.8)
                for (kind, row), at in zip(rt.events, rt.walls, strict=True):
                    model.apply(kind, row, at)
                ghosts, wrong = model.differences(disk_nodes(root))
                assert not ghosts, ("held, not on disk", ghosts, ops, rt.events)
                unknown = [p for p in wrong if not source.tombstones.is_hidden(p)]
                assert not unknown, ("on disk, not held, not hidden", unknown, ops, rt.events)

        asyncio.run(main())
    finally:
        shutil.rmtree(base)
