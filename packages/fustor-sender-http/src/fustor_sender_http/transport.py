"""The one keep-alive HTTP/1.1 client of a ``fusion`` sender: TLS, proxies, timeouts."""

from __future__ import annotations

import ssl

import httpx

from fustor_core import DriverError
from fustor_sender_http.config import FusionSenderConfig

__all__ = ["build_client", "describe_failure", "ssl_context"]

_USER_AGENT = "fustor-agent-sender-fusion/1.0.0"


def ssl_context(config: FusionSenderConfig) -> ssl.SSLContext | bool:
    """``verify`` argument for httpx: a context when a CA bundle or client cert is configured."""
    params = config.driver_params
    if not (params.ca_bundle or params.client_cert):
        return params.verify
    try:
        ctx = ssl.create_default_context(cafile=str(params.ca_bundle) if params.ca_bundle else None)
        if not params.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if params.client_cert:
            ctx.load_cert_chain(
                str(params.client_cert), str(params.client_key) if params.client_key else None
            )
    except (OSError, ssl.SSLError) as exc:
        raise DriverError(
            f"cannot load the TLS files of the fusion sender: {exc}", retriable=False
        ) from exc
    return ctx


def build_client(
    config: FusionSenderConfig, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """A client bound to the receiver URL that sends the API key on every request.

    ``transport`` replaces the network (tests pass an ``httpx.MockTransport``).
    """
    params = config.driver_params
    credential = config.credential.get_secret_value() if config.credential else ""
    return httpx.AsyncClient(
        base_url=config.endpoint,
        headers={
            "X-API-Key": credential,
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
        },
        timeout=httpx.Timeout(
            connect=params.connect_timeout_sec,
            read=params.read_timeout_sec,
            write=params.read_timeout_sec,
            pool=params.read_timeout_sec,
        ),
        verify=ssl_context(config),
        trust_env=params.trust_env,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=8, keepalive_expiry=60),
        transport=transport,
    )


def describe_failure(exc: httpx.HTTPError) -> str:
    """One line for a network-level failure (no URL: it may hold a session id)."""
    kind = type(exc).__name__
    text = str(exc)
    return f"{kind}: {text}" if text else kind
