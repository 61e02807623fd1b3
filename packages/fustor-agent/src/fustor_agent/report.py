"""Plain-text renderings of the agent's status and plugins for the CLI."""

from __future__ import annotations

from typing import Any

from fustor_agent.config import AgentConfig
from fustor_agent.plugins import DriverRegistry
from fustor_agent.status import AgentStatus, PipeRunState, PipeStatus
from fustor_core import ConfigError

__all__ = ["only_pipe", "pipe_rows", "render_pipes", "render_plugins", "render_status"]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render_status(status: AgentStatus) -> str:
    lines = [
        f"agent {status.agent_id} running (pid {status.pid}, "
        f"up {status.uptime_sec:.0f}s, version {status.version})",
        f"config: {status.config_path or 'built-in (--watch)'}",
    ]
    if status.console_url:
        lines.append(f"console: {status.console_url}")
    reload = status.last_reload
    if reload is not None and not reload.ok:
        now = status.started_at + status.uptime_sec
        error = "; ".join((reload.error or "unknown error").splitlines())
        lines.append(f"last reload failed {_age(now - reload.at)} ago: {error}")
    if not status.pipes:
        lines.append("no pipes")
        return "\n".join(lines)
    rows = [["PIPE", "STATE", "ROLE", "ACTIVITY", "SENT rt/snap/audit/scan", "QUEUE", "READY"]]
    for pipe in status.pipes:
        sent = pipe.rows_sent
        ready = "yes" if pipe.ready else f"no: {pipe.not_ready_reason or '?'}"
        rows.append(
            [
                pipe.id,
                pipe.state.value,
                pipe.role.value if pipe.role else "-",
                pipe.activity.value,
                "/".join(
                    str(sent.get(k, 0)) for k in ("realtime", "snapshot", "audit", "on_demand_job")
                ),
                str(pipe.queue_depth.realtime),
                ready,
            ]
        )
    lines += _table(rows)
    now = status.started_at + status.uptime_sec
    for pipe in status.pipes:
        if (losses := _losses(pipe)) is not None:
            lines.append(f"{pipe.id}: {losses}")
        if pipe.last_error is not None:
            lines.append(f"{pipe.id}: {_last_error(pipe, now)}")
    return "\n".join(lines)


def _losses(pipe: PipeStatus) -> str | None:
    """``832 realtime rows dropped, 2 batches rejected since start (...)``, or ``None``.

    Kept apart from the last error, which a later transient one overwrites."""
    parts = []
    if pipe.dropped_rows:
        parts.append(f"{pipe.dropped_rows} realtime rows dropped (over max_buffered_rows)")
    if pipe.rejected_batches:
        parts.append(f"{pipe.rejected_batches} batches rejected by the sender")
    if not parts:
        return None
    return ", ".join(parts) + " since start: see the log; audits resend what Fusion lacks"


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


def _last_error(pipe: PipeStatus, now: float) -> str:
    """``last error 4m ago (recovered since): <message>``: the age, and whether the pipe has
    been running and ready since (the error is history then, kept for the operator)."""
    error = pipe.last_error
    assert error is not None
    age = f" {_age(now - error.at)} ago" if now else ""
    recovered = " (recovered since)" if pipe.state is PipeRunState.RUNNING and pipe.ready else ""
    return f"last error{age}{recovered}: {error.message}"


def render_plugins(registry: DriverRegistry) -> str:
    lines = []
    for info in registry.plugins:
        lines.append(f"{info.distribution} {info.version} ({info.module})")
        for (kind, name), origin in sorted(registry.origin.items()):
            if origin == info.distribution:
                lines.append(f"  {kind:<7} {name}")
    return "\n".join(lines) if lines else "no driver plugins installed"


def only_pipe(status: AgentStatus, pipe_id: str) -> AgentStatus:
    """``status`` with only the pipe ``pipe_id``; :class:`ConfigError` (exit 78, as for
    ``start``/``stop`` of an unknown pipe) when it has none."""
    selected = status.only_pipe(pipe_id)
    if selected is None:
        known = ", ".join(pipe.id for pipe in status.pipes) or "none"
        raise ConfigError(f"the running agent has no pipe {pipe_id!r} (pipes: {known})")
    return selected


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
