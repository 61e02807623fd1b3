"""The checked-in JSON schema of ``GET /api/v1/status`` and a small validator for it.

The schema is ``AgentStatus.model_json_schema(mode="serialization")``; regenerate it after a
deliberate change of the model with ``python tests/status_schema.py`` (and say in
docs/console.md what changed for API users).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_PATH", "current_schema", "schema_errors"]

SCHEMA_PATH = Path(__file__).with_name("status_schema.json")

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def current_schema() -> dict[str, Any]:
    from fustor_agent.status import AgentStatus

    return AgentStatus.model_json_schema(mode="serialization")


def schema_errors(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """What in ``value`` breaks ``schema`` (the subset of JSON Schema pydantic writes):
    types, required keys, closed objects, enums, ``anyOf``, ``$ref``, array items."""
    root = schema
    return _check(value, schema, root, where)


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return _check(value, root["$defs"][name], root, where)
    if "anyOf" in schema:
        options = [_check(value, option, root, where) for option in schema["anyOf"]]
        return [] if any(not o for o in options) else [f"{where}: matches no anyOf option"]
    errors: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        expected = _TYPES[kind]
        if not isinstance(value, expected) or (kind in ("integer", "number") and value is True):
            return [f"{where}: {type(value).__name__} where the schema says {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not one of {schema['enum']}")
    if kind == "object":
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: missing {key!r}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                errors += _check(item, properties[key], root, f"{where}.{key}")
            elif extra is False:
                errors.append(f"{where}: unknown key {key!r}")
            elif isinstance(extra, dict):
                errors += _check(item, extra, root, f"{where}.{key}")
    if kind == "array" and "items" in schema:
        for index, item in enumerate(value):
            errors += _check(item, schema["items"], root, f"{where}[{index}]")
    return errors


if __name__ == "__main__":
    SCHEMA_PATH.write_text(json.dumps(current_schema(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SCHEMA_PATH}")
