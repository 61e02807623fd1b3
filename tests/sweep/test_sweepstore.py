"""The sweep's compact per-file store: records, rotation, and its memory per tracked file."""

from __future__ import annotations

import gc
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from fustor_source_fs.sweepstore import RECORD_BYTES, Columns, SweepStore, file_count, unpack

records = st.lists(
    st.tuples(
        st.integers(-(2**63), 2**63 - 1),
        st.floats(0, 2e9, allow_nan=False),
        st.integers(0, 2**62),
    ),
    unique_by=lambda r: r[0],
    max_size=50,
)


@given(records)
def test_a_record_gives_back_every_file(files: list[tuple[int, float, int]]) -> None:
    columns = Columns()
    for path_hash, mtime, size in files:
        columns.add(path_hash, mtime, size)
    blob = columns.pack()
    assert len(blob) == RECORD_BYTES * len(files) == RECORD_BYTES * file_count(blob)
    index, mtimes, sizes = unpack(blob)
    assert {h: (mtimes[i], sizes[i]) for h, i in index.items()} == {h: (m, s) for h, m, s in files}


def blob(n: int) -> bytes:
    columns = Columns()
    for i in range(n):
        columns.add(i, float(i), i)
    return columns.pack()


def test_put_drop_and_retain_keep_the_file_count() -> None:
    store = SweepStore()
    store.put("/a", blob(3))
    store.put("/b", blob(5))
    store.put("/a", blob(4))  # replaced, not added
    assert (len(store), store.files) == (2, 9)
    store.drop("/b")
    store.drop("/missing")
    assert (len(store), store.files) == (1, 4)
    store.put("/c", blob(1))
    store.retain({"/c"})
    assert (list(store.dirs), store.files) == (["/c"], 1)


def test_retain_keys_the_store_by_the_audit_caches_own_strings() -> None:
    """Each audit builds new directory strings; one copy per directory, not two."""
    store = SweepStore()
    for name in "abc":
        store.put("/" + "".join(["d", name]), blob(1))
    store.rotate(1)
    cache = {"".join(["/d", name]): b"" for name in "ab"}  # equal strings, other objects
    store.retain(cache)
    cached = {k: k for k in cache}
    assert all(k is cached[k] for k in store.dirs)
    assert list(store) == ["/db", "/da"] and all(k is cached[k] for k in store)
    assert (len(store), store.files) == (2, 2)


def test_rotation_moves_checked_directories_to_the_end() -> None:
    store = SweepStore()
    for name in "abcde":
        store.put("/" + name, blob(1))
    store.rotate(2)
    assert list(store) == ["/c", "/d", "/e", "/a", "/b"]
    store.put("/f", blob(1))  # new directories are checked last
    assert list(store)[-1] == "/f"


def test_the_rotation_forgets_dropped_directories() -> None:
    store = SweepStore()
    for i in range(100):
        store.put(f"/d{i}", blob(1))
    store.retain({f"/d{i}" for i in range(10)})
    assert sorted(store) == sorted(f"/d{i}" for i in range(10))
    for _ in range(50):  # dropped and put again: never twice in the rotation
        store.drop("/d1")
        store.put("/d1", blob(1))
    store.rotate(0)
    assert len(list(store)) <= len(store) + 16 + len(store) // 2


def test_memory_per_tracked_file_is_at_most_64_bytes() -> None:
    """10 files per directory, as in the benchmark tree; names belong to the audit cache."""
    dirs = [f"/g{d % 100:03d}/d{d:06d}" for d in range(20_000)]
    blobs = [blob(10) for _ in dirs]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = SweepStore()
        for name in dirs:
            columns = Columns()
            for i in range(10):
                columns.add(hash(f"{name}/f{i:03d}.dat"), 1.7e9 + i, 4096)
            store.put(name, columns.pack())
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del blobs
    per_file = used / store.files
    assert store.files == 200_000
    assert per_file <= 64, per_file
    # The figure shown in status is close to what was measured.
    assert abs(store.nbytes() - used) <= 0.2 * used, (store.nbytes(), used)
