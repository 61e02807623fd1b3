"""Start and stop the console's HTTP server (the code behind :func:`start_console`)."""

from __future__ import annotations

import errno
import logging

from fustor_agent.console.access import Access, load_token, tls_context
from fustor_agent.console.app import ConsoleApp, StatusProvider
from fustor_agent.console.httpserver import HttpServer
from fustor_agent.console.settings import ConsoleSettings, is_loopback_host
from fustor_core import ConfigError

__all__ = ["ConsoleHandle", "ConsolePortInUse", "start_console"]

logger = logging.getLogger("fustor_agent.console")


class ConsolePortInUse(ConfigError):
    """The console's port is taken by another program (or another agent)."""


class ConsoleHandle:
    """A running console; ``close()`` stops it. ``port`` is the bound port (useful with 0)."""

    def __init__(self, server: HttpServer, host: str, port: int, *, tls: bool = False) -> None:
        self._server = server
        self.host = host
        self.port = port
        self.tls = tls

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    async def close(self) -> None:
        """Stop listening and drop open connections. Idempotent."""
        await self._server.close()


async def start_console(settings: ConsoleSettings, agent: StatusProvider) -> ConsoleHandle:
    """Serve the console of ``agent`` on ``settings.host:settings.port`` in the running loop.

    The caller decides whether the console is enabled. Raises :class:`ConfigError` when the
    token file or TLS files cannot be read, or the address cannot be bound (port in use,
    unknown host); :class:`ConsolePortInUse` (a ConfigError) for a taken port.
    """
    host, port = settings.host, settings.port
    token = load_token(settings)
    tls = tls_context(settings)
    loopback = is_loopback_host(host)
    if not loopback:
        logger.log(
            logging.INFO if tls is not None else logging.WARNING,
            "console listens on %s, reachable from other machines: %s; /healthz, /readyz%s "
            "answer without it%s",
            host,
            "a bearer token is required" if token else "NO TOKEN is required",
            " and /metrics" if settings.metrics_open else "",
            ""
            if tls
            else " (no TLS: the token crosses the network in clear; set console."
            "tls_cert and console.tls_key)",
        )
    app = ConsoleApp(
        agent, loopback_only=loopback, access=Access(token, metrics_open=settings.metrics_open)
    )
    server = HttpServer(app)
    try:
        bound_host, bound_port = await server.start(host, port, tls)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConsolePortInUse(
                f"console port {port} on {host} is already in use; "
                "set console.port or console.enabled: false"
            ) from None
        raise ConfigError(
            f"console cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "set console.host / console.port or console.enabled: false"
        ) from None
    handle = ConsoleHandle(server, bound_host, bound_port, tls=tls is not None)
    logger.info("console on %s", handle.url)
    return handle
