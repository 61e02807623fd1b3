"""Real ``git checkout`` flips under the fs source's realtime watch, its rows replayed through
a model of Fusion's arbitration (tests/everyday_ops.py): the model must end equal to the disk.

Back-to-back checkouts turn a path into a file, a directory and a file again within the delete
settle time; a directory that replaces another is sent as a reset, which drops what Fusion
holds below it, so every child must reach Fusion after that reset.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fs_helpers import Live, make_source

from everyday_ops import FusionModel, disk_nodes
from git_repo import git, make_repo

pytestmark = pytest.mark.usefixtures("watch_backend")


@pytest.mark.parametrize("flips", [3, 5])
def test_back_to_back_checkouts_leave_the_model_equal_to_the_disk(
    tmp_path: Path, flips: int
) -> None:
    root = tmp_path / "w"
    make_repo(root / "repo")
    model = FusionModel(disk_nodes(root))
    branches = ["b", "a"] * flips

    async def main() -> None:
        async with Live(make_source(root)) as rt:
            for branch in branches[:flips]:
                await asyncio.to_thread(git, root / "repo", "checkout", "-q", branch)
            await rt.settle(0.8)
            for (kind, row), at in zip(rt.events, rt.walls, strict=True):
                model.apply(kind, row, at)
        ghosts, wrong = model.differences(disk_nodes(root))
        assert (ghosts, wrong) == ([], []), rt.events

    for _ in range(4):  # the race this catches needs a few rounds to show
        asyncio.run(main())


def test_a_directory_gone_for_a_moment_between_two_lives_sends_no_delete(tmp_path: Path) -> None:
    """Directory -> file -> gone -> directory again, with a short gap: the replacement is held
    while nothing is at the path, like a delete, so no tombstone lands on a path that is back
    (a tombstone would drop the new directory's rows, protocol §5.4)."""
    root = tmp_path / "w"
    (root / "d").mkdir(parents=True)
    (root / "d" / "c").write_text("c\n")
    model = FusionModel(disk_nodes(root))

    async def main() -> None:
        async with Live(make_source(root)) as rt:
            for _ in range(5):
                (root / "d" / "c").unlink()
                (root / "d").rmdir()
                (root / "d").write_text("now a file\n")
                (root / "d").unlink()
                await asyncio.sleep(0.05)  # nothing at the path: the old emitter sent a delete
                (root / "d").mkdir()
                (root / "d" / "c").write_text("c again\n")
                await asyncio.sleep(0.1)
            await rt.settle(0.8)
            assert not rt.deleted("/d"), rt.events
            for (kind, row), at in zip(rt.events, rt.walls, strict=True):
                model.apply(kind, row, at)
        assert model.differences(disk_nodes(root)) == ([], [])

    asyncio.run(main())
