"""Routes of the console: dashboard, status API, metrics, health and readiness."""

from __future__ import annotations

import json
from typing import Any

from fustor_agent.console.access import Access
from fustor_agent.console.dashboard import content_security_policy, render_dashboard
from fustor_agent.console.httpserver import Request, Response
from fustor_agent.console.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from fustor_agent.console.metrics import MetricsSource, metrics_registry, render_metrics
from fustor_agent.console.settings import is_loopback_host
from fustor_agent.status import AgentStatus

__all__ = ["STATUS_PATH", "ConsoleApp", "StatusProvider", "readiness"]

STATUS_PATH = "/api/v1/status"
_JSON = "application/json"


StatusProvider = MetricsSource
"""What the console needs from the agent: ``status()`` (an :class:`AgentStatus`) and
``declared_metrics()`` (see docs/console.md)."""


def _json(status: int, value: Any) -> Response:
    body = json.dumps(value, indent=1, default=str).encode("utf-8") + b"\n"
    return Response(status, body, _JSON)


def readiness(status: AgentStatus) -> tuple[bool, dict[str, str]]:
    """Whether every enabled pipe is ready, and why each one that is not."""
    return status.readiness()


class ConsoleApp:
    """Maps a request to a response; every route reads a fresh ``agent.status()``."""

    def __init__(
        self, agent: StatusProvider, *, loopback_only: bool = True, access: Access | None = None
    ) -> None:
        self._agent = agent
        self._loopback_only = loopback_only
        self._access = access or Access()
        self._registry = metrics_registry(agent)
        self._routes = {
            "/": self._dashboard,
            "/index.html": self._dashboard,
            STATUS_PATH: self._status,
            "/metrics": self._metrics,
            "/healthz": self._healthz,
            "/readyz": self._readyz,
        }

    def __call__(self, request: Request) -> Response:
        if self._loopback_only and request.host is not None and not is_loopback_host(request.host):
            # DNS rebinding: a web page the operator visits could otherwise point its own
            # host name at 127.0.0.1 and read the console from the operator's browser.
            return Response.text(403, f"host {request.host!r} not allowed; use localhost\n")
        if not self._access.allows(request.path, request.authorization):
            response = Response.text(401, "a bearer token is required (see docs/console.md)\n")
            response.headers["WWW-Authenticate"] = (
                'Bearer realm="fustor-agent", Basic realm="fustor-agent", charset="UTF-8"'
            )
            return response
        route = self._routes.get(request.path)
        if route is None:
            return Response.text(404, f"not found: {request.path}\n")
        return route()

    def _dashboard(self) -> Response:
        page = render_dashboard(self._agent.status().to_json())
        response = Response(200, page, "text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = content_security_policy()
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def _status(self) -> Response:
        return _json(200, self._agent.status().to_json())

    def _metrics(self) -> Response:
        return Response(200, render_metrics(self._registry), METRICS_CONTENT_TYPE)

    def _healthz(self) -> Response:
        # Answering at all proves the event loop turns; the status is not needed for that.
        return _json(200, {"status": "ok"})

    def _readyz(self) -> Response:
        ready, reasons = self._agent.status().readiness()
        return _json(200 if ready else 503, {"ready": ready, "not_ready": reasons})
