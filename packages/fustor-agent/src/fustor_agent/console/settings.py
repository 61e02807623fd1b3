"""The ``console:`` block of agent-config.yaml: where the web console listens."""

from __future__ import annotations

import ipaddress

from pydantic import Field

from fustor_agent_sdk.config import StrictModel

__all__ = ["DEFAULT_CONSOLE_PORT", "ConsoleSettings", "is_loopback_host"]

DEFAULT_CONSOLE_PORT = 8100


class ConsoleSettings(StrictModel):
    """Web console, status API and metrics endpoint.

    Defaults keep the console on loopback: the page shows paths and figures an operator
    may not want on the network. Port 0 picks a free port (tests use it).
    """

    enabled: bool = True
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=DEFAULT_CONSOLE_PORT, ge=0, le=65535)


def is_loopback_host(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
