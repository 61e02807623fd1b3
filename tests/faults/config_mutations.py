"""Invalid agent configurations, each made from a valid one by one deliberate mutation.

The mutations draw their choices from a :class:`Chooser`, so the same code serves the
hypothesis fuzzer (thousands, in-process) and a seeded sample for the real CLI.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

__all__ = [
    "HOSTILE",
    "LEGACY_MUTATIONS",
    "MUTATIONS",
    "SECRET",
    "Chooser",
    "RandomChooser",
    "base_config",
    "invalid_config",
    "invalid_legacy_config",
    "legacy_config",
    "write_home",
    "write_legacy_home",
]

T = TypeVar("T")

SECRET = "s3cr3t-Key-7f1e9c"
"""The agent key; it must never appear in any message."""

HOSTILE = [
    "",
    " ",
    "a\nb",
    "line1\r\nline2",
    "nul\x00byte",
    "\x1b[31mred\x1b[0m",
    "tab\there",
    "../../etc/passwd",
    "/etc/shadow",
    "${UNSET_FUSTOR_FUZZ_VAR}",
    "${UNSET_FUSTOR_FUZZ_VAR:-}",
    "$(rm -rf /)",
    "'; DROP TABLE pipes; --",
    "{{7*7}}",
    "%s%s%s%n",
    "\u202eevil\u202c",
    "名前",
    "😀-emoji",
    "x" * 5000,
    "*",
    "&anchor",
    "!!python/object/apply:os.system",
    "null",
    "- item",
    "key: value",
]


class Chooser(Protocol):
    def pick(self, options: Sequence[T]) -> T: ...

    def text(self) -> str: ...


class RandomChooser:
    """A :class:`Chooser` from a seeded ``random.Random``."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.random.randrange(len(options))]

    def text(self) -> str:
        if self.random.random() < 0.7:
            return self.pick(HOSTILE)
        size = self.random.randrange(1, 12)
        return "".join(chr(self.random.randrange(1, 0x2FFF)) for _ in range(size))


def base_config(root: Path) -> dict[str, Any]:
    """A valid configuration: one fs source, two fusion senders (inline and ``${VAR}`` key)."""
    return {
        "sources": [
            {
                "id": "files",
                "type": "fs",
                "config": {"uri": str(root), "driver_params": {"scan_workers": 2}},
            }
        ],
        "senders": [
            {
                "id": "to-fusion",
                "type": "fusion",
                "config": {
                    "endpoint": "http://127.0.0.1:9",
                    "credential": "${FUSION_KEY}",
                    "driver_params": {"read_timeout_sec": 5.0, "verify": True},
                },
            },
            {
                "id": "inline",
                "type": "fusion",
                "config": {"endpoint": "http://127.0.0.1:9", "credential": SECRET},
            },
        ],
        "pipes": [
            {"id": "p1", "source_id": "files", "sender_id": "to-fusion", "enabled": True},
            {
                "id": "p2",
                "source_id": "files",
                "sender_id": "inline",
                "audit_interval_sec": 60,
                "max_buffered_rows": 1000,
            },
        ],
        "console": {"enabled": False, "port": 0},
    }


# Paths (in the base config) of values with a type, and values of a type they never accept.
_SCALARS = [
    ("sources", 0, "id"),
    ("sources", 0, "type"),
    ("sources", 0, "config", "uri"),
    ("sources", 0, "config", "driver_params", "scan_workers"),
    ("senders", 0, "id"),
    ("senders", 0, "config", "endpoint"),
    ("senders", 0, "config", "credential"),
    ("senders", 1, "config", "credential"),
    ("senders", 0, "config", "driver_params", "read_timeout_sec"),
    ("senders", 0, "config", "driver_params", "verify"),
    ("pipes", 0, "id"),
    ("pipes", 0, "source_id"),
    ("pipes", 0, "sender_id"),
    ("pipes", 0, "enabled"),
    ("pipes", 1, "audit_interval_sec"),
    ("pipes", 1, "max_buffered_rows"),
    ("console", "port"),
    ("console", "enabled"),
]
_CONTAINERS = [
    ("sources",),
    ("senders",),
    ("pipes",),
    ("sources", 0, "config"),
    ("sources", 0, "config", "driver_params"),
    ("senders", 0, "config", "driver_params"),
    ("console",),
]
_REQUIRED = [
    ("sources", 0, "id"),
    ("sources", 0, "type"),
    ("sources", 0, "config", "uri"),
    ("senders", 0, "id"),
    ("senders", 0, "type"),
    ("senders", 0, "config", "endpoint"),
    ("senders", 1, "config", "credential"),
    ("pipes", 0, "id"),
    ("pipes", 1, "source_id"),
    ("pipes", 0, "sender_id"),
]
_MAPPINGS = [
    (),
    ("sources", 0),
    ("senders", 1),
    ("pipes", 0),
    ("sources", 0, "config"),
    ("senders", 0, "config"),
    ("sources", 0, "config", "driver_params"),
    ("senders", 0, "config", "driver_params"),
    ("console",),
]
_OUT_OF_RANGE = [
    (("sources", 0, "config", "driver_params", "scan_workers"), 0),
    (("sources", 0, "config", "driver_params", "scan_workers"), 10_000),
    (("sources", 0, "config", "driver_params", "max_watches"), -1),
    (("senders", 0, "config", "driver_params", "read_timeout_sec"), -5),
    (("pipes", 1, "max_buffered_rows"), 0),
    (("pipes", 1, "audit_interval_sec"), -1),
    (("console", "port"), 70_000),
]


def _parent(doc: Any, path: tuple[Any, ...]) -> tuple[Any, Any]:
    node = doc
    for part in path[:-1]:
        node = node[part]
    return node, path[-1]


def _wrong_type(doc: dict[str, Any], c: Chooser) -> str:
    path = c.pick(_SCALARS)
    node, key = _parent(doc, path)
    node[key] = c.pick([{"nested": SECRET}, [SECRET], [], {}, [1, 2]])
    return f"wrong type at {path}"


def _container_type(doc: dict[str, Any], c: Chooser) -> str:
    path = c.pick(_CONTAINERS)
    node, key = _parent(doc, path) if len(path) > 1 else (doc, path[0])
    node[key] = c.pick(["just a string", 42, 3.5, True, ["list", "of", "strings"]])
    if (
        isinstance(node[key], list)
        and path[0] in ("sources", "senders", "pipes")
        and len(path) == 1
    ):
        node[key] = "not a list"
    return f"wrong container type at {path}"


def _missing(doc: dict[str, Any], c: Chooser) -> str:
    path = c.pick(_REQUIRED)
    node, key = _parent(doc, path)
    del node[key]
    return f"missing {path}"


_KNOWN_KEYS = {
    "sources", "senders", "pipes", "console", "agent_id", "id", "type", "config", "uri",
    "driver_params", "endpoint", "credential", "source_id", "sender_id", "enabled",
    "audit_interval_sec", "sentinel_interval_sec", "max_buffered_rows", "host", "port",
}  # fmt: skip


def _unknown_key(doc: dict[str, Any], c: Chooser) -> str:
    path = c.pick(_MAPPINGS)
    node: Any = doc
    for part in path:
        node = node[part]
    key = c.text()
    if key in _KNOWN_KEYS or key in node or not key.strip():
        key = f"unknown_{len(key)}_{key}"
    node[key] = c.pick(["value", 1, None, {"a": 1}])
    return f"unknown key at {path}"


def _dangling(doc: dict[str, Any], c: Chooser) -> str:
    pipe = doc["pipes"][c.pick([0, 1])]
    field = c.pick(["source_id", "sender_id"])
    value = c.text()
    if value in ("files", "to-fusion", "inline"):
        value += "-missing"
    pipe[field] = value
    return f"dangling {field}"


def _duplicate(doc: dict[str, Any], c: Chooser) -> str:
    kind = c.pick(["sources", "senders", "pipes"])
    doc[kind].append(copy.deepcopy(doc[kind][0]))
    return f"duplicate id in {kind}"


def _unknown_type(doc: dict[str, Any], c: Chooser) -> str:
    kind = c.pick(["sources", "senders"])
    value = c.text()
    if value in ("fs", "fusion", "echo") or value.startswith("testonly"):
        value = "no-such-" + value
    doc[kind][0]["type"] = value
    return f"unknown {kind} type"


def _hostile_value(doc: dict[str, Any], c: Chooser) -> str:
    where = c.pick(["uri", "endpoint", "pipe_id"])
    value = c.text()
    if where == "uri":
        # Relative: an error (a missing root is only a warning: it is waited for).
        doc["sources"][0]["config"]["uri"] = "fustor-relative/" + value
    elif where == "endpoint":
        doc["senders"][0]["config"]["endpoint"] = "ftp://" + value
    else:
        doc["pipes"][0]["id"] = value + " /bad id"
    return f"hostile {where}"


def _out_of_range(doc: dict[str, Any], c: Chooser) -> str:
    path, value = c.pick(_OUT_OF_RANGE)
    node, key = _parent(doc, path)
    node[key] = value
    return f"out of range {path}"


def _unset_variable(doc: dict[str, Any], c: Chooser) -> str:
    doc["senders"][1]["config"]["credential"] = "${UNSET_FUSTOR_FUZZ_KEY}"
    return "credential from an unset variable"


MUTATIONS: list[Callable[[dict[str, Any], Chooser], str]] = [
    _wrong_type,
    _container_type,
    _missing,
    _unknown_key,
    _dangling,
    _duplicate,
    _unknown_type,
    _hostile_value,
    _out_of_range,
    _unset_variable,
]

_BROKEN_YAML = [
    "sources: [unclosed",
    'senders:\n  - id: "unterminated',
    "pipes:\n\t- id: tab-indented",
    "{a: b",
    "key: *undefined_alias",
    "!!python/object/apply:os.system ['echo owned']",
    "- a\nb: c",
    "sources:\n  - id: x\n   type: misindented",
    "%YAML 9.9\n---\nsources: []",
    "? [complex, key]\n: value\n: again",
]


def invalid_config(root: Path, c: Chooser) -> tuple[str, str]:
    """``(description, YAML text)`` of one invalid configuration."""
    if c.pick(range(8)) == 0:
        fragment = c.pick(_BROKEN_YAML)
        text = yaml.safe_dump(base_config(root), sort_keys=False)
        lines = text.splitlines()
        at = c.pick(range(len(lines) + 1))
        return "broken YAML", "\n".join([*lines[:at], fragment, *lines[at:]]) + "\n"
    doc = base_config(root)
    what = [c.pick(MUTATIONS)(doc, c)]
    for _ in range(c.pick([0, 0, 0, 1, 2])):
        try:
            what.append(c.pick(MUTATIONS)(doc, c))
        except (KeyError, IndexError, TypeError, AttributeError):
            pass  # an earlier mutation already removed or replaced what this one targets
    return "; ".join(what), yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def write_home(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "agent-config.yaml").write_text(text, encoding="utf-8")
    (home / ".env").write_text(f"FUSION_KEY={SECRET}\n")


# -- the 0.8.17 layout: agent-config/*.yaml, mappings keyed by id --------------------------


def legacy_config(root: Path) -> dict[str, Any]:
    """A valid configuration in the original agent's layout."""
    return {
        "sources": {
            "files": {"driver": "fs", "uri": str(root), "driver_params": {"file_pattern": "*"}}
        },
        "senders": {
            "fusion": {
                "driver": "fusion",
                "uri": "http://127.0.0.1:9",
                "credential": {"key": "${FUSION_KEY}"},
            },
            "inline": {"driver": "fusion", "uri": "http://127.0.0.1:9", "credential": SECRET},
        },
        "pipes": {
            "p1": {"source": "files", "sender": "fusion", "audit_interval_sec": 60},
            "p2": {"source": "files", "sender": "inline"},
        },
    }


_LEGACY_SCALARS = [
    ("sources", "files", "driver"),
    ("sources", "files", "uri"),
    ("senders", "fusion", "uri"),
    ("senders", "inline", "credential"),
    ("senders", "fusion", "credential", "key"),
    ("pipes", "p1", "source"),
    ("pipes", "p2", "sender"),
    ("pipes", "p1", "audit_interval_sec"),
]
_LEGACY_REQUIRED = [
    ("sources", "files", "driver"),
    ("sources", "files", "uri"),
    ("senders", "inline", "driver"),
    ("senders", "fusion", "uri"),
    ("senders", "inline", "credential"),
    ("pipes", "p1", "source"),
    ("pipes", "p2", "sender"),
]


def _legacy_wrong_type(doc: dict[str, Any], c: Chooser) -> str:
    path = c.pick(_LEGACY_SCALARS)
    node, key = _parent(doc, path)
    node[key] = c.pick([{"nested": SECRET}, [SECRET], {}, [1, 2]])
    return f"legacy wrong type at {path}"


def _legacy_container(doc: dict[str, Any], c: Chooser) -> str:
    kind = c.pick(["sources", "senders", "pipes"])
    if c.pick([True, False]):
        doc[kind] = c.pick([["a", "list"], "a string", 7])
    else:
        doc[kind][next(iter(doc[kind]))] = c.pick(["a string", ["a", "list"], 7])
    return f"legacy wrong container in {kind}"


def _legacy_missing(doc: dict[str, Any], c: Chooser) -> str:
    path = c.pick(_LEGACY_REQUIRED)
    node, key = _parent(doc, path)
    del node[key]
    return f"legacy missing {path}"


def _legacy_dangling(doc: dict[str, Any], c: Chooser) -> str:
    pipe = doc["pipes"][c.pick(["p1", "p2"])]
    field = c.pick(["source", "sender"])
    value = c.text()
    if value in ("files", "fusion", "inline"):
        value += "-missing"
    pipe[field] = value
    return f"legacy dangling {field}"


def _legacy_hostile_id(doc: dict[str, Any], c: Chooser) -> str:
    kind = c.pick(["sources", "senders"])
    doc[kind][c.text()] = {
        "driver": "no-such-driver-" + c.text(),
        "uri": "/proc/fustor-no-such-dir",
    }
    return f"legacy hostile {kind} id"


def _legacy_unknown_driver(doc: dict[str, Any], c: Chooser) -> str:
    kind, item = c.pick([("sources", "files"), ("senders", "fusion")])
    doc[kind][item]["driver"] = "no-such-" + c.text()
    return "legacy unknown driver"


def _legacy_bad_params(doc: dict[str, Any], c: Chooser) -> str:
    params = doc["sources"]["files"]["driver_params"]
    params[c.pick(["scan_workers", "batch_size", "max_watches"])] = c.pick([0, -3, {}, "many"])
    return "legacy bad driver_params"


LEGACY_MUTATIONS: list[Callable[[dict[str, Any], Chooser], str]] = [
    _legacy_wrong_type,
    _legacy_container,
    _legacy_missing,
    _legacy_dangling,
    _legacy_hostile_id,
    _legacy_unknown_driver,
    _legacy_bad_params,
]


def invalid_legacy_config(root: Path, c: Chooser) -> tuple[str, str]:
    """``(description, YAML text)`` of one invalid ``agent-config/*.yaml`` file."""
    text_of = lambda doc: yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)  # noqa: E731
    if c.pick(range(8)) == 0:
        lines = text_of(legacy_config(root)).splitlines()
        at = c.pick(range(len(lines) + 1))
        return "legacy broken YAML", "\n".join(
            [*lines[:at], c.pick(_BROKEN_YAML), *lines[at:]]
        ) + "\n"
    doc = legacy_config(root)
    return c.pick(LEGACY_MUTATIONS)(doc, c), text_of(doc)


def write_legacy_home(home: Path, text: str) -> None:
    (home / "agent-config").mkdir(parents=True, exist_ok=True)
    (home / "agent-config" / "default.yaml").write_text(text, encoding="utf-8")
    (home / ".env").write_text(f"FUSION_KEY={SECRET}\n")
