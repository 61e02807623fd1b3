"""Web console of the agent: dashboard, status API, Prometheus metrics, health and readiness."""

from __future__ import annotations

import errno
import logging
from typing import Protocol

from fustor_agent.console.app import STATUS_PATH, ConsoleApp, StatusProvider, readiness
from fustor_agent.console.client import fetch_status
from fustor_agent.console.httpserver import HttpServer
from fustor_agent.console.settings import DEFAULT_CONSOLE_PORT, ConsoleSettings, is_loopback_host
from fustor_core import ConfigError

__all__ = [
    "DEFAULT_CONSOLE_PORT",
    "STATUS_PATH",
    "ConsoleHandle",
    "ConsoleSettings",
    "StatusProvider",
    "fetch_status",
    "readiness",
    "start_console",
]

logger = logging.getLogger(__name__)


class _ListenSettings(Protocol):
    host: str
    port: int


class ConsoleHandle:
    """A running console; ``close()`` stops it. ``port`` is the bound port (useful with 0)."""

    def __init__(self, server: HttpServer, host: str, port: int) -> None:
        self._server = server
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def close(self) -> None:
        """Stop listening and drop open connections. Idempotent."""
        await self._server.close()


async def start_console(settings: _ListenSettings, agent: StatusProvider) -> ConsoleHandle:
    """Serve the console of ``agent`` on ``settings.host:settings.port`` in the running loop.

    The caller decides whether the console is enabled. Raises :class:`ConfigError` when the
    address cannot be bound (port in use, unknown host).
    """
    host, port = settings.host, settings.port
    if not is_loopback_host(host):
        logger.warning(
            "console listens on %s, reachable from other machines: it shows paths, figures "
            "and errors of this agent without authentication",
            host,
        )
    server = HttpServer(ConsoleApp(agent, loopback_only=is_loopback_host(host)))
    try:
        bound_host, bound_port = await server.start(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"console port {port} on {host} is already in use; "
                "set console.port or console.enabled: false"
            ) from None
        raise ConfigError(
            f"console cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "set console.host / console.port or console.enabled: false"
        ) from None
    logger.info("console on http://%s:%d/", bound_host, bound_port)
    return ConsoleHandle(server, bound_host, bound_port)
