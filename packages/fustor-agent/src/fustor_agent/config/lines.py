"""Where each key of a YAML document was written: location (``pipes[0].id``) → line number."""

from __future__ import annotations

import yaml

__all__ = ["Duplicate", "LineIndex", "line_index", "line_of"]

LineIndex = dict[str, int]
"""1-based line of every location, in the notation of config messages."""

Duplicate = tuple[str, int]
"""(location, line of the repeat) of a key written twice in one mapping."""


def line_index(node: yaml.Node | None, duplicates: list[Duplicate] | None = None) -> LineIndex:
    """The line of every mapping key and sequence item under ``node`` (a composed document);
    each key written twice in one mapping is added to ``duplicates`` (YAML would keep only
    the last value, silently)."""
    index: LineIndex = {}
    seen: set[int] = set()

    def walk(node: yaml.Node, loc: str) -> None:
        index.setdefault(loc, node.start_mark.line + 1)
        if id(node) in seen:
            return  # an alias: its keys were indexed where the anchor is (no blow-up)
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            names: set[tuple[str, str]] = set()
            for key, value in node.value:
                child = f"{loc}.{key.value}" if loc else str(key.value)
                line = key.start_mark.line + 1
                index.setdefault(child, line)
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    name = (key.tag, key.value)
                    if name in names and duplicates is not None:
                        duplicates.append((child, line))
                    names.add(name)
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{loc}[{i}]")

    if node is not None:
        walk(node, "")
    return index


def line_of(index: LineIndex, location: str) -> int | None:
    """The line of ``location``, or of its closest enclosing key that was written."""
    while location:
        if location in index:
            return index[location]
        cut = max(location.rfind("."), location.rfind("["))
        location = location[:cut] if cut > 0 else ""
    return None
