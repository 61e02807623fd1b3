"""The asyncio pipe runtime: sources, realtime lanes, sessions, leader work."""

from __future__ import annotations

from fustor_agent.runtime.pipe import Pipe
from fustor_agent.runtime.source_runtime import SourceRuntime

__all__ = ["Pipe", "SourceRuntime"]
