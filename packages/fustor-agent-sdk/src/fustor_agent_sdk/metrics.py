"""How a driver declares the metrics the host exports from its ``status()`` figures.

A driver lists :class:`MetricSpec` entries in its ``metrics`` class attribute; each one names a
key of the driver's ``status()`` dict and says what kind of value it holds. The host exports
exactly the declared keys, under a name it builds from the declaration
(:meth:`MetricSpec.exported_name`), and nothing else: an undeclared key stays in the JSON
status only. The naming follows Prometheus conventions so a driver cannot break them: a
counter gets ``_total``, a unit is a base unit written once at the end of the name.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Histogram", "MetricKind", "MetricSpec", "MetricUnit"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Unit-like suffixes a name must not carry itself: the unit field says it, in base units.
_FORBIDDEN_SUFFIXES = ("_total", "_sec", "_secs", "_ms", "_millis", "_us", "_kb", "_mb", "_per_sec")


class MetricKind(StrEnum):
    """What a status value is, for the exporter."""

    COUNTER = "counter"
    """Only ever goes up while the driver instance lives (a restart starts again at 0)."""
    GAUGE = "gauge"
    """Goes up and down (a current size, a flag as 0/1, a ratio)."""
    HISTOGRAM = "histogram"
    """A distribution of observations: the status value is :meth:`Histogram.snapshot`'s
    mapping (cumulative bucket counts by upper bound, their count and sum)."""


class MetricUnit(StrEnum):
    """Base units only; rates are left to the query (``rate()``), never declared."""

    NONE = ""
    SECONDS = "seconds"
    BYTES = "bytes"
    RATIO = "ratio"
    """A fraction 0..1 (not a percentage)."""


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric a driver exports from one key of its ``status()`` dict.

    ``key``: the status key holding the value (a number or a bool, or for a histogram the
    mapping of :meth:`Histogram.snapshot`; ``None`` or a missing key means "no value now" and
    exports no sample). ``name``: the metric's stem, lower case,
    without prefix, unit or ``_total`` (defaults to ``key``). ``unit``: a base unit appended to
    the name. ``help``: one sentence for ``# HELP``. Raises ``ValueError`` for a name that
    breaks the conventions (``_sec``, ``_ms``, ``per_sec``, an explicit ``_total``).
    """

    key: str
    kind: MetricKind
    help: str
    unit: MetricUnit = MetricUnit.NONE
    name: str = ""

    def __post_init__(self) -> None:
        stem = self.name or self.key
        if not _NAME.match(stem):
            raise ValueError(f"metric {stem!r}: use lower-case letters, digits and '_'")
        if stem.endswith(_FORBIDDEN_SUFFIXES) or "_per_" in stem:
            raise ValueError(
                f"metric {stem!r}: no unit, rate or '_total' in the name; "
                "set unit= (seconds, bytes, ratio) and kind=, and leave rates to the query"
            )
        if self.unit is not MetricUnit.NONE and stem.endswith(f"_{self.unit.value}"):
            raise ValueError(f"metric {stem!r}: the unit {self.unit.value!r} is appended for you")
        if not self.help.strip():
            raise ValueError(f"metric {stem!r}: help text is required")

    def exported_name(self, prefix: str) -> str:
        """The full name in the exposition, e.g. ``fustor_agent_source_overflows_total``."""
        name = f"{prefix}_{self.name or self.key}"
        if self.unit is not MetricUnit.NONE:
            name += f"_{self.unit.value}"
        if self.kind is MetricKind.COUNTER:
            name += "_total"
        return name


class Histogram:
    """Observations counted into fixed buckets, for a ``MetricKind.HISTOGRAM`` status value.

    ``bounds``: the buckets' upper bounds, increasing, in the metric's unit (seconds for
    ``MetricUnit.SECONDS``). Not thread-safe: observe from one thread, or hold a lock.
    """

    def __init__(self, bounds: tuple[float, ...]) -> None:
        if not bounds or any(b >= c for b, c in itertools.pairwise(bounds)):
            raise ValueError("histogram bounds must be a non-empty increasing sequence")
        self.bounds = tuple(float(b) for b in bounds)
        self._counts = [0] * len(self.bounds)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self._counts[i] += 1
                break
        self.count += 1
        self.sum += value

    def snapshot(self) -> dict[str, Any]:
        """``{"bounds": [...], "buckets": [...], "count": n, "sum": s}``: ``buckets[i]``
        counts the observations at most ``bounds[i]`` (cumulative, as Prometheus has it);
        ``count`` counts them all (the ``+Inf`` bucket). JSON-ready."""
        running, buckets = 0, []
        for n in self._counts:
            running += n
            buckets.append(running)
        return {
            "bounds": list(self.bounds),
            "buckets": buckets,
            "count": self.count,
            "sum": self.sum,
        }
