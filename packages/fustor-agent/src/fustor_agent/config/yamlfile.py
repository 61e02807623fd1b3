"""Reading one YAML file into plain data, with syntax errors reported by line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fustor_agent.config.errors import Problems
from fustor_agent.config.lines import line_index

__all__ = ["read_yaml"]


def read_yaml(path: Path, label: str, problems: Problems) -> Any:
    """The parsed document, or ``None`` after recording why it could not be read; the line of
    every key is kept in ``problems.lines[label]``."""
    try:
        text = path.read_text(encoding="utf-8")
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
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
        problems.lines[label] = line_index(node)
        return data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problems.add(label, where, f"invalid YAML: {exc.problem}")
    except yaml.YAMLError:
        problems.add(label, "", "invalid YAML")
    return None
