"""The ``agent-config.yaml`` layout: lists ``sources``, ``senders``, ``pipes``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fustor_agent.config.env import expand
from fustor_agent.config.errors import Problems, unknown_key
from fustor_agent.config.resolve import RawDocument, RawEntry

__all__ = ["document_from_lists"]

_TOP_KEYS = ("sources", "senders", "pipes", "console", "logging", "agent_id")


def document_from_lists(
    data: Any, label: str, env: Mapping[str, str], problems: Problems
) -> RawDocument:
    doc = RawDocument()
    if data is None:
        return doc
    if not isinstance(data, dict):
        problems.add(label, "", "the file must hold a mapping with sources, senders and pipes")
        return doc
    data = expand(data, env, problems, label)
    for key in data:
        if key not in _TOP_KEYS:
            problems.add(label, str(key), unknown_key(str(key), _TOP_KEYS))
    for kind in ("sources", "senders", "pipes"):
        items = data.get(kind) or []
        if not isinstance(items, list):
            problems.add(label, kind, "must be a list")
            doc.unreadable.add(kind)
            continue
        target: list[RawEntry] = getattr(doc, kind)
        target.extend(RawEntry(label, f"{kind}[{i}]", item) for i, item in enumerate(items))
    if data.get("console") is not None:
        doc.console = RawEntry(label, "console", data["console"])
    if data.get("logging") is not None:
        doc.logging = RawEntry(label, "logging", data["logging"])
    if data.get("agent_id") is not None:
        doc.agent_id = str(data["agent_id"])
    return doc
