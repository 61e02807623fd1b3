"""How far ahead of the wall clock Fusion's watermark can be, from the realtime rows sent.

Fusion 0.8.17 keeps one logical clock per view (protocol §5.8): over the last 10,000 realtime
rows, ``skew = int(fusion_now - modified_time)``, and the watermark is ``fusion_now`` minus the
most common skew (ties go to the smallest, the one furthest in the future). A fresh view that
sees one file touched two days ahead (``touch -d``, ``tar x`` of an archive from a host whose
clock runs ahead) runs two days ahead, and every tombstone stamped meanwhile carries that time.
A re-created path's clearing row (:mod:`fustor_sender_http.tombstones`) must be newer than
the tombstone, so it must be ahead by at least as much: :class:`WatermarkLead` is the most any
realtime ``modified_time`` this sender sent was ahead of its clock, kept across restarts (the
samples stay in Fusion after the agent is gone).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from itertools import repeat
from pathlib import Path

from fustor_core import Batch, Row

__all__ = ["WatermarkLead"]

logger = logging.getLogger(__name__)

_SAVE_STEP_SEC = 60.0
"""The file is written again only when the lead grew by more than this (a minute more or less
changes nothing: clearing rows are a day ahead of it)."""


class WatermarkLead:
    """Seconds by which Fusion's watermark may run ahead of this host's clock (0.0 or more).

    ``path``: a JSON file (``{"lead_sec": S}``) to read at start and to write when the lead
    grows; ``None`` keeps it in memory. An unreadable file counts as no lead, with a warning.
    Not thread-safe: the sender calls it from one event loop.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.seconds = 0.0
        self._saved = 0.0
        if path is not None:
            self.seconds = self._saved = self._read(path)

    def note(self, batch: Batch) -> None:
        """Take in the rows of realtime ``batch``: Fusion's clock samples every realtime row
        that has a ``modified_time``, deletes included."""
        newest = 0.0
        for event in batch.events:
            newest = max(newest, _newest(event.rows))
        lead = newest - time.time()
        if not lead > self.seconds:
            return
        self.seconds = lead
        if lead - self._saved > _SAVE_STEP_SEC:
            logger.info(
                "a realtime row's modified_time is %.0f s ahead of this host's clock: Fusion's "
                "watermark may run that far ahead; tombstones are cleared past it",
                lead,
            )
            self._write()

    def _read(self, path: Path) -> float:
        try:
            lead = json.loads(path.read_text(encoding="utf-8"))["lead_sec"]
            if (
                isinstance(lead, int | float)
                and not isinstance(lead, bool)
                and 0 <= lead < math.inf
            ):
                return float(lead)
            raise ValueError(f"lead_sec is {lead!r}")
        except FileNotFoundError:
            return 0.0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring %s: %s", path, exc)
            return 0.0

    def _write(self) -> None:
        path = self.path
        if path is None:
            return
        temporary = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps({"lead_sec": self.seconds}) + "\n", encoding="utf-8")
            os.replace(temporary, path)
            self._saved = self.seconds
        except OSError as exc:
            logger.warning("cannot keep the watermark lead in %s: %s (kept in memory)", path, exc)
            with contextlib.suppress(OSError):
                temporary.unlink()
            self.path = None


def _newest(rows: list[Row]) -> float:
    """The largest finite ``modified_time`` of ``rows`` (0.0 if none): one C-level pass for
    the usual rows, a checked one when a row or a value is of another type."""
    try:
        newest = max(filter(None, map(dict.get, rows, repeat("modified_time"))), default=0.0)
        if 0.0 <= newest < math.inf:
            return float(newest)
    except TypeError:
        pass
    best = 0.0
    for row in rows:
        mtime = row.get("modified_time") if isinstance(row, dict) else None
        if (
            isinstance(mtime, int | float)
            and not isinstance(mtime, bool)
            and best < mtime < math.inf
        ):
            best = float(mtime)
    return best
