"""After a bulk phase the agent hands the C heap's free pages back (glibc malloc_trim)."""

from __future__ import annotations

from fustor_agent.runtime.heap import release_free_heap


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_free_pages_below_live_blocks_go_back_to_the_kernel() -> None:
    """Like the rows of a walk: many small blocks freed, every 16th kept alive."""
    before = _rss()
    blocks = [bytes(1000) + i.to_bytes(8, "little") for i in range(150_000)]
    kept = blocks[::16]
    del blocks
    freed_but_resident = _rss() - before
    assert freed_but_resident > 100e6, freed_but_resident  # glibc kept the pages
    assert release_free_heap() is True
    after = _rss() - before
    assert after < freed_but_resident - 80e6, (freed_but_resident, after)
    assert len(kept) == 9375
