"""Who may read the console: the bearer token, the open paths, and loading it from config."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import ssl
import stat
from dataclasses import dataclass

from fustor_agent.console.settings import ConsoleSettings
from fustor_core import ConfigError

__all__ = ["OPEN_PATHS", "Access", "load_token", "tls_context"]

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""Probes answer without a token: they reveal only "alive" and which pipes are not ready."""


@dataclass(frozen=True, slots=True)
class Access:
    """The token every request outside the open paths must carry (None: no token needed)."""

    token: str | None = None
    metrics_open: bool = False

    def allows(self, path: str, authorization: str | None) -> bool:
        """``Authorization: Bearer <token>``, or HTTP Basic with the token as password (so a
        browser can open the dashboard: any user name, the token as password)."""
        if self.token is None or path in OPEN_PATHS:
            return True
        if path == "/metrics" and self.metrics_open:
            return True
        offered = _offered_token(authorization or "")
        return offered is not None and hmac.compare_digest(
            offered.encode("utf-8"), self.token.encode("utf-8")
        )


def _offered_token(authorization: str) -> str | None:
    scheme, _, value = authorization.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme == "bearer" and value:
        return value
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def load_token(settings: ConsoleSettings) -> str | None:
    """The configured token; reads ``token_file``. Raises :class:`ConfigError` naming the
    file when it cannot be read or holds no token."""
    if settings.token is not None:
        return settings.token
    if settings.token_file is None:
        return None
    path = settings.token_file
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
            mode = os.fstat(f.fileno()).st_mode
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"console.token_file: cannot read {path}: {reason}") from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ConfigError(
            f"console.token_file: {path} must hold one token of at least 16 characters "
            "without spaces (for example: openssl rand -hex 32)"
        )
    if stat.S_IMODE(mode) & 0o077:
        logger.warning("console.token_file %s is readable by other users; chmod 600 it", path)
    return token


def tls_context(settings: ConsoleSettings) -> ssl.SSLContext | None:
    """The server TLS context of ``tls_cert``/``tls_key`` (TLS 1.2 or newer), or None.
    Raises :class:`ConfigError` when they cannot be loaded."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigError(
            f"console.tls_cert/tls_key: cannot load {settings.tls_cert} with "
            f"{settings.tls_key}: {reason}"
        ) from None
    return context
