"""Assertions on what a source produces: the path contract and the row shape of each phase."""

from __future__ import annotations

from collections.abc import Iterable

from fustor_core import Batch, EventType, MessageSource, Row

__all__ = [
    "UPSERT_KEYS",
    "check_audit_order",
    "check_batch",
    "check_path",
    "check_row",
    "check_sentinel_rows",
]

UPSERT_KEYS = frozenset({"path", "size", "modified_time", "created_time", "is_directory"})
"""Keys every upsert row carries, in every phase (docs/fusion-protocol.md §2.3)."""

_UPSERTS = (EventType.INSERT, EventType.UPDATE)


def check_path(path: object) -> None:
    """Fail unless ``path`` follows the path contract: root-relative, leading ``/``, root ``/``."""
    assert isinstance(path, str), f"path must be a str, got {type(path).__name__}: {path!r}"
    assert path.startswith("/"), f"path must start with '/': {path!r}"
    if path == "/":
        return
    assert not path.endswith("/"), f"path must not end with '/': {path!r}"
    assert "//" not in path, f"path must not contain '//': {path!r}"
    assert "\0" not in path, f"path must not contain NUL: {path!r}"
    parts = path[1:].split("/")
    assert "." not in parts and ".." not in parts, f"path must be normalised: {path!r}"


def _check_number(row: Row, key: str) -> None:
    value = row[key]
    assert isinstance(value, int | float) and not isinstance(value, bool), (
        f"{key} must be a number in {row!r}"
    )


def check_row(row: Row, event_type: EventType, source: MessageSource) -> None:
    """Fail unless ``row`` has the keys and types its event type and phase require."""
    assert isinstance(row, dict), f"a row must be a dict, got {type(row).__name__}"
    assert "path" in row, f"row without 'path': {row!r}"
    check_path(row["path"])
    if event_type is EventType.DELETE:
        assert source is MessageSource.REALTIME, (
            f"only realtime sends deletes (Fusion infers the others): {source.value} {row!r}"
        )
        return
    missing = UPSERT_KEYS - row.keys()
    assert not missing, f"{source.value} upsert lacks {sorted(missing)}: {row!r}"
    for key in ("size", "modified_time", "created_time"):
        _check_number(row, key)
    assert isinstance(row["is_directory"], bool), f"is_directory must be a bool: {row!r}"
    if "is_atomic_write" in row:
        assert isinstance(row["is_atomic_write"], bool), f"is_atomic_write must be a bool: {row!r}"
    if source is MessageSource.AUDIT:
        if row["is_directory"]:
            assert isinstance(row.get("audit_skipped"), bool), (
                f"an audit directory row needs a bool 'audit_skipped': {row!r}"
            )
        else:
            assert "parent_path" in row and "parent_mtime" in row, (
                f"an audit file row needs 'parent_path' and 'parent_mtime': {row!r}"
            )
            check_path(row["parent_path"])
            _check_number(row, "parent_mtime")


def check_batch(batch: object, source: MessageSource) -> None:
    """Fail unless ``batch`` is a well-formed :class:`Batch` of phase ``source``."""
    assert isinstance(batch, Batch), f"a phase yields Batch objects, got {type(batch).__name__}"
    assert batch.message_source is source, (
        f"a {source.value} phase yielded a {batch.message_source!s} batch"
    )
    assert batch.events or batch.rescan, "a batch carries events, a rescan, or both"
    if batch.rescan:
        assert source is MessageSource.REALTIME, "only realtime batches carry a rescan"
        for path in batch.rescan:
            check_path(path)
    for event in batch.events:
        assert event.message_source is source, (
            f"event tier {event.message_source!s} inside a {source.value} batch"
        )
        assert isinstance(event.event_type, EventType), f"bad event_type {event.event_type!r}"
        assert event.rows, "an event never has empty rows (Fusion counts it as a handler error)"
        for row in event.rows:
            check_row(row, event.event_type, source)


def check_audit_order(rows: Iterable[Row]) -> None:
    """Fail if a listed directory's last row comes before one of its children's rows.

    protocol §7.4: a directory sent with ``audit_skipped: false`` goes after its files,
    so an audit cut short never makes Fusion delete the children it did not see. A row of
    the directory may also go ahead of its children (the fs source sends one for a
    subdirectory that may be a file in Fusion), as long as its row after them follows.
    """
    rows = list(rows)
    last = {
        row["path"]: index
        for index, row in enumerate(rows)
        if row.get("is_directory") and row.get("audit_skipped") is False
    }
    for index, row in enumerate(rows):
        parent = row.get("parent_path")
        if parent is not None and last.get(parent, index) < index:
            raise AssertionError(
                f"audit row {row['path']!r} comes after its directory {parent!r} (row "
                f"{last[parent]}); a directory's row must follow its children"
            )


def check_sentinel_rows(rows: object, existing: set[str], missing: set[str]) -> None:
    """Fail unless sentinel rows are ``{path, mtime, size}`` for exactly the ``existing`` paths."""
    assert isinstance(rows, list), f"sentinel_check returns a list, got {type(rows).__name__}"
    seen = set()
    for row in rows:
        assert {"path", "mtime", "size"} <= row.keys(), f"sentinel row lacks keys: {row!r}"
        check_path(row["path"])
        _check_number(row, "mtime")
        _check_number(row, "size")
        seen.add(row["path"])
    assert not seen & missing, f"missing paths must be left out: {sorted(seen & missing)}"
    assert seen == existing, f"sentinel rows for {sorted(seen)}, expected {sorted(existing)}"
