"""The ``console:`` block of agent-config.yaml: where the console listens, who may read it."""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, field_validator, model_validator

from fustor_agent_sdk.config import StrictModel

__all__ = ["DEFAULT_CONSOLE_PORT", "ConsoleSettings", "is_loopback_host"]

DEFAULT_CONSOLE_PORT = 8100
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class ConsoleSettings(StrictModel):
    """Web console, status API and metrics endpoint.

    Defaults keep the console on loopback: the page shows paths and figures an operator
    may not want on the network. Port 0 picks a free port (tests use it). A console on any
    other address needs a bearer token (``token`` or ``token_file``); TLS is on when both
    ``tls_cert`` and ``tls_key`` are given.
    """

    enabled: bool = True
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=DEFAULT_CONSOLE_PORT, ge=0, le=65535)
    token: str | None = Field(default=None, min_length=16, repr=False)
    """Bearer token (write it as ``${VAR}``, never literally in a shared file)."""
    token_file: str | None = Field(default=None, min_length=1)
    """A file holding the token (read at start; surrounding whitespace ignored)."""
    metrics_open: bool = False
    """True: ``/metrics`` answers without the token (``/healthz`` and ``/readyz`` always do)."""
    tls_cert: str | None = Field(default=None, min_length=1)
    """PEM certificate chain file; with ``tls_key``, the console speaks HTTPS only."""
    tls_key: str | None = Field(default=None, min_length=1)
    """PEM private key file of ``tls_cert``."""

    @field_validator("host")
    @classmethod
    def _host_is_an_address_or_a_name(cls, host: str) -> str:
        try:
            ipaddress.ip_address(host)
            return host
        except ValueError:
            pass
        labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
        if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ValueError(
                f"{host!r} is neither an IP address nor a host name (letters, digits, '-' "
                "and '.'), e.g. 127.0.0.1, 0.0.0.0, ::1 or agent.example.org"
            )
        return host

    @model_validator(mode="after")
    def _check(self) -> ConsoleSettings:
        if self.token is not None and self.token_file is not None:
            raise ValueError("give either token or token_file, not both")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: give both, or neither")
        if self.enabled and not is_loopback_host(self.host) and not self.has_token:
            raise ValueError(
                f"host {self.host!r} is reachable from other machines: set token "
                '(e.g. token: "${FUSTOR_CONSOLE_TOKEN}") or token_file, so that only '
                "holders of the token can read paths and errors (/healthz and /readyz stay open)"
            )
        return self

    @property
    def has_token(self) -> bool:
        return self.token is not None or self.token_file is not None

    @property
    def requested(self) -> bool:
        """The configuration has a ``console:`` block (or ``--console-port`` was given):
        failing to serve it is an error. Otherwise the console is optional and a taken port
        only costs a warning."""
        return bool(self.model_fields_set)


def is_loopback_host(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
