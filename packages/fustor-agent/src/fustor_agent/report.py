"""Plain-text renderings of the agent's status and plugins for the CLI."""

from __future__ import annotations

from typing import Any

from fustor_agent.config import AgentConfig
from fustor_agent.plugins import DriverRegistry
from fustor_core import FustorError

__all__ = ["only_pipe", "pipe_rows", "render_pipes", "render_plugins", "render_status"]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render_status(status: dict[str, Any]) -> str:
    lines = [
        f"agent {status.get('agent_id')} running (pid {status.get('pid')}, "
        f"up {status.get('uptime_sec', 0):.0f}s, version {status.get('version')})",
        f"config: {status.get('config_path') or 'built-in (--watch)'}",
    ]
    pipes = status.get("pipes") or []
    if not pipes:
        lines.append("no pipes")
        return "\n".join(lines)
    rows = [["PIPE", "STATE", "ROLE", "PHASE", "SENT rt/snap/audit/scan", "QUEUE", "READY"]]
    for pipe in pipes:
        sent = pipe.get("rows_sent") or {}
        ready = "yes" if pipe.get("ready") else f"no: {pipe.get('not_ready_reason') or '?'}"
        rows.append(
            [
                str(pipe.get("id")),
                str(pipe.get("state")),
                str(pipe.get("role") or "-"),
                str(pipe.get("phase")),
                "/".join(
                    str(sent.get(k, 0)) for k in ("realtime", "snapshot", "audit", "on_demand_job")
                ),
                str((pipe.get("queue_depth") or {}).get("realtime", 0)),
                ready,
            ]
        )
    lines += _table(rows)
    now = (status.get("started_at") or 0) + (status.get("uptime_sec") or 0)
    for pipe in pipes:
        if pipe.get("last_error"):
            lines.append(f"{pipe.get('id')}: {_last_error(pipe, now)}")
    return "\n".join(lines)


def _age(seconds: float) -> str:
    """``42s``, ``4m12s``, ``3h05m``, ``2d03h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _last_error(pipe: dict[str, Any], now: float) -> str:
    """``last error 4m ago (recovered since): <message>``: the age, and whether the pipe has
    been running and ready since (the error is history then, kept for the operator)."""
    error = pipe["last_error"]
    at = error.get("at")
    age = f" {_age(now - at)} ago" if isinstance(at, int | float) and now else ""
    recovered = " (recovered since)" if pipe.get("state") == "running" and pipe.get("ready") else ""
    return f"last error{age}{recovered}: {error.get('message')}"


def render_plugins(registry: DriverRegistry) -> str:
    lines = []
    for info in registry.plugins:
        lines.append(f"{info.distribution} {info.version} ({info.module})")
        for (kind, name), origin in sorted(registry.origin.items()):
            if origin == info.distribution:
                lines.append(f"  {kind:<7} {name}")
    return "\n".join(lines) if lines else "no driver plugins installed"


def only_pipe(status: dict[str, Any], pipe_id: str) -> dict[str, Any]:
    """``status`` with only the pipe ``pipe_id``; :class:`FustorError` when it has none."""
    pipes = [p for p in status.get("pipes") or [] if p.get("id") == pipe_id]
    if not pipes:
        known = ", ".join(str(p.get("id")) for p in status.get("pipes") or []) or "none"
        raise FustorError(f"the running agent has no pipe {pipe_id!r} (pipes: {known})")
    return {**status, "pipes": pipes}


def pipe_rows(config: AgentConfig) -> list[dict[str, Any]]:
    """One mapping per pipe of ``config``: id, source and sender (id and type), enabled, file."""
    return [
        {
            "id": pipe_id,
            "source_id": entry.source_id,
            "source_type": config.sources[entry.source_id].type,
            "sender_id": entry.sender_id,
            "sender_type": config.senders[entry.sender_id].type,
            "enabled": entry.enabled,
            "file": config.pipe_files.get(pipe_id),
        }
        for pipe_id, entry in config.pipes.items()
    ]


def render_pipes(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no pipes in the configuration"
    table = [["PIPE", "SOURCE", "SENDER", "ENABLED", "FILE"]]
    for row in rows:
        table.append(
            [
                str(row["id"]),
                f"{row['source_id']} ({row['source_type']})",
                f"{row['sender_id']} ({row['sender_type']})",
                "yes" if row["enabled"] else "no",
                str(row["file"] or "-"),
            ]
        )
    return "\n".join(_table(table))
