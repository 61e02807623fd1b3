"""Small helpers shared by the host tests."""

from __future__ import annotations

from importlib.metadata import EntryPoint

from fustor_agent_sdk import ENTRY_POINT_GROUP

__all__ = ["entry_point"]


def entry_point(name: str, module: str) -> EntryPoint:
    """An entry point of the plugin group, for a plugin manager built with injected ones."""
    return EntryPoint(name, module, ENTRY_POINT_GROUP)
