"""Count rows a producer holds in memory, to tell a bounded buffer from a run-away one."""

from __future__ import annotations

import gc
from collections.abc import Iterable

from fustor_core import Batch, Event

__all__ = ["rows_in_memory"]


def _row_list(obj: object) -> list | None:
    if isinstance(obj, Event):
        return obj.rows
    if type(obj) is list and obj and type(obj[0]) is dict and "path" in obj[0]:
        return obj
    return None


def rows_in_memory(exclude: Iterable[Batch] = ()) -> int:
    """Rows alive anywhere in the process (every thread), except those of ``exclude``.

    Rows are found through what holds them: :class:`~fustor_core.Event` objects and lists of
    row dicts (row dicts themselves are usually not tracked by the garbage collector). A list
    shared by several holders counts once. It over-counts rows copied into several lists,
    which only makes the check stricter.
    """
    skip = {id(event.rows) for batch in exclude for event in batch.events}
    seen: set[int] = set()
    total = 0
    for obj in gc.get_objects():
        rows = _row_list(obj)
        if rows is None or id(rows) in skip or id(rows) in seen:
            continue
        seen.add(id(rows))
        total += len(rows)
    return total
