"""Reading one YAML file into plain data, with syntax errors reported by line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fustor_agent.config.errors import Problems
from fustor_agent.config.lines import Duplicate, line_index

__all__ = ["read_yaml"]


MAX_BYTES = 1 << 20
"""A configuration file larger than this is refused (a mistaken path: a log, a device)."""
MAX_VALUES = 100_000
"""Values once aliases are expanded (each alias counts its anchor's values again): more is
refused, as a few nested aliases can stand for billions ("billion laughs")."""


def read_yaml(path: Path, label: str, problems: Problems) -> Any:
    """The parsed document, or ``None`` after recording why it could not be read; the line of
    every key is kept in ``problems.lines[label]``. A key written twice in one mapping is a
    problem (YAML would keep the last value and drop the first silently)."""
    try:
        if not path.is_file():
            what = "a directory, not a file" if path.is_dir() else "not a regular file"
            problems.add(label, "", what)
            return None
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            problems.add(label, "", f"too large for a configuration file (over {MAX_BYTES} bytes)")
            return None
        text = raw.decode("utf-8")
    except OSError as exc:
        problems.add(label, "", f"cannot read: {exc.strerror}")
        return None
    except UnicodeDecodeError:
        problems.add(label, "", "not valid UTF-8")
        return None
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None and _expanded_values(node) > MAX_VALUES:
                problems.add(label, "", f"over {MAX_VALUES} values once its aliases are expanded")
                return None
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
        duplicates: list[Duplicate] = []
        problems.lines[label] = line_index(node, duplicates)
        for location, line in duplicates:  # named at its first line, by the index
            problems.add(
                label,
                location,
                f"written again at line {line} (YAML keeps only the last); keep one",
            )
        return data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problems.add(label, where, f"invalid YAML: {exc.problem}")
    except yaml.YAMLError:
        problems.add(label, "", "invalid YAML")
    except RecursionError:  # the composer and our walks recurse once per level
        problems.add(label, "", "nested too deeply to be a configuration (invalid YAML)")
    return None


def _expanded_values(node: yaml.Node) -> int:
    """How many values ``node`` stands for with every alias expanded (memoised per node, so
    counting costs one visit of each node written)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a recursive alias counts once
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item) for item in node.value)
        else:
            total = 1
        sizes[id(node)] = total
        return total

    return size(node)
