"""The agent on an NFS server: changes made by NFS clients reach realtime, every backend.

docs/operations.md recommends running the agent on the file server, on the exported tree,
so that no client's change is a blind spot. Here a user-space NFS server (ganesha) exports
the source's root on a free loopback port and an NFS client (libnfs, its own NFSv4 session,
as another machine's mount) makes the changes; the realtime rows must follow each one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fs_helpers import Live, make_source

from nfs_support import Ganesha, NfsClient, ensure_ganesha

pytestmark = pytest.mark.usefixtures("watch_backend")


@pytest.fixture
def exported(root: str, tmp_path: Path) -> Iterator[str]:
    """The ganesha URL of ``root``, exported over NFSv4 while the test runs."""
    ensure_ganesha()
    server = Ganesha(str(tmp_path / "ganesha"), root)
    try:
        yield server.url
    finally:
        server.stop()


def test_changes_made_by_nfs_clients_reach_realtime(root: str, exported: str) -> None:
    with open(os.path.join(root, "doc.txt"), "wb") as f:
        f.write(b"v1")

    async def body(rt: Live) -> None:
        client = await asyncio.to_thread(NfsClient, exported)

        async def nfs(call: str, *args: object) -> None:
            await asyncio.to_thread(getattr(client, call), *args)

        await nfs("write", "/new.txt", b"hello")
        await rt.wait(lambda: any(r["size"] == 5 for r in rt.upserts("/new.txt")))
        await nfs("mkdir", "/d")
        await nfs("write", "/d/a.txt", b"abc")
        await rt.wait(lambda: rt.upserts("/d") != [] and rt.upserts("/d/a.txt") != [])
        assert rt.upserts("/d")[-1]["is_directory"] is True

        await nfs("rename", "/d/a.txt", "/d/b.txt")
        await rt.wait(lambda: rt.deleted("/d/a.txt") and rt.upserts("/d/b.txt") != [])

        # A safe save over NFS: the new content, and never a delete of the saved path.
        await nfs("write", "/doc.txt.tmp", b"version 2")
        await nfs("rename", "/doc.txt.tmp", "/doc.txt")
        await rt.wait(lambda: any(r["size"] == 9 for r in rt.upserts("/doc.txt")))

        await nfs("rename", "/d", "/e")
        await rt.wait(lambda: rt.deleted("/d") and rt.upserts("/e/b.txt") != [])
        await nfs("unlink", "/new.txt")
        await nfs("unlink", "/e/b.txt")
        await nfs("rmdir", "/e")
        await rt.wait(lambda: rt.deleted("/new.txt") and rt.deleted("/e"))
        await rt.settle(0.5)
        assert not rt.deleted("/doc.txt")
        assert rt.upserts("/doc.txt")[-1]["size"] == 9

    async def main() -> None:
        async with Live(make_source(root)) as rt:
            await body(rt)

    asyncio.run(main())
