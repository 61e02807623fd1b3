"""A second plugin that also calls its source ``static``: only for the duplicate-name test.

It is not registered under the entry-point group; the test injects it.
"""

from __future__ import annotations

from fustor_agent_sdk import SourceDriver, hookimpl
from fustor_driver_testonly.sources import StaticSource

__all__ = ["fustor_source_drivers"]


class OtherStatic(StaticSource):
    pass


@hookimpl
def fustor_source_drivers() -> list[type[SourceDriver]]:
    return [OtherStatic]
