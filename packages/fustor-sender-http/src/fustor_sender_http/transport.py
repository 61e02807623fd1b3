"""The one keep-alive HTTP/1.1 client of a ``fusion`` sender: TLS, proxies, timeouts."""

from __future__ import annotations

import os
import ssl
import time
from typing import Any

import httpx

from fustor_core import DriverError
from fustor_sender_http.config import FusionSenderConfig
from fustor_sender_http.redact import redact

__all__ = [
    "MAX_RESPONSE_BYTES",
    "FusionClient",
    "ResponseTooLarge",
    "build_client",
    "describe_failure",
    "ssl_context",
]

_USER_AGENT = "fustor-agent-sender-fusion/1.0.0"


def _tls_needed(config: FusionSenderConfig) -> bool:
    """Whether any connection of this client can be TLS: an https endpoint or proxy."""
    if config.endpoint.startswith("https://"):
        return True
    if not config.driver_params.trust_env:
        return False
    return any(
        os.environ.get(name, "").lower().startswith("https://")
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
    )


def ssl_context(config: FusionSenderConfig) -> ssl.SSLContext | bool:
    """``verify`` argument for httpx: a context when a CA bundle or client cert is configured."""
    params = config.driver_params
    if not (params.ca_bundle or params.client_cert):
        # httpx loads the whole CA store up front (tens of ms of CPU); plain-http clients
        # never use it.
        return params.verify if _tls_needed(config) else False
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


MAX_RESPONSE_BYTES = 1 << 20
"""Fusion's answers are small JSON objects; 1 MiB is far above any real one."""


class ResponseTooLarge(httpx.HTTPError):
    """The server sent more than the agent is willing to read."""


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(f"response of {int(declared)} bytes is larger than {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"response larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class FusionClient:
    """The sender's HTTP client, created on first use, with request figures for status."""

    def __init__(
        self, config: FusionSenderConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.requests = 0
        self.request_failures = 0
        self.bytes_sent = 0
        self.last_status: int | None = None
        self.last_latency_ms: float | None = None
        self.last_error: str | None = None

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        read_timeout: float | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> httpx.Response:
        """One request; a network failure is counted and re-raised as ``httpx.HTTPError``.

        ``read_timeout`` replaces the configured read timeout for this request only. A
        response body larger than ``max_response_bytes`` is not read further: it is a failure
        (:class:`ResponseTooLarge`), so a broken server cannot make the agent hold it all.
        """
        if self._client is None:
            self._client = build_client(self.config, self._transport)
        timeout: Any = httpx.USE_CLIENT_DEFAULT
        if read_timeout is not None:
            params = self.config.driver_params
            timeout = httpx.Timeout(
                connect=params.connect_timeout_sec,
                read=read_timeout,
                write=params.read_timeout_sec,
                pool=params.read_timeout_sec,
            )
        started = time.perf_counter()
        try:
            request = self._client.build_request(method, url, content=body, timeout=timeout)
            response = await self._client.send(request, stream=True)
            try:
                content = await _read_capped(response, max_response_bytes)
            finally:
                await response.aclose()
            response = httpx.Response(
                response.status_code, headers=response.headers, content=content, request=request
            )
        except httpx.HTTPError as exc:
            self.request_failures += 1
            self.last_error = redact(describe_failure(exc))
            raise
        self.requests += 1
        self.last_status = response.status_code
        self.last_latency_ms = (time.perf_counter() - started) * 1000
        if body is not None:
            self.bytes_sent += len(body)
        return response

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "request_failures": self.request_failures,
            "bytes_sent": self.bytes_sent,
            "last_http_status": self.last_status,
            "last_latency_ms": round(self.last_latency_ms, 3) if self.last_latency_ms else None,
            "last_error": self.last_error,
        }
