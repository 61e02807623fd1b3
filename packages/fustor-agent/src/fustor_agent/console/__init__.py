"""Web console of the agent: dashboard, status API, Prometheus metrics, health and readiness.

The names below load on first use: the agent imports this package for its settings, and
the server, the dashboard and ``prometheus_client`` are not needed when the console is off
(about 35 ms of start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fustor_agent.console.app import STATUS_PATH, StatusProvider, readiness
    from fustor_agent.console.client import fetch_status
    from fustor_agent.console.metrics import DeclaredMetrics
    from fustor_agent.console.serve import ConsoleHandle, ConsolePortInUse, start_console
    from fustor_agent.console.settings import DEFAULT_CONSOLE_PORT, ConsoleSettings

__all__ = [
    "DEFAULT_CONSOLE_PORT",
    "STATUS_PATH",
    "ConsoleHandle",
    "ConsolePortInUse",
    "ConsoleSettings",
    "DeclaredMetrics",
    "StatusProvider",
    "fetch_status",
    "readiness",
    "start_console",
]

_HOME = {
    "DEFAULT_CONSOLE_PORT": "settings",
    "ConsoleSettings": "settings",
    "STATUS_PATH": "app",
    "StatusProvider": "app",
    "readiness": "app",
    "fetch_status": "client",
    "DeclaredMetrics": "metrics",
    "ConsoleHandle": "serve",
    "ConsolePortInUse": "serve",
    "start_console": "serve",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
