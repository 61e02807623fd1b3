"""Reading a running agent's status through its console (for ``fustor-agent status``)."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from fustor_agent.console.app import STATUS_PATH

__all__ = ["fetch_status"]

logger = logging.getLogger(__name__)

_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def fetch_status(
    host: str, port: int, timeout: float = 2.0, token: str | None = None
) -> dict[str, Any] | None:
    """``GET /api/v1/status`` of the agent whose console listens on ``host:port`` (with
    ``token`` as bearer token when the console requires one).

    Returns ``None`` when no agent console answers there (not running, or something else on
    the port), so the caller can fall back to reading the config. Blocking: for the CLI.
    """
    host = _ANY_ADDRESS.get(host, host)  # a wildcard bind is reached through loopback
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"http://{netloc}{STATUS_PATH}"
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            status = json.load(resp)
    except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
        logger.debug("no agent status at %s: %s", url, exc)
        return None
    if not isinstance(status, dict) or "pipes" not in status:
        logger.debug("%s answered, but not with an agent status", url)
        return None
    return status
