"""The 0.8.17 layout, ``agent-config/*.yaml``: mappings keyed by id, translated to ours.

Keys of that layout which this agent does not implement are accepted with one warning each,
so an existing installation starts. Our own top-level ``console:`` and ``logging:`` blocks are
read in these files too (of ``logging:``, the keys ours knows: ``level`` ...), so an
upgraded installation can use them without changing layout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fustor_agent.config.env import expand
from fustor_agent.config.errors import Problems, closest
from fustor_agent.config.models import LEVEL_ALIASES
from fustor_agent.config.resolve import RawDocument, RawEntry
from fustor_agent.config.yamlfile import read_yaml
from fustor_agent.logs import LEVELS

__all__ = ["read_legacy_dir", "read_legacy_files"]

_TOP_KEYS = {"sources", "senders", "pipes", "agent_id", "console", "logging"}
_SOURCE_KEYS = {"driver", "uri", "driver_params", "disabled", "credential"}
_SENDER_KEYS = {"driver", "uri", "driver_params", "disabled", "credential"}
_LOGGING_KEYS = {"level", "format", "file"}
_LEGACY_FS_PARAMS: dict[str, str | None] = {
    "max_scan_workers": "scan_workers",
    "min_monitoring_window_days": None,
    "throttle_interval_sec": None,
    "max_sync_delay_seconds": None,
    "startup_mode": None,
}
"""``driver_params`` the 0.8.17 fs driver read → ours (``None``: not used here)."""
_PIPE_KEYS = {
    "source",
    "sender",
    "audit_interval_sec",
    "sentinel_interval_sec",
    "disabled",
    "session_timeout_seconds",
}

# Locations in our layout → where the user wrote it in the legacy layout.
_SOURCE_NAMES = (("type", "driver"), ("config.uri", "uri"), ("config.", ""), ("config", "uri"))
_SENDER_NAMES = (
    ("type", "driver"),
    ("config.endpoint", "uri"),
    ("config.", ""),
    ("config", "uri"),
)
_PIPE_NAMES = (("source_id", "source"), ("sender_id", "sender"), ("enabled", "disabled"))


def _renamer(prefix: str, names: tuple[tuple[str, str], ...]) -> Callable[[str], str]:
    def rename(loc: str) -> str:
        if not loc.startswith(prefix + "."):
            return loc
        rest = loc[len(prefix) + 1 :]
        for ours, theirs in names:
            if rest == ours or rest.startswith(ours if ours.endswith(".") else ours + "."):
                rest = theirs + rest[len(ours) :] if theirs else rest[len(ours) :]
                break
        return f"{prefix}.{rest}"

    return rename


def _warn_unknown(
    problems: Problems, label: str, loc: str, item: Mapping[str, Any], known: set[str]
) -> None:
    for key in item:
        if key not in known:
            problems.warn(label, f"{loc}.{key}", _ignored(str(key), known))


def _ignored(key: str, known: set[str]) -> str:
    match = closest(key, sorted(known))
    hint = f" (did you mean {match!r}?)" if match else ""
    return f"not supported by this agent; ignored{hint}"


def _legacy_logging(value: Any, label: str, problems: Problems) -> Any:
    """0.8.17's ``logging:`` block in ours: a bare level (``logging: DEBUG``) is the level;
    of a mapping, the keys ours knows, and ``format`` only when it is ``text`` or ``json``
    (0.8.17's was a Python logging format string)."""
    if isinstance(value, str):
        level = LEVEL_ALIASES.get(value.lower(), value.lower())
        if level in LEVELS:
            return {"level": level}
        problems.warn(
            label, "logging", f"{value!r} is not a log level ({', '.join(LEVELS)}); ignored"
        )
        return None
    if not isinstance(value, dict):
        return value  # ours reports what is wrong with it
    _warn_unknown(problems, label, "logging", value, _LOGGING_KEYS)
    value = {k: v for k, v in value.items() if k in _LOGGING_KEYS}
    form = value.get("format")
    if isinstance(form, str) and form.lower() not in ("text", "json"):
        problems.warn(
            label,
            "logging.format",
            "a Python logging format (0.8.17) is not supported: this agent writes 'text' or "
            "'json' lines; ignored",
        )
        del value["format"]
    return value


def _legacy_fs_params(
    params: dict[str, Any], label: str, loc: str, problems: Problems
) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """The 0.8.17 fs driver's ``driver_params`` in ours: ``max_scan_workers`` is read as
    ``scan_workers``, the others it read are ignored with a warning. Returns the params and
    the location renames for messages."""
    params = dict(params)
    renames: list[tuple[str, str]] = []
    for key in [k for k in params if k in _LEGACY_FS_PARAMS]:
        ours = _LEGACY_FS_PARAMS[key]
        where = f"{loc}.driver_params.{key}"
        value = params.pop(key)
        if ours is None:
            problems.warn(label, where, "a 0.8.17 fs setting this agent does not use; ignored")
        elif ours in params:
            problems.warn(label, where, f"{ours!r} is given too; this one is ignored")
        else:
            params[ours] = value
            renames.append((f"config.driver_params.{ours}", f"driver_params.{key}"))
    return params, tuple(renames)


def _is_password(value: Any) -> bool:
    """0.8.17's ``{user, passwd}`` credential form (no ``key``)."""
    return isinstance(value, dict) and "key" not in value and bool({"user", "passwd"} & set(value))


def _credential(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("key")
    return value


def _read_file(
    path: Path,
    label: str,
    env: Mapping[str, str],
    problems: Problems,
    doc: RawDocument,
    disabled: set[tuple[str, str]],
    timeouts: list[tuple[str, str, Any, Any]],
) -> None:
    data = read_yaml(path, label, problems)
    if data is None:
        return
    if not isinstance(data, dict):
        problems.add(label, "", "the file must hold a mapping")
        return
    data = expand(data, env, problems, label)
    for key in data:
        if key not in _TOP_KEYS:
            problems.warn(label, str(key), _ignored(str(key), _TOP_KEYS))
    if data.get("agent_id") is not None:
        doc.agent_id = str(data["agent_id"])
    for block in ("console", "logging"):
        value = data.get(block)
        if value is None:
            continue
        if block == "logging":
            value = _legacy_logging(value, label, problems)
            if value is None:
                continue
        earlier = getattr(doc, block)
        if earlier is not None:
            problems.warn(label, block, f"already given in {earlier.file}; this one is ignored")
        else:
            setattr(doc, block, RawEntry(label, block, value))
    for kind in ("sources", "senders", "pipes"):
        section = data.get(kind) or {}
        if not isinstance(section, dict):
            problems.add(label, kind, "must be a mapping keyed by id")
            continue
        for item_id, item in section.items():
            loc = f"{kind}.{item_id}"
            if not isinstance(item, dict):
                problems.add(label, loc, "must be a mapping")
                continue
            if item.get("disabled"):
                disabled.add((kind, str(item_id)))
            else:  # defined again, enabled: the later definition counts (see _later_wins)
                disabled.discard((kind, str(item_id)))
            if kind == "pipes":
                _warn_unknown(problems, label, loc, item, _PIPE_KEYS)
                entry: dict[str, Any] = {"id": str(item_id), "enabled": not item.get("disabled")}
                for ours, theirs in (("source_id", "source"), ("sender_id", "sender")):
                    if theirs in item:
                        entry[ours] = item[theirs]
                for key in ("audit_interval_sec", "sentinel_interval_sec"):
                    if key in item:
                        entry[key] = item[key]
                if "session_timeout_seconds" in item:
                    timeouts.append(
                        (label, loc, item.get("sender"), item["session_timeout_seconds"])
                    )
                doc.pipes.append(RawEntry(label, loc, entry, _renamer(loc, _PIPE_NAMES)))
                continue
            is_source = kind == "sources"
            _warn_unknown(problems, label, loc, item, _SOURCE_KEYS if is_source else _SENDER_KEYS)
            config: dict[str, Any] = {}
            if "uri" in item:
                config["uri" if is_source else "endpoint"] = item["uri"]
            names: tuple[tuple[str, str], ...] = _SOURCE_NAMES if is_source else _SENDER_NAMES
            if "driver_params" in item:
                params = item["driver_params"] or {}
                if is_source and item.get("driver") == "fs" and isinstance(params, dict):
                    params, renamed = _legacy_fs_params(params, label, loc, problems)
                    names = renamed + names
                config["driver_params"] = params
            if "credential" in item:
                if is_source:
                    problems.warn(label, f"{loc}.credential", "not used by sources; ignored")
                elif item.get("driver") == "fusion" and _is_password(item["credential"]):
                    problems.add(
                        label,
                        f"{loc}.credential",
                        "a user/passwd credential: Fusion takes an agent API key; write "
                        "`credential: KEY` with a key of Fusion's receivers.<id>.api_keys",
                    )
                    config["credential"] = "(refused above)"  # not reported again as missing
                else:
                    config["credential"] = _credential(item["credential"])
            entry = {"id": str(item_id), "config": config}
            if "driver" in item:
                entry["type"] = item["driver"]
            getattr(doc, kind).append(RawEntry(label, loc, entry, _renamer(loc, names)))


def read_legacy_files(
    paths: list[Path], label_base: Path | None, env: Mapping[str, str], problems: Problems
) -> RawDocument:
    """Merge the files (one namespace) into a raw document; labels are relative to
    ``label_base`` (absolute paths when ``None``)."""
    doc = RawDocument()
    disabled: set[tuple[str, str]] = set()
    timeouts: list[tuple[str, str, Any, Any]] = []
    for path in paths:
        label = str(path if label_base is None else path.relative_to(label_base))
        _read_file(path, label, env, problems, doc, disabled, timeouts)
    _later_wins(doc, problems)
    kept = {(raw.file, raw.location) for raw in doc.pipes}
    _session_timeouts(doc, [t for t in timeouts if (t[0], t[1]) in kept], problems)
    # A disabled source or sender disables the pipes that use it, as in 0.8.17.
    for raw in doc.pipes:
        pipe = raw.data
        if ("sources", str(pipe.get("source_id"))) in disabled or (
            "senders",
            str(pipe.get("sender_id")),
        ) in disabled:
            pipe["enabled"] = False
    return doc


def _later_wins(doc: RawDocument, problems: Problems) -> None:
    """An id defined in two files: the later file's definition is used and the earlier one
    is a warning, as 0.8.17 did (its files are read in name order), so a home it ran
    starts here too (the one-file layout refuses a duplicate id)."""
    for kind in ("sources", "senders", "pipes"):
        entries: list[RawEntry] = getattr(doc, kind)
        last = {str(raw.data.get("id")): raw for raw in entries}
        kept = []
        for raw in entries:
            winner = last[str(raw.data.get("id"))]
            if winner is raw:
                kept.append(raw)
            else:
                if kind == "pipes":
                    doc.earlier_pipe_files.setdefault(str(raw.data.get("id")), []).append(raw.file)
                problems.warn(
                    raw.file,
                    raw.location,
                    f"defined again in {winner.file}; that later definition is used, as in 0.8.17",
                )
        setattr(doc, kind, kept)


def _session_timeouts(
    doc: RawDocument, timeouts: list[tuple[str, str, Any, Any]], problems: Problems
) -> None:
    """A 0.8.17 pipe's ``session_timeout_seconds`` (the timeout it asked Fusion for) is its
    ``fusion`` sender's ``driver_params.session_timeout_sec``; two pipes asking different
    values of one sender keep the first."""
    senders = {raw.data.get("id"): raw for raw in doc.senders if isinstance(raw.data, dict)}
    for label, loc, sender_id, value in timeouts:
        where = f"{loc}.session_timeout_seconds"
        raw = senders.get(str(sender_id))
        if raw is None or raw.data.get("type") != "fusion":
            problems.warn(label, where, "only a fusion sender takes a session timeout; ignored")
            continue
        params = raw.data["config"].setdefault("driver_params", {})
        if not isinstance(params, dict):
            continue  # its own error is reported
        given = params.setdefault("session_timeout_sec", value)
        if given != value:
            problems.warn(
                label, where, f"sender {sender_id} already asks {given!r} (another pipe); ignored"
            )


def read_legacy_dir(
    directory: Path, label_base: Path, env: Mapping[str, str], problems: Problems
) -> RawDocument:
    """Merge every ``*.yaml`` of the directory (one namespace) into a raw document."""
    return read_legacy_files(sorted(directory.glob("*.yaml")), label_base, env, problems)
